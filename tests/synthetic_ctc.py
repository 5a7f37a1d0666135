"""Test helper (not part of the package): small synthetic CTC sequences for the evaluation tests.

:func:`tracked_squares` draws moving square cells (one of which divides) and returns the label
video and its CTC track rows; :func:`write_ctc_sequence` writes a result or ground-truth folder
through :mod:`dlsuite.data.ctc`'s unchecked writers, so tests can also write deliberately
inconsistent results. Moved here from ``dlsuite.evaluation.synthetic``: nothing outside the
tests used it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlsuite.data import ctc


def tracked_squares(n_frames: int = 6, size: int = 64, divide_at: int | None = 3) -> tuple[np.ndarray, np.ndarray]:
    """A ``(T, size, size)`` uint16 label video of three 8x8 squares drifting right by one
    pixel per frame, and its track table ``(n, 4)`` rows ``L B E P``.

    Track 1 and 2 live through the whole video; track 3 lives until ``divide_at - 1`` and then
    divides into tracks 4 and 5 (children with parent 3), unless ``divide_at`` is None.
    """
    video = np.zeros((n_frames, size, size), dtype=np.uint16)
    last = n_frames - 1
    tracks = [[1, 0, last, 0], [2, 0, last, 0]]
    if divide_at is None:
        tracks.append([3, 0, last, 0])
    else:
        tracks += [[3, 0, divide_at - 1, 0], [4, divide_at, last, 3], [5, divide_at, last, 3]]
    for t in range(n_frames):
        x = 4 + t
        video[t, 4:12, x:x + 8] = 1
        video[t, 20:28, x:x + 8] = 2
        if divide_at is None or t < divide_at:
            video[t, 40:48, x:x + 8] = 3
        else:
            video[t, 36:44, x:x + 8] = 4
            video[t, 50:58, x:x + 8] = 5
    return video, np.asarray(tracks, dtype=np.int64)


def write_ctc_sequence(
    folder: str | Path,
    video: np.ndarray,
    tracks: np.ndarray | None = None,
    *,
    kind: str = "res",
    seg_frames: list[int] | None = None,
) -> Path:
    """Write ``video`` as a CTC folder and return it, without checking the tracks.

    ``kind="res"``: ``folder/maskTTT.tif`` for every frame and ``res_track.txt`` (when
    ``tracks`` is given). ``kind="gt"``: ``folder/TRA/man_trackTTT.tif`` for every frame plus
    ``TRA/man_track.txt`` (when ``tracks`` is given) and ``folder/SEG/man_segTTT.tif`` for the
    frames in ``seg_frames`` (all frames when None).
    """
    folder = Path(folder)
    if kind == "res":
        ctc.write_frames(folder, "res", video)
        if tracks is not None:
            ctc.write_track_file(ctc.res_track_file(folder), tracks)
    elif kind == "gt":
        if tracks is not None:
            ctc.write_frames(ctc.tra_folder(folder), "tra", video)
            ctc.write_track_file(ctc.man_track_file(folder), tracks)
        ctc.write_frames(ctc.seg_folder(folder), "seg", video, seg_frames)
    else:
        raise ValueError(f"kind must be 'res' or 'gt', got {kind!r}")
    return folder
