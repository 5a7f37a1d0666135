"""Track every label (or mask) video of a folder into CTC result folders (``dlsuite track``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlsuite.data.ctc import res_folder, sequence_name, write_result
from dlsuite.errors import DataError

from .gapfill import gap_fill
from .tracker import track

__all__ = ["track_folder"]


def _videos(input_dir: Path) -> list[Path]:
    from dlsuite.data.io import is_image_file

    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: input folder not found")
    files = sorted(p for p in input_dir.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise DataError(f"{input_dir}: no TIFF/PNG videos in this folder")
    return files


def _instances(video: np.ndarray, path: Path, fill: bool, sigma: float, min_size: int):
    """Per-frame instances: 0/1 masks are gap-filled (``fill``) or split into 8-connected
    components; label videos are used as they are."""
    if not (np.issubdtype(video.dtype, np.integer) or video.dtype == np.bool_):
        raise DataError(f"{path}: expected a label or mask video (integers), got {video.dtype}")
    if video.size and video.min() < 0:
        raise DataError(f"{path}: negative labels")
    binary = video.size == 0 or int(video.max()) <= 1
    if fill:
        return gap_fill(video, sigma=sigma, min_size=min_size)
    if binary:
        return gap_fill(video, sigma=0.0, threshold=0.5, min_size=min_size)
    return video


def track_folder(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    max_distance: float = 50.0,
    min_overlap: float = 0.1,
    gap_closing: int = 2,
    splitting: bool = True,
    fill_gaps: bool = False,
    sigma: float = 2.0,
    min_size: int = 0,
) -> list[dict]:
    """Track each video ``(T, H, W)`` of ``input_dir`` (sorted by name) and write CTC folders
    ``output_dir/01_RES``, ``02_RES``, ... plus ``output_dir/sequences.csv`` (sequence,
    video). 0/1 mask videos become per-frame instances first (temporal gap filling with
    ``fill_gaps``; objects under ``min_size`` px dropped). Returns one summary dict per video.
    Raises DataError naming the file for a missing folder, an unreadable file or a 2D image.
    """
    from dlsuite.data.io import read_image, write_text_atomic

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    summary = []
    for number, path in enumerate(_videos(input_dir), start=1):
        video = read_image(path)
        if video.ndim != 3:
            raise DataError(f"{path}: expected a video (T, H, W), got a 2D image {video.shape}")
        labels = _instances(video, path, fill_gaps, sigma, min_size)
        relabelled, tracks = track(labels, max_distance=max_distance, min_overlap=min_overlap,
                                   gap_closing=gap_closing, splitting=splitting)
        sequence = sequence_name(number)
        res_dir = write_result(res_folder(output_dir, sequence), relabelled, tracks)
        summary.append({
            "sequence": sequence,
            "video": path.name,
            "frames": int(video.shape[0]),
            "tracks": len(tracks),
            "divisions": len({t.parent for t in tracks if t.parent}),
            "res_dir": str(res_dir),
        })
    write_text_atomic(output_dir / "sequences.csv",
                      "sequence,video\n" + "".join(f"{s['sequence']},{s['video']}\n" for s in summary))
    return summary
