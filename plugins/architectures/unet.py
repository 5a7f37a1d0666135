"""U-Net family builders: ``unet``, ``categorical_unet``, ``categorical_unet_transpose``,
``categorical_unet_fc``, ``categorical_unet_fc_dil``.

All five are one parametric builder driven by a small declarative *recipe* per name
(downsampling, upsampling, dropout placement and schedule, dilations). Every model takes
``(H, W, 1)`` (dynamic by default) with H, W divisible by ``2**pools`` and outputs logits
``(B, H, W, n_classes)`` from a 1x1 conv named ``"slog"`` (or two outputs ``"segmentation"``
and ``"tips"`` when ``tips=True``).

Block: ``Conv2D(f, k, 'same')`` -> [BatchNorm(momentum=bn_momentum)] -> Activation, twice; dropout after the block
(or after its first conv for ``categorical_unet``). Decoder level p: upsample, concatenate
``[skip, up]``, block of ``n*2**p`` filters.

Parameter counts equal the original suite's (once its U-Nets' broken ``Concatenate`` call is
fixed so they build at all) for the same settings (k=3, no batch norm, 2 classes): e.g. ``categorical_unet_transpose``
n=16 pools=3 573,266; ``categorical_unet_fc`` 621,762; ``categorical_unet_fc_dil`` 624,082;
``categorical_unet`` (pools=4) 1,962,354. Deliberate differences from the original:

* ``unet`` outputs ``n_classes`` logits (the original: 1 channel + BCE), so at n=16 pools=4
  nearest upsampling it has the count of ``categorical_unet`` (1,962,354, not 1,962,337);
  its transposed-conv option halves the channels (classic U-Net ``n*2**p``), whereas the
  original variants keep ``n*2**(p+1)``.
* ``categorical_unet`` honours ``pools`` and ``kernel_size`` (the original fixed 4 levels and
  3x3); its dropout schedule d,d,2d,2d | 3d | 2d,2d,d,d generalises to ``d*(1 + p//2)``.
* The activation follows batch norm (``Conv -> BN -> act``) instead of preceding it, and the
  1x1 heads always use the configured initializer. Dropout rates are capped at 0.5.
* ``categorical_unet_fc_dil``'s decoder uses ``kernel_size`` (the original: fixed 3x3).
* No ``multiple_output`` / ``weighted_bce`` 3-input heads: losses live in the loss plugins.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import keras

from . import layers as _layers
from .common import require_int, require_momentum, require_rate, resolve_2d_input_shape

__all__ = [
    "build_unet",
    "build_categorical_unet",
    "build_categorical_unet_transpose",
    "build_categorical_unet_fc",
    "build_categorical_unet_fc_dil",
]

MAX_DROPOUT = 0.5


@attrs.frozen
class _Recipe:
    """How one U-Net variant differs from the others."""

    down: str  # "maxpool" | "strided"
    up: str  # "nearest" | "transpose"
    up_filters: Callable[[int, int], int]  # (n_filters, level p) -> transposed-conv filters
    enc_dilations: Callable[[Any], tuple[int, int]]  # params -> dilations of an encoder block
    dec_dilation: Callable[[Any], int]
    first_conv: bool
    dropout_after_first: bool
    enc_rate: Callable[[float, int, int], float]  # (d, p, pools) -> rate
    mid_rate: Callable[[float, int], float]  # (d, pools) -> bottleneck rate
    dec_rate: Callable[[float, int, int], float]


def _linear(d, p, pools):
    return d * (p + 1)


def _constant(d, *_):
    return d


def _stair(d, p, pools):
    return d * (1 + p // 2)


def _no_dil(_params):
    return (1, 1)


def _unet_recipe(params) -> _Recipe:
    linear = params.dropout_schedule == "linear"
    d = int(params.dilation_rate)
    return _Recipe(
        down="maxpool",
        up=params.upsampling,
        up_filters=lambda n, p: n * 2**p,
        enc_dilations=lambda _p: (d, d),
        dec_dilation=lambda _p: d,
        first_conv=False,
        dropout_after_first=False,
        enc_rate=_linear if linear else _constant,
        mid_rate=(lambda dr, pools: dr * pools) if linear else (lambda dr, pools: dr),
        dec_rate=_linear if linear else _constant,
    )


def _original_recipe(
    down: str, first_conv: bool = False, dilated: bool = False
) -> Callable[[Any], _Recipe]:
    def make(params) -> _Recipe:
        return _Recipe(
            down=down,
            up="transpose",
            up_filters=lambda n, p: n * 2 ** (p + 1),
            enc_dilations=(lambda q: (q.dilation_rate, 2 * q.dilation_rate)) if dilated else _no_dil,
            dec_dilation=lambda _p: 1,
            first_conv=first_conv,
            dropout_after_first=False,
            enc_rate=_linear,
            mid_rate=lambda dr, pools: dr * pools,
            dec_rate=_linear,
        )

    return make


def _categorical_recipe(_params) -> _Recipe:
    return _Recipe(
        down="maxpool",
        up="nearest",
        up_filters=lambda n, p: n * 2**p,
        enc_dilations=_no_dil,
        dec_dilation=lambda _p: 1,
        first_conv=False,
        dropout_after_first=True,
        enc_rate=_stair,
        mid_rate=lambda dr, pools: dr * (1 + pools // 2),
        dec_rate=_stair,
    )


def _conv_bn_act(x, filters, params, *, dilation=1, strides=1, name):
    x = keras.layers.Conv2D(
        filters, params.kernel_size, strides=strides, padding="same", dilation_rate=dilation,
        kernel_initializer=params.kernel_initializer, name=f"{name}_conv",
    )(x)
    if params.batch_norm:
        x = keras.layers.BatchNormalization(momentum=params.bn_momentum, name=f"{name}_bn")(x)
    return keras.layers.Activation(params.activation, name=f"{name}_act")(x)


def _dropout(x, rate, name):
    rate = min(rate, MAX_DROPOUT)
    return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x


def _block(x, filters, params, recipe: _Recipe, *, rate, dilations, name):
    x = _conv_bn_act(x, filters, params, dilation=dilations[0], name=f"{name}_1")
    if recipe.dropout_after_first:
        x = _dropout(x, rate, f"{name}_drop")
    x = _conv_bn_act(x, filters, params, dilation=dilations[1], name=f"{name}_2")
    if not recipe.dropout_after_first:
        x = _dropout(x, rate, f"{name}_drop")
    return x


def _validate(arch: str, params) -> None:
    require_int(arch, "n_filters", params.n_filters, 1)
    require_int(arch, "pools", params.pools, 1, 8)
    require_int(arch, "kernel_size", params.kernel_size, 1)
    require_rate(arch, "dropout", params.dropout)
    require_momentum(arch, "bn_momentum", params.bn_momentum)
    if hasattr(params, "dilation_rate"):
        require_int(arch, "dilation_rate", params.dilation_rate, 1)


def _build(arch: str, recipe_of: Callable[[Any], _Recipe], params, n_classes: int, input_shape):
    _validate(arch, params)
    require_int(arch, "n_classes", n_classes, 1)
    recipe = recipe_of(params)
    pools, n, d = params.pools, params.n_filters, float(params.dropout)
    shape = resolve_2d_input_shape(arch, input_shape, 2**pools)

    inputs = keras.Input(shape=shape, name="input_image")
    x = inputs
    if recipe.first_conv:
        x = _conv_bn_act(x, n, params, name="first")
    skips = []
    for p in range(pools):
        f = n * 2**p
        x = _block(x, f, params, recipe, rate=recipe.enc_rate(d, p, pools),
                   dilations=recipe.enc_dilations(params), name=f"enc{p}")
        skips.append(x)
        if recipe.down == "maxpool":
            x = keras.layers.MaxPooling2D(2, name=f"enc{p}_pool")(x)
        else:
            x = _conv_bn_act(x, f, params, strides=2, name=f"enc{p}_down")
    dd = recipe.dec_dilation(params)
    x = _block(x, n * 2**pools, params, recipe, rate=recipe.mid_rate(d, pools),
               dilations=(dd, dd), name="bottleneck")
    for p in reversed(range(pools)):
        if recipe.up == "transpose":
            up = keras.layers.Conv2DTranspose(
                recipe.up_filters(n, p), 2, strides=2, padding="same",
                kernel_initializer=params.kernel_initializer, name=f"dec{p}_up",
            )(x)
        else:
            up = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"dec{p}_up")(x)
        x = keras.layers.Concatenate(axis=-1, name=f"dec{p}_concat")([skips[p], up])
        x = _block(x, n * 2**p, params, recipe, rate=recipe.dec_rate(d, p, pools),
                   dilations=(dd, dd), name=f"dec{p}")
    outputs = _layers.add_heads(x, n_classes=n_classes, tips=params.tips,
                                initializer=params.kernel_initializer)
    return keras.Model(inputs, outputs, name=arch)


def build_unet(
    params, *, n_classes: int, input_shape: tuple | None = None
) -> keras.Model:
    """Classic 2D U-Net (``UNetParams``): logits ``(B, H, W, n_classes)``.
    Input ``(H, W, 1)`` (``None``: dynamic) with H, W multiples of ``2**pools``; bad parameters
    or sizes raise DlsuiteInputError naming the key."""
    return _build("unet", _unet_recipe, params, n_classes, input_shape)


def build_categorical_unet(
    params, *, n_classes: int, input_shape: tuple | None = None
) -> keras.Model:
    """The original's ``categorical_unet`` (``CategoricalUNetParams``), working:
    logits ``(B, H, W, n_classes)``.
    Input ``(H, W, 1)`` (``None``: dynamic) with H, W multiples of ``2**pools``; bad parameters
    or sizes raise DlsuiteInputError naming the key."""
    return _build("categorical_unet", _categorical_recipe, params, n_classes, input_shape)


def build_categorical_unet_transpose(
    params, *, n_classes: int, input_shape: tuple | None = None
) -> keras.Model:
    """The original's ``categorical_unet_transpose`` (``TransposeUNetParams``), working:
    logits ``(B, H, W, n_classes)``.
    Input ``(H, W, 1)`` (``None``: dynamic) with H, W multiples of ``2**pools``; bad parameters
    or sizes raise DlsuiteInputError naming the key."""
    return _build(
        "categorical_unet_transpose", _original_recipe("maxpool"), params, n_classes, input_shape
    )


def build_categorical_unet_fc(
    params, *, n_classes: int, input_shape: tuple | None = None
) -> keras.Model:
    """The original's ``categorical_unet_fc`` (``FCUNetParams``), working:
    logits ``(B, H, W, n_classes)``.
    Input ``(H, W, 1)`` (``None``: dynamic) with H, W multiples of ``2**pools``; bad parameters
    or sizes raise DlsuiteInputError naming the key."""
    return _build("categorical_unet_fc", _original_recipe("strided"), params, n_classes, input_shape)


def build_categorical_unet_fc_dil(
    params, *, n_classes: int, input_shape: tuple | None = None
) -> keras.Model:
    """The original's ``categorical_unet_fc_dil`` (``FCDilUNetParams``), working:
    logits ``(B, H, W, n_classes)``.
    Input ``(H, W, 1)`` (``None``: dynamic) with H, W multiples of ``2**pools``; bad parameters
    or sizes raise DlsuiteInputError naming the key."""
    return _build(
        "categorical_unet_fc_dil", _original_recipe("strided", first_conv=True, dilated=True),
        params, n_classes, input_shape,
    )
