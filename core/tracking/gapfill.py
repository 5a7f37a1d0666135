"""Temporal Gaussian gap filling: mask video -> per-frame instances for tracking.

As the original suite prepared videos for TrackMate: the 0/1 mask video is smoothed
by the mean of two 2D Gaussian filters of width ``sigma``, one over (time, row) and one over
(time, column), so a cell missing for a few frames is bridged by its neighbours in time (with a
small spatial halo). Unlike the original the smoothing is kept in float (it truncated to uint8,
which silently acted as a threshold of one grey level, 1/255): here the threshold is explicit
and its default ``1/255`` keeps the original's reach. Each frame's foreground is then split into
8-connected components; components below ``min_size`` pixels are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from dlsuite.errors import DataError

from .labels import as_label_video, check_video

__all__ = ["gap_fill", "gap_fill_problem", "smooth_mask_video"]


def smooth_mask_video(mask_video, sigma: float = 2.0) -> np.ndarray:
    """Float32 ``(T, H, W)`` in [0, 1]: mean of the (t, y) and (t, x) Gaussian smoothings of
    the foreground (non-zero) of ``mask_video``."""
    mask = (check_video(mask_video, "mask video", integer=False) != 0).astype(np.float32)
    along_rows = ndi.gaussian_filter(mask, sigma=(sigma, sigma, 0))
    along_cols = ndi.gaussian_filter(mask, sigma=(sigma, 0, sigma))
    return 0.5 * (along_rows + along_cols)


def gap_fill_problem(sigma: float, min_size: int) -> str | None:
    """Why these options of :func:`gap_fill` are refused, or None (NaN is refused too)."""
    if not 0 <= sigma < float("inf") or not min_size >= 0:
        return (f"gap_fill: sigma must be finite and >= 0 and min_size >= 0 (got {sigma}, "
                f"{min_size})")
    return None


def gap_fill(mask_video, sigma: float = 2.0, threshold: float = 1 / 255,
             min_size: int = 100) -> np.ndarray:
    """Per-frame instance labels ``(T, H, W)`` (uint16, uint32 above 65535 objects) of the
    gap-filled foreground of ``mask_video`` (any dtype; non-zero is foreground).

    Foreground is ``smooth > threshold`` (see the module docstring), always including the input
    foreground; labels are 8-connected components numbered per frame from 1, components with
    fewer than ``min_size`` pixels removed. Labels are not linked across frames (see
    :func:`dlsuite.tracking.track`).
    """
    problem = gap_fill_problem(sigma, min_size)
    if problem is not None:
        raise DataError(problem)
    video = check_video(mask_video, "mask video", integer=False)
    filled = (smooth_mask_video(video, sigma) > threshold) | (video != 0)
    out = np.zeros(video.shape, dtype=np.uint32)
    structure = np.ones((3, 3), bool)
    for t, frame in enumerate(filled):
        comps, n = ndi.label(frame, structure=structure)
        if n and min_size > 1:
            sizes = np.bincount(comps.ravel())
            keep = sizes >= min_size
            keep[0] = False
            new_ids = np.zeros(n + 1, np.uint32)
            new_ids[keep] = np.arange(1, keep.sum() + 1, dtype=np.uint32)
            comps = new_ids[comps]
        out[t] = comps
    return as_label_video(out)
