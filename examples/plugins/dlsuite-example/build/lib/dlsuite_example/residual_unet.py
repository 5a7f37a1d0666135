"""The ``residual_unet`` architecture: a U-Net whose conv blocks have a 1x1 shortcut."""

from __future__ import annotations

import keras
from keras import layers


def _block(x, filters: int, name: str):
    shortcut = layers.Conv2D(filters, 1, padding="same", name=f"{name}_shortcut")(x)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def build(params, *, n_classes: int, input_shape=None) -> keras.Model:
    """Build a residual U-Net returning logits ``(B, H, W, n_classes)``; H and W must be
    divisible by ``2 ** params.pools``."""
    inputs = keras.Input(shape=input_shape or (None, None, 1), name="image")
    x, skips = inputs, []
    for level in range(params.pools):
        x = _block(x, params.n_filters * 2 ** level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _block(x, params.n_filters * 2 ** params.pools, "bottleneck")
    for level in reversed(range(params.pools)):
        x = layers.UpSampling2D(2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"concat{level}")([x, skips[level]])
        x = _block(x, params.n_filters * 2 ** level, f"dec{level}")
        if params.dropout:
            x = layers.Dropout(params.dropout, name=f"drop{level}")(x)
    outputs = layers.Conv2D(n_classes, 1, name="logits")(x)
    return keras.Model(inputs, outputs, name="residual_unet")
