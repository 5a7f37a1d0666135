"""Normalizer factories: ``factory(params) -> callable(array) -> float32 array``.

The returned callable accepts a 2D image ``(H, W)`` or a video ``(T, H, W)`` of any integer or
float dtype and returns float32 of the same shape. ``per="video"`` computes the statistics over
the whole array (a 2D image is a one-frame video); ``per="image"`` computes them per frame
(over the last two axes). The same callable is used at training and inference time
(``dlsuite.data.pipeline.make_normalizer``).

* ``percentile``: ``(x - P_low) / (P_high - P_low)``, clipped to [0, 1] when ``clip``; a
  constant image (``P_high == P_low``) maps to 0.
* ``mean`` / ``median``: first bring values to [0, 1] — ``scale="dtype"`` divides unsigned
  integer images by their dtype maximum and maps signed integers' full range to [0, 1] (the
  original divided *everything* but uint16 by 255, which broke int16/float images); float
  images have no intrinsic range and always use min/max; ``scale="minmax"`` uses the data's
  min/max — then add ``0.5 - mean`` (``median``) so the statistic becomes 0.5, and clip to
  [0, 1] when ``clip``.
* ``none``: float32 cast only.

``illumination_sigma`` (all normalizers): before anything else each frame becomes
``x - gaussian(x, sigma) + mean(x)`` (uneven-illumination correction).

NaN-safe: NaN/Inf pixels are left out of every statistic (percentiles, mean, median, min/max,
the illumination blur) and are 0 in the result, so one bad pixel cannot turn a whole image
into NaN. (``dlsuite run`` refuses such images unless ``data.nonfinite_pixels`` is
``"mask"``.) An image without any finite pixel becomes all 0.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
from scipy import ndimage

from dlsuite import DlsuiteInputError

__all__ = ["build_percentile", "build_mean", "build_median", "build_none",
           "correct_illumination", "scale_unit"]

_TINY = 1e-12


@contextmanager
def _quiet_nan() -> Iterator[None]:
    """NumPy's "All-NaN slice" / "Mean of empty slice" warnings: such frames become 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _check_per(name: str, per: str) -> None:
    if per not in ("image", "video"):
        raise DlsuiteInputError(f"normalizer {name!r}: per must be 'image' or 'video', got {per!r}")


def _axes(x: np.ndarray, per: str) -> tuple[int, ...] | None:
    """Axes the statistics run over: all of them (video) or the last two (image)."""
    return None if per == "video" or x.ndim < 3 else (-2, -1)


def _finite_or_nan(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` as float32 with Inf turned into NaN, and the mask of those pixels (None when
    every pixel is finite: the fast path without NaN-aware statistics)."""
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if not bad.any():
        return x, None
    x = x.copy()
    x[bad] = np.nan
    return x, bad


def _zero_bad(out: np.ndarray, bad: np.ndarray | None) -> np.ndarray:
    if bad is not None:
        out[bad] = 0.0
        out[~np.isfinite(out)] = 0.0  # statistics of frames without any finite pixel
    return out


def correct_illumination(x: np.ndarray, sigma: float | None) -> np.ndarray:
    """Subtract a per-frame Gaussian blur of ``sigma`` pixels and add back the frame mean.

    Returns float32; ``sigma=None`` (or 0) only casts. NaN/Inf pixels stay NaN and do not
    spread: the blur and the mean see them as the frame's mean of finite pixels.
    """
    x, bad = _finite_or_nan(x)
    if not sigma:
        return x
    frames = x.reshape((-1,) + x.shape[-2:])
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        nan = np.isnan(frame) if bad is not None else None
        if nan is not None and nan.any():
            mean = float(np.nanmean(frame)) if not nan.all() else 0.0
            filled = np.where(nan, mean, frame)
            out[i] = filled - ndimage.gaussian_filter(filled, sigma, mode="reflect") + mean
            out[i][nan] = np.nan
        else:
            out[i] = frame - ndimage.gaussian_filter(frame, sigma, mode="reflect") + frame.mean()
    return out.reshape(x.shape)


def scale_unit(x: np.ndarray, dtype: np.dtype, scale: str, per: str) -> np.ndarray:
    """Bring ``x`` (float values of an image of ``dtype``) to [0, 1] by the dtype range
    (integer dtypes with ``scale="dtype"``) or by min/max (floats, or ``scale="minmax"``)."""
    dtype = np.dtype(dtype)
    if scale == "dtype" and dtype.kind in "ui":
        info = np.iinfo(dtype)
        return ((x - float(info.min)) / float(info.max - info.min)).astype(np.float32)
    if scale == "dtype" and dtype.kind == "b":
        return x.astype(np.float32)
    axes = _axes(x, per)
    lo_fn, hi_fn = (np.nanmin, np.nanmax) if np.isnan(x).any() else (np.min, np.max)
    with np.errstate(invalid="ignore"), _quiet_nan():
        lo = lo_fn(x, axis=axes, keepdims=True)
        hi = hi_fn(x, axis=axes, keepdims=True)
    return ((x - lo) / np.maximum(hi - lo, _TINY)).astype(np.float32)


def build_percentile(params) -> Callable[[np.ndarray], np.ndarray]:
    """Percentile normalization (see module docstring)."""
    _check_per("percentile", params.per)
    if not 0 <= params.low < params.high <= 100:
        raise DlsuiteInputError(
            f"normalizer 'percentile': need 0 <= low < high <= 100, got low={params.low}, "
            f"high={params.high}")

    def normalize(array: np.ndarray) -> np.ndarray:
        x, bad = _finite_or_nan(array)
        x = correct_illumination(x, params.illumination_sigma)
        axes = _axes(x, params.per)
        percentile = np.percentile if bad is None else np.nanpercentile
        with _quiet_nan():
            lo, hi = percentile(x, [params.low, params.high], axis=axes, keepdims=True)
        out = (x - lo) / np.maximum(hi - lo, _TINY)
        if params.clip:
            np.clip(out, 0.0, 1.0, out=out)
        return _zero_bad(out.astype(np.float32, copy=False), bad)

    return normalize


def _build_centre(name: str, stat: Callable, params) -> Callable[[np.ndarray], np.ndarray]:
    _check_per(name, params.per)
    if params.scale not in ("dtype", "minmax"):
        raise DlsuiteInputError(f"normalizer {name!r}: scale must be 'dtype' or 'minmax', "
                                f"got {params.scale!r}")

    nan_stat = {np.mean: np.nanmean, np.median: np.nanmedian}[stat]

    def normalize(array: np.ndarray) -> np.ndarray:
        array = np.asarray(array)
        x, bad = _finite_or_nan(array)
        x = correct_illumination(x, params.illumination_sigma)
        x = scale_unit(x, array.dtype, params.scale, params.per)
        with _quiet_nan():
            centre = (stat if bad is None else nan_stat)(x, axis=_axes(x, params.per),
                                                          keepdims=True)
        x = x + (0.5 - centre)
        if params.clip:
            np.clip(x, 0.0, 1.0, out=x)
        return _zero_bad(x.astype(np.float32, copy=False), bad)

    return normalize


def build_mean(params) -> Callable[[np.ndarray], np.ndarray]:
    """Mean-centring normalization: mean becomes 0.5 (see module docstring)."""
    return _build_centre("mean", np.mean, params)


def build_median(params) -> Callable[[np.ndarray], np.ndarray]:
    """Median-centring normalization: median becomes 0.5 (see module docstring)."""
    return _build_centre("median", np.median, params)


def build_none(params) -> Callable[[np.ndarray], np.ndarray]:
    """No normalization: float32 cast (after optional illumination correction)."""

    def normalize(array: np.ndarray) -> np.ndarray:
        x, bad = _finite_or_nan(array)
        return _zero_bad(correct_illumination(x, params.illumination_sigma), bad)

    return normalize
