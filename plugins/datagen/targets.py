"""Target factories: ``factory(params) -> callable(labels) -> float32 (H, W, C)``.

The ``weight_map`` and ``distance`` callables have ``takes_crop = True``: called as
``target(labels, crop=(h, w))`` they return only the central ``(h, w)`` (the part the training
pipeline keeps, with the rest of ``labels`` as context), equal to the centre of the full target
except that the weight map is renormalised to mean 1 over the crop.

``labels`` is an ``(H, W)`` instance-label image of any integer (or bool) dtype; values are
never cast to a narrower type, so ids above 255 stay distinct. Channel 0 is always the class
index (``"class"``); ``weight_map`` adds a ``"weight"`` channel. Non-integer labels raise
:class:`~dlsuite.errors.DataError`.

* ``binary``: class 1 where ``labels > 0``.
* ``contours``: 0 background, 1 cell, 2 where
  ``skimage.segmentation.find_boundaries(labels, connectivity, mode)`` is True (computed by
  :func:`boundaries`, equal to it) (boundaries
  overwrite cells, as in the original's contour ground truth). With the default
  ``mode="inner"`` boundary pixels lie on the cells, both between touching cells and between a
  cell and the background.
* ``weight_map``: class = ``labels > 0``; weight =
  ``base + contour_weight * [thick boundary] + w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` where
  ``base`` is 1 on cells and ``background_weight`` on background, and ``d1 <= d2`` are the
  Euclidean distances to the nearest and second-nearest cell (0 inside a cell, so cell pixels
  near another cell are weighted too). This is the U-Net separation weight (Ronneberger et al.
  2015, w0=10, sigma=5) plus the contour emphasis of the original suite's weight maps. An
  instance only counts for pixels inside its bounding box grown by ``ceil(4 sigma)``
  (:func:`~.distances.separation_distances`, OpenCV distance transforms); where fewer than two
  count the separation term is 0. (This
  truncation drops terms up to ``exp(-8) w0`` ~ 3.4e-4 w0, not a negligible amount.) Only
  instances whose grown box meets another's get a distance transform, and only on the part
  where a second instance can count. The map is then divided by its mean, so it has mean 1 (the
  pipeline renormalises again after cropping the patch).
* ``distance``: class = ``labels > 0``; channel ``"distance"`` = each instance pixel's
  Euclidean distance to the nearest pixel of another label (background or a touching
  instance), divided by the instance's own maximum (so each instance peaks at 1; StarDist's
  ``edt_prob``), 0 on background (:func:`~.distances.instance_distances`). Pixels outside the
  label image do not count as another label, so an instance cut by the patch's context border
  is measured as if it continued.
* ``marks``: the instances eroded with ``disk(radius)`` (a pixel is kept when every pixel of
  the disk around it belongs to the same instance; the image border counts as background),
  computed with two grey-level filters, not a per-instance loop. Equal to eroding each
  instance's mask with ``skimage.morphology.binary_erosion`` and taking the union.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage
from skimage.morphology import disk
from skimage.segmentation import find_boundaries

from dlsuite import DataError, DlsuiteInputError

from .distances import (centre_region, compact_ids, instance_distances, separation,  # noqa: F401
                        separation_distances)

__all__ = ["build_binary", "build_contours", "build_weight_map", "build_distance", "build_marks",
           "boundaries", "check_labels", "separation_distances"]

Target = Callable[[np.ndarray], np.ndarray]


def check_labels(labels: np.ndarray, what: str = "labels") -> np.ndarray:
    """Return ``labels`` as an integer ``(H, W)`` array; DataError for floats or wrong ndim."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "b":
        return labels.astype(np.uint8)
    if labels.dtype.kind not in "iu":
        raise DataError(f"{what}: float-valued ({labels.dtype}) labels; instance labels must "
                        "be an integer type")
    if labels.ndim != 2:
        raise DataError(f"{what}: expected a 2D label image, got shape {labels.shape}")
    return labels


def build_binary(params) -> Target:
    """Class 1 where labels > 0 (one channel)."""

    def target(labels: np.ndarray) -> np.ndarray:
        return (check_labels(labels) > 0).astype(np.float32)[..., None]

    return target


def _neighbour_differs(labels: np.ndarray, connectivity: int) -> np.ndarray:
    """True where some in-image neighbour (4- or 8-connected) has another label."""
    out = np.zeros(labels.shape, bool)
    pairs = [((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
             ((slice(None), slice(1, None)), (slice(None), slice(None, -1)))]
    if connectivity == 2:
        pairs += [((slice(1, None), slice(1, None)), (slice(None, -1), slice(None, -1))),
                  ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None)))]
    for a, b in pairs:
        d = labels[a] != labels[b]
        out[a] |= d
        out[b] |= d
    return out


def boundaries(labels: np.ndarray, connectivity: int = 1, mode: str = "inner") -> np.ndarray:
    """``skimage.segmentation.find_boundaries(labels, connectivity, mode)``; the ``inner``
    and ``thick`` modes are computed with array shifts (several times faster), ``outer`` by
    scikit-image."""
    if mode == "thick":
        return _neighbour_differs(labels, connectivity)
    if mode == "inner":
        return _neighbour_differs(labels, connectivity) & (labels != 0)
    return find_boundaries(labels, connectivity=connectivity, mode=mode)


def build_contours(params) -> Target:
    """0 background, 1 cell, 2 boundary from scikit-image ``find_boundaries``."""
    if params.connectivity not in (1, 2):
        raise DlsuiteInputError(
            f"target 'contours': connectivity must be 1 or 2, got {params.connectivity}")

    def target(labels: np.ndarray) -> np.ndarray:
        labels = check_labels(labels)
        out = (labels > 0).astype(np.float32)
        out[boundaries(labels, params.connectivity, params.mode)] = 2.0
        return out[..., None]

    return target


def build_weight_map(params) -> Target:
    """Class channel plus a mean-1 border weight channel (see module docstring)."""
    if params.sigma <= 0:
        raise DlsuiteInputError(f"target 'weight_map': sigma must be > 0, got {params.sigma}")
    reach = 4.0 * params.sigma

    def target(labels: np.ndarray, crop: tuple[int, int] | None = None) -> np.ndarray:
        labels = check_labels(labels)
        region = centre_region(labels.shape, crop) if crop is not None else None
        y0, y1, x0, x1 = region or (0, labels.shape[0], 0, labels.shape[1])
        cells = labels[y0:y1, x0:x1] > 0
        weight = np.where(cells, np.float32(1.0), np.float32(params.background_weight))
        if params.contour_weight:
            weight += params.contour_weight * _thick_boundaries(labels, (y0, y1, x0, x1))
        if params.w0 and (labels > 0).any():
            # d2 = inf where fewer than two instances count: the term is exp(-inf) = 0 there
            term, d2 = separation(compact_ids(labels), reach, pairs_only=True, region=region)
            term += d2  # in place: w0 * exp(-(d1 + d2)**2 / (2 sigma**2))
            np.square(term, out=term)
            np.negative(term, out=term)
            np.divide(term, 2 * params.sigma ** 2, out=term)
            np.exp(term, out=term)
            term *= params.w0
            weight += term
        weight /= max(float(weight.mean()), 1e-12)
        out = np.empty((*cells.shape, 2), dtype=np.float32)
        out[..., 0] = cells
        out[..., 1] = weight
        return out

    target.takes_crop = True
    return target


def _on_region(fn: Callable[[np.ndarray], np.ndarray], labels: np.ndarray,
               region: tuple[int, int, int, int]) -> np.ndarray:
    """``fn(labels)`` on ``region`` only, computed with a 1-pixel margin around it (``fn``
    looks at each pixel's neighbours, as boundaries do)."""
    y0, y1, x0, x1 = region
    H, W = labels.shape
    a, b, c, d = max(y0 - 1, 0), min(y1 + 1, H), max(x0 - 1, 0), min(x1 + 1, W)
    return fn(labels[a:b, c:d])[y0 - a:y1 - a, x0 - c:x1 - c]


def _thick_boundaries(labels: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """``boundaries(labels, 1, "thick")`` on ``region``."""
    return _on_region(lambda lab: boundaries(lab, 1, "thick"), labels, region)


def build_distance(params) -> Target:
    """Class channel plus the per-instance normalised distance channel (module docstring)."""

    def target(labels: np.ndarray, crop: tuple[int, int] | None = None) -> np.ndarray:
        labels = check_labels(labels)
        region = centre_region(labels.shape, crop) if crop is not None else None
        distance = instance_distances(labels, normalize=True, region=region)
        y0, y1, x0, x1 = region or (0, labels.shape[0], 0, labels.shape[1])
        return np.stack([(labels[y0:y1, x0:x1] > 0).astype(np.float32), distance], axis=-1)

    target.takes_crop = True
    return target


def build_contours_distance(params) -> Target:
    """Classes 0 background, 1 cell, 2 boundary (as ``contours``) plus the per-instance
    normalised distance channel (as ``distance``): the boundary class teaches where touching
    cells part and where a cell ends, the distance where its seed is."""
    contours = build_contours(params)

    def target(labels: np.ndarray, crop: tuple[int, int] | None = None) -> np.ndarray:
        labels = check_labels(labels)
        region = centre_region(labels.shape, crop) if crop is not None else None
        distance = instance_distances(labels, normalize=True, region=region)
        H, W = labels.shape
        classes = _on_region(contours, labels, region or (0, H, 0, W))[..., 0]
        return np.stack([classes, distance], axis=-1)

    target.takes_crop = True
    return target


def build_marks(params) -> Target:
    """Instances eroded with ``disk(radius)``, vectorised (see module docstring)."""
    if params.radius < 0:
        raise DlsuiteInputError(f"target 'marks': radius must be >= 0, got {params.radius}")
    footprint = disk(params.radius).astype(bool)

    def target(labels: np.ndarray) -> np.ndarray:
        labels = check_labels(labels)
        if params.radius == 0:
            return (labels > 0).astype(np.float32)[..., None]
        lo = ndimage.grey_erosion(labels, footprint=footprint, mode="constant", cval=0)
        hi = ndimage.grey_dilation(labels, footprint=footprint, mode="constant", cval=0)
        keep = (labels > 0) & (lo == labels) & (hi == labels)
        return keep.astype(np.float32)[..., None]

    return target
