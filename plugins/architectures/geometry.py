"""Size multiples and receptive fields of the built-in architectures (TF-free).

``size_multiple(params)`` is the number input H and W must be divisible by.
``receptive_field(params)`` is the *theoretical*, centred receptive field in input pixels of
one output pixel (one axis): ``2 r + 1`` where ``r`` bounds how far, on either side, an input
pixel that influences it can be, over every pixel alignment. It is computed by walking the
model's chain of spatial operations backwards (the deepest path through encoder, bottleneck and
decoder; skip connections only shorten paths) with TF's 'same' padding, so a halo of ``r``
pixels makes tiled prediction exact (tests compare it with the measured gradient support). The *effective* receptive field
is smaller, so ``inference.halo = "auto"`` may use a fraction of it. For ConvLSTM models a
path crosses at most ``time_windows - 1`` recurrent kernels (one per step back in time).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Iterable

__all__ = [
    "walk_receptive_field",
    "pools_multiple",
    "unet_receptive_field",
    "categorical_unet_receptive_field",
    "transpose_unet_receptive_field",
    "fc_unet_receptive_field",
    "fc_dil_unet_receptive_field",
    "mobileunet_receptive_field",
    "mobileunet_lstm_receptive_field",
    "unet_lstm_receptive_field",
    "MOBILENET_MAX_POOLS",
    "UNET_MAX_POOLS",
]

MOBILENET_MAX_POOLS = 5
#: Deepest U-Net the builders make (level p has n_filters * 2**p channels).
UNET_MAX_POOLS = 8

# An op is ("conv", kernel, dilation, stride[, repeat]) | ("up", factor) | ("pool", size).
Op = tuple


def walk_receptive_field(ops: Iterable[Op]) -> int:
    """Centred receptive field (pixels, one axis) of one output pixel of a chain of ops:
    ``2 r + 1`` where ``r`` is the largest distance, on either side, from an output pixel to
    an input pixel it depends on, over every alignment of the output pixel.

    Keras' conventions, walking the chain backwards with the interval ``[a, b]`` of feature
    pixels an output pixel ``p`` depends on: ``("conv", k, d, s)`` with padding 'same' (TF
    pads ``max(k_eff - s, 0)`` in all, the smaller half before, so strided convs see more on
    the bottom/right) maps it to ``[a s - before, b s - before + k_eff - 1]``; ``("pool", s)``
    to ``[a s, b s + s - 1]``; ``("up", f)`` (nearest, or 2x2 stride-2 transposed) to
    ``[a // f, b // f]``. A conv op may carry a fifth item, a repeat count.

    Computed in closed form, O(len(ops)) whatever the depth (no walk over the ``2**(2 pools)``
    alignments): in units of the current feature map, the lower deficit ``e = x - a`` (``x``
    the exact position of ``p`` there) becomes ``s e + before`` through a conv, ``s e``
    through a pool, and ``(e + (a mod f)) / f`` through an up op; the upper excess ``g = b -
    x`` becomes ``s g + k_eff - 1 - before``, ``s g + s - 1`` and ``(g - (b mod f)) / f``.
    Every map grows with its argument, so the worst alignment takes ``a mod f = f - 1`` and
    ``b mod f = 0`` at every up op. When the chain downsamples before it upsamples (every
    encoder-decoder: walking back, all up ops come before any stride), each such choice is
    realised by some ``p`` and the result is exact; otherwise it is an upper bound (a halo of
    that size is still exact for tiling).
    """
    lo = Fraction(0)  # max over alignments of x - a
    hi = Fraction(0)  # max over alignments of b - x
    for op in reversed(list(ops)):
        kind = op[0]
        if kind == "conv":
            _, k, d, s = op[:4]
            n = int(op[4]) if len(op) > 4 else 1
            k_eff = (int(k) - 1) * int(d) + 1
            before = max(k_eff - int(s), 0) // 2
            after = k_eff - 1 - before
            if s == 1:  # n repeats in O(1)
                lo, hi = lo + n * before, hi + n * after
            else:
                for _ in range(n):
                    lo, hi = s * lo + before, s * hi + after
        elif kind == "pool":
            f = int(op[1])
            lo, hi = f * lo, f * hi + f - 1
        elif kind == "up":
            f = int(op[1])
            lo, hi = (lo + f - 1) / f, hi / f
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown receptive-field op {op!r}")
    radius = max(0, math.ceil(lo), math.ceil(hi))
    return int(2 * radius + 1)


def pools_multiple(params: Any) -> int:
    """``2**params.pools``: every built-in model downsamples by 2 ``pools`` times."""
    return 2 ** int(params.pools)


def _conv(k: int, d: int = 1, s: int = 1) -> Op:
    return ("conv", int(k), int(d), int(s))


def _unet_ops(pools: int, k: int, d_enc: tuple[int, ...], d_dec: int, down: str,
              first_conv: bool = False) -> list[Op]:
    ops: list[Op] = []
    if first_conv:
        ops.append(_conv(k))
    for _ in range(pools):
        ops += [_conv(k, d) for d in d_enc]
        ops.append(("pool", 2) if down == "maxpool" else _conv(k, 1, 2))
    ops += [_conv(k, d_dec), _conv(k, d_dec)]  # bottleneck
    for _ in range(pools):
        ops += [("up", 2), _conv(k, d_dec), _conv(k, d_dec)]
    return ops


def unet_receptive_field(params: Any) -> int:
    """Receptive field of ``unet`` (dilation applies to every block convolution)."""
    d = int(params.dilation_rate)
    return walk_receptive_field(_unet_ops(params.pools, params.kernel_size, (d, d), d, "maxpool"))


def categorical_unet_receptive_field(params: Any) -> int:
    """Receptive field of ``categorical_unet``."""
    return walk_receptive_field(_unet_ops(params.pools, params.kernel_size, (1, 1), 1, "maxpool"))


def transpose_unet_receptive_field(params: Any) -> int:
    """Receptive field of ``categorical_unet_transpose``."""
    return walk_receptive_field(_unet_ops(params.pools, params.kernel_size, (1, 1), 1, "maxpool"))


def fc_unet_receptive_field(params: Any) -> int:
    """Receptive field of ``categorical_unet_fc`` (strided-conv downsampling)."""
    return walk_receptive_field(_unet_ops(params.pools, params.kernel_size, (1, 1), 1, "strided"))


def fc_dil_unet_receptive_field(params: Any) -> int:
    """Receptive field of ``categorical_unet_fc_dil`` (dilations d, 2d in the encoder)."""
    d = int(params.dilation_rate)
    return walk_receptive_field(
        _unet_ops(params.pools, params.kernel_size, (d, 2 * d), 1, "strided", first_conv=True)
    )


# MobileNetV2 (Keras applications) spatial chain up to each tap used as an encoder output:
# Conv1 3x3/2, then one 3x3 depthwise conv per inverted-residual block (1x1 convs add nothing).
# A tap "block_k_expand_relu" sits before block k's depthwise conv.
_MOBILENET_TAP_OPS: list[list[Op]] = [
    [_conv(3, 1, 2), _conv(3)],                       # block_1_expand_relu, stride 2
    [_conv(3, 1, 2), _conv(3)],                       # block_3_expand_relu, stride 4
    [_conv(3, 1, 2), _conv(3), _conv(3)],             # block_6_expand_relu, stride 8
    [_conv(3, 1, 2)] + [_conv(3)] * 6,                # block_13_expand_relu, stride 16
    [_conv(3, 1, 2)] + [_conv(3)] * 3,                # block_16_project, stride 32
]


def _mobileunet_ops(params: Any) -> list[Op]:
    pools = int(params.pools)
    d = int(params.dilation_rate)
    ops: list[Op] = []
    for tap in _MOBILENET_TAP_OPS[:pools]:
        ops += tap
    for _ in range(pools - 1):  # up blocks: two separable 3x3 convs then x2 upsampling
        ops += [_conv(3, d), _conv(3, d), ("up", 2)]
    ops += [("up", 2), _conv(3, d), _conv(3, d)]  # last upsampling + two full-res blocks
    return ops


def mobileunet_receptive_field(params: Any) -> int:
    """Receptive field of ``mobilenet_mobileunet``."""
    return walk_receptive_field(_mobileunet_ops(params))


def mobileunet_lstm_receptive_field(params: Any) -> int:
    """Receptive field of ``mobilenet_mobileunet_lstm``: the per-frame network followed by a
    3x3 ConvLSTM whose (input + recurrent) kernels act ``time_windows`` times."""
    d = int(params.dilation_rate)
    ops = _mobileunet_ops(params) + [("conv", 3, d, 1, int(params.time_windows))]
    return walk_receptive_field(ops)


def unet_lstm_receptive_field(params: Any) -> int:
    """Receptive field of ``unet_lstm``: per level a ConvLSTM input kernel and a (1,k,k)
    Conv3D, plus ``time_windows - 1`` recurrent kernels at the bottleneck; decoder two (1,k,k)
    convs per level."""
    k, t, pools = int(params.kernel_size), int(params.time_windows), int(params.pools)
    ops: list[Op] = []
    for _ in range(pools):
        ops += [_conv(k), _conv(k), ("pool", 2)]  # ConvLSTM input kernel, Conv3D
    # A path crosses at most T-1 recurrent kernels in all (one per step back in time); the
    # widest case puts them all at the coarsest level.
    ops += [("conv", k, 1, 1, t), _conv(k)]
    for _ in range(pools):
        ops += [("up", 2), _conv(k), _conv(k)]
    return walk_receptive_field(ops)
