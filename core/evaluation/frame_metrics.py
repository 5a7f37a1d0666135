"""Per-frame and per-video metrics: foreground Jaccard/Dice, instance
precision/recall/F1 at IoU 0.5, and temporal stability.

Conventions (documented promises):

- Foreground = label > 0. Jaccard ``|A∩B|/|A∪B|`` and Dice ``2|A∩B|/(|A|+|B|)``; when both
  masks are empty the prediction is perfect and both are 1.0.
- Instances: a reference object and a result object are a true positive when their IoU is
  > 0.5. With a threshold of 0.5 the matching is necessarily one-to-one, so no Hungarian
  assignment is needed: if R had IoU > 0.5 with two disjoint result objects S1 and S2, then
  ``|R∩S1| > 0.5|R∪S1| >= 0.5|R|`` and likewise for S2, so ``|R∩S1| + |R∩S2| > |R|``, which is
  impossible (and symmetrically for one result object and two reference objects). Unmatched
  reference objects are false negatives, unmatched result objects false positives.
  precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN). With nothing found,
  precision is 0.0 when there was something to find (as in the ``matching`` entries) and 1.0
  when there was not; with nothing to find, recall is 1.0; F1 is 1.0 when there was nothing
  to find and nothing was found.
- Per video: Jaccard/Dice are the mean of the per-frame values; precision/recall/F1 are
  computed from the TP/FP/FN counts summed over the frames (micro average).
- Temporal stability of a label video: the mean foreground Jaccard between consecutive frames
  (1.0 = no change at all). It is reported for the result and for the ground truth
  (``temporal_stability_gt``) so flicker from the model can be told apart from real motion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlsuite.errors import DataError

from .overlap import OverlapTable, as_label_array, overlap_table

IOU_THRESHOLD = 0.5


def _foreground(a, what: str) -> np.ndarray:
    return as_label_array(a, what) > 0


def _fg_counts(gt, res) -> tuple[int, int, int]:
    g = _foreground(gt, "reference")
    r = _foreground(res, "result")
    if g.shape != r.shape:
        raise DataError(f"shape mismatch: reference {g.shape} vs result {r.shape}")
    return int(np.count_nonzero(g & r)), int(np.count_nonzero(g)), int(np.count_nonzero(r))


def foreground_jaccard(gt, res) -> float:
    """Jaccard index of the foregrounds (label > 0) of two label images; 1.0 if both empty."""
    inter, a, b = _fg_counts(gt, res)
    union = a + b - inter
    return inter / union if union else 1.0


def foreground_dice(gt, res) -> float:
    """Dice coefficient of the foregrounds (label > 0) of two label images; 1.0 if both empty."""
    inter, a, b = _fg_counts(gt, res)
    return 2 * inter / (a + b) if (a + b) else 1.0


def instance_counts(gt, res, iou_threshold: float = IOU_THRESHOLD) -> dict:
    """``{"tp", "fp", "fn"}`` of the one-to-one instance matching at IoU > ``iou_threshold``
    (must be >= 0.5, where the matching is unique; see the module docstring)."""
    if iou_threshold < 0.5:
        raise ValueError("iou_threshold must be >= 0.5 for a unique one-to-one matching")
    table = overlap_table(gt, res)
    tp = int(np.count_nonzero(table.ious() > iou_threshold))
    return {
        "tp": tp,
        "fp": int(table.res_labels.size) - tp,
        "fn": int(table.ref_labels.size) - tp,
    }


def prf(tp: int, fp: int, fn: int) -> dict:
    """precision, recall, F1 from counts (the conventions of the module docstring: an empty
    result scores precision 0.0 unless there was nothing to find)."""
    return {
        "precision": tp / (tp + fp) if (tp + fp) else float(fn == 0),
        "recall": tp / (tp + fn) if (tp + fn) else 1.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 1.0,
    }


def metrics_from_table(table: OverlapTable, iou_threshold: float = IOU_THRESHOLD) -> dict:
    """:func:`frame_metrics` from an already computed overlap table (foreground counts are
    its summed intersections and areas, so no pixel is counted twice)."""
    inter = int(table.intersections.sum())
    a, b = int(table.ref_areas.sum()), int(table.res_areas.sum())
    union = a + b - inter
    tp = int(np.count_nonzero(table.ious() > iou_threshold))
    row = {
        "jaccard": inter / union if union else 1.0,
        "dice": 2 * inter / (a + b) if (a + b) else 1.0,
        "tp": tp,
        "fp": int(table.res_labels.size) - tp,
        "fn": int(table.ref_labels.size) - tp,
    }
    row.update(prf(row["tp"], row["fp"], row["fn"]))
    return row


def frame_metrics(gt, res) -> dict:
    """All per-frame metrics of one (reference, result) pair of label images:
    ``{"jaccard", "dice", "tp", "fp", "fn", "precision", "recall", "f1"}``."""
    return metrics_from_table(overlap_table(gt, res))


def temporal_stability(frames: Sequence[np.ndarray]) -> float | None:
    """Mean foreground Jaccard between consecutive frames of a label video (sequence of 2D
    arrays or a ``(T, H, W)`` array); ``None`` when there are fewer than two frames."""
    if len(frames) < 2:
        return None
    values = [foreground_jaccard(frames[i], frames[i + 1]) for i in range(len(frames) - 1)]
    return float(np.mean(values))


def video_metrics(gt_frames: Sequence[np.ndarray], res_frames: Sequence[np.ndarray]) -> tuple[dict, list[dict]]:
    """Per-video summary and per-frame rows for aligned reference/result frame sequences.

    Returns ``(summary, rows)``: ``rows[i]`` is :func:`frame_metrics` of frame i plus
    ``"frame": i``; ``summary`` holds the mean ``jaccard``/``dice``, the micro-averaged
    ``precision``/``recall``/``f1`` with summed ``tp``/``fp``/``fn``, ``temporal_stability``
    of the result and ``temporal_stability_gt`` of the reference (None for one frame), and
    ``n_frames``. Raises DataError when the frame counts differ.
    """
    if len(gt_frames) != len(res_frames):
        raise DataError(
            f"frame count mismatch: reference has {len(gt_frames)}, result {len(res_frames)}"
        )
    rows = []
    for i, (g, r) in enumerate(zip(gt_frames, res_frames)):
        try:
            rows.append({"frame": i, **frame_metrics(g, r)})
        except DataError as exc:
            raise DataError(f"frame {i}: {exc}") from exc
    summary = summarize_rows(rows)
    summary["temporal_stability"] = temporal_stability(res_frames)
    summary["temporal_stability_gt"] = temporal_stability(gt_frames)
    return summary, rows


def summarize_rows(rows: Sequence[dict]) -> dict:
    """Aggregate per-frame rows: mean jaccard/dice (over the rows holding them, else None),
    summed tp/fp/fn and the micro precision/recall/F1, plus ``n_frames``. Empty input gives
    None values."""
    if not rows:
        return {k: None for k in ("jaccard", "dice", "precision", "recall", "f1")} | {
            "tp": 0, "fp": 0, "fn": 0, "n_frames": 0}
    tp = sum(r["tp"] for r in rows)
    fp = sum(r["fp"] for r in rows)
    fn = sum(r["fn"] for r in rows)
    out: dict = {}
    for key in ("jaccard", "dice"):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    out |= {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n_frames": len(rows),
    }
    out.update(prf(tp, fp, fn))
    return out
