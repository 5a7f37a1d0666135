"""Writing predictions: probabilities and instance labels as TIFF files, atomically.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlsuite.errors import DataError

__all__ = ["write_predictions", "prediction_paths"]


def prediction_paths(name: str) -> dict[str, str]:
    """Where :func:`write_predictions` puts the outputs of input ``name``, relative to its
    ``out_dir`` (``/``-separated): ``{"probabilities": "probabilities/<stem>.tif",
    "labels": "labels/<stem>.tif"}`` (``<stem>``: the name without a ``.tif``/``.tiff``)."""
    stem = Path(name).name
    if stem.lower().endswith((".tif", ".tiff")):
        stem = stem.rsplit(".", 1)[0]
    return {"probabilities": f"probabilities/{stem}.tif", "labels": f"labels/{stem}.tif"}


def write_predictions(out_dir: str | os.PathLike, name: str, probs=None, labels=None) -> dict:
    """Write ``probs`` and/or ``labels`` of one input as TIFF under ``out_dir``; atomic.

    ``probs`` ``(H, W, C)`` or ``(T, H, W, C)`` goes to ``out_dir/probabilities/<name>.tif``
    as float32 with the class axis first (ImageJ ``CYX`` / ``TCYX``); ``labels`` ``(H, W)`` or
    ``(T, H, W)`` to ``out_dir/labels/<name>.tif`` as uint16, or uint32 when the largest label
    exceeds 65535. Returns ``{"probabilities": path, "labels": path}`` for what was written.
    """
    from dlsuite.data.io import write_tiff
    from dlsuite.tracking.labels import as_label_video

    out_dir = Path(out_dir)
    paths = prediction_paths(name)
    written = {}
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim not in (3, 4):
            raise DataError(f"{name}: probabilities must be (H, W, C) or (T, H, W, C)")
        axes = "CYX" if probs.ndim == 3 else "TCYX"
        written["probabilities"] = write_tiff(
            out_dir / paths["probabilities"], np.moveaxis(probs, -1, -3), axes=axes
        )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.size and labels.min() < 0:
            raise DataError(f"{name}: label image holds negative values")
        labels = as_label_video(labels)
        if labels.ndim not in (2, 3):
            raise DataError(f"{name}: labels must be (H, W) or (T, H, W)")
        written["labels"] = write_tiff(out_dir / paths["labels"], labels,
                                       axes="YX" if labels.ndim == 2 else "TYX")
    return written
