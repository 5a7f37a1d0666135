"""Label-image helpers shared by the tracking modules."""

from __future__ import annotations

import numpy as np

from dlsuite.errors import DataError

__all__ = ["label_dtype", "as_label_video", "check_video"]


def label_dtype(max_label: int) -> np.dtype:
    """Narrowest unsigned dtype holding ``max_label``: uint16 up to 65535, else uint32."""
    if max_label <= np.iinfo(np.uint16).max:
        return np.dtype(np.uint16)
    if max_label <= np.iinfo(np.uint32).max:
        return np.dtype(np.uint32)
    return np.dtype(np.uint64)


def as_label_video(labels: np.ndarray) -> np.ndarray:
    """``labels`` (any shape) cast to :func:`label_dtype` of its maximum (values never wrap)."""
    top = int(labels.max()) if labels.size else 0
    return labels.astype(label_dtype(top), copy=False)


def check_video(video, what: str = "label video", integer: bool = True) -> np.ndarray:
    """``video`` as an array ``(T, H, W)``; raises DataError naming ``what`` otherwise (also for
    negative or non-integer labels when ``integer``)."""
    video = np.asarray(video)
    if video.ndim != 3:
        raise DataError(f"{what}: expected a (T, H, W) video, got shape {video.shape}")
    if integer:
        if not (np.issubdtype(video.dtype, np.integer) or video.dtype == np.bool_):
            raise DataError(f"{what}: expected integer labels, got {video.dtype}")
        if video.size and video.min() < 0:
            raise DataError(f"{what}: labels must be non-negative")
    return video
