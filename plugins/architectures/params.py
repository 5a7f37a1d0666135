"""Parameter classes of the built-in architectures (TF-free).

Each class is a frozen attrs class whose fields are declared with :func:`dlsuite.specs.param`
(default + help text + checks from :mod:`dlsuite.checks`), so ``dlsuite plugins`` can
list them and the config validates them (ranges included) without importing TensorFlow.
Values are checked again at build time by the builders (bad values raise
:class:`dlsuite.errors.DlsuiteInputError` naming the key).

Defaults follow the original suite's code defaults where they were sensible (MobileNet:
``n_filters=32, pools=5, alpha=0.35``; U-Nets: base 16 filters, 4 levels, 3x3 kernels).
"""

from __future__ import annotations

from typing import Literal

import attrs

from dlsuite import param
from dlsuite.checks import in_range, one_of, positive

from .batchnorm import DEFAULT_BN_MOMENTUM
from .geometry import MOBILENET_MAX_POOLS, UNET_MAX_POOLS

__all__ = [
    "UNetParams",
    "CategoricalUNetParams",
    "TransposeUNetParams",
    "FCUNetParams",
    "FCDilUNetParams",
    "MobileUNetParams",
    "MobileUNetLSTMParams",
    "UNetLSTMParams",
    "MOBILENET_ALPHAS",
]

#: MobileNetV2 width multipliers Keras builds (and has ImageNet weights for).
MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)

_N_FILTERS = positive()
_UNET_POOLS = in_range(1, UNET_MAX_POOLS)
_RATE = in_range(0, 1, hi_open=True)
_MOMENTUM = in_range(0, 1, lo_open=True, hi_open=True)
_BN_HELP = (
    "momentum of the BatchNorm moving statistics, in (0, 1); validation and prediction use "
    "them, and at Keras' 0.99/0.999 they lag training by hundreds of steps"
)


def _bn_momentum():
    return param(DEFAULT_BN_MOMENTUM, help=_BN_HELP, validator=_MOMENTUM)

_TIPS_HELP = (
    "add a second 1-channel 'tips' keypoint heatmap head; the model then has two outputs "
    "named 'segmentation' and 'tips'"
)


@attrs.frozen
class UNetParams:
    """Classic 2D U-Net (``unet``)."""

    n_filters: int = param(16, help="filters of the first level; level p has n_filters*2**p",
                           validator=_N_FILTERS)
    pools: int = param(
        4, help="number of 2x2 downsamplings (depth); H, W must be divisible by 2**pools",
        validator=_UNET_POOLS,
    )
    kernel_size: int = param(3, help="side of the square convolution kernels", validator=positive())
    dropout: float = param(0.0, help="dropout rate (0 disables dropout)", validator=_RATE)
    dropout_schedule: Literal["constant", "linear"] = param(
        "constant",
        help="'constant': the same rate after every block; 'linear': dropout*(p+1) at level p "
        "(bottleneck dropout*pools), capped at 0.5",
    )
    batch_norm: bool = param(False, help="batch normalization after every convolution")
    bn_momentum: float = _bn_momentum()
    activation: str = param("relu", help="Keras activation of the convolutions")
    upsampling: Literal["nearest", "transpose"] = param(
        "nearest", help="decoder upsampling: nearest-neighbour UpSampling2D or 2x2 Conv2DTranspose"
    )
    dilation_rate: int = param(1, help="dilation rate of the block convolutions",
                               validator=positive())
    kernel_initializer: str = param("he_normal", help="Keras initializer of the convolution kernels")
    tips: bool = param(False, help=_TIPS_HELP)


@attrs.frozen
class CategoricalUNetParams:
    """The original's ``categorical_unet``: MaxPool / UpSampling U-Net with dropout after the
    first convolution of each block (rates d,d,2d,2d | 3d | 2d,2d,d,d at 4 levels)."""

    n_filters: int = param(16, help="filters of the first level; level p has n_filters*2**p",
                           validator=_N_FILTERS)
    pools: int = param(4, help="depth (the original was fixed at 4); H, W divisible by 2**pools",
                       validator=_UNET_POOLS)
    kernel_size: int = param(3, help="side of the square convolution kernels (the original fixed 3)",
                             validator=positive())
    dropout: float = param(0.0, help="base dropout rate d of the schedule (0 disables dropout)",
                           validator=_RATE)
    batch_norm: bool = param(False, help="batch normalization after every convolution")
    bn_momentum: float = _bn_momentum()
    activation: str = param("relu", help="Keras activation of the convolutions")
    kernel_initializer: str = param("he_normal", help="Keras initializer of the convolution kernels")
    tips: bool = param(False, help=_TIPS_HELP)


@attrs.frozen
class TransposeUNetParams:
    """The original's ``categorical_unet_transpose``: MaxPool down, 2x2 transposed conv up,
    dropout d*(p+1) at level p."""

    n_filters: int = param(16, help="filters of the first level; level p has n_filters*2**p",
                           validator=_N_FILTERS)
    pools: int = param(4, help="number of downsamplings; H, W must be divisible by 2**pools",
                       validator=_UNET_POOLS)
    kernel_size: int = param(3, help="side of the square convolution kernels", validator=positive())
    dropout: float = param(0.0, help="base dropout rate d; level p uses d*(p+1), capped at 0.5",
                           validator=_RATE)
    batch_norm: bool = param(False, help="batch normalization after every convolution")
    bn_momentum: float = _bn_momentum()
    activation: str = param("relu", help="Keras activation of the convolutions")
    kernel_initializer: str = param("he_uniform", help="Keras initializer of the convolution kernels")
    tips: bool = param(False, help=_TIPS_HELP)


@attrs.frozen
class FCUNetParams(TransposeUNetParams):
    """The original's ``categorical_unet_fc``: like the transpose U-Net but downsampling by a
    strided convolution ("fully convolutional")."""


@attrs.frozen
class FCDilUNetParams(TransposeUNetParams):
    """The original's ``categorical_unet_fc_dil``: strided-conv U-Net whose encoder blocks are
    dilated (first conv dilation d, second 2d) after an initial plain convolution."""

    dilation_rate: int = param(2, help="dilation d of the encoder blocks (second conv uses 2d)",
                               validator=positive())


@attrs.frozen
class MobileUNetParams:
    """MobileNetV2 encoder + MobileUNet depthwise-separable decoder (``mobilenet_mobileunet``)."""

    n_filters: int = param(32, help="decoder filters at full resolution; up block i has n_filters*2**i",
                           validator=_N_FILTERS)
    pools: int = param(5, help="number of encoder taps (1-5); H, W must be divisible by 2**pools",
                       validator=in_range(1, MOBILENET_MAX_POOLS))
    alpha: float = param(0.35, help="MobileNetV2 width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)",
                         validator=one_of(*MOBILENET_ALPHAS))
    encoder_weights: str | None = param(
        None,
        help="null (random init), 'imagenet' (downloaded by Keras, needs internet) or the path "
        "of a local weights file (Keras ImageNet .h5, or a .weights.h5 of the encoder)",
    )
    train_decoder_only: bool = param(
        False, help="freeze the encoder (its BatchNorm layers then run in inference mode)"
    )
    bn_momentum: float = _bn_momentum()
    encoder_bn_momentum: float | None = param(
        None,
        help="momentum of the encoder's BatchNorm; null: bn_momentum for a randomly "
        "initialised encoder, Keras' 0.999 for a pretrained one (its statistics are kept)",
        validator=_MOMENTUM,
    )
    dilation_rate: int = param(1, help="dilation rate of the decoder separable convolutions",
                               validator=positive())
    dropout: float = param(0.0, help="dropout after each up-block convolution (0 disables)",
                           validator=_RATE)
    activation: str = param("relu", help="Keras activation of the decoder")
    kernel_initializer: str = param("glorot_uniform", help="Keras initializer of the decoder kernels")
    tips: bool = param(False, help=_TIPS_HELP)


@attrs.frozen
class MobileUNetLSTMParams(MobileUNetParams):
    """``mobilenet_mobileunet``'s features per frame (TimeDistributed), a ConvLSTM2D over the
    window and a 1x1 head: the prediction for the last frame (``mobilenet_mobileunet_lstm``)."""

    time_windows: int = param(5, help="number of frames T in a window (the last one is predicted)",
                              validator=positive())
    recurrent_activation: str = param(
        "sigmoid",
        help="ConvLSTM gate activation (the original ran TF 2.2's hard_sigmoid, 0.2x+0.5)",
    )


@attrs.frozen
class UNetLSTMParams:
    """U-Net with ConvLSTM units in the contracting path (``unet_lstm``)."""

    n_filters: int = param(16, help="filters of the first level; level p has n_filters*2**p",
                           validator=_N_FILTERS)
    pools: int = param(3, help="number of (1,2,2) downsamplings; H, W divisible by 2**pools",
                       validator=_UNET_POOLS)
    kernel_size: int = param(3, help="side of the square convolution kernels", validator=positive())
    dropout: float = param(0.0, help="dropout rate; encoder level p uses dropout*p, decoder dropout",
                           validator=_RATE)
    activation: str = param("relu", help="Keras activation")
    kernel_initializer: str = param("he_normal", help="Keras initializer of the convolution kernels")
    time_windows: int = param(5, help="number of frames T in a window", validator=positive())
    time_reduction: Literal["mean", "last"] = param(
        "mean",
        help="how the time axis is collapsed before the head: 'mean' (the original's "
        "AveragePooling3D over the window) or 'last' (the last frame's features)",
    )
    recurrent_activation: str = param("sigmoid", help="ConvLSTM gate activation")
