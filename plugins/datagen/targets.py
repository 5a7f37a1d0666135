"""Target factories: ``factory(params) -> callable(labels) -> float32 (H, W, C)``.

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
  (:func:`separation_distances`); where fewer than two count the separation term is 0. (This
  truncation drops terms up to ``exp(-8) w0`` ~ 3.4e-4 w0, not a negligible amount.) Only
  instances whose grown box meets another's get a distance transform, and only on the part
  where a second instance can count. The map is then divided by its mean, so it has mean 1 (the
  pipeline renormalises again after cropping the patch).
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

__all__ = ["build_binary", "build_contours", "build_weight_map", "build_marks",
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


def separation_distances(labels: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``(d1, d2)`` of every pixel to the nearest and second-nearest instance
    (0 inside an instance), exact up to ``reach`` pixels and ``inf`` beyond.

    Precisely: an instance counts for a pixel when the pixel lies in the instance's bounding
    box grown by ``ceil(reach)`` pixels (clipped to the image); ``d1 <= d2`` are the two
    smallest exact Euclidean distances among the instances that count (``inf`` when fewer
    than one / two count). Returned as float32 (the float64 distance rounded once).
    """
    sq1, sq2 = _separation_squares(labels, reach, pairs_only=False)
    return _root(sq1), _root(sq2)


_FAR = np.iinfo(np.int32).max  # "no instance counts" in the integer squared distances


def _grown_boxes(labels: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, boxes, grown)`` of the present instances: ``boxes`` / ``grown`` are
    ``(n, 4)`` int arrays ``y0, y1, x0, x1`` of the bounding boxes and of the boxes grown by
    ``ceil(reach)`` (clipped to the image)."""
    H, W = labels.shape
    r = int(np.ceil(reach))
    found = [(i + 1, b) for i, b in enumerate(ndimage.find_objects(labels)) if b is not None]
    ids = np.array([i for i, _ in found], dtype=np.int64)
    boxes = np.array([(b[0].start, b[0].stop, b[1].start, b[1].stop) for _, b in found],
                     dtype=np.int64).reshape(-1, 4)
    grown = boxes + np.array([-r, r, -r, r])
    np.clip(grown[:, :2], 0, H, out=grown[:, :2])
    np.clip(grown[:, 2:], 0, W, out=grown[:, 2:])
    return ids, boxes, grown


def _pair_rects(boxes: np.ndarray, grown: np.ndarray) -> np.ndarray:
    """Per instance, the part of its grown box where d2 can be finite: the bounding
    rectangle of (its grown box intersected with the other instances' grown boxes) and its own
    bounding box (so its feature transform there stays exact); an empty rectangle
    (``y0 == y1``) when its grown box meets no other."""
    if len(boxes) == 0:
        return boxes
    y0 = np.maximum(grown[:, None, 0], grown[None, :, 0])
    y1 = np.minimum(grown[:, None, 1], grown[None, :, 1])
    x0 = np.maximum(grown[:, None, 2], grown[None, :, 2])
    x1 = np.minimum(grown[:, None, 3], grown[None, :, 3])
    meets = (y0 < y1) & (x0 < x1)
    np.fill_diagonal(meets, False)
    big = np.iinfo(np.int64).max
    rects = np.stack([np.where(meets, y0, big).min(1), np.where(meets, y1, -big).max(1),
                      np.where(meets, x0, big).min(1), np.where(meets, x1, -big).max(1)], 1)
    rects[:, 0] = np.minimum(rects[:, 0], boxes[:, 0])
    rects[:, 1] = np.maximum(rects[:, 1], boxes[:, 1])
    rects[:, 2] = np.minimum(rects[:, 2], boxes[:, 2])
    rects[:, 3] = np.maximum(rects[:, 3], boxes[:, 3])
    alone = ~meets.any(1)
    rects[alone] = 0
    return rects


def _separation_squares(labels: np.ndarray, reach: float,
                        pairs_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Integer squared ``(d1, d2)`` of :func:`separation_distances` (``_FAR`` for ``inf``).

    One feature transform per instance on its grown bounding box; with ``pairs_only`` only
    on the part of it where ``d2`` can be finite (:func:`_pair_rects`), which leaves ``d2``
    unchanged and ``d1`` exact wherever ``d2`` is finite.
    """
    H, W = labels.shape
    sq1 = np.full((H, W), _FAR, dtype=np.int32)
    sq2 = np.full((H, W), _FAR, dtype=np.int32)
    ids, boxes, grown = _grown_boxes(labels, reach)
    rects = _pair_rects(boxes, grown) if pairs_only else grown
    for index, (y0, y1, x0, x1) in zip(ids.tolist(), rects.tolist()):
        if y0 >= y1:
            continue
        sq = _squared_edt(labels[y0:y1, x0:x1] != index)
        a, b = sq1[y0:y1, x0:x1], sq2[y0:y1, x0:x1]
        np.minimum(b, np.maximum(a, sq), out=b)
        np.minimum(a, sq, out=a)
    return sq1, sq2


def _squared_edt(background: np.ndarray) -> np.ndarray:
    """Exact squared Euclidean distance (int32) of each pixel to the nearest False pixel of
    ``background`` (which must contain one), via scipy's feature transform."""
    ft = ndimage.distance_transform_edt(background, return_distances=False,
                                        return_indices=True)
    h, w = background.shape
    ft = ft.astype(np.int32, copy=False)
    ft[0] -= np.arange(h, dtype=np.int32)[:, None]
    ft[1] -= np.arange(w, dtype=np.int32)[None, :]
    np.multiply(ft, ft, out=ft)
    return np.add(ft[0], ft[1])


def _root(sq: np.ndarray) -> np.ndarray:
    """float32 square roots of the integer squares ``sq`` (rounded once from float64),
    ``inf`` where ``sq == _FAR``."""
    out = np.full(sq.shape, np.inf, dtype=np.float32)
    known = sq != _FAR
    out[known] = np.sqrt(sq[known].astype(np.float64))
    return out


def build_weight_map(params) -> Target:
    """Class channel plus a mean-1 border weight channel (see module docstring)."""
    if params.sigma <= 0:
        raise DlsuiteInputError(f"target 'weight_map': sigma must be > 0, got {params.sigma}")
    reach = 4.0 * params.sigma

    def target(labels: np.ndarray) -> np.ndarray:
        labels = check_labels(labels)
        cells = labels > 0
        weight = np.where(cells, 1.0, params.background_weight).astype(np.float32)
        if params.contour_weight:
            weight += params.contour_weight * boundaries(labels, 1, "thick")
        if params.w0 and cells.any():
            sq1, sq2 = _separation_squares(_compact_ids(labels), reach, pairs_only=True)
            near = sq2 != _FAR
            total = (np.sqrt(sq1[near].astype(np.float64)).astype(np.float32)
                     + np.sqrt(sq2[near].astype(np.float64)).astype(np.float32))
            weight[near] += params.w0 * np.exp(-(total ** 2) / (2 * params.sigma ** 2))
        weight /= max(float(weight.mean()), 1e-12)
        return np.stack([cells.astype(np.float32), weight], axis=-1)

    return target


def _compact_ids(labels: np.ndarray) -> np.ndarray:
    """Non-negative ids with a small maximum (``find_objects`` makes a list of ``max`` slots):
    unchanged when already small, else relabelled to 1..n."""
    if int(labels.min()) >= 0 and int(labels.max()) <= 4 * labels.size:
        return labels.astype(np.intp, copy=False)
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32)


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
