"""The built-in post-processing steps (numpy / scipy / scikit-image; no TensorFlow).

Each ``build_<name>(params)`` returns a callable ``step(array) -> array``. Steps chain in config
order; the chain starts with class probabilities ``(H, W, C)`` float32 (softmax applied). The
kind of an array is read from its dtype:

* **probabilities**: float ``(H, W, C)`` (or ``(H, W)`` for one channel);
* **class map / mask**: ``bool`` or ``uint8`` ``(H, W)``; 0 is background and every non-zero
  value is foreground. ``argmax`` keeps class ids (for a contour model 1 = cell, 2 = contour)
  so that ``watershed_split`` can use the contour class; ``threshold`` gives 0/1;
* **instance labels**: any other integer dtype ``(H, W)`` (``label`` and ``watershed_split``
  give int32, never uint8); 0 is background, each id one object.

What each step takes and gives:

=======================  ===================  ==============================================
step                     input                output
=======================  ===================  ==============================================
argmax                   probabilities        uint8 class map (argmax; 1 channel: > threshold)
threshold                probabilities        uint8 0/1 mask (P[channel] > threshold)
closing                  mask or labels       same kind; added pixels get class 1 (masks) or
                                              the object's id (labels, only into background)
fill_holes               mask or labels       same kind; filled pixels as for ``closing``
remove_small_objects     mask or labels       same kind and ids; small objects set to 0
remove_border_objects    mask or labels       same kind and ids; border objects set to 0
label                    mask or labels       int32 labels (connected components of the
                                              foreground); labels pass through as int32+
watershed_split          class map            int32 labels: seeds = components of the cell
                                              class, grown over cell + contour pixels
distance_watershed       probabilities with   int32 labels: seeds where the predicted
                         a distance channel   distance > seed_threshold (and h-maxima of
                                              seed_depth), watershed on -distance inside
                                              P(foreground) > threshold
=======================  ===================  ==============================================

A step given the wrong kind raises :class:`~dlsuite.errors.DlsuiteInputError` naming it.
Each spec (:mod:`dlsuite_plugins.postprocess.plugin`) declares the same table as
``accepts``/``gives`` (kinds ``probabilities``, ``class_map``, ``mask``, ``labels``; "same
kind" is ``gives="same"``) and what it ``needs`` (``threshold``: its channel;
``watershed_split``: ``cell_class`` and ``contour_class`` in the class map;
``distance_watershed``: its foreground class, its distance channel and a regression head),
so ``dlsuite config validate`` refuses a chain that cannot work (:mod:`dlsuite.chains`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from dlsuite import DlsuiteInputError

__all__ = [
    "array_kind",
    "build_argmax",
    "build_threshold",
    "build_closing",
    "build_fill_holes",
    "build_remove_small_objects",
    "build_remove_border_objects",
    "build_label",
    "build_watershed_split",
    "build_distance_watershed",
]

Step = Callable[[np.ndarray], np.ndarray]
_MASK_DTYPES = (np.dtype(np.bool_), np.dtype(np.uint8))


def array_kind(array: np.ndarray) -> str:
    """``"probabilities"`` (float), ``"mask"`` (bool/uint8) or ``"labels"`` (other integers)."""
    dtype = np.asarray(array).dtype
    if np.issubdtype(dtype, np.floating):
        return "probabilities"
    if dtype in _MASK_DTYPES:
        return "mask"
    if np.issubdtype(dtype, np.integer):
        return "labels"
    raise DlsuiteInputError(f"post-processing: unsupported array dtype {dtype}")


def _expect(name: str, array: np.ndarray, kinds: tuple[str, ...]) -> str:
    array = np.asarray(array)
    kind = array_kind(array)
    if kind not in kinds:
        hint = " (run 'argmax' or 'threshold' first)" if kind == "probabilities" else ""
        raise DlsuiteInputError(
            f"postprocessor {name!r} expects {' or '.join(kinds)}, got {kind} "
            f"({array.dtype}, shape {array.shape}){hint}"
        )
    want_ndim = (2, 3) if kind == "probabilities" else (2,)
    if array.ndim not in want_ndim:
        raise DlsuiteInputError(
            f"postprocessor {name!r}: expected a 2D {kind} array, got shape {array.shape}"
        )
    return kind


def _structure(connectivity: int) -> np.ndarray:
    return ndi.generate_binary_structure(2, connectivity)


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r


def _probs3(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs)
    return probs[..., None] if probs.ndim == 2 else probs


def _with_added(mask: np.ndarray, grown: np.ndarray) -> np.ndarray:
    """``mask`` with the pixels of boolean ``grown`` that were background set to class 1."""
    out = mask.copy()
    out[grown & (mask == 0)] = True if mask.dtype == np.bool_ else 1
    return out


def _per_object(labels: np.ndarray, margin: int, op: Callable[[np.ndarray], np.ndarray]):
    """Apply a binary ``op`` to each object in its bounding box (+ margin); new pixels go only
    into background and keep the object's id."""
    out = labels.copy()
    for index, box in enumerate(ndi.find_objects(labels)):  # ids 1..max
        if box is None:
            continue
        lab = index + 1
        box = tuple(
            slice(max(s.start - margin, 0), min(s.stop + margin, n))
            for s, n in zip(box, labels.shape)
        )
        grown = op(labels[box] == lab)
        target = out[box]
        target[grown & (target == 0)] = lab
    return out


def _sparse_ids(labels: np.ndarray) -> bool:
    """True when label ids are too large for ``find_objects``' dense table."""
    return labels.size and int(labels.max()) > 4 * labels.size


def _dense(labels: np.ndarray):
    """``(dense_labels, ids)``: labels renumbered 1..n and the original id of each."""
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:
        ids = np.concatenate([[0], ids])
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int64), ids


def _per_object_any(labels, margin, op):
    if _sparse_ids(labels) or labels.min() < 0:
        dense, ids = _dense(labels)
        return ids[_per_object(dense, margin, op)].astype(labels.dtype)
    return _per_object(labels, margin, op)


def _closing(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary closing without border effects (the image is extended by repeating its edge
    pixels, so objects touching the border are not eroded there), extensive."""
    if radius <= 0:
        return mask.astype(bool)
    padded = np.pad(mask.astype(bool), radius + 1, mode="edge")
    closed = ndi.binary_closing(padded, structure=_disk(radius))
    return closed[radius + 1 : -(radius + 1), radius + 1 : -(radius + 1)] | mask.astype(bool)


# --------------------------------------------------------------------------------------------
# probabilities -> class map / mask


def build_argmax(params) -> Step:
    """Probabilities ``(H, W, C)`` -> uint8 class map ``argmax_c``; one channel: ``P > threshold``."""

    def argmax(probs: np.ndarray) -> np.ndarray:
        _expect("argmax", probs, ("probabilities",))
        p = _probs3(probs)
        if p.shape[-1] == 1:
            return (p[..., 0] > params.threshold).astype(np.uint8)
        return np.argmax(p, axis=-1).astype(np.uint8)

    return argmax


def build_threshold(params) -> Step:
    """Probabilities -> uint8 0/1 mask ``P[..., channel] > threshold`` (channel 0 if only one)."""

    def threshold(probs: np.ndarray) -> np.ndarray:
        _expect("threshold", probs, ("probabilities",))
        p = _probs3(probs)
        channel = 0 if p.shape[-1] == 1 else params.channel
        if not 0 <= channel < p.shape[-1]:
            raise DlsuiteInputError(
                f"postprocessor 'threshold': channel {channel} out of range for "
                f"{p.shape[-1]}-class probabilities"
            )
        return (p[..., channel] > params.threshold).astype(np.uint8)

    return threshold


# --------------------------------------------------------------------------------------------
# morphology


def build_closing(params) -> Step:
    """Morphological closing (disk of ``radius``) of a mask, or of each labelled object."""
    radius = int(params.radius)

    def closing(array: np.ndarray) -> np.ndarray:
        kind = _expect("closing", array, ("mask", "labels"))
        if kind == "mask":
            return _with_added(array, _closing(array != 0, radius))
        return _per_object_any(array, radius + 1, lambda m: _closing(m, radius))

    return closing


def build_fill_holes(params) -> Step:
    """Fill background regions enclosed by the foreground (per object for labels)."""

    def fill_holes(array: np.ndarray) -> np.ndarray:
        kind = _expect("fill_holes", array, ("mask", "labels"))
        if kind == "mask":
            return _with_added(array, ndi.binary_fill_holes(array != 0))
        return _per_object_any(array, 1, ndi.binary_fill_holes)

    return fill_holes


# --------------------------------------------------------------------------------------------
# object filters


def _objects(array: np.ndarray, kind: str, connectivity: int) -> np.ndarray:
    """Object ids per pixel: connected components of a mask, the labels themselves."""
    if kind == "mask":
        comps, _ = ndi.label(array != 0, structure=_structure(connectivity))
        return comps
    return array


def _drop(array: np.ndarray, objects: np.ndarray, bad_ids: np.ndarray) -> np.ndarray:
    out = array.copy()
    bad_ids = bad_ids[bad_ids != 0]
    if bad_ids.size:
        out[np.isin(objects, bad_ids)] = 0
    return out


def build_remove_small_objects(params) -> Step:
    """Set objects with fewer than ``min_size`` pixels to 0 (ids and classes of the rest kept)."""

    def remove_small_objects(array: np.ndarray) -> np.ndarray:
        kind = _expect("remove_small_objects", array, ("mask", "labels"))
        objects = _objects(array, kind, params.connectivity)
        ids, counts = np.unique(objects, return_counts=True)
        return _drop(array, objects, ids[counts < params.min_size])

    return remove_small_objects


def build_remove_border_objects(params) -> Step:
    """Set objects having a pixel within ``border`` pixels of the image edge to 0."""
    width = max(int(params.border), 1)

    def remove_border_objects(array: np.ndarray) -> np.ndarray:
        kind = _expect("remove_border_objects", array, ("mask", "labels"))
        objects = _objects(array, kind, params.connectivity)
        band = np.ones(objects.shape, dtype=bool)
        band[width:-width, width:-width] = False
        return _drop(array, objects, np.unique(objects[band]))

    return remove_border_objects


# --------------------------------------------------------------------------------------------
# instances


def _label_dtype(array: np.ndarray) -> np.ndarray:
    if array.dtype.itemsize >= 4:
        return array
    return array.astype(np.int32)


def build_label(params) -> Step:
    """Connected components of a mask's foreground -> int32 labels 1..n (labels pass through,
    widened to at least 32 bits)."""

    def label(array: np.ndarray) -> np.ndarray:
        kind = _expect("label", array, ("mask", "labels"))
        if kind == "labels":
            return _label_dtype(array)
        comps, _ = ndi.label(array != 0, structure=_structure(params.connectivity))
        return comps.astype(np.int32)

    return label


def build_watershed_split(params) -> Step:
    """Class map (cell, contour) -> int32 instances.

    Seeds are the connected components of ``cell_class`` pixels (of at least
    ``min_marker_size`` pixels); they grow by watershed on the distance to the nearest seed over
    all foreground (non-zero) pixels, so touching cells separated by a contour become separate
    instances. Foreground components without a seed become instances of their own.
    """
    from skimage.segmentation import watershed

    def watershed_split(array: np.ndarray) -> np.ndarray:
        _expect("watershed_split", array, ("mask",))
        structure = _structure(params.connectivity)
        foreground = array != 0
        markers, n = ndi.label(array == params.cell_class, structure=structure)
        if params.min_marker_size > 0 and n:
            sizes = np.bincount(markers.ravel())
            small = np.flatnonzero(sizes < params.min_marker_size)
            markers[np.isin(markers, small[small != 0])] = 0
        if markers.any():
            elevation = ndi.distance_transform_edt(markers == 0)
            out = watershed(elevation, markers, mask=foreground, connectivity=params.connectivity)
        else:
            out = np.zeros(array.shape, dtype=np.int32)
        rest, n_rest = ndi.label(foreground & (out == 0), structure=structure)
        if n_rest:
            base = int(out.max())
            out = np.where(rest > 0, rest + base, out)
        from skimage.segmentation import relabel_sequential

        return relabel_sequential(out.astype(np.int32))[0].astype(np.int32)

    return watershed_split


def build_distance_watershed(params) -> Step:
    """Probabilities + predicted distance ``(H, W, C)`` -> int32 instances.

    Foreground: ``P[..., foreground_channel] > threshold`` (with ``background_channel``:
    ``1 - P[..., background_channel] > threshold``, every cell class together). Seeds: the
    connected regions of foreground pixels whose predicted distance
    ``P[..., distance_channel]`` exceeds ``seed_threshold`` (each holds a maximum of the
    distance; a cell whose peak stays below the threshold gets no seed of its own and is
    flooded by its neighbour's); with
    ``seed_depth`` > 0 only those pixels that are also h-maxima of depth ``seed_depth``
    (maxima rising at least that much above the saddle to any higher one; plateaus and
    neighbours by ``connectivity``, like the labelling and the watershed), so a shallow dip
    along one cell does not split it. The seeds grow by watershed on ``-distance`` over the
    foreground; foreground components without a seed become instances of their own;
    instances below ``min_size`` pixels are removed; ids are 1..n.
    """
    from skimage.segmentation import relabel_sequential, watershed

    from .hmaxima_cache import h_maxima_mask

    def distance_watershed(probs: np.ndarray) -> np.ndarray:
        _expect("distance_watershed", probs, ("probabilities",))
        p = _probs3(probs)
        channels = p.shape[-1]
        for key in ("foreground_channel", "distance_channel", "background_channel"):
            c = getattr(params, key)
            if c is not None and not -channels <= c < channels:
                raise DlsuiteInputError(
                    f"postprocessor 'distance_watershed': {key} {c} out of range for "
                    f"{channels}-channel input (expected class probabilities then distance)")
        structure = _structure(params.connectivity)
        if params.background_channel is None:
            foreground = p[..., params.foreground_channel] > params.threshold
        else:
            foreground = 1.0 - p[..., params.background_channel] > params.threshold
        distance = p[..., params.distance_channel]
        seeds = foreground & (distance > params.seed_threshold)
        if params.seed_depth > 0 and seeds.any():
            # cached: tuning repeats it
            seeds &= h_maxima_mask(distance, params.seed_depth, params.connectivity)
        markers, n = ndi.label(seeds, structure=structure)
        if n:
            out = watershed(-distance, markers, mask=foreground,
                            connectivity=params.connectivity)
        else:
            out = np.zeros(foreground.shape, dtype=np.int32)
        rest, n_rest = ndi.label(foreground & (out == 0), structure=structure)
        if n_rest:
            out = np.where(rest > 0, rest + int(out.max()), out)
        if params.min_size > 1 and out.any():
            sizes = np.bincount(out.ravel())
            small = np.flatnonzero(sizes < params.min_size)
            out[np.isin(out, small[small != 0])] = 0
        return relabel_sequential(out.astype(np.int32))[0].astype(np.int32)

    return distance_watershed
