"""Parameter classes of the built-in losses and metrics (no TensorFlow import here).

Each class is a frozen attrs class whose fields are declared with :func:`dlsuite.param`
(default + help text) and carry simple JSON types only, so configs validate them without
importing the factories.
"""

from typing import Literal, Optional

import attrs

from dlsuite import param
from dlsuite.checks import CheckError, each, in_range, non_negative, positive

__all__ = [
    "SparseCCEParams",
    "CategoricalCCEParams",
    "BinaryCCEParams",
    "WeightedBCEParams",
    "WeightedBCEDiceParams",
    "MultipleOutputParams",
    "L1L2Params",
    "DiceLossParams",
    "FocalParams",
    "ClassDistanceParams",
]

_CLASS_WEIGHTS_HELP = (
    "optional weight per class (length n_classes, background first); each pixel's loss is "
    "multiplied by the weight of its true class, then averaged over all pixels. "
    "null = all classes weigh 1"
)


_WEIGHTS = each(non_negative())


def _odd(instance, attribute, value) -> None:
    """attrs validator: an odd number (any attrs validator works; its ValueError is reported
    at the field's JSON path)."""
    if value % 2 != 1:
        raise CheckError(attribute.name, f"must be odd, got {value}")


@attrs.frozen
class SparseCCEParams:
    """Parameters of ``sparse_cce`` (softmax cross-entropy on the class index)."""

    class_weights: Optional[list[float]] = param(None, help=_CLASS_WEIGHTS_HELP,
                                                 validator=_WEIGHTS)


@attrs.frozen
class CategoricalCCEParams:
    """Parameters of ``categorical_cce`` (softmax cross-entropy on a one-hot target)."""

    label_smoothing: float = param(
        0.0, help="label smoothing in [0, 1): the one-hot target becomes "
                  "onehot*(1-s) + s/n_classes", validator=in_range(0, 1, hi_open=True))
    class_weights: Optional[list[float]] = param(None, help=_CLASS_WEIGHTS_HELP,
                                                 validator=_WEIGHTS)


@attrs.frozen
class BinaryCCEParams:
    """Parameters of ``binary_cce`` (sigmoid cross-entropy of the foreground)."""

    class_weights: Optional[list[float]] = param(
        None, help="optional [w_background, w_foreground]: each pixel's loss is multiplied by "
                   "the weight of its true class, then averaged over all pixels",
        validator=_WEIGHTS)


@attrs.frozen
class WeightedBCEParams:
    """Parameters of ``weighted_bce`` (cross-entropy times the per-pixel weight map)."""


@attrs.frozen
class WeightedBCEDiceParams:
    """Parameters of ``weighted_bce_dice`` (border-weighted BCE + weighted soft Dice)."""

    pool_size: int = param(
        11, help="side of the average-pooling window used to find border pixels when y_true "
                 "carries no weight channel", validator=positive())
    border_weight: float = param(
        2.0, help="extra weight added to border pixels (weight 1 + border_weight) before the "
                  "weights are rescaled to mean 1; used only when y_true has no weight channel",
        validator=non_negative())
    smooth: float = param(1.0, help="smoothing constant of the Dice term",
                          validator=non_negative())


@attrs.frozen
class MultipleOutputParams:
    """Parameters of ``multiple_output`` (independent sigmoid BCE per output channel)."""

    category_weights: Optional[list[float]] = param(
        None, help="weight of each channel's BCE, e.g. [w_background, w_foreground]; "
                   "length n_classes; null = all 1. The loss is the weighted sum",
        validator=_WEIGHTS)


@attrs.frozen
class L1L2Params:
    """Parameters of ``l1l2`` (keypoint heatmap loss of DeepSTORM)."""

    kernel_size: int = param(15, help="side of the Gaussian kernel (odd)",
                             validator=[positive(), _odd])
    sigma: float = param(4.0, help="standard deviation of the Gaussian kernel, in pixels",
                         validator=positive())
    kernel_sum: float = param(2.0, help="the normalised Gaussian is scaled to this sum",
                              validator=positive())
    l1_weight: float = param(1.0, help="weight of the L1 sparsity term mean(|prediction|)",
                             validator=non_negative())
    blur_target: bool = param(
        True, help="true: y_true channel 0 holds keypoint spikes (e.g. the marks target) and "
                   "is blurred with the same kernel to give the heatmap; false: channel 0 "
                   "already is the heatmap")


@attrs.frozen
class DiceLossParams:
    """Parameters of ``dice`` (soft Dice of the foreground probability)."""

    smooth: float = param(1.0, help="smoothing constant added to numerator and denominator",
                          validator=non_negative())


@attrs.frozen
class FocalParams:
    """Parameters of ``focal`` (focal loss from logits)."""

    gamma: float = param(2.0, help="focusing exponent: the loss is scaled by (1 - p_true)^gamma",
                         validator=non_negative())
    alpha: Optional[float] = param(
        None, help="class balance in [0, 1]: foreground pixels (class != 0) weigh alpha, "
                   "background pixels 1 - alpha; null = no balancing",
        validator=in_range(0, 1))


@attrs.frozen
class ClassDistanceParams:
    """Parameters of ``class_distance`` (class head CE + regression heads inside the
    foreground)."""

    class_loss: Literal["cce", "cce_dice", "cce_lovasz"] = param(
        "cce", help="class head: softmax cross-entropy ('cce'), or cross-entropy plus the soft "
                    "Dice loss of the foreground ('cce_dice') or its Lovasz-softmax loss, the "
                    "convex surrogate of 1 - IoU per image ('cce_lovasz')")
    regression: Literal["mse", "l1"] = param(
        "mse", help="regression heads (e.g. distance): mean squared or absolute error of the "
                    "activated output")
    regression_weight: float = param(1.0, help="weight of the regression terms",
                                     validator=non_negative())
    foreground_only: bool = param(
        True, help="average the regression error over foreground pixels only (class != 0)")
    border_weight: float = param(
        0.0, help="extra weight of the class head's cross-entropy on pixels near the "
                  "foreground outline (weight 1 + border_weight there, 1 elsewhere, then "
                  "rescaled to mean 1 over the batch); 0 = every pixel weighs the same",
        validator=non_negative())
    border_pool: int = param(
        3, help="side of the window that finds the outline pixels: a pixel whose "
                "border_pool x border_pool neighbourhood holds both foreground and background",
        validator=[positive(), _odd])
