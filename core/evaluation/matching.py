"""One-to-one instance matching at several IoU thresholds, as StarDist and Cellpose report it.

For each threshold ``t`` a reference object and a result object may be paired when their IoU
is at least ``t`` (``>=``, as ``stardist.matching`` and Cellpose's ``average_precision``); the
pairing is one-to-one and maximises first the number of pairs, then their summed IoU (the
Hungarian assignment, :func:`scipy.optimize.linear_sum_assignment`, on the pairs above the
threshold). Paired objects are true positives (TP), unpaired reference objects false negatives
(FN), unpaired result objects false positives (FP). Per threshold:

- ``precision`` = TP / (TP + FP), ``recall`` = TP / (TP + FN), ``f1`` = 2TP / (2TP + FP + FN);
- ``ap`` = TP / (TP + FP + FN) (StarDist's "accuracy", the DSB 2018 "average precision");
- ``pq`` = (sum of the IoUs of the TP pairs) / (TP + FP/2 + FN/2) (panoptic quality,
  Kirillov et al. 2019).

For thresholds >= 0.5 the counts and scores equal StarDist's ``matching_dataset`` exactly
(tests compare them on real label images). Below 0.5 TP/FP/FN still agree; PQ can differ
slightly, because StarDist breaks ties between equally large matchings by an IoU sum that also
counts assigned pairs below the threshold, while here only the matched pairs' IoU counts (so
PQ here is never lower).

Each of these is 0.0 when TP is 0 (StarDist's convention): with no predicted object precision
is 0, not 1, and so is every score when neither side has an object. Over several frames the
counts and the IoU sums are added first and the scores computed once (StarDist's
``matching_dataset(..., by_image=False)``).

Default thresholds 0.5, 0.6, 0.7, 0.8, 0.9: the thresholds >= 0.5 of StarDist's evaluation
(its notebooks report ``taus`` 0.1..0.9 in steps of 0.1; ``matching_dataset``'s own default is
the single value 0.5).

Cost: pixels are counted once per frame in the sparse :func:`~.overlap.overlap_table`; the
assignment is solved per connected component of the graph of candidate pairs, so a frame with
thousands of objects never builds a dense thousands-by-thousands matrix. Above 0.5 the
candidate pairs already form a matching (no object can have IoU > 0.5 with two disjoint
objects) and the assignment is trivial.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from dlsuite.errors import DataError

from .overlap import OverlapTable, overlap_table

__all__ = ["DEFAULT_THRESHOLDS", "MatchingAccumulator", "match_pairs", "matching",
           "matching_dataset", "merge_matching", "matching_at"]

#: IoU thresholds reported by ``dlsuite evaluate`` (see the module docstring).
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)

#: The keys of one per-threshold entry, in output order.
ENTRY_KEYS = ("iou", "tp", "fp", "fn", "precision", "recall", "f1", "ap", "pq")


def _check_thresholds(thresholds: Iterable[float]) -> tuple[float, ...]:
    out = tuple(float(t) for t in thresholds)
    if not out:
        raise ValueError("matching: give at least one IoU threshold")
    bad = [t for t in out if not 0.0 < t <= 1.0]
    if bad:
        raise ValueError(f"matching: IoU thresholds must lie in (0, 1], got {bad}")
    return out


def match_pairs(table: OverlapTable, threshold: float) -> np.ndarray:
    """Indices into ``table.pairs`` of the one-to-one matching at IoU >= ``threshold``: the
    largest number of pairs, and among those the largest summed IoU."""
    ious = table.ious()
    cand = np.flatnonzero(ious >= threshold)
    if cand.size == 0:
        return cand
    rows, cols = table.pairs[cand, 0], table.pairs[cand, 1]
    # objects in more than one candidate pair need an assignment; the others are matched
    row_deg = np.bincount(rows, minlength=table.ref_labels.size)
    col_deg = np.bincount(cols, minlength=table.res_labels.size)
    simple = (row_deg[rows] == 1) & (col_deg[cols] == 1)
    chosen = [cand[simple]]
    if not simple.all():
        chosen.append(_assign(cand[~simple], rows[~simple], cols[~simple], ious))
    return np.sort(np.concatenate(chosen))


def _assign(cand: np.ndarray, rows: np.ndarray, cols: np.ndarray, ious: np.ndarray) -> np.ndarray:
    """Hungarian assignment of the candidate pairs ``cand`` (rows/cols their object indices),
    one connected component of the candidate graph at a time."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    r_ids, r_loc = np.unique(rows, return_inverse=True)
    c_ids, c_loc = np.unique(cols, return_inverse=True)
    nr, nc = r_ids.size, c_ids.size
    graph = coo_matrix((np.ones(cand.size), (r_loc, nr + c_loc)), shape=(nr + nc, nr + nc))
    _, comp = connected_components(graph, directed=False)
    pair_comp = comp[r_loc]
    order = np.argsort(pair_comp, kind="stable")
    starts = np.flatnonzero(np.diff(pair_comp[order], prepend=-1))
    out = []
    for sel in np.split(order, starts[1:]):
        rr, rinv = np.unique(r_loc[sel], return_inverse=True)
        cc, cinv = np.unique(c_loc[sel], return_inverse=True)
        score = np.zeros((rr.size, cc.size))
        which = np.full((rr.size, cc.size), -1, dtype=np.int64)
        score[rinv, cinv] = ious[cand[sel]]
        which[rinv, cinv] = cand[sel]
        n = min(rr.size, cc.size)
        # a pair counts 1, its IoU breaks ties (the IoU terms of n pairs sum to < 1)
        cost = -(which >= 0).astype(float) - score / (2 * n)
        ri, ci = linear_sum_assignment(cost)
        picked = which[ri, ci]
        out.append(picked[picked >= 0])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _counts(table: OverlapTable, thresholds: Sequence[float]) -> np.ndarray:
    """Per threshold ``[tp, n_ref, n_res, sum_iou]`` (float64 array ``(n_thresholds, 4)``)."""
    ious = table.ious()
    out = np.zeros((len(thresholds), 4))
    out[:, 1] = table.ref_labels.size
    out[:, 2] = table.res_labels.size
    for i, t in enumerate(thresholds):
        hit = match_pairs(table, t)
        out[i, 0] = hit.size
        out[i, 3] = ious[hit].sum()
    return out


def _entry(iou: float, tp: int, fp: int, fn: int, sum_iou: float) -> dict:
    def div(a, b):
        return a / b if tp > 0 else 0.0

    return {"iou": iou, "tp": tp, "fp": fp, "fn": fn,
            "precision": div(tp, tp + fp), "recall": div(tp, tp + fn),
            "f1": div(2 * tp, 2 * tp + fp + fn), "ap": div(tp, tp + fp + fn),
            "pq": div(sum_iou, tp + fp / 2 + fn / 2)}


class MatchingAccumulator:
    """Adds up the matching counts of many frames; :meth:`result` gives the scores.

    ``thresholds``: IoU thresholds in (0, 1] (default :data:`DEFAULT_THRESHOLDS`).
    """

    def __init__(self, thresholds: Iterable[float] = DEFAULT_THRESHOLDS):
        self.thresholds = _check_thresholds(thresholds)
        self._sums = np.zeros((len(self.thresholds), 4))
        self.n_frames = 0

    def add_table(self, table: OverlapTable) -> None:
        """Add one frame given as its overlap table."""
        self._sums += _counts(table, self.thresholds)
        self.n_frames += 1

    def add(self, gt, res) -> None:
        """Add one frame: reference and result label images of the same shape (DataError
        otherwise)."""
        self.add_table(overlap_table(gt, res))

    def result(self) -> list[dict]:
        """One dict per threshold with the keys ``iou, tp, fp, fn, precision, recall, f1, ap,
        pq`` (see the module docstring), over every frame added."""
        out = []
        for t, (tp, n_ref, n_res, s) in zip(self.thresholds, self._sums):
            tp_i = int(round(tp))
            out.append(_entry(t, tp_i, int(round(n_res)) - tp_i, int(round(n_ref)) - tp_i,
                              float(s)))
        return out


def matching(gt, res, thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> list[dict]:
    """Matching scores of one frame (reference ``gt``, result ``res``), one dict per
    threshold (keys as :meth:`MatchingAccumulator.result`). DataError for shape mismatch or
    invalid labels."""
    acc = MatchingAccumulator(thresholds)
    acc.add(gt, res)
    return acc.result()


def matching_dataset(gt_frames: Sequence | Mapping, res_frames: Sequence | Mapping,
                     thresholds: Iterable[float] = DEFAULT_THRESHOLDS) -> list[dict]:
    """Matching scores over many frames, counts summed before the scores are computed.

    Either two aligned sequences of label images, or two mappings frame index -> label
    image (every key of ``gt_frames`` must be in ``res_frames``; extra result frames are
    ignored). Raises DataError naming the frame on mismatch."""
    acc = MatchingAccumulator(thresholds)
    if isinstance(gt_frames, Mapping):
        missing = sorted(set(gt_frames) - set(res_frames))
        if missing:
            raise DataError(f"no result for annotated frame(s) {missing[:20]}")
        keys = sorted(gt_frames)
    else:
        if len(gt_frames) != len(res_frames):
            raise DataError(f"frame count mismatch: reference has {len(gt_frames)}, "
                            f"result {len(res_frames)}")
        keys = range(len(gt_frames))
    for k in keys:
        try:
            acc.add(gt_frames[k], res_frames[k])
        except DataError as exc:
            raise DataError(f"frame {k}: {exc}") from exc
    return acc.result()


def merge_matching(lists: Iterable[Sequence[dict]]) -> list[dict] | None:
    """Combine per-sequence matching lists (as returned above, same thresholds) into one, as if
    all their frames had been accumulated together. The IoU sum of each list is recovered as
    ``pq * (tp + fp/2 + fn/2)``. None when no list is given."""
    lists = [list(entries) for entries in lists if entries]
    if not lists:
        return None
    thresholds = [e["iou"] for e in lists[0]]
    for entries in lists[1:]:
        if [e["iou"] for e in entries] != thresholds:
            raise ValueError("merge_matching: the lists have different thresholds")
    out = []
    for i, t in enumerate(thresholds):
        tp = sum(int(entries[i]["tp"]) for entries in lists)
        fp = sum(int(entries[i]["fp"]) for entries in lists)
        fn = sum(int(entries[i]["fn"]) for entries in lists)
        s = sum(e["pq"] * (e["tp"] + e["fp"] / 2 + e["fn"] / 2)
                for e in (entries[i] for entries in lists))
        out.append(_entry(t, tp, fp, fn, float(s)))
    return out


def matching_at(entries: Sequence[dict], iou: float = 0.5) -> dict:
    """The entry of ``entries`` at threshold ``iou`` (KeyError when absent)."""
    for e in entries:
        if abs(e["iou"] - iou) < 1e-9:
            return e
    raise KeyError(f"no matching entry at IoU {iou}")
