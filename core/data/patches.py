"""Cutting patches: the array helpers (:func:`cut` with reflection, the tile grid) and
:class:`PatchMaker`, one ``(x, y)`` example from a prepared sample (window, augmentation,
target, centre crop).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlsuite.data.datagen_plugins import DatagenPlugins
from dlsuite.data.patch_source import Prepared
from dlsuite.data.windows import window_indices
from dlsuite.errors import DataError

#: Pixels of label context around a patch used when computing its target (contours need 1,
#: the weight map's separation term ~4 sigma = 20 at the default sigma 5).
TARGET_CONTEXT = 24

def cut(array: np.ndarray, top: int, left: int, height: int, width: int,
        frames: list[int] | None = None) -> np.ndarray:
    """``array[..., top:top+height, left:left+width]`` (the last two axes are spatial), with
    regions outside the array filled by symmetric reflection (scipy's ``reflect``). With
    ``frames``, only those indices of the first axis are taken (in that order). Copies only the
    selected pixels."""
    H, W = array.shape[-2:]
    y0, y1 = max(top, 0), min(top + height, H)
    x0, x1 = max(left, 0), min(left + width, W)
    part = array[frames, y0:y1, x0:x1] if frames is not None else array[..., y0:y1, x0:x1]
    pads = [(y0 - top, top + height - y1), (x0 - left, left + width - x1)]
    if any(p for pair in pads for p in pair):
        part = np.pad(part, [(0, 0)] * (part.ndim - 2) + pads, mode="symmetric")
    return part


def _centre_crop(array: np.ndarray, size: tuple[int, int], spatial: int) -> np.ndarray:
    """Central ``size`` of the two spatial axes starting at ``spatial`` (0 or -2)."""
    axes = (spatial, spatial + 1) if spatial >= 0 else (array.ndim - 2, array.ndim - 1)
    index = [slice(None)] * array.ndim
    for axis, n in zip(axes, size):
        start = (array.shape[axis] - n) // 2
        index[axis] = slice(start, start + n)
    return array[tuple(index)]


def grid_positions(length: int, patch: int) -> list[int]:
    """Start positions of tiles of ``patch`` covering ``0..length`` (last tile flush with the
    end; tiles overlap only there)."""
    starts = list(range(0, max(length - patch, 0) + 1, patch))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts

def _call_aug(aug: Callable, image, target, rng, patch_size):
    if hasattr(aug, "margin"):
        return aug(image, target, rng, patch_size=patch_size)
    return aug(image, target, rng)


class PatchMaker:
    """Cuts one ``(x, y)`` training or validation example from a prepared sample.

    Training: the image window and the label frame are cut around the patch with the context
    the target needs (:data:`TARGET_CONTEXT`) plus the margin the augmentations declare; the
    augmentation chain runs on ``(image, labels as channel 0)`` — geometric steps resample
    channel 0 with nearest neighbour, so instance ids stay exact — each step that declares a
    margin asked (``patch_size=`` keyword) for the patch plus the target context plus the
    margins of the steps after it; the target is then computed on the augmented
    labels (boundaries and weights match the warped geometry) and everything is cropped to the
    patch. Validation (``rng=None``): no augmentation, same target computation.
    """

    def __init__(self, plugins: DatagenPlugins, patch_size: tuple[int, int],
                 time_windows: int | None):
        self.plugins = plugins
        self.patch = tuple(int(v) for v in patch_size)
        self.time_windows = time_windows
        c = TARGET_CONTEXT
        self.out = (self.patch[0] + 2 * c, self.patch[1] + 2 * c)
        # Walking the chain backwards, each step with a margin is asked for the output the
        # later steps need (their margins around ``out``), so every step reads real context.
        request = self.out
        self.aug_requests: dict[int, tuple[int, int]] = {}
        for k in reversed(range(len(plugins.augmentations))):
            aug = plugins.augmentations[k]
            if hasattr(aug, "margin"):
                self.aug_requests[k] = request
                a, b = aug.margin(request)
                request = (request[0] + 2 * int(a), request[1] + 2 * int(b))
        self.aug_margin = ((request[0] - self.out[0]) // 2, (request[1] - self.out[1]) // 2)
        self.weight_channels = [i for i, ch in enumerate(plugins.channels) if ch == "weight"]

    def frames(self, t: int) -> list[int]:
        """Frame indices of the input for target frame ``t``."""
        return window_indices(int(t), self.time_windows) if self.time_windows else [int(t)]

    def _augment(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        ids, inverse = None, None
        small = labels.dtype.kind in "ub" and labels.dtype.itemsize <= 2  # float32-exact
        if not small and labels.size and (int(labels.max()) >= 1 << 24
                                          or int(labels.min()) < 0):
            ids, inverse = np.unique(labels, return_inverse=True)  # float32-exact ids
            labels = inverse.reshape(labels.shape)
        channel = labels.astype(np.float32)[..., None]
        for k, aug in enumerate(self.plugins.augmentations):
            image, channel = _call_aug(aug, image, channel, rng, self.aug_requests.get(k))
        image = _centre_crop(image, self.out, -2)
        warped = np.rint(_centre_crop(channel, self.out, 0)[..., 0]).astype(np.int64)
        if ids is not None:
            warped = ids[np.clip(warped, 0, ids.size - 1)]
        return image, warped

    def make(self, prepared: Prepared, t: int, top: int, left: int,
             rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """``x`` float32 ``(T, h, w)`` and ``y`` float32 ``(h, w, C)`` for the patch at
        ``(top, left)`` of frame ``t``; augmented when ``rng`` is given."""
        h, w = self.patch
        c = TARGET_CONTEXT
        frames = self.frames(t)
        if rng is not None and self.plugins.augmentations:
            my, mx = self.aug_margin
            y0, x0 = top - c - my, left - c - mx
            size = (self.out[0] + 2 * my, self.out[1] + 2 * mx)
            image = cut(prepared.image, y0, x0, *size, frames=frames)
            labels = cut(prepared.labels[t], y0, x0, *size)
            image, labels = self._augment(image, labels, rng)
            image = _centre_crop(image, self.patch, -2)
        else:
            image = cut(prepared.image, top, left, h, w, frames=frames)
            labels = cut(prepared.labels[t], top - c, left - c, *self.out)
        try:
            if getattr(self.plugins.target, "takes_crop", False):  # only the kept centre
                target = self.plugins.target(labels, crop=self.patch)
            else:
                target = self.plugins.target(labels)
        except DataError as exc:
            raise DataError(f"{prepared.name} frame {t}: {exc}") from exc
        target = _centre_crop(target, self.patch, 0)
        if self.weight_channels:
            target = np.array(target, dtype=np.float32)
            for k in self.weight_channels:
                mean = float(target[..., k].mean())
                if mean > 0:
                    target[..., k] /= mean
        return np.asarray(image, dtype=np.float32), target
