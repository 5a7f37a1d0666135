"""``unet_lstm``: a U-Net with ConvLSTM units in the contracting path, the intended design of
the original suite's ``models/lstm.py::UNetLSTM`` (dead code there: never reachable).

Input ``(B, T, H, W, 1)`` with ``T = time_windows`` and static H, W divisible by ``2**pools``
(Keras 3 ConvLSTM2D needs static spatial shapes). Encoder level p (filters ``f = n*2**p``):
``ConvLSTM2D(f, k, return_sequences=True)`` -> Dropout(d*p) -> ``Conv3D(f, (1,k,k))`` + act
-> Dropout(d*p) (the skip), then ``MaxPooling3D((1,2,2))``; the bottleneck is the same with
``n*2**pools`` filters and Dropout(d*pools). Decoder level p: ``UpSampling3D((1,2,2))``,
concatenate the skip, two ``Conv3D(n*2**p, (1,k,k))`` + act each followed by Dropout(d). The
time axis is then collapsed (``time_reduction``: the mean over the window as the original's
``AveragePooling3D((T,1,1))``, or the last frame) and a 1x1 ``Conv2D`` head named ``"slog"``
gives logits ``(B, H, W, n_classes)``.

Parameter count at n=16, pools=3, k=3, 2 classes: 1,561,842 (the original's "about 1.56 M").
Differences from the original: the ConvLSTM cell uses its standard ``tanh`` activation (the
original passed ``activation=None``, a linear cell, followed by the block activation) and the
gate defaults to ``sigmoid`` (``recurrent_activation``); ``kernel_initializer`` is honoured;
``padding='same'`` is explicit; the output is ``(B, H, W, C)``, not ``(B, 1, H, W, C)``.
"""

from __future__ import annotations

import keras

from . import layers as _layers
from .common import require_int, require_rate, resolve_temporal_input_shape

__all__ = ["build_unet_lstm"]

ARCH = "unet_lstm"


def _drop(x, rate: float, name: str):
    rate = min(rate, 0.5)
    return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x


def _conv3d(x, filters, params, name):
    k = params.kernel_size
    return keras.layers.Conv3D(
        filters, (1, k, k), padding="same", activation=params.activation,
        kernel_initializer=params.kernel_initializer, name=name,
    )(x)


def _lstm_level(x, filters, params, rate, name):
    x = keras.layers.ConvLSTM2D(
        filters, params.kernel_size, padding="same", return_sequences=True,
        recurrent_activation=params.recurrent_activation,
        kernel_initializer=params.kernel_initializer, name=f"{name}_convlstm",
    )(x)
    x = _drop(x, rate, f"{name}_drop1")
    x = _conv3d(x, filters, params, f"{name}_conv")
    return _drop(x, rate, f"{name}_drop2")


def build_unet_lstm(params, *, n_classes: int, input_shape: tuple | None = None) -> keras.Model:
    """U-Net-LSTM (``UNetLSTMParams``): ``(B, T, H, W, 1)`` -> logits ``(B, H, W, n_classes)``.
    Raises DlsuiteInputError when H, W are not static or not multiples of ``2**pools``."""
    pools = require_int(ARCH, "pools", params.pools, 1, 8)
    n = require_int(ARCH, "n_filters", params.n_filters, 1)
    require_int(ARCH, "kernel_size", params.kernel_size, 1)
    require_int(ARCH, "n_classes", n_classes, 1)
    d = require_rate(ARCH, "dropout", params.dropout)
    t = require_int(ARCH, "time_windows", params.time_windows, 1)
    shape = resolve_temporal_input_shape(ARCH, input_shape, t, 2**pools)

    inputs = keras.Input(shape=shape, name="input_window")
    x, skips = inputs, []
    for p in range(pools):
        x = _lstm_level(x, n * 2**p, params, d * p, f"enc{p}")
        skips.append(x)
        x = keras.layers.MaxPooling3D((1, 2, 2), name=f"enc{p}_pool")(x)
    x = _lstm_level(x, n * 2**pools, params, d * pools, "bottleneck")
    for p in reversed(range(pools)):
        x = keras.layers.UpSampling3D((1, 2, 2), name=f"dec{p}_up")(x)
        x = keras.layers.Concatenate(axis=-1, name=f"dec{p}_concat")([skips[p], x])
        for j in (1, 2):
            x = _conv3d(x, n * 2**p, params, f"dec{p}_conv{j}")
            x = _drop(x, d, f"dec{p}_drop{j}")
    x = _layers.TemporalReduce(params.time_reduction, name="time_reduce")(x)
    outputs = keras.layers.Conv2D(
        n_classes, 1, kernel_initializer=params.kernel_initializer, name="slog"
    )(x)
    return keras.Model(inputs, outputs, name=ARCH)
