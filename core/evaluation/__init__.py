"""dlsuite.evaluation: CTC SEG/DET/TRA and per-frame/per-video metrics.

Importing this package never imports TensorFlow (nor py-ctcmetrics, which is imported only
when DET/TRA are computed). Public entry points:

- :func:`evaluate` (``res``, ``gt`` paths) -> ``{"metrics", "per_sequence", "per_frame"}``;
- :func:`evaluate_ctc` for one ``NN_RES``/``NN_GT`` pair;
- :func:`seg_score` / :func:`seg_details` on in-memory ``{frame: label image}`` dicts;
- :func:`frame_metrics`, :func:`video_metrics`, :func:`temporal_stability`,
  :func:`foreground_jaccard`, :func:`foreground_dice`, :func:`instance_counts`;
- :func:`matching` / :func:`matching_dataset`: one-to-one instance precision, recall, F1,
  AP and PQ per IoU threshold (StarDist conventions);
- :func:`write_metrics_json`, :func:`write_metrics_csv`.
"""

from .ctc import evaluate_ctc, tracking_measures
from .frame_metrics import (
    foreground_dice,
    foreground_jaccard,
    frame_metrics,
    instance_counts,
    temporal_stability,
    video_metrics,
)
from ..config.metric_names import METRICS, parse_metrics
from .matching import DEFAULT_THRESHOLDS, matching, matching_dataset
from .runner import evaluate, evaluate_files
from .seg import seg_details, seg_frame, seg_score
from .writers import write_metrics_csv, write_metrics_json

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METRICS",
    "evaluate",
    "evaluate_ctc",
    "evaluate_files",
    "foreground_dice",
    "foreground_jaccard",
    "frame_metrics",
    "instance_counts",
    "matching",
    "matching_dataset",
    "parse_metrics",
    "seg_details",
    "seg_frame",
    "seg_score",
    "temporal_stability",
    "tracking_measures",
    "video_metrics",
    "write_metrics_csv",
    "write_metrics_json",
]
