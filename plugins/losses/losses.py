"""The built-in losses (TensorFlow). Factories ``build_<name>(params, *, n_classes)``.

Every factory returns a :class:`SegmentationLoss`: one Keras-serializable loss class
(registered as ``dlsuite_losses>SegmentationLoss``) whose config holds the loss name,
``n_classes`` and the parameters, so a ``.keras`` file compiled with it reloads without
``custom_objects``. The formulas live in small pure functions, one per loss, found through
the :data:`LOSS_FUNCTIONS` table. Each returns a scalar for the whole batch.

Inputs: ``y_pred`` logits ``(B, H, W, n_classes)``; ``y_true`` float ``(B, H, W, C)``,
channel 0 the class index, channel 1 (weighted losses) the pixel weight map.
Foreground = every class except 0; its probability is ``1 - softmax(...)[0]`` (sigmoid of
the logit for 1-channel models). Static shapes are checked on every call and a mismatch
raises :class:`~dlsuite_plugins.losses.errors.LossInputError` naming the loss.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import attrs
import keras
import numpy as np
import tensorflow as tf

from .catalog import LOSSES
from .errors import LossInputError
from .tensors import (
    border_weights,
    check_shapes,
    class_index,
    foreground_logit,
    foreground_target,
)

__all__ = [
    "SegmentationLoss",
    "make_loss",
    "gaussian_kernel",
    "LOSS_FUNCTIONS",
    "build_sparse_cce",
    "build_categorical_cce",
    "build_binary_cce",
    "build_weighted_bce",
    "build_weighted_bce_dice",
    "build_multiple_output",
    "build_l1l2",
    "build_dice",
    "build_focal",
]

_EPS = 1e-7
_LOGIT_CLIP = math.log((1.0 - _EPS) / _EPS)  # clipping p to [eps, 1-eps] == clipping its logit


# ---- helpers -----------------------------------------------------------------------------
def _logits(y_pred) -> tf.Tensor:
    return tf.cast(y_pred, tf.float32)


def _per_class_weight(labels, class_weights) -> tf.Tensor | float:
    """Weight of each pixel's true class (1.0 when ``class_weights`` is None)."""
    if class_weights is None:
        return 1.0
    return tf.gather(tf.constant(class_weights, tf.float32), labels)


def gaussian_kernel(size: int, sigma: float, total: float = 1.0) -> np.ndarray:
    """MATLAB-style ``fspecial('gaussian')`` kernel ``(size, size)`` float64 scaled to sum
    ``total`` (values below ``eps * max`` are zeroed first, as MATLAB does)."""
    half = (size - 1) / 2.0
    y, x = np.ogrid[-half:half + 1, -half:half + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum() * total


# ---- the formulas ------------------------------------------------------------------------
def _sparse_cce(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """mean over pixels of ``w[c] * -log softmax(logits)[c]``, c the true class."""
    labels = class_index(y_true)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=_logits(y_pred))
    return tf.reduce_mean(ce * _per_class_weight(labels, prm.class_weights))


def _categorical_cce(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """mean over pixels of ``w[c] * -sum_k t_k log softmax_k``, ``t`` the smoothed one-hot."""
    labels = class_index(y_true)
    s = prm.label_smoothing
    target = tf.one_hot(labels, n_classes) * (1.0 - s) + s / n_classes
    ce = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=_logits(y_pred))
    return tf.reduce_mean(ce * _per_class_weight(labels, prm.class_weights))


def _binary_cce(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """mean over pixels of the sigmoid cross-entropy of the foreground logit."""
    y = foreground_target(y_true)
    z = foreground_logit(y_pred, n_classes)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)
    if prm.class_weights is not None:
        w_bg, w_fg = prm.class_weights
        ce = ce * (w_bg + (w_fg - w_bg) * y)
    return tf.reduce_mean(ce)


def _true_class_ce(y_true, y_pred, n_classes: int) -> tf.Tensor:
    """Per-pixel cross-entropy of the true class: sigmoid for 1 channel, softmax otherwise
    (for 2 classes both are the same binary cross-entropy)."""
    if n_classes == 1:
        return tf.nn.sigmoid_cross_entropy_with_logits(
            labels=foreground_target(y_true), logits=_logits(y_pred)[..., 0])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=class_index(y_true), logits=_logits(y_pred))


def _weighted_bce(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """mean over pixels of ``weight * CE(true class)``, weight = ``y_true[..., 1]``."""
    weight = tf.cast(y_true[..., 1], tf.float32)
    return tf.reduce_mean(weight * _true_class_ce(y_true, y_pred, n_classes))


def _weighted_bce_dice(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """lyakaap's weighted BCE + weighted Dice on the foreground probability.

    ``BCE_w = sum(w * bce(y, clip(p))) / sum(w)``; ``Dice_w = 1 - (2 sum(w^2 y p) + s) /
    (sum(w^2 y) + sum(w^2 p) + s)``; ``w`` = ``y_true[..., 1]`` if present, else
    :func:`border_weights` of the foreground target.
    """
    y = foreground_target(y_true)
    z = foreground_logit(y_pred, n_classes)
    if y_true.shape[-1] is not None and y_true.shape[-1] >= 2:
        w = tf.cast(y_true[..., 1], tf.float32)
    else:
        w = border_weights(y, prm.pool_size, prm.border_weight)
    z_clipped = tf.clip_by_value(z, -_LOGIT_CLIP, _LOGIT_CLIP)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z_clipped)
    bce_w = tf.reduce_sum(w * bce) / tf.reduce_sum(w)
    p = tf.sigmoid(z)
    w2 = w * w
    s = prm.smooth
    dice = 1.0 - (2.0 * tf.reduce_sum(w2 * y * p) + s) / (
        tf.reduce_sum(w2 * y) + tf.reduce_sum(w2 * p) + s)
    return bce_w + dice


def _multiple_output(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """``sum_c cw[c] * mean(sigmoid_bce(onehot_c, logit_c))``: each channel an independent
    sigmoid output (e.g. background head with target 1-y and cell head with target y)."""
    onehot = tf.one_hot(class_index(y_true), n_classes)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=onehot, logits=_logits(y_pred))
    per_channel = tf.reduce_mean(ce, axis=[0, 1, 2])
    weights = prm.category_weights if prm.category_weights is not None else [1.0] * n_classes
    return tf.reduce_sum(per_channel * tf.constant(weights, tf.float32))


def _l1l2(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """DeepSTORM: ``mean((heatmap - G * pred)^2) + l1_weight * mean(|pred|)``; ``G`` the
    Gaussian kernel (zero padding), ``heatmap`` = ``G * y_true[..., 0]`` if ``blur_target``
    else ``y_true[..., 0]``. Works for any patch size."""
    kernel = tf.constant(
        gaussian_kernel(prm.kernel_size, prm.sigma, prm.kernel_sum)[:, :, None, None],
        tf.float32)
    spikes = _logits(y_pred)[..., :1]
    heat_pred = tf.nn.conv2d(spikes, kernel, strides=1, padding="SAME")
    heat_true = tf.cast(y_true[..., :1], tf.float32)
    if prm.blur_target:
        heat_true = tf.nn.conv2d(heat_true, kernel, strides=1, padding="SAME")
    return (tf.reduce_mean(tf.square(heat_true - heat_pred))
            + prm.l1_weight * tf.reduce_mean(tf.abs(spikes)))


def _dice(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """``1 - (2 sum(y p) + s) / (sum(y) + sum(p) + s)`` over the whole batch, ``p`` the
    foreground probability."""
    y = foreground_target(y_true)
    p = tf.sigmoid(foreground_logit(y_pred, n_classes))
    s = prm.smooth
    return 1.0 - (2.0 * tf.reduce_sum(y * p) + s) / (tf.reduce_sum(y) + tf.reduce_sum(p) + s)


def _focal(y_true, y_pred, n_classes: int, prm) -> tf.Tensor:
    """mean over pixels of ``-a_t (1 - p_t)^gamma log p_t``, ``p_t`` the probability of the
    true class (sigmoid for 1 channel, softmax otherwise); ``a_t`` = alpha on foreground,
    1 - alpha on background (1 when alpha is None)."""
    labels = class_index(y_true)
    logits = _logits(y_pred)
    if n_classes == 1:
        log_pt = -tf.nn.sigmoid_cross_entropy_with_logits(
            labels=foreground_target(y_true), logits=logits[..., 0])
    else:
        log_pt = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    loss = -tf.pow(1.0 - tf.exp(log_pt), prm.gamma) * log_pt
    if prm.alpha is not None:
        loss = loss * tf.where(labels != 0, prm.alpha, 1.0 - prm.alpha)
    return tf.reduce_mean(loss)


LOSS_FUNCTIONS: dict[str, Callable[..., tf.Tensor]] = {
    "sparse_cce": _sparse_cce,
    "categorical_cce": _categorical_cce,
    "binary_cce": _binary_cce,
    "weighted_bce": _weighted_bce,
    "weighted_bce_dice": _weighted_bce_dice,
    "multiple_output": _multiple_output,
    "l1l2": _l1l2,
    "dice": _dice,
    "focal": _focal,
}


# ---- parameter validation (at build time) -------------------------------------------------
def _check_length(loss: str, field: str, values, expected: int, what: str) -> None:
    if values is not None and len(values) != expected:
        raise LossInputError(
            f"loss {loss!r}: {field} must have {expected} values ({what}); got {list(values)}")


def _validate(loss: str, prm, n_classes: int) -> None:
    """Raise :class:`LossInputError` when parameters do not fit each other or ``n_classes``."""
    info = LOSSES[loss]
    if not info.accepts(n_classes):
        raise LossInputError(
            f"loss {loss!r} needs a model with n_classes {info.classes_text()}; "
            f"got n_classes={n_classes}")
    if loss == "binary_cce":
        _check_length(loss, "class_weights", prm.class_weights, 2, "[background, foreground]")
    elif hasattr(prm, "class_weights"):
        _check_length(loss, "class_weights", prm.class_weights, n_classes, "one per class")
    if hasattr(prm, "category_weights"):
        _check_length(loss, "category_weights", prm.category_weights, n_classes,
                      "one per output channel")
    checks = {
        "label_smoothing": lambda v: 0.0 <= v < 1.0,
        "alpha": lambda v: v is None or 0.0 <= v <= 1.0,
        "gamma": lambda v: v >= 0.0,
        "smooth": lambda v: v >= 0.0,
        "kernel_size": lambda v: v >= 1 and v % 2 == 1,
        "sigma": lambda v: v > 0.0,
        "pool_size": lambda v: v >= 1,
    }
    for field, ok in checks.items():
        if hasattr(prm, field) and not ok(getattr(prm, field)):
            raise LossInputError(f"loss {loss!r}: invalid {field}={getattr(prm, field)!r}")


def _params_instance(loss: str, params: Any):
    """The attrs params object of ``loss`` from an instance, a dict or None."""
    cls = LOSSES[loss].params
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if isinstance(params, dict):
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:  # unknown key, or a value its checks refuse
            raise LossInputError(f"loss {loss!r}: bad parameters {params!r}: {exc}") from exc
    raise LossInputError(f"loss {loss!r}: parameters must be {cls.__name__} or a dict; "
                         f"got {type(params).__name__}")


# ---- the Keras loss ----------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="dlsuite_losses")
class SegmentationLoss(keras.losses.Loss):
    """A built-in dlsuite loss as a Keras loss: ``loss(y_true, y_pred) -> scalar``.

    ``loss_name`` is a key of :data:`LOSS_FUNCTIONS`; ``params`` its parameter object (or a
    dict of its fields). Serializes to ``{"loss_name", "n_classes", "params", ...}``.
    """

    def __init__(self, loss_name: str, n_classes: int, params: Any = None, name: str | None = None,
                 reduction: str = "sum_over_batch_size", dtype: Any = None):
        if loss_name not in LOSS_FUNCTIONS:
            raise LossInputError(
                f"unknown loss {loss_name!r}; built-in losses: {sorted(LOSS_FUNCTIONS)}")
        super().__init__(name=name or loss_name, reduction=reduction, dtype=dtype)
        self.loss_name = loss_name
        self.n_classes = int(n_classes)
        self.params = _params_instance(loss_name, params)
        _validate(loss_name, self.params, self.n_classes)
        self._fn = LOSS_FUNCTIONS[loss_name]

    def call(self, y_true, y_pred):
        """Check the static shapes, then compute the loss (a scalar)."""
        check_shapes(f"loss {self.loss_name!r}", y_true, y_pred, self.n_classes,
                     LOSSES[self.loss_name].target_channels)
        return self._fn(y_true, y_pred, self.n_classes, self.params)

    def get_config(self) -> dict:
        """Keras config: the base config plus loss name, ``n_classes`` and parameters."""
        config = super().get_config()
        config.update(loss_name=self.loss_name, n_classes=self.n_classes,
                      params=attrs.asdict(self.params))
        return config


def make_loss(loss_name: str, params: Any = None, *, n_classes: int) -> SegmentationLoss:
    """Build the built-in loss ``loss_name`` (params: its attrs object, a dict, or None for
    defaults). Raises :class:`LossInputError` for unknown names or unfitting parameters."""
    return SegmentationLoss(loss_name, n_classes, params)


def build_sparse_cce(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``sparse_cce``: softmax CE of the class index from logits (n_classes >= 2)."""
    return make_loss("sparse_cce", params, n_classes=n_classes)


def build_categorical_cce(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``categorical_cce``: softmax CE against the (smoothed) one-hot class."""
    return make_loss("categorical_cce", params, n_classes=n_classes)


def build_binary_cce(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``binary_cce``: sigmoid CE of the foreground logit (n_classes 1 or 2)."""
    return make_loss("binary_cce", params, n_classes=n_classes)


def build_weighted_bce(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``weighted_bce``: true-class CE times the weight map in y_true channel 1."""
    return make_loss("weighted_bce", params, n_classes=n_classes)


def build_weighted_bce_dice(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``weighted_bce_dice``: lyakaap's border-weighted BCE + weighted Dice."""
    return make_loss("weighted_bce_dice", params, n_classes=n_classes)


def build_multiple_output(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``multiple_output``: weighted sum of per-channel sigmoid BCEs."""
    return make_loss("multiple_output", params, n_classes=n_classes)


def build_l1l2(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``l1l2``: DeepSTORM keypoint heatmap loss (n_classes 1)."""
    return make_loss("l1l2", params, n_classes=n_classes)


def build_dice(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``dice``: soft Dice loss of the foreground probability."""
    return make_loss("dice", params, n_classes=n_classes)


def build_focal(params, *, n_classes: int) -> SegmentationLoss:
    """Factory of ``focal``: focal loss from logits."""
    return make_loss("focal", params, n_classes=n_classes)
