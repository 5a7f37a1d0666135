"""The Cell Tracking Challenge SEG measure, computed in memory.

Official definition (Ulman et al. 2017, CTC SEGMeasure): a reference object R is matched to
the result object S when ``|R ∩ S| > 0.5 |R|``; its score is the Jaccard index
``|R ∩ S| / |R ∪ S|`` of that pair, or 0 when no result object matches. SEG is the mean of
these scores over every reference object of every annotated frame. Only the annotated frames
(the keys of ``gt_frames``) are scored; result objects that match nothing do not lower SEG.

The numbers equal py-ctcmetrics' ``seg`` to 1e-6 (tests compare them). One deliberate
difference: with no reference object at all SEG is undefined and we return ``nan`` (reported as
``null`` in JSON), where py-ctcmetrics returns 0.0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dlsuite.errors import DataError

from .overlap import OverlapTable, overlap_table, reference_matches


def seg_frame(gt, res) -> dict:
    """SEG detail of one frame: ``{"gt_labels", "res_labels", "jaccard"}`` arrays aligned
    with the sorted reference labels present in ``gt`` (``res_labels`` 0 and ``jaccard`` 0.0
    for unmatched reference objects)."""
    return seg_from_table(overlap_table(gt, res))


def seg_from_table(table: OverlapTable) -> dict:
    """:func:`seg_frame` from an already computed overlap table."""
    n = table.ref_labels.size
    jaccard = np.zeros(n, dtype=np.float64)
    matched = np.zeros(n, dtype=np.int64)
    hit = reference_matches(table)
    if hit.size:
        ref_i = table.pairs[hit, 0]
        res_i = table.pairs[hit, 1]
        jaccard[ref_i] = table.ious()[hit]
        matched[ref_i] = table.res_labels[res_i]
    return {"gt_labels": table.ref_labels, "res_labels": matched, "jaccard": jaccard}


def _check_frames(gt_frames: Mapping, res_frames: Mapping) -> None:
    missing = sorted(set(gt_frames) - set(res_frames))
    if missing:
        raise DataError(
            f"no result for annotated frame(s) {missing[:20]}"
            + (" ..." if len(missing) > 20 else "")
        )


def _frames(gt_frames: Mapping[int, np.ndarray], res_frames: Mapping[int, np.ndarray]):
    """Yield ``(t, seg_frame(gt, res))`` for each annotated frame in order, after checking
    the frames pair up; errors name the frame."""
    _check_frames(gt_frames, res_frames)
    for t in sorted(gt_frames):
        try:
            yield t, seg_frame(gt_frames[t], res_frames[t])
        except DataError as exc:
            raise DataError(f"frame {t}: {exc}") from exc


def seg_details(gt_frames: Mapping[int, np.ndarray], res_frames: Mapping[int, np.ndarray]) -> dict:
    """SEG with per-object detail.

    ``gt_frames`` maps frame index -> reference label image (only annotated frames);
    ``res_frames`` maps frame index -> result label image and must hold every annotated frame
    (DataError naming the missing ones otherwise; extra result frames are ignored).

    Returns ``{"SEG": float (nan when there is no reference object), "n_objects": int,
    "n_matched": int, "per_frame": [{"frame", "SEG", "n_objects", "n_matched"}],
    "objects": [{"frame", "gt_label", "res_label", "jaccard"}]}`` (``res_label`` 0 = unmatched).
    """
    objects: list[dict] = []
    per_frame: list[dict] = []
    total = 0.0
    count = 0
    matched_total = 0
    for t, d in _frames(gt_frames, res_frames):
        n = int(d["gt_labels"].size)
        n_matched = int(np.count_nonzero(d["res_labels"]))
        s = float(d["jaccard"].sum())
        total += s
        count += n
        matched_total += n_matched
        per_frame.append(
            {"frame": int(t), "SEG": s / n if n else float("nan"), "n_objects": n,
             "n_matched": n_matched}
        )
        objects.extend(
            {"frame": int(t), "gt_label": int(g), "res_label": int(r), "jaccard": float(j)}
            for g, r, j in zip(d["gt_labels"], d["res_labels"], d["jaccard"])
        )
    return {
        "SEG": total / count if count else float("nan"),
        "n_objects": count,
        "n_matched": matched_total,
        "per_frame": per_frame,
        "objects": objects,
    }


def seg_score(gt_frames: Mapping[int, np.ndarray], res_frames: Mapping[int, np.ndarray]) -> float:
    """CTC SEG of ``res_frames`` against the annotated ``gt_frames`` (frame index -> label
    image). Mean Jaccard over all reference objects, unmatched ones counting 0; ``nan`` when
    there is no reference object. Raises DataError when an annotated frame has no result or
    shapes differ."""
    total = 0.0
    count = 0
    for _, d in _frames(gt_frames, res_frames):
        total += float(d["jaccard"].sum())
        count += int(d["gt_labels"].size)
    return total / count if count else float("nan")
