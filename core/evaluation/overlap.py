"""Overlap (contingency) table between two label images, computed in one pass.

:func:`overlap_table` is the single place where pixels are counted; SEG, DET/TRA matching and
the instance precision/recall all derive from it. It promises, for two integer label arrays of
the same shape (0 = background):

- ``ref_labels`` / ``res_labels``: the sorted non-zero labels present on each side (int64);
- ``ref_areas`` / ``res_areas``: their pixel counts (aligned with the labels);
- ``pairs``: an ``(n, 2)`` array of indices into ``ref_labels`` / ``res_labels`` of every pair
  of objects that share at least one pixel, and ``intersections``: how many pixels they share.

It never modifies its inputs and never wraps labels: everything is counted in int64 (unlike
py-ctcmetrics, which adds an offset to the result labels in place and can overflow uint16).
Cost: when (max ref label + 1) x (max result label + 1) is at most 2**24, a single joint
``np.bincount`` over all pixels (areas are its row/column sums); otherwise labels are first
compacted (bincount or ``np.unique``) and only pixels foreground on both sides are counted.
"""

from __future__ import annotations

import attrs
import numpy as np

from dlsuite.data.layouts import whole_number_labels
from dlsuite.errors import DataError

# Above this many label values, areas are counted with np.unique instead of a dense bincount.
_DENSE_LABEL_LIMIT = 1 << 24
# Above this many (ref x res) cells, intersections are counted with np.unique.
_DENSE_TABLE_LIMIT = 1 << 24


@attrs.frozen
class OverlapTable:
    """Pixel overlaps between the objects of a reference and a result label image."""

    ref_labels: np.ndarray
    ref_areas: np.ndarray
    res_labels: np.ndarray
    res_areas: np.ndarray
    pairs: np.ndarray
    intersections: np.ndarray

    def ious(self) -> np.ndarray:
        """Jaccard index (intersection over union) of every overlapping pair in ``pairs``."""
        inter = self.intersections.astype(np.float64)
        union = self.ref_areas[self.pairs[:, 0]] + self.res_areas[self.pairs[:, 1]] - inter
        return inter / np.maximum(union, 1)


def as_label_array(array, what: str = "label image") -> np.ndarray:
    """Return ``array`` as a non-negative integer ndarray (int64 view/copy), or raise DataError.

    Float arrays are accepted only when they hold whole numbers (some tools save labels as
    float32), as everywhere in dlsuite (:func:`dlsuite.data.layouts.whole_number_labels`);
    negative labels are rejected. ``what`` names the source in the error message.
    """
    arr = np.asarray(array)
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        arr = whole_number_labels(what, arr).astype(np.int64)
    elif not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{what}: labels must be integers, got dtype {arr.dtype}")
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise DataError(f"{what}: negative labels are not allowed (min {arr.min()})")
    if arr.size and arr.dtype == np.uint64 and int(arr.max()) > np.iinfo(np.int64).max:
        raise DataError(f"{what}: label id {int(arr.max())} is too large: ids are counted as "
                        "64-bit signed integers (at most 2**63 - 1); relabel the image, e.g. "
                        "skimage.segmentation.relabel_sequential")
    return arr


def _count_labels(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, areas, index) where ``index`` maps each pixel to its position in ``labels``
    (-1 for background); labels exclude 0."""
    top = int(flat.max()) if flat.size else 0
    if top < _DENSE_LABEL_LIMIT:
        counts = np.bincount(flat, minlength=top + 1)
        counts[0] = 0
        labels = np.flatnonzero(counts)
        lut = np.full(top + 1, -1, dtype=np.int64)
        lut[labels] = np.arange(labels.size)
        return labels.astype(np.int64), counts[labels].astype(np.int64), lut[flat]
    uniq, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    keep = uniq != 0
    index = np.cumsum(keep) - 1
    index = np.where(keep, index, -1)[inverse.ravel()]
    return uniq[keep].astype(np.int64), counts[keep].astype(np.int64), index


def _dense_table(ref_flat, res_flat, top_ref: int, top_res: int) -> OverlapTable:
    """Fast path for small label values: one joint bincount over (ref, res) label pairs."""
    n_res = top_res + 1
    keys = ref_flat.astype(np.intp)
    keys *= n_res
    keys += res_flat
    joint = np.bincount(keys, minlength=(top_ref + 1) * n_res)
    joint = joint.reshape(top_ref + 1, n_res)
    ref_all = joint.sum(axis=1)
    res_all = joint.sum(axis=0)
    ref_labels = np.flatnonzero(ref_all[1:]) + 1
    res_labels = np.flatnonzero(res_all[1:]) + 1
    sub = joint[np.ix_(ref_labels, res_labels)]
    ri, ci = np.nonzero(sub)
    return OverlapTable(
        ref_labels=ref_labels.astype(np.int64),
        ref_areas=ref_all[ref_labels].astype(np.int64),
        res_labels=res_labels.astype(np.int64),
        res_areas=res_all[res_labels].astype(np.int64),
        pairs=np.stack([ri, ci], axis=1).astype(np.int64).reshape(-1, 2),
        intersections=sub[ri, ci].astype(np.int64),
    )


def overlap_table(ref, res) -> OverlapTable:
    """Count the pixel overlaps of the objects of ``ref`` and ``res`` (same shape, any integer
    dtype, 0 = background). Raises DataError when the shapes differ or labels are invalid."""
    ref = as_label_array(ref, "reference")
    res = as_label_array(res, "result")
    if ref.shape != res.shape:
        raise DataError(f"shape mismatch: reference {ref.shape} vs result {res.shape}")
    # keep the native dtype (bincount and indexing accept it) except uint64, which numpy
    # cannot cast safely to the index type
    ref_flat = ref.ravel() if ref.dtype != np.uint64 else ref.ravel().astype(np.int64)
    res_flat = res.ravel() if res.dtype != np.uint64 else res.ravel().astype(np.int64)
    top_ref = int(ref_flat.max()) if ref_flat.size else 0
    top_res = int(res_flat.max()) if res_flat.size else 0
    if (top_ref + 1) * (top_res + 1) <= _DENSE_TABLE_LIMIT:
        return _dense_table(ref_flat, res_flat, top_ref, top_res)
    ref_labels, ref_areas, ref_idx = _count_labels(ref_flat)
    res_labels, res_areas, res_idx = _count_labels(res_flat)
    both = (ref_idx >= 0) & (res_idx >= 0)
    n_res = max(res_labels.size, 1)
    keys = ref_idx[both] * n_res + res_idx[both]
    if ref_labels.size * n_res <= _DENSE_TABLE_LIMIT:
        table = np.bincount(keys, minlength=ref_labels.size * n_res)
        flat_keys = np.flatnonzero(table)
        inter = table[flat_keys]
    else:
        flat_keys, inter = np.unique(keys, return_counts=True)
    pairs = np.stack([flat_keys // n_res, flat_keys % n_res], axis=1).astype(np.int64)
    return OverlapTable(
        ref_labels=ref_labels,
        ref_areas=ref_areas,
        res_labels=res_labels,
        res_areas=res_areas,
        pairs=pairs.reshape(-1, 2),
        intersections=np.asarray(inter, dtype=np.int64),
    )


def reference_matches(table: OverlapTable) -> np.ndarray:
    """Indices into ``table.pairs`` of the CTC matches: reference object R matched to result
    object S when ``|R ∩ S| > 0.5 |R|`` (strictly; exactly half does not match). Each reference
    object has at most one such S, since two of them would cover more than all of R."""
    ref_area = table.ref_areas[table.pairs[:, 0]]
    return np.flatnonzero(2 * table.intersections > ref_area)
