"""``class_distance``: the loss of a class head plus regression heads (TensorFlow).

For a target with heads (e.g. ``distance``: a softmax ``class`` head and a sigmoid
``distance`` head), with ``y_pred`` the logits of all heads concatenated and ``y_true`` the
target's channels:

``loss = class_term + regression_weight * sum over regression heads of regression_term``

- ``class_term``: softmax cross-entropy of the class index (``y_true`` channel 0) over the class
  head's logits (sigmoid cross-entropy for a 1-channel class head), averaged over all pixels;
  ``class_loss="cce_dice"`` adds the soft Dice loss of the foreground probability,
  ``"cce_lovasz"`` its Lovasz-softmax loss (the convex surrogate of 1 - IoU, per image);
  with ``border_weight`` b > 0 each pixel's cross-entropy is weighted ``1 + b`` on the
  outline band (:func:`~.tensors.outline_band` of the true foreground, ``border_pool``) and 1
  elsewhere, the weights rescaled to mean 1 over the batch (a weighted mean);
- ``regression_term``: mean squared (``"mse"``) or absolute (``"l1"``) difference between the
  head's activated output (sigmoid or identity, as the head declares, so training matches
  inference) and the ``y_true`` channel named like the head, averaged over the foreground
  pixels (class index != 0) when ``foreground_only`` (0 for a batch without foreground), else
  over all pixels.

The Keras loss class :class:`HeadsLoss` is registered as ``dlsuite_losses>HeadsLoss``; its
config holds the parameters, the heads and the target channel names, so a ``.keras`` file
compiled with it reloads without ``custom_objects``.
"""

from __future__ import annotations

from typing import Any

import attrs
import keras
import tensorflow as tf

from dlsuite.specs import HeadSpec

from .errors import LossInputError
from .tensors import class_index, foreground_target, lovasz_foreground, outline_band

__all__ = ["HeadsLoss", "build_class_distance"]

_SMOOTH = 1.0


def _as_head(h) -> HeadSpec:
    return h if isinstance(h, HeadSpec) else HeadSpec(**h)


@keras.saving.register_keras_serializable(package="dlsuite_losses")
class HeadsLoss(keras.losses.Loss):
    """The ``class_distance`` loss (module docstring) for the given ``heads`` (HeadSpec or
    their dicts, in output channel order) and ``target_channels`` (names of ``y_true``'s
    channels)."""

    def __init__(self, params: Any = None, heads=(), target_channels=("class",),
                 name: str | None = None, reduction: str = "sum_over_batch_size",
                 dtype: Any = None):
        from .params import ClassDistanceParams

        super().__init__(name=name or "class_distance", reduction=reduction, dtype=dtype)
        if params is None:
            params = ClassDistanceParams()
        elif isinstance(params, dict):
            params = ClassDistanceParams(**params)
        self.params = params
        self.heads = tuple(_as_head(h) for h in heads)
        self.target_channels = tuple(target_channels)
        classes = [h for h in self.heads if h.role == "class"]
        if len(classes) != 1:
            raise LossInputError("loss 'class_distance' needs exactly one head with role "
                                 f"'class'; got heads {[h.name for h in self.heads]}")
        self._slices, start = {}, 0
        for h in self.heads:
            self._slices[h.name] = (start, start + h.channels)
            start += h.channels
        self._n_out = start
        self._regression = []
        for h in self.heads:
            if h.role != "regression":
                continue
            if h.name not in self.target_channels:
                raise LossInputError(
                    f"loss 'class_distance': head {h.name!r} has no y_true channel of that "
                    f"name (target channels {list(self.target_channels)})")
            self._regression.append((h, self.target_channels.index(h.name)))
        self._class = classes[0]
        if params.class_loss not in ("cce", "cce_dice", "cce_lovasz") or params.regression not in ("mse", "l1"):
            raise LossInputError(f"loss 'class_distance': invalid parameters {params}")

    def _class_term(self, y_true, logits):
        fg = foreground_target(y_true)
        if self._class.channels == 1:
            z = logits[..., 0]
            ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=fg, logits=z)
            p = tf.sigmoid(z)
        else:
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=class_index(y_true),
                                                                logits=logits)
            p = 1.0 - tf.nn.softmax(logits, axis=-1)[..., 0]
        if self.params.border_weight > 0:
            w = 1.0 + self.params.border_weight * outline_band(fg, self.params.border_pool)
            ce = tf.reduce_sum(ce * w) / tf.reduce_sum(w)
        else:
            ce = tf.reduce_mean(ce)
        if self.params.class_loss == "cce":
            return ce
        if self.params.class_loss == "cce_lovasz":
            return ce + lovasz_foreground(fg, p)
        dice = 1.0 - (2.0 * tf.reduce_sum(fg * p) + _SMOOTH) / (
            tf.reduce_sum(fg) + tf.reduce_sum(p) + _SMOOTH)
        return ce + dice

    def call(self, y_true, y_pred):
        """The scalar loss of one batch (see the module docstring)."""
        y_pred = tf.cast(y_pred, tf.float32)
        y_true = tf.cast(y_true, tf.float32)
        if y_pred.shape[-1] is not None and y_pred.shape[-1] != self._n_out:
            raise LossInputError(
                f"loss 'class_distance' was built for {self._n_out} output channels (heads "
                f"{[h.name for h in self.heads]}) but y_pred has shape {tuple(y_pred.shape)}")
        if y_true.shape[-1] is not None and y_true.shape[-1] < len(self.target_channels):
            raise LossInputError(
                f"loss 'class_distance' needs y_true channels {list(self.target_channels)}; "
                f"got shape {tuple(y_true.shape)}")
        a, b = self._slices[self._class.name]
        total = self._class_term(y_true, y_pred[..., a:b])
        fg = foreground_target(y_true)
        for head, index in self._regression:
            a, b = self._slices[head.name]
            out = y_pred[..., a:b]
            if head.activation == "sigmoid":
                out = tf.sigmoid(out)
            elif head.activation == "softmax":
                out = tf.nn.softmax(out, axis=-1)
            diff = out - y_true[..., index:index + 1]
            err = tf.reduce_mean(tf.square(diff) if self.params.regression == "mse"
                                 else tf.abs(diff), axis=-1)
            if self.params.foreground_only:
                term = tf.math.divide_no_nan(tf.reduce_sum(err * fg), tf.reduce_sum(fg))
            else:
                term = tf.reduce_mean(err)
            total = total + self.params.regression_weight * term
        return total

    def get_config(self) -> dict:
        """Keras config: base config, parameters, heads and target channel names."""
        config = super().get_config()
        config.update(params=attrs.asdict(self.params),
                      heads=[attrs.asdict(h) for h in self.heads],
                      target_channels=list(self.target_channels))
        return config


def build_class_distance(params, *, n_classes: int, heads=(), target_channels=("class",)
                         ) -> HeadsLoss:
    """Factory of ``class_distance`` (a ``multi_head`` loss): class head CE (+ Dice) plus
    MSE/L1 of each regression head inside the foreground. ``n_classes`` must equal the sum of
    the head channels."""
    loss = HeadsLoss(params, heads, target_channels)
    if heads and n_classes != loss._n_out:
        raise LossInputError(f"loss 'class_distance': n_classes={n_classes} but the heads "
                             f"have {loss._n_out} channels")
    if not heads:
        raise LossInputError("loss 'class_distance' trains a target with several heads (e.g. "
                             "target 'distance'); it got none")
    return loss
