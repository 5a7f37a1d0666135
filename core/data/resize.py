"""Resizing by ``data.scale``: images and labels on the way into the model, predictions back.

A run with ``data.scale`` s sees every frame resized by s (bilinear, anti-aliased when
shrinking; instance labels by nearest neighbour so ids stay exact) in training and
validation, and at prediction; the model's outputs are resized back (bilinear) to each
frame's own size before post-processing, so labels, metrics and files keep the original
pixel grid. Scale 1 returns its input unchanged (no copy).
"""

from __future__ import annotations

import numpy as np


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(round(height * scale), round(width * scale))``, each at least 1."""
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def resize_frames(video: np.ndarray, scale: float) -> np.ndarray:
    """Float frames ``(..., H, W)`` resized by ``scale`` in y and x (bilinear; anti-aliased
    when shrinking), float32."""
    video = np.asarray(video)
    if scale == 1:
        return video
    from skimage.transform import resize

    h, w = scaled_size(*video.shape[-2:], scale)
    flat = video.reshape((-1,) + video.shape[-2:]).astype(np.float32, copy=False)
    out = np.stack([resize(f, (h, w), order=1, anti_aliasing=scale < 1, preserve_range=True)
                    for f in flat]).astype(np.float32, copy=False)
    return out.reshape(video.shape[:-2] + (h, w))


def resize_labels(labels: np.ndarray, scale: float) -> np.ndarray:
    """Integer labels ``(..., H, W)`` resized by ``scale`` by nearest neighbour (ids and
    dtype kept; an object smaller than a resized pixel may vanish)."""
    labels = np.asarray(labels)
    if scale == 1:
        return labels
    h, w = scaled_size(*labels.shape[-2:], scale)
    H, W = labels.shape[-2:]
    # nearest neighbour by index: the source pixel holding each output pixel's centre
    ys = np.minimum(((np.arange(h) + 0.5) * H / h).astype(np.intp), H - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * W / w).astype(np.intp), W - 1)
    return labels[..., ys[:, None], xs[None, :]]


def resize_outputs_back(probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Model outputs ``(..., h, w, C)`` resized (bilinear, float32) to ``size`` = ``(H, W)``;
    unchanged when already that size."""
    probs = np.asarray(probs)
    if tuple(probs.shape[-3:-1]) == tuple(size):
        return probs
    from skimage.transform import resize

    lead = probs.shape[:-3]
    flat = probs.reshape((-1,) + probs.shape[-3:])
    out = np.stack([resize(p, tuple(size) + (p.shape[-1],), order=1, anti_aliasing=False,
                           preserve_range=True) for p in flat]).astype(np.float32, copy=False)
    return out.reshape(lead + tuple(size) + (probs.shape[-1],))
