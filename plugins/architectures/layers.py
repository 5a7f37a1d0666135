"""Custom Keras layers of the built-in architectures, registered for ``.keras`` reloading.

Importing this module registers them under the package ``dlsuite_architectures`` so
``keras.models.load_model(path, safe_mode=True)`` needs no ``custom_objects``. No ``Lambda``
layers are used anywhere (they break safe-mode loading).
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["TemporalReduce", "add_heads"]

PACKAGE = "dlsuite_architectures"


@keras.saving.register_keras_serializable(package=PACKAGE)
class TemporalReduce(keras.layers.Layer):
    """Collapse the time axis of ``(B, T, H, W, C)`` to ``(B, H, W, C)``: ``mode="mean"``
    averages the frames, ``mode="last"`` keeps the last one."""

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "last"):
            raise ValueError(f"TemporalReduce mode must be 'mean' or 'last', got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        if self.mode == "mean":
            return ops.mean(inputs, axis=1)
        return inputs[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def add_heads(features, *, n_classes: int, tips: bool, initializer: str = "glorot_uniform"):
    """The output head(s) on full-resolution ``features``.

    Without tips: one ``Conv2D(n_classes, 1x1)`` named ``"slog"`` (logits). With tips: a list
    of two outputs, ``"segmentation"`` (the same 1x1 logits) and ``"tips"`` (a 1-channel linear
    keypoint heatmap from a 3x3 conv + 1x1 conv branch).
    """
    if not tips:
        return keras.layers.Conv2D(n_classes, 1, name="slog", kernel_initializer=initializer)(features)
    seg = keras.layers.Conv2D(
        n_classes, 1, name="segmentation", kernel_initializer=initializer
    )(features)
    t = keras.layers.Conv2D(
        int(features.shape[-1]), 3, padding="same", activation="relu",
        kernel_initializer=initializer, name="tips_conv",
    )(features)
    t = keras.layers.Conv2D(1, 1, name="tips", kernel_initializer=initializer)(t)
    return [seg, t]
