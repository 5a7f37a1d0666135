"""Where training patches come from: :class:`PatchSource` loads the samples of one dataset
folder, checks, normalises, resizes and pads them (and caches them) as :class:`Prepared`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs
import numpy as np

from dlsuite.data.layouts import LoadedSample, Sample, list_samples
from dlsuite.data.sample_loading import load_sample
from dlsuite.data.resize import resize_frames, resize_labels
from dlsuite.errors import DataError, DlsuiteInputError


@attrs.frozen
class Prepared:
    """A loaded sample ready for patching: ``image`` float32 ``(T, H, W)`` normalised and
    padded to at least the patch size, ``labels`` integer ``(T, H, W)`` padded alike,
    ``annotated`` frame indices with labels."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    annotated: np.ndarray


class PatchSource:
    """The samples of one dataset folder, loaded through :func:`dlsuite.data.layouts.load_sample`.

    Images are normalized, then resized by ``scale`` (``data.scale``; labels with them,
    :func:`dlsuite.data.resize.resize_labels`). Construction loads every sample once to check
    it (integer labels, matching shapes, at least one annotated frame overall) and to find
    frames smaller than the patch after resizing (one warning listing them); with ``cache``
    the prepared arrays stay in memory, otherwise :meth:`get` re-reads them. Raises DataError
    naming the folder or file.
    """

    def __init__(self, folder: str, layout: str, normalizer: Callable,
                 patch_size: tuple[int, int], cache: bool = True, scale: float = 1.0):
        self.folder = folder
        self.scale = float(scale)
        self.patch_size = tuple(int(v) for v in patch_size)
        self.normalizer = normalizer
        self.cache = cache
        self.samples: list[Sample] = list_samples(folder, layout, require_labels=True)
        if not self.samples:
            raise DataError(f"{folder}: empty dataset (no samples)")
        self._cache: dict[int, Prepared] = {}
        self.annotated: list[np.ndarray] = []
        self.shapes: list[tuple[int, ...]] = []
        padded = []
        for i, sample in enumerate(self.samples):
            prepared, was_padded = self._prepare(sample)
            self.annotated.append(prepared.annotated)
            self.shapes.append(prepared.image.shape)
            if was_padded:
                padded.append(f"{sample.image} {was_padded}")
            if cache:
                self._cache[i] = prepared
        if not any(a.size for a in self.annotated):
            raise DataError(f"{folder}: empty dataset (no annotated frames)")
        if padded:
            logging.getLogger("dlsuite.data").warning(
                "%s: %d image(s) smaller than the patch %s are reflect-padded: %s",
                folder, len(padded), self.patch_size, "; ".join(padded))

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def n_targets(self) -> int:
        """Number of annotated frames over all samples."""
        return int(sum(a.size for a in self.annotated))

    def _prepare(self, sample: Sample) -> tuple[Prepared, str]:
        loaded: LoadedSample = load_sample(sample)
        where = sample.labels or sample.image
        if loaded.labels is None:
            raise DataError(f"{sample.image}: no labels")
        labels = loaded.labels
        if labels.shape != loaded.image.shape:
            raise DataError(f"{where}: label shape {labels.shape} does not match image "
                            f"{sample.image} shape {loaded.image.shape}")
        try:
            image = np.asarray(self.normalizer(loaded.image), dtype=np.float32)
        except DlsuiteInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the file whatever the plugin raised
            raise DataError(f"{sample.image}: normalization failed: {type(exc).__name__}: "
                            f"{exc}") from exc
        image = resize_frames(image, self.scale)
        labels = resize_labels(labels, self.scale)
        H, W = image.shape[-2:]
        h, w = self.patch_size
        pad_y, pad_x = max(h - H, 0), max(w - W, 0)
        note = ""
        if pad_y or pad_x:
            pads = [(0, 0), (pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)]
            image = np.pad(image, pads, mode="symmetric")
            labels = np.pad(labels, pads, mode="symmetric")
            note = f"({H}x{W})"
        return Prepared(sample.name, image, labels, np.asarray(loaded.annotated)), note

    def get(self, index: int) -> Prepared:
        """The prepared sample ``index`` (from the cache, or re-read)."""
        if index in self._cache:
            return self._cache[index]
        return self._prepare(self.samples[index])[0]
