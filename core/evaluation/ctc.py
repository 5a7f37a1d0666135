"""Cell Tracking Challenge evaluation of one sequence: ``NN_RES`` against ``NN_GT``.

- SEG: our in-memory :mod:`~dlsuite.evaluation.seg` on the annotated frames
  ``NN_GT/SEG/man_segTTT.tif`` (sparse GT is normal) against ``NN_RES/maskTTT.tif``.
- DET and TRA: the acyclic-oriented-graph measures of Matula et al. 2015, computed by
  py-ctcmetrics (``count_acyclic_graph_correction_operations``, ``det``, ``tra``, ``valid``)
  from our per-frame matching of ``NN_GT/TRA/man_trackTTT.tif`` markers to the result masks
  (same rule as py-ctcmetrics' ``match``: overlap > 0.5 of the marker; labels read as int64 so
  nothing wraps). DET needs the TRA markers only; TRA also needs ``NN_GT/TRA/man_track.txt``
  and ``NN_RES/res_track.txt``. A metric whose inputs are missing is reported as ``None``
  with the reason in ``unavailable`` instead of failing.
- The per-frame metrics (jaccard, dice, precision, recall, f1) are computed on the annotated
  SEG frames; ``temporal_stability`` on all consecutive result frames,
  ``temporal_stability_gt`` on consecutive annotated SEG frames (both t and t+1 annotated),
  and then ``temporal_stability_on_gt_pairs``: the result's value on exactly those pairs,
  for a like-for-like comparison when the GT is sparse.

Unlike the original suite, no sequence is skipped and label images are compared as labels.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dlsuite.data import ctc
from dlsuite.errors import DataError

from .frame_metrics import foreground_jaccard, metrics_from_table, summarize_rows
from ..config.metric_names import METRICS, instance_matching, parse_metrics
from .matching import MatchingAccumulator
from .overlap import overlap_table, reference_matches
from .readers import mask_warnings, read_ctc_frame
from ..data.checks import one_id_many_regions
from .seg import seg_from_table


def _match_frame(ref: np.ndarray, comp: np.ndarray) -> tuple[list, list, list, list]:
    """py-ctcmetrics ``match`` semantics from the overlap table: (labels_ref, labels_comp,
    mapped_ref, mapped_comp), matched pairs ordered by reference then result label."""
    table = overlap_table(ref, comp)
    hit = reference_matches(table)
    pairs = table.pairs[hit]
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs = pairs[order]
    return (
        table.ref_labels.tolist(),
        table.res_labels.tolist(),
        table.ref_labels[pairs[:, 0]].tolist(),
        table.res_labels[pairs[:, 1]].tolist(),
    )


def _track_rows(path: Path) -> np.ndarray:
    """A track file as the ``(n, 4)`` int64 array py-ctcmetrics takes."""
    return np.asarray(ctc.read_track_file(path), dtype=np.int64).reshape(-1, 4)


def tracking_measures(res_dir: str | Path, gt_dir: str | Path, metrics: Iterable[str] = ("DET", "TRA")) -> tuple[dict, dict]:
    """DET and/or TRA of a CTC result folder against its GT folder.

    Returns ``(values, unavailable)``: ``values`` maps each requested metric to its float
    (plus ``AOGM``, ``AOGM_0`` and the ``AOGM_NS/FN/FP/ED/EA/EC`` counts when TRA is
    computed); ``unavailable`` maps a metric that could not be computed to the reason.
    """
    from ctc_metrics.metrics import det, tra, valid
    from ctc_metrics.utils.representations import count_acyclic_graph_correction_operations

    res_dir, gt_dir = Path(res_dir), Path(gt_dir)
    wanted = [m for m in ("DET", "TRA") if m in set(metrics)]
    values: dict = {}
    unavailable: dict = {}

    def give_up(reason: str, which=None) -> tuple[dict, dict]:
        for m in which or wanted:
            values.pop(m, None)
            unavailable[m] = reason
        return values, unavailable

    if not wanted:
        return values, unavailable
    tra_frames = ctc.list_frames(ctc.tra_folder(gt_dir), "tra")
    if not tra_frames:
        return give_up(f"no TRA ground truth ({ctc.tra_folder(gt_dir)}/man_trackTTT.tif)")
    res_frames = ctc.list_frames(res_dir, "res")
    if set(res_frames) != set(tra_frames):
        only_gt = sorted(set(tra_frames) - set(res_frames))
        only_res = sorted(set(res_frames) - set(tra_frames))
        return give_up(
            "result and TRA ground truth frames differ"
            + (f"; no result for frames {only_gt[:10]}" if only_gt else "")
            + (f"; no TRA GT for frames {only_res[:10]}" if only_res else "")
        )
    frames = sorted(tra_frames)
    if frames != list(range(len(frames))):
        return give_up(f"TRA frames must be numbered 0..{len(frames) - 1} without gaps")

    labels_ref, labels_comp, mapped_ref, mapped_comp = [], [], [], []
    for t in frames:
        try:
            lr, lc, mr, mc = _match_frame(read_ctc_frame(tra_frames[t]), read_ctc_frame(res_frames[t]))
        except DataError as exc:
            raise DataError(f"{res_frames[t]} vs {tra_frames[t]}: {exc}") from exc
        labels_ref.append(lr)
        labels_comp.append(lc)
        mapped_ref.append(mr)
        mapped_comp.append(mc)
    if sum(len(x) for x in labels_ref) == 0:
        return give_up("the TRA ground truth holds no marker")

    man_track, res_track = ctc.man_track_file(gt_dir), ctc.res_track_file(res_dir)
    ref_tracks = _track_rows(man_track) if man_track.is_file() else None
    comp_tracks = _track_rows(res_track) if res_track.is_file() else None
    if "TRA" in wanted and ref_tracks is None:
        give_up(f"missing {man_track}", ["TRA"])
    if "TRA" in wanted and comp_tracks is None:
        give_up(f"missing {res_track}", ["TRA"])
    if comp_tracks is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                # no track and no object in any mask: a valid, empty result (it scores 0)
                ok = (valid([str(res_frames[t]) for t in frames], comp_tracks, labels_comp)
                      if len(comp_tracks) else not any(len(lc) for lc in labels_comp))
            except (AssertionError, IndexError, ValueError) as exc:  # py-ctcmetrics asserts
                return give_up(f"invalid result: {res_track} is malformed ({type(exc).__name__}: {exc})")
        if not ok:
            why = "; ".join(str(w.message) for w in caught[:3]) or "empty res_track.txt"
            return give_up(f"invalid result (res_track.txt inconsistent with the masks): {why}")
    still = [m for m in wanted if m not in unavailable]
    if not still:
        return values, unavailable

    def graph_ops(with_tracks: bool) -> dict:
        with contextlib.redirect_stdout(io.StringIO()):
            return count_acyclic_graph_correction_operations(
                ref_tracks if with_tracks else None,
                comp_tracks if with_tracks else None,
                labels_ref, labels_comp, mapped_ref, mapped_comp,
            )

    try:
        ops = graph_ops("TRA" in still)
    except (AssertionError, IndexError, ValueError) as exc:
        if "TRA" not in still:
            raise
        # inconsistent track files: TRA cannot be computed, DET does not need them
        give_up(f"py-ctcmetrics could not build the tracking graphs from {man_track} and "
                f"{res_track} ({type(exc).__name__}: {exc})", ["TRA"])
        still = [m for m in still if m != "TRA"]
        if not still:
            return values, unavailable
        ops = graph_ops(False)
    if "DET" in still:
        values["DET"] = float(det(**ops))
    if "TRA" in still:
        score, aogm, aogm0 = tra(**ops)
        values["TRA"] = float(score)
        values["AOGM"] = float(aogm)
        values["AOGM_0"] = float(aogm0)
        for key in ("NS", "FN", "FP", "ED", "EA", "EC"):
            values[f"AOGM_{key}"] = int(ops[key])
    return values, unavailable


def _temporal(frames: dict[int, Path], only: set[int] | None = None) -> float | None:
    """Mean foreground Jaccard over pairs of frames (t, t+1) both present (and, when ``only``
    is given, with t in ``only``); None if there is no such pair."""
    values = []
    prev_t, prev = None, None
    for t in sorted(frames):
        if only is not None and t not in only and t - 1 not in only:
            continue
        cur = read_ctc_frame(frames[t]) > 0
        if prev_t is not None and t == prev_t + 1 and (only is None or prev_t in only):
            if prev.shape != cur.shape:  # consecutive frames of one sequence, not ref vs res
                raise DataError(f"{frames[t]}: shape {cur.shape} differs from the frame "
                                f"before it, {frames[prev_t]} {prev.shape}")
            values.append(foreground_jaccard(prev, cur))
        prev_t, prev = t, cur
    return float(np.mean(values)) if values else None


def _score_annotated(seg_frames: dict[int, Path], res_frames: dict[int, Path], names, seq: str) -> tuple[dict, list[dict]]:
    """SEG and the per-frame metrics on the annotated frames: (sequence summary, rows). One
    overlap table per frame serves both."""
    frame_names = [n for n in names if METRICS[n].family == "frame"]
    rows: list[dict] = []
    total, count = 0.0, 0
    matching = MatchingAccumulator() if instance_matching(names) else None
    masks = []  # ground-truth frames that look like binary masks
    for t in sorted(seg_frames):
        try:
            truth = read_ctc_frame(seg_frames[t])
            table = overlap_table(truth, read_ctc_frame(res_frames[t]))
        except DataError as exc:
            raise DataError(f"{res_frames[t]} vs {seg_frames[t]}: {exc}") from exc
        if one_id_many_regions(truth):
            masks.append(seg_frames[t])
        row: dict = {"sequence": seq, "frame": t}
        if "SEG" in names:
            d = seg_from_table(table)
            n = int(d["gt_labels"].size)
            s = float(d["jaccard"].sum())
            total += s
            count += n
            row["SEG"] = s / n if n else None
            row["n_gt_objects"] = n
        if frame_names:
            fm = metrics_from_table(table)
            row.update({k: fm[k] for k in ("tp", "fp", "fn", *frame_names)})
        if matching is not None:
            matching.add_table(table)
        rows.append(row)
    out: dict = {"n_annotated_frames": len(seg_frames), **mask_warnings(masks)}
    if "SEG" in names:
        out["n_gt_objects"] = count
        out["SEG"] = total / count if count else None
    if frame_names:
        summary = summarize_rows(rows)
        out.update({k: summary[k] for k in (*frame_names, "tp", "fp", "fn")})
    if matching is not None:
        out["matching"] = matching.result()
    return out, rows


def evaluate_ctc(res_dir: str | Path, gt_dir: str | Path, metrics: Iterable[str] | str | None = ("SEG", "DET", "TRA")) -> dict:
    """Evaluate one CTC sequence: result folder ``NN_RES`` against ground-truth folder ``NN_GT``.

    Returns a flat dict: ``{"sequence": folder name prefix, <metric>: float or None for each
    requested metric, "unavailable": {metric: reason}, "n_gt_objects": int (SEG reference
    objects), "n_annotated_frames": int, "per_frame": [rows]}`` plus the AOGM details when TRA
    is computed, and ``"matching"`` (per-IoU-threshold instance scores on the annotated SEG
    frames, :mod:`dlsuite.evaluation.matching`) when precision, recall or f1 is requested. ``per_frame`` rows hold ``sequence``, ``frame``, ``SEG`` and the requested
    per-frame metrics for each annotated SEG frame. Raises DataError when ``res_dir`` has no
    ``maskTTT.tif`` or an annotated frame has no result.
    """
    names = parse_metrics(metrics)
    res_dir, gt_dir = Path(res_dir), Path(gt_dir)
    if not res_dir.is_dir():
        raise DataError(f"{res_dir}: result folder not found")
    if not gt_dir.is_dir():
        raise DataError(f"{gt_dir}: ground-truth folder not found")
    res_frames = ctc.list_frames(res_dir, "res")
    if not res_frames:
        raise DataError(f"{res_dir}: no result masks (maskTTT.tif)")
    seq = res_dir.name.split("_")[0]
    out: dict = {"sequence": seq}
    unavailable: dict = {}
    rows: list[dict] = []

    frame_names = [n for n in names if METRICS[n].family == "frame"]
    seg_frames = ctc.list_frames(ctc.seg_folder(gt_dir), "seg")
    need_seg_gt = "SEG" in names or frame_names or "temporal_stability_gt" in names
    if need_seg_gt and not seg_frames:
        reason = f"no SEG ground truth ({ctc.seg_folder(gt_dir)}/man_segTTT.tif)"
        for n in names:
            if n == "SEG" or n in frame_names or n == "temporal_stability_gt":
                unavailable[n] = reason
    elif need_seg_gt:
        missing = sorted(set(seg_frames) - set(res_frames))
        if missing:
            raise DataError(
                f"{res_dir}: no result mask for annotated frame(s) {missing[:20]} "
                f"(ground truth {ctc.seg_folder(gt_dir)})"
            )
        summary, rows = _score_annotated(seg_frames, res_frames, names, seq)
        out.update(summary)
        if "SEG" in names and out["SEG"] is None:
            unavailable["SEG"] = "the SEG ground truth holds no object"

    tracking = [n for n in names if METRICS[n].family == "tracking"]
    if tracking:
        values, why = tracking_measures(res_dir, gt_dir, tracking)
        out.update(values)
        unavailable.update(why)
    if "temporal_stability" in names:
        out["temporal_stability"] = _temporal(res_frames)
        if out["temporal_stability"] is None:
            unavailable["temporal_stability"] = "fewer than two consecutive result frames"
    if "temporal_stability_gt" in names and seg_frames:
        out["temporal_stability_gt"] = _temporal(seg_frames)
        if out["temporal_stability_gt"] is None:
            unavailable["temporal_stability_gt"] = "no two consecutive annotated SEG frames"
        elif "temporal_stability" in names:
            # the result's stability on exactly the GT's pairs, for a like-for-like comparison
            starts = {t for t in seg_frames if t + 1 in seg_frames}
            out["temporal_stability_on_gt_pairs"] = _temporal(res_frames, starts)
    for n in names:
        out.setdefault(n, None)
    out["unavailable"] = unavailable
    out["per_frame"] = rows
    return out
