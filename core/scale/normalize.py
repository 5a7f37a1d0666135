"""Normalization of an image too large for memory: statistics over the whole image first (one
streaming pass over its blocks), then the same pixel-wise formula on every block.

The run's normalizer (a plugin callable) computes its statistics on the array it is given, so
applied block by block it would normalize every block differently. For the built-in
normalizers ``percentile`` and ``none`` the statistics are computed here over the whole image
(per frame with ``per: image``) and applied with the formula of
:mod:`dlsuite_plugins.datagen.normalizers`: integer images give the exact percentiles
(a histogram of every pixel, ``numpy.percentile``'s linear interpolation); float images
whose pixels exceed :data:`FLOAT_EXACT_PIXELS` use a regular subsample (a note says so).
Other normalizers, and ``illumination_sigma``, are refused with a clear message.
"""

from __future__ import annotations

from typing import Callable, Iterable

import attrs
import numpy as np

from ..errors import DlsuiteInputError

__all__ = ["GlobalNormalizer", "global_normalizer", "FLOAT_EXACT_PIXELS"]

#: Float images up to this many pixels (per statistic) get exact percentiles.
FLOAT_EXACT_PIXELS = 1 << 26
_TINY = 1e-12


def _percentile_from_counts(counts: np.ndarray, base: int, qs) -> np.ndarray:
    """``numpy.percentile(x, qs)`` (linear) of the integers whose histogram ``counts`` starts
    at value ``base``."""
    cum = np.cumsum(counts)
    n = int(cum[-1])
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        v_lo = base + int(np.searchsorted(cum, lo, side="right"))
        v_hi = base + int(np.searchsorted(cum, hi, side="right"))
        out.append(v_lo + (pos - lo) * (v_hi - v_lo))
    return np.asarray(out, dtype=np.float64)


@attrs.frozen
class GlobalNormalizer:
    """``(x - low) / max(high - low, tiny)`` (clipped to [0, 1] when ``clip``) with ``low``
    and ``high`` per frame (``(T,)``; one frame for a 2D image); ``low=None``: cast only."""

    low: tuple | None
    high: tuple | None
    clip: bool = False

    def __call__(self, block: np.ndarray, frame: int = 0) -> np.ndarray:
        """Normalize ``block`` (pixels of frame ``frame``) as the whole image would be."""
        x = np.asarray(block, dtype=np.float32)
        if self.low is None:
            return x
        lo = np.float32(self.low[frame])
        hi = np.float32(self.high[frame])
        out = (x - lo) / np.maximum(hi - lo, np.float32(_TINY))
        if self.clip:
            np.clip(out, 0.0, 1.0, out=out)
        return out.astype(np.float32, copy=False)


def _stats(blocks: Iterable[np.ndarray], dtype: np.dtype, pixels: int, qs,
           notes: list) -> tuple[float, float]:
    """Percentiles ``qs`` over all pixels of ``blocks`` (one streaming pass)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "uib":
        if dtype.kind == "b" or dtype.itemsize == 1:
            base, size = (0, 256) if dtype.kind != "i" else (-128, 256)
        elif dtype.itemsize == 2:
            base, size = (0, 65536) if dtype.kind == "u" else (-32768, 65536)
        else:
            base = size = None
        if base is not None:
            counts = np.zeros(size, dtype=np.int64)
            for block in blocks:
                counts += np.bincount((np.asarray(block, dtype=np.int64) - base).ravel(),
                                      minlength=size)
            return tuple(_percentile_from_counts(counts, base, qs))
    step = max(1, int(np.ceil(np.sqrt(pixels / FLOAT_EXACT_PIXELS))))
    if step > 1:
        notes.append(f"normalization percentiles estimated from every {step}th pixel in each "
                     f"direction ({pixels} pixels of {dtype} are too many to sort)")
    values = np.concatenate([np.asarray(b, dtype=np.float32)[::step, ::step].ravel()
                             for b in blocks])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 0.0)
    return tuple(np.percentile(values, qs))


def global_normalizer(name: str, params, frames: int, frame_blocks: Callable[[int | None], Iterable],
                      dtype, pixels_per_frame: int, notes: list) -> GlobalNormalizer:
    """The :class:`GlobalNormalizer` of the run's normalizer ``name`` with its ``params``
    for an image of ``frames`` frames; ``frame_blocks(t)`` yields the
    blocks of frame ``t`` (``None``: of every frame). DlsuiteInputError naming the normalizer
    when it cannot be applied block by block."""
    if getattr(params, "illumination_sigma", None):
        raise DlsuiteInputError(f"datagen.normalization.illumination_sigma: not supported for "
                                f"block-wise prediction (normalizer {name!r}); predict whole "
                                "images instead")
    if name == "none":
        return GlobalNormalizer(None, None)
    if name != "percentile":
        raise DlsuiteInputError(f"datagen.normalization {name!r}: block-wise prediction of "
                                "images larger than memory supports the percentile and none "
                                "normalizers")
    qs = (params.low, params.high)
    if params.per == "image":
        pairs = [_stats(frame_blocks(t), dtype, pixels_per_frame, qs, notes)
                 for t in range(frames)]
    else:
        pairs = [_stats(frame_blocks(None), dtype, pixels_per_frame * frames, qs, notes)] * frames
    return GlobalNormalizer(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs),
                            bool(params.clip))
