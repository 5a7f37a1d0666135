"""The table of metric names ``dlsuite evaluate`` knows, and parsing of user requests.

One row per metric: its canonical key (used verbatim in every output), its family (which code
computes it) and a one-line description. Requests are matched case-insensitively and
returned in canonical spelling; unknown names raise DlsuiteInputError listing the known ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ..errors import DlsuiteInputError


@attrs.frozen
class MetricInfo:
    """One evaluation metric: canonical ``name``, computing ``family``, ``description`` and
    how the summary over sequences is formed (``aggregate``): ``"sequences"`` = mean of the
    per-sequence values (CTC convention), ``"frames"`` = mean over all evaluated frames,
    ``"counts"`` = from TP/FP/FN summed over all frames (micro average)."""

    name: str
    family: str  # "seg" | "tracking" | "frame" | "temporal"
    description: str
    aggregate: str = "sequences"


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("SEG", "seg", "CTC SEG: mean Jaccard of reference objects (match: overlap > 0.5 of the reference)"),
        MetricInfo("DET", "tracking", "CTC DET: 1 - normalised AOGM-D (detection graph edits), via py-ctcmetrics"),
        MetricInfo("TRA", "tracking", "CTC TRA: 1 - normalised AOGM (tracking graph edits), via py-ctcmetrics"),
        MetricInfo("jaccard", "frame", "foreground Jaccard (IoU), mean over frames; 1.0 when both empty", "frames"),
        MetricInfo("dice", "frame", "foreground Dice, mean over frames; 1.0 when both empty", "frames"),
        MetricInfo("precision", "frame", "instance precision at IoU > 0.5 (micro over frames; 1.0 when no frame holds an object)", "counts"),
        MetricInfo("recall", "frame", "instance recall at IoU > 0.5 (micro over frames; 1.0 when no frame holds an object)", "counts"),
        MetricInfo("f1", "frame", "instance F1 at IoU > 0.5 (micro over frames; 1.0 when no frame holds an object)", "counts"),
        MetricInfo("temporal_stability", "temporal", "mean foreground Jaccard of consecutive result frames"),
        MetricInfo("temporal_stability_gt", "temporal", "the same for the ground truth (reference for flicker)"),
    )
}

_LOWER = {name.lower(): name for name in METRICS}


def parse_metrics(requested: str | Iterable[str] | None) -> tuple[str, ...]:
    """Canonical metric names for a request: None -> all metrics in table order; a string is
    split on commas. Duplicates are dropped; unknown names raise DlsuiteInputError."""
    if requested is None:
        return tuple(METRICS)
    if isinstance(requested, str):
        requested = requested.split(",")
    out: list[str] = []
    unknown: list[str] = []
    for raw in requested:
        key = str(raw).strip()
        if not key:
            continue
        name = _LOWER.get(key.lower())
        if name is None:
            unknown.append(key)
        elif name not in out:
            out.append(name)
    if unknown:
        raise DlsuiteInputError(
            f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}"
        )
    if not out:
        raise DlsuiteInputError(f"no metric requested; known: {', '.join(METRICS)}")
    return tuple(out)


#: Requesting any of these also computes the per-threshold instance ``matching`` list.
MATCHING_TRIGGERS = ("precision", "recall", "f1")


def instance_matching(names: Iterable[str]) -> bool:
    """True when ``names`` (canonical) ask for an instance metric, so the per-threshold
    ``matching`` list (:mod:`dlsuite.evaluation.matching`) is computed as well."""
    return any(n in MATCHING_TRIGGERS for n in names)


#: The metric families with a value per frame (``--per-frame`` rows); the others are per
#: sequence.
PER_FRAME_FAMILIES = ("seg", "frame")


def per_frame_metrics(names: Iterable[str] | None = None) -> list[str]:
    """The metrics among ``names`` (canonical; default all) that have a value per frame."""
    return [n for n in (METRICS if names is None else names)
            if METRICS[n].family in PER_FRAME_FAMILIES]
