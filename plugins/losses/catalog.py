"""The declarative table of the built-in losses and metrics (no TensorFlow import here).

One row per loss / metric: its name, parameter class, the ``y_true`` channels it needs, the
numbers of output classes it accepts and a one-line description. ``plugin.py`` turns the
rows into specs; the TensorFlow modules use the same rows for their input checks, so the
two can never disagree.
"""

from __future__ import annotations

from typing import Optional

import attrs

from dlsuite import NoParams

from . import params as p

__all__ = ["LossInfo", "MetricInfo", "LOSSES", "HEAD_LOSSES", "METRICS"]


@attrs.frozen
class LossInfo:
    """One built-in loss. ``min_classes``/``max_classes`` bound the model's ``n_classes``
    (``max_classes=None``: no upper bound)."""

    name: str
    params: type
    description: str
    target_channels: tuple[str, ...] = ("class",)
    min_classes: int = 1
    max_classes: Optional[int] = None

    def accepts(self, n_classes: int) -> bool:
        """True when a model with ``n_classes`` output channels can use this loss."""
        upper = self.max_classes if self.max_classes is not None else n_classes
        return self.min_classes <= n_classes <= upper

    def classes_text(self) -> str:
        """Human-readable range of accepted ``n_classes`` (for error messages)."""
        if self.max_classes is None:
            return f">= {self.min_classes}"
        if self.max_classes == self.min_classes:
            return f"{self.min_classes}"
        return f"{self.min_classes}..{self.max_classes}"


@attrs.frozen
class MetricInfo:
    """One built-in metric; ``mode`` is ``"max"`` when higher is better."""

    name: str
    description: str
    mode: str = "max"
    params: type = NoParams


_LOSS_ROWS = [
    LossInfo(
        name="sparse_cce",
        params=p.SparseCCEParams,
        description="softmax cross-entropy of the class index, from logits; optional class "
                    "weights",
        min_classes=2,
    ),
    LossInfo(
        name="categorical_cce",
        params=p.CategoricalCCEParams,
        description="softmax cross-entropy against the one-hot class index, with label "
                    "smoothing",
        min_classes=2,
    ),
    LossInfo(
        name="binary_cce",
        params=p.BinaryCCEParams,
        description="sigmoid cross-entropy of the foreground (1-channel logit, or fg minus bg "
                    "logit)",
        min_classes=1,
        max_classes=2,
    ),
    LossInfo(
        name="weighted_bce",
        params=p.WeightedBCEParams,
        description="cross-entropy of the true class times the pixel weight map (y_true "
                    "channel 1)",
        target_channels=("class", "weight"),
    ),
    LossInfo(
        name="weighted_bce_dice",
        params=p.WeightedBCEDiceParams,
        description="border-weighted BCE + weighted soft Dice of the foreground (lyakaap); "
                    "weights from y_true channel 1 if present, else from an 11x11 border rule",
    ),
    LossInfo(
        name="multiple_output",
        params=p.MultipleOutputParams,
        description="independent sigmoid BCE per output channel against the one-hot target, "
                    "weighted sum with category_weights",
        min_classes=2,
    ),
    LossInfo(
        name="l1l2",
        params=p.L1L2Params,
        description="keypoint heatmap loss (DeepSTORM): MSE of Gaussian-blurred prediction to "
                    "the heatmap + L1 sparsity of the prediction",
        min_classes=1,
        max_classes=1,
    ),
    LossInfo(
        name="dice",
        params=p.DiceLossParams,
        description="soft Dice loss of the foreground probability (batch level)",
    ),
    LossInfo(
        name="focal",
        params=p.FocalParams,
        description="focal loss from logits (sigmoid for 1 channel, softmax otherwise)",
    ),
]

_METRIC_ROWS = [
    MetricInfo(
        name="jaccard",
        description="IoU of the foreground (prediction: argmax != 0, or logit > 0 for 1 "
                    "channel), micro-averaged over all pixels seen; 1.0 when both prediction "
                    "and truth are empty",
    ),
    MetricInfo(
        name="dice",
        description="Dice (F1) of the foreground, same foreground rule and accumulation as "
                    "jaccard; 1.0 when both are empty",
    ),
    MetricInfo(
        name="accuracy",
        description="fraction of pixels whose argmax class (logit > 0 for 1 channel) equals "
                    "the true class",
    ),
]

LOSSES: dict[str, LossInfo] = {row.name: row for row in _LOSS_ROWS}

#: Losses of multi-head targets (``LossSpec.multi_head``; factories in ``heads_loss``).
HEAD_LOSSES: dict[str, LossInfo] = {row.name: row for row in [
    LossInfo("class_distance", p.ClassDistanceParams,
             "multi-head: CE (+ Dice) of the class head plus MSE/L1 of each regression head "
             "(e.g. the distance target's) inside the foreground",
             target_channels=("class", "distance")),
]}
METRICS: dict[str, MetricInfo] = {row.name: row for row in _METRIC_ROWS}
