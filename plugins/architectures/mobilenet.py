"""MobileNetV2 encoder + MobileUNet decoder: ``mobilenet_mobileunet`` and its temporal variant
``mobilenet_mobileunet_lstm``.

Encoder contract (the part other code relies on):

* The encoder is a nested functional sub-model named exactly ``"encoder"``: Keras'
  ``MobileNetV2(include_top=False, alpha)`` cut at the first ``pools`` taps of
  ``block_1_expand_relu`` (stride 2), ``block_3_expand_relu`` (4), ``block_6_expand_relu`` (8),
  ``block_13_expand_relu`` (16), ``block_16_project`` (32); it takes ``(H, W, 3)`` in [-1, 1]
  and returns the list of taps (the deepest is the bottleneck). Only the layers on the path to
  the taps exist (pools=3 at alpha 0.35: 17,584 parameters).
* Input scaling is inside the model: a ``Rescaling(2, -1)`` layer maps our ~[0, 1] normalised
  grey input to MobileNetV2's expected [-1, 1] (the original fed [0, 1], which its
  ImageNet weights do not expect: not reproduced), then ``Concatenate`` triples the channel.
* ``train_decoder_only=True`` builds the encoder with ``trainable=False`` (its BatchNorm layers
  then run in inference mode). :func:`dlsuite.keras_helpers.set_encoder_trainable`
  unfreezes it generically (also inside the ``TimeDistributed`` of the temporal model).
* BatchNorm momentum: the decoder's BatchNorm layers use ``bn_momentum``; the encoder's
  (Keras builds them with 0.999, far too slow for a model trained from scratch: its moving
  statistics would lag training by hundreds of steps) get ``encoder_bn_momentum`` when set,
  else ``bn_momentum`` when randomly initialised, and keep 0.999 when pretrained.
* ``encoder_weights``: ``None`` random init; ``"imagenet"`` asks Keras to download the weights
  (offline this fails within a second and raises one :class:`DlsuiteInputError` telling the
  user to download the file and point ``encoder_weights`` at it); a path loads a local file:
  Keras' ImageNet ``..._no_top.h5`` or a ``.weights.h5`` saved from a full MobileNetV2 base of
  the same alpha, or a ``.weights.h5`` saved from an ``"encoder"`` sub-model of the same alpha
  and pools.

Decoder (as the original ``mobile_decoder``): for ``i = pools-1 ... 1`` an up block of two
depthwise-separable blocks (``SeparableConv2D(n*2**i, 3x3, dilation) -> BN -> act ->
[Dropout]``) then ``UpSampling2D(2)`` and ``Concatenate([x, skip])``; then
``UpSampling2D(2)`` to full resolution, two separable blocks of ``n`` filters without dropout,
and a ``Conv2D(n_classes, 1x1)`` head named ``"slog"``. The original also created an ``i=0`` up
block that it discarded (not in the graph, not counted): it is not created here.

Temporal model: ``TimeDistributed`` of the 2D network minus its head (a nested model named
``"mobileunet_features"``), ``ConvLSTM2D(n, 3x3, dilation, return_sequences=False)``, then the
1x1 head: logits ``(B, H, W, n_classes)`` for the last frame of the window. Parameter counts
equal the original suite's (its template n=16 pools=3 -> 57,218 total,
55,026 trainable, 39,186 trainable with a frozen encoder). Differences from the original: the
ConvLSTM gate defaults to ``sigmoid`` (``recurrent_activation`` param; TF 2.2 used a 0.2-slope
hard sigmoid); the window length is fixed to ``time_windows`` and H, W must be static
(Keras 3 ConvLSTM2D); the head outputs ``(B, H, W, C)``, not ``(B, 1, H, W, C)``.
"""

from __future__ import annotations

import logging
import os
import warnings

import keras

from dlsuite import DlsuiteInputError
from dlsuite.keras_helpers import ENCODER_NAME

from . import layers as _layers
from .batchnorm import encoder_bn_momentum, set_bn_momentum
from .common import (
    require_int,
    require_momentum,
    require_rate,
    resolve_2d_input_shape,
    resolve_temporal_input_shape,
)
from .geometry import MOBILENET_MAX_POOLS
from .params import MOBILENET_ALPHAS

__all__ = [
    "ENCODER_NAME",
    "TAPS",
    "build_encoder",
    "build_mobilenet_mobileunet",
    "build_mobilenet_mobileunet_lstm",
    "imagenet_weights_filename",
]

log = logging.getLogger(__name__)

TAPS = (
    "block_1_expand_relu",
    "block_3_expand_relu",
    "block_6_expand_relu",
    "block_13_expand_relu",
    "block_16_project",
)
ALPHAS = MOBILENET_ALPHAS  # one table, in the TF-free params module
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"


def imagenet_weights_filename(alpha: float) -> str:
    """File name of Keras' ImageNet MobileNetV2 weights without top for ``alpha`` (224 rows)."""
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"


def _base(alpha: float, weights):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input_shape.*", category=UserWarning)
        return keras.applications.MobileNetV2(
            input_shape=(None, None, 3), include_top=False, weights=weights, alpha=alpha
        )


def _imagenet_base(arch: str, alpha: float):
    try:
        return _base(alpha, "imagenet")
    except Exception as exc:  # noqa: BLE001 - Keras raises a plain Exception on URL failures
        name = imagenet_weights_filename(alpha)
        raise DlsuiteInputError(
            f"architecture {arch!r}: encoder_weights='imagenet' could not be loaded "
            f"({type(exc).__name__}: {exc}). Download {IMAGENET_URL}{name} on a machine with "
            f"internet access and set encoder_weights to the local path of that file."
        ) from exc


def _cut(base, pools: int) -> keras.Model:
    outputs = [base.get_layer(tap).output for tap in TAPS[:pools]]
    return keras.Model(base.input, outputs, name=ENCODER_NAME)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quiet_load(model, path: str) -> None:
    """``model.load_weights(path)`` without Keras' per-container mismatch warnings (a
    mismatch still raises, which is what the caller relies on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_weights(path)


def build_encoder(arch: str, alpha: float, pools: int, weights: str | None) -> keras.Model:
    """The MobileNetV2 encoder sub-model named ``"encoder"`` (see the module docstring),
    with ``weights`` None, ``"imagenet"`` or a local file path. Raises DlsuiteInputError when
    the weights cannot be obtained or do not fit."""
    if weights is None:
        log.info("%s: MobileNetV2 encoder randomly initialised (encoder_weights is null; set "
                 "it to 'imagenet' or a weights file to start from pretrained weights)", arch)
        return _cut(_base(alpha, None), pools)
    if weights == "imagenet":
        return _cut(_imagenet_base(arch, alpha), pools)
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise DlsuiteInputError(
            f"architecture {arch!r}: encoder_weights file {path!r} does not exist (use null, "
            "'imagenet' or the path of a weights file)"
        )
    base = _base(alpha, None)
    try:  # a full MobileNetV2 file (Keras' ImageNet .h5 or a .weights.h5 of the base)
        _quiet_load(base, path)
        return _cut(base, pools)
    except Exception as full_exc:  # noqa: BLE001 - any structure mismatch
        encoder = _cut(base, pools)
        try:  # a .weights.h5 saved from an encoder sub-model of the same alpha and pools
            _quiet_load(encoder, path)
            return encoder
        except Exception as enc_exc:  # noqa: BLE001
            raise DlsuiteInputError(
                f"architecture {arch!r}: encoder_weights file {path!r} fits neither a "
                f"MobileNetV2 (alpha={alpha}, no top) nor its encoder cut at pools={pools}: "
                f"{_short(full_exc)} / {_short(enc_exc)}"
            ) from enc_exc


def _validate(arch: str, params) -> None:
    require_int(arch, "n_filters", params.n_filters, 1)
    require_int(arch, "pools", params.pools, 1, MOBILENET_MAX_POOLS)
    require_int(arch, "dilation_rate", params.dilation_rate, 1)
    require_rate(arch, "dropout", params.dropout)
    require_momentum(arch, "bn_momentum", params.bn_momentum)
    if params.encoder_bn_momentum is not None:
        require_momentum(arch, "encoder_bn_momentum", params.encoder_bn_momentum)
    if float(params.alpha) not in ALPHAS:
        raise DlsuiteInputError(
            f"architecture {arch!r}: alpha must be one of {ALPHAS}, got {params.alpha!r}"
        )


def _separable_block(x, filters, params, *, dropout: float, name: str):
    x = keras.layers.SeparableConv2D(
        filters, 3, padding="same", dilation_rate=params.dilation_rate,
        depthwise_initializer=params.kernel_initializer,
        pointwise_initializer=params.kernel_initializer, name=f"{name}_sepconv",
    )(x)
    x = keras.layers.BatchNormalization(momentum=params.bn_momentum, name=f"{name}_bn")(x)
    x = keras.layers.Activation(params.activation, name=f"{name}_act")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def _features(arch: str, params, inputs):
    """Full-resolution ``n_filters``-channel decoder features of a grey ``inputs`` tensor."""
    pools, n = int(params.pools), int(params.n_filters)
    encoder = build_encoder(arch, float(params.alpha), pools, params.encoder_weights)
    momentum = encoder_bn_momentum(params)
    if momentum is not None:  # else a pretrained encoder keeps Keras' 0.999
        set_bn_momentum(encoder, momentum)
    if params.train_decoder_only:
        encoder.trainable = False
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="scale_to_symmetric")(inputs)
    x = keras.layers.Concatenate(axis=-1, name="grey_to_rgb")([x, x, x])
    taps = encoder(x)
    taps = list(taps) if isinstance(taps, (list, tuple)) else [taps]
    x = taps[-1]
    for i, skip in zip(range(pools - 1, 0, -1), reversed(taps[:-1])):
        for j in (1, 2):
            x = _separable_block(x, n * 2**i, params, dropout=float(params.dropout), name=f"up{i}_{j}")
        x = keras.layers.UpSampling2D(2, name=f"up{i}_upsampling")(x)
        x = keras.layers.Concatenate(axis=-1, name=f"up{i}_concat")([x, skip])
    x = keras.layers.UpSampling2D(2, name="last_upsampling")(x)
    for j in (1, 2):
        x = _separable_block(x, n, params, dropout=0.0, name=f"last_{j}")
    return x


def build_mobilenet_mobileunet(
    params, *, n_classes: int, input_shape: tuple | None = None
) -> keras.Model:
    """2D MobileNetV2-MobileUNet (``MobileUNetParams``): ``(B, H, W, 1)`` in ~[0, 1] ->
    logits ``(B, H, W, n_classes)`` (H, W divisible by ``2**pools``; dynamic by default)."""
    arch = "mobilenet_mobileunet"
    _validate(arch, params)
    require_int(arch, "n_classes", n_classes, 1)
    shape = resolve_2d_input_shape(arch, input_shape, 2 ** int(params.pools))
    inputs = keras.Input(shape=shape, name="input_image")
    features = _features(arch, params, inputs)
    outputs = _layers.add_heads(features, n_classes=n_classes, tips=params.tips)
    return keras.Model(inputs, outputs, name=arch)


def build_mobilenet_mobileunet_lstm(
    params, *, n_classes: int, input_shape: tuple | None = None
) -> keras.Model:
    """Temporal MobileNetV2-MobileUNet + ConvLSTM2D (``MobileUNetLSTMParams``):
    ``(B, T, H, W, 1)`` with T = ``time_windows`` and static H, W -> logits
    ``(B, H, W, n_classes)`` for the last frame. Raises DlsuiteInputError without static H, W."""
    arch = "mobilenet_mobileunet_lstm"
    _validate(arch, params)
    require_int(arch, "n_classes", n_classes, 1)
    t = require_int(arch, "time_windows", params.time_windows, 1)
    shape = resolve_temporal_input_shape(arch, input_shape, t, 2 ** int(params.pools))
    frame = keras.Input(shape=shape[1:], name="input_frame")
    per_frame = keras.Model(frame, _features(arch, params, frame), name="mobileunet_features")
    inputs = keras.Input(shape=shape, name="input_window")
    x = keras.layers.TimeDistributed(per_frame, name="frames")(inputs)
    x = keras.layers.ConvLSTM2D(
        int(params.n_filters), 3, padding="same", dilation_rate=params.dilation_rate,
        activation=params.activation, recurrent_activation=params.recurrent_activation,
        return_sequences=False, name="convlstm",
    )(x)
    outputs = _layers.add_heads(x, n_classes=n_classes, tips=params.tips)
    return keras.Model(inputs, outputs, name=arch)
