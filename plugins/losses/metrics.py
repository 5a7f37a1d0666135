"""The built-in metrics (TensorFlow). Factories ``build_<name>(params, *, n_classes)``.

All metrics are stateful Keras metrics computed from *logits*, registered serializable
(``dlsuite_losses>...``) and named like their spec (``jaccard``, ``dice``, ``accuracy``), so
Keras logs ``jaccard`` / ``val_jaccard``.

Predicted class: ``argmax`` over the logits (ties go to the lower class, i.e. background);
for a 1-channel model, class 1 where the logit is > 0 (probability > 0.5).
Foreground: every class except 0 — for a 3-class (background, cell, contour) target a pixel
is foreground when it is cell *or* contour, in truth and in prediction alike.
``jaccard`` = TP / (TP + FP + FN) and ``dice`` = 2TP / (2TP + FP + FN) of the foreground,
micro-averaged: TP/FP/FN are pixel counts summed over every batch since the last
``reset_state()``. When there is no foreground in truth nor prediction (TP+FP+FN = 0) both
return 1.0: the prediction is perfect (the original suite returned 0, which punished
correct empty predictions). ``accuracy`` = fraction of pixels whose predicted class equals
the true class (channel 0 of ``y_true``).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from .tensors import check_shapes, class_index

__all__ = [
    "predicted_class",
    "ForegroundOverlap",
    "Jaccard",
    "Dice",
    "PixelAccuracy",
    "build_jaccard",
    "build_dice",
    "build_accuracy",
]


def predicted_class(y_pred, n_classes: int) -> tf.Tensor:
    """The predicted class per pixel, int32 ``(B, H, W)``: argmax of the logits, or
    ``logit > 0`` for a 1-channel model."""
    y_pred = tf.cast(y_pred, tf.float32)
    if n_classes == 1:
        return tf.cast(y_pred[..., 0] > 0.0, tf.int32)
    return tf.argmax(y_pred, axis=-1, output_type=tf.int32)


def _pixel_weights(sample_weight, truth) -> tf.Tensor | None:
    """``sample_weight`` broadcast to the ``(B, H, W)`` shape of ``truth`` as float64."""
    if sample_weight is None:
        return None
    w = tf.cast(tf.convert_to_tensor(sample_weight), tf.float64)
    if w.shape.rank == 4:
        w = w[..., 0]
    while w.shape.rank < 3:
        w = w[..., None]
    return tf.broadcast_to(w, tf.shape(truth))


class _CountingMetric(keras.metrics.Metric):
    """Base: float64 counters summed across batches; subclasses list them in ``COUNTERS``
    and implement ``_counts`` and ``result``."""

    COUNTERS: tuple[str, ...] = ()
    DEFAULT_NAME = ""

    def __init__(self, n_classes: int, name: str | None = None, dtype: Any = None):
        super().__init__(name=name or self.DEFAULT_NAME, dtype=dtype)
        self.n_classes = int(n_classes)
        self._counters = {
            key: self.add_variable(shape=(), initializer="zeros", dtype="float64", name=key)
            for key in self.COUNTERS
        }

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add this batch's pixel counts to the running totals. ``sample_weight`` (optional)
        weighs pixels: shape ``(B,)``, ``(B, H, W)`` or ``(B, H, W, 1)``."""
        check_shapes(f"metric {self.name!r}", y_true, y_pred, self.n_classes)
        truth = class_index(y_true)
        weight = _pixel_weights(sample_weight, truth)
        for key, mask in self._counts(truth, predicted_class(y_pred, self.n_classes)).items():
            value = tf.cast(mask, tf.float64)
            if weight is not None:
                value = value * weight
            self._counters[key].assign_add(tf.reduce_sum(value))

    def _counts(self, truth, pred) -> dict[str, tf.Tensor]:  # pragma: no cover - abstract
        """Boolean ``(B, H, W)`` mask per counter; the counter adds its (weighted) sum."""
        raise NotImplementedError

    def _value(self, key: str) -> tf.Tensor:
        return tf.convert_to_tensor(self._counters[key])

    def reset_state(self):
        """Set every counter back to 0."""
        for var in self._counters.values():
            var.assign(tf.zeros_like(var))

    def get_config(self) -> dict:
        """Keras config: name, dtype and ``n_classes``."""
        return {**super().get_config(), "n_classes": self.n_classes}


class ForegroundOverlap(_CountingMetric):
    """Counts foreground TP/FP/FN pixels (foreground = class != 0)."""

    COUNTERS = ("tp", "fp", "fn")

    def _counts(self, truth, pred):
        t, p = truth != 0, pred != 0
        return {"tp": t & p, "fp": ~t & p, "fn": t & ~p}


@keras.saving.register_keras_serializable(package="dlsuite_losses")
class Jaccard(ForegroundOverlap):
    """Foreground IoU TP/(TP+FP+FN) over all pixels seen; 1.0 when TP+FP+FN = 0."""

    DEFAULT_NAME = "jaccard"

    def result(self):
        """The IoU of everything accumulated so far (float32 scalar)."""
        tp, fp, fn = (self._value(k) for k in self.COUNTERS)
        denom = tp + fp + fn
        return tf.cast(tf.where(denom > 0, tp / tf.maximum(denom, 1.0), 1.0), tf.float32)


@keras.saving.register_keras_serializable(package="dlsuite_losses")
class Dice(ForegroundOverlap):
    """Foreground Dice 2TP/(2TP+FP+FN) over all pixels seen; 1.0 when TP+FP+FN = 0."""

    DEFAULT_NAME = "dice"

    def result(self):
        """The Dice of everything accumulated so far (float32 scalar)."""
        tp, fp, fn = (self._value(k) for k in self.COUNTERS)
        denom = 2.0 * tp + fp + fn
        return tf.cast(tf.where(denom > 0, 2.0 * tp / tf.maximum(denom, 1.0), 1.0), tf.float32)


@keras.saving.register_keras_serializable(package="dlsuite_losses")
class PixelAccuracy(_CountingMetric):
    """Fraction of pixels whose predicted class equals the true class."""

    COUNTERS = ("correct", "total")
    DEFAULT_NAME = "accuracy"

    def _counts(self, truth, pred):
        return {"correct": tf.equal(truth, pred), "total": tf.ones_like(truth, tf.bool)}

    def result(self):
        """Accuracy of everything accumulated so far (0.0 before any update)."""
        correct, total = self._value("correct"), self._value("total")
        return tf.cast(correct / tf.maximum(total, 1.0), tf.float32)


def build_jaccard(params, *, n_classes: int) -> Jaccard:
    """Factory of the ``jaccard`` metric (foreground IoU from logits)."""
    return Jaccard(n_classes)


def build_dice(params, *, n_classes: int) -> Dice:
    """Factory of the ``dice`` metric (foreground Dice from logits)."""
    return Dice(n_classes)


def build_accuracy(params, *, n_classes: int) -> PixelAccuracy:
    """Factory of the ``accuracy`` metric (pixel accuracy of the predicted class)."""
    return PixelAccuracy(n_classes)
