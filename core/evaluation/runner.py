"""``evaluate(res, gt, metrics)``: every metric on every sequence/file, plus the summary.

Aggregation (the ``"metrics"`` of the result):

- SEG, DET, TRA, temporal_stability, temporal_stability_gt: mean of the per-sequence values
  that are available (the Cell Tracking Challenge averages its sequences the same way);
- jaccard, dice: mean over all evaluated frames of all sequences;
- precision, recall, f1: from the TP/FP/FN summed over all frames (micro average).

With precision, recall or f1 requested, the result also holds ``"matching"``: the one-to-one
instance scores per IoU threshold 0.5..0.9 (:mod:`dlsuite.evaluation.matching`: keys ``iou,
tp, fp, fn, precision, recall, f1, ap, pq``) over all frames of all sequences; each
per-sequence row holds its own ``"matching"``.

A metric that no sequence could provide is ``None``; the reason is in each per-sequence row's
``"unavailable"``. A mean over only some sequences adds a line to ``"warnings"`` naming the
sequences left out and why (:func:`partial_means`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dlsuite.errors import DataError

from .ctc import evaluate_ctc
from .frame_metrics import summarize_rows, video_metrics
from .layout import Pair, discover
from ..config.metric_names import METRICS, instance_matching, parse_metrics
from .matching import matching_dataset, merge_matching
from .readers import mask_warnings, read_labels
from ..data.checks import one_id_many_regions
from .seg import seg_details

_NO_TRACKS = ("label-image folders carry no tracks: DET/TRA need CTC folders with TRA ground "
              "truth (dlsuite prepare ctc makes them from a videos-layout folder whose label "
              "ids are tracks)")


def _refuse_intensity(path: Path, frames) -> None:
    """DataError naming ``path`` when its first, middle or last frame looks like an intensity
    image (:func:`dlsuite.data.checks.intensity_problem`): scores of grey values as objects
    mean nothing."""
    from ..data.checks import intensity_problem

    for t in sorted({0, len(frames) // 2, len(frames) - 1}):
        problem = intensity_problem(frames[t])
        if problem is not None:
            where = f" (frame {t})" if len(frames) > 1 else ""
            raise DataError(f"{path}{where}: not a label image: {problem}; dlsuite evaluate "
                            "compares label images (e.g. the labels/ dlsuite predict writes)")


def evaluate_files(res_path: str | Path, gt_path: str | Path, metrics: Iterable[str] | str | None = None, name: str | None = None) -> dict:
    """Evaluate one result label image/video against its ground truth file (every frame is
    annotated). Returns a per-sequence dict shaped like :func:`evaluate_ctc`'s (``sequence``,
    the requested metrics, ``unavailable``, ``per_frame``). DET/TRA are unavailable here.
    Raises DataError naming the files when shapes differ or one looks like an intensity
    image."""
    names = parse_metrics(metrics)
    res_path, gt_path = Path(res_path), Path(gt_path)
    res = read_labels(res_path)
    gt = read_labels(gt_path)
    if res.shape != gt.shape:
        raise DataError(f"{res_path} has shape {res.shape} but {gt_path} has shape {gt.shape}")
    res_frames = res[None] if res.ndim == 2 else res
    gt_frames = gt[None] if gt.ndim == 2 else gt
    for path, frames in ((res_path, res_frames), (gt_path, gt_frames)):
        _refuse_intensity(path, frames)
    seq = name or res_path.name
    out: dict = {"sequence": seq, "n_frames": int(len(res_frames))}
    out.update(mask_warnings([gt_path] if any(map(one_id_many_regions, gt_frames)) else []))
    unavailable: dict = {}
    rows = [{"sequence": seq, "frame": i} for i in range(len(res_frames))]
    try:
        if "SEG" in names:
            d = seg_details(dict(enumerate(gt_frames)), dict(enumerate(res_frames)))
            out["SEG"] = d["SEG"] if d["n_objects"] else None
            out["n_gt_objects"] = d["n_objects"]
            if not d["n_objects"]:
                unavailable["SEG"] = "the ground truth holds no object"
            for row, f in zip(rows, d["per_frame"]):
                row["SEG"] = f["SEG"] if f["n_objects"] else None
                row["n_gt_objects"] = f["n_objects"]
        frame_names = [n for n in names if METRICS[n].family == "frame"]
        temporal = [n for n in names if METRICS[n].family == "temporal"]
        if frame_names or temporal:
            summary, frows = video_metrics(gt_frames, res_frames)
            if frame_names:
                for row, f in zip(rows, frows):
                    row.update({k: f[k] for k in ("tp", "fp", "fn", *frame_names)})
                out.update({k: summary[k] for k in ("tp", "fp", "fn", *frame_names)})
            for n in temporal:
                out[n] = summary[n]
                if summary[n] is None:
                    unavailable[n] = "a single frame has no temporal stability"
        if instance_matching(names):
            out["matching"] = matching_dataset(gt_frames, res_frames)
    except DataError as exc:
        raise DataError(f"{res_path} vs {gt_path}: {exc}") from exc
    for n in names:
        if METRICS[n].family == "tracking":
            unavailable[n] = _NO_TRACKS
        out.setdefault(n, None)
    out["unavailable"] = unavailable
    out["per_frame"] = rows
    return out


def _evaluate_pair(pair: Pair, names: tuple[str, ...]) -> dict:
    if pair.kind == "ctc":
        row = evaluate_ctc(pair.res, pair.gt, names)
        row["sequence"] = pair.name
        for r in row["per_frame"]:
            r["sequence"] = pair.name
        return row
    return evaluate_files(pair.res, pair.gt, names, name=pair.name)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def summarize(per_sequence: list[dict], per_frame: list[dict], names: Iterable[str]) -> dict:
    """The ``"metrics"`` summary of :func:`evaluate`, each metric aggregated as its
    :data:`~dlsuite.config.metric_names.METRICS` row says (see the module docstring)."""
    frame_rows = [r for r in per_frame if "tp" in r]
    counts = summarize_rows(frame_rows) if frame_rows else {}
    rules = {
        "sequences": lambda n: _mean(s.get(n) for s in per_sequence),
        "frames": lambda n: _mean(r.get(n) for r in frame_rows),
        "counts": lambda n: counts.get(n),
    }
    return {n: rules[METRICS[n].aggregate](n) for n in names}


def partial_means(per_sequence: list[dict], summary: dict) -> list[str]:
    """One line per group of metrics whose summary is a mean over only some sequences (the
    others could not give it: a result frame missing, no object in the ground truth), naming
    the sequences left out and why; [] when every mean is over all sequences."""
    groups: dict[tuple, list[str]] = {}
    for name, value in summary.items():
        if value is None or METRICS[name].aggregate != "sequences":
            continue
        left_out = tuple((s.get("sequence"), s.get("unavailable", {}).get(name, "n/a"))
                         for s in per_sequence if s.get(name) is None)
        if left_out:
            groups.setdefault(left_out, []).append(name)
    lines = []
    for left_out, metrics in groups.items():
        why = "; ".join(f"{seq}: {reason}" for seq, reason in left_out[:3])
        if len(left_out) > 3:
            why += f" (and {len(left_out) - 3} more, listed in the per-sequence results)"
        lines.append(f"{', '.join(metrics)}: mean over {len(per_sequence) - len(left_out)} of "
                     f"{len(per_sequence)} sequences, without {why}")
    return lines


def evaluate(res: str | Path, gt: str | Path, metrics: Iterable[str] | str | None = None) -> dict:
    """Evaluate results against ground truth; the entry point of ``dlsuite evaluate``.

    ``res``/``gt``: CTC folders (a root holding ``NN_RES``/``NN_GT``, or the sequence folders
    themselves) or folders of label images paired by file name (or two label files), see
    :mod:`dlsuite.evaluation.layout`. ``metrics``: names from
    :data:`dlsuite.config.metric_names.METRICS` (``SEG``, ``DET``, ``TRA``, ``jaccard``, ``dice``,
    ``precision``, ``recall``, ``f1``, ``temporal_stability``, ``temporal_stability_gt``), a
    comma-separated string, or None for all.

    Returns ``{"metrics": {name: float or None}, "per_sequence": [dict per sequence/file with
    the metrics, counts and "unavailable" reasons], "per_frame": [dict per evaluated frame],
    "matching": [one dict per IoU threshold] or None, "warnings": [one line each]}`` with
    metric keys spelled exactly as above (``warnings``: ground truth that looks like binary
    masks, also in its sequence's ``"warnings"``, and means over only some sequences);
    ``matching`` (see the module docstring) is None unless precision, recall or f1 is
    requested. Raises DlsuiteInputError for unknown metrics and DataError (naming the
    paths) for missing, unpaired or inconsistent data.
    """
    names = parse_metrics(metrics)
    pairs = discover(res, gt)
    per_sequence: list[dict] = []
    per_frame: list[dict] = []
    for pair in pairs:
        row = _evaluate_pair(pair, names)
        per_frame.extend(row.pop("per_frame"))
        per_sequence.append(row)
    summary = summarize(per_sequence, per_frame, names)
    return {
        "metrics": summary,
        "per_sequence": per_sequence,
        "per_frame": per_frame,
        "warnings": [w for s in per_sequence for w in s.get("warnings", ())]
        + partial_means(per_sequence, summary),
        "matching": (merge_matching(s.get("matching") for s in per_sequence)
                     if instance_matching(names) else None),
    }
