"""Resizing by ``data.scale``: images and labels on the way into the model, predictions back.

A run with ``data.scale`` s sees every frame resized by s (bilinear, anti-aliased when
shrinking; instance labels by the label covering most of each pixel, so ids stay exact and
objects stay centred on their image) in training and validation, and at prediction; the
model's outputs are resized back (bilinear) to each frame's own size before
post-processing, so labels, metrics and files keep the original pixel grid. Scale 1 returns
its input unchanged (no copy).
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
    """Integer labels ``(..., H, W)`` resized by ``scale`` (ids and dtype kept; an object
    smaller than a resized pixel may vanish), aligned with :func:`resize_frames`.

    Shrinking: each output pixel takes the label covering most of its footprint (``k x k``
    samples, ``k = ceil(1 / scale)``, at most 8); a tie (an edge through the footprint) goes
    one way or the other in a checkerboard of output pixels. So an object stays centred on
    its image, which is resized centre to centre: taking one fixed sample of each footprint
    (nearest neighbour at scale 0.5 takes its bottom-right pixel) moves every object by half
    a source pixel against the image, and a model trained on such labels predicts objects
    shifted by as much. Enlarging: nearest neighbour of each output pixel's centre.
    """
    labels = np.asarray(labels)
    if scale == 1:
        return labels
    h, w = scaled_size(*labels.shape[-2:], scale)
    H, W = labels.shape[-2:]
    k = 1 if h >= H and w >= W else min(8, int(np.ceil(max(H / h, W / w) - 1e-9)))
    offsets = (np.arange(k) + 0.5) / k  # sample positions inside each output pixel
    ys = np.minimum(((np.arange(h)[:, None] + offsets) * H / h).astype(np.intp), H - 1)
    xs = np.minimum(((np.arange(w)[:, None] + offsets) * W / w).astype(np.intp), W - 1)
    flat = labels.reshape((-1, H, W))
    n = k * k  # k = 1: nearest neighbour, the source pixel holding each output pixel's centre
    # preference among equally frequent samples: first one on even, last one on odd pixels
    odd = (np.add.outer(np.arange(h), np.arange(w)) % 2).astype(bool)[..., None]
    order = np.where(odd, np.arange(n), n - 1 - np.arange(n))
    out = np.empty((flat.shape[0], h, w), labels.dtype)
    for f, frame in enumerate(flat):  # one frame at a time: (h, w, n, n) comparisons
        samples = frame[ys[:, None, :, None], xs[None, :, None, :]].reshape(h, w, n)
        counts = (samples[..., :, None] == samples[..., None, :]).sum(-1)
        pick = np.argmax(counts * n + order, axis=-1)
        out[f] = np.take_along_axis(samples, pick[..., None], -1)[..., 0]
    return out.reshape(labels.shape[:-2] + (h, w))


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
