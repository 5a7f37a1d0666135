"""Cell Tracking Challenge result folders: ``maskTTT.tif`` + ``res_track.txt`` (SPEC I3, P3).

CTC rules kept here: every label is one track; track ``L`` is present in every frame from its
begin ``B`` to its end ``E`` and in no other frame; ``P`` is the parent track (0 for none),
which ends before the child begins (a division, or a gap bridged by the tracker). Masks are
16-bit; frames are numbered ``mask000.tif`` (``mask0000.tif`` from 1000 frames on).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from dlsuite.errors import DataError

from .labels import check_video

__all__ = ["Track", "check_tracks", "untracked", "write_res_track", "write_ctc_result",
           "mask_name"]


class Track(NamedTuple):
    """One line of ``res_track.txt``: label, first frame, last frame, parent label (0: none)."""

    label: int
    begin: int
    end: int
    parent: int


def mask_name(t: int, n_frames: int) -> str:
    """CTC file name of frame ``t``: ``mask007.tif`` (4 digits when ``n_frames`` > 1000)."""
    digits = 4 if n_frames > 1000 else 3
    return f"mask{t:0{digits}d}.tif"


def _frames_of_labels(label_video: np.ndarray) -> dict[int, list[int]]:
    frames: dict[int, list[int]] = {}
    for t, frame in enumerate(label_video):
        for lab in np.unique(frame):
            if lab:
                frames.setdefault(int(lab), []).append(t)
    return frames


def check_tracks(label_video, tracks: Iterable[Track]) -> list[str]:
    """Problems (empty list: none) between ``label_video`` ``(T, H, W)`` and ``tracks`` under
    the CTC rules of the module docstring."""
    video = check_video(label_video)
    tracks = [Track(*map(int, tr)) for tr in tracks]
    problems = []
    by_label = {tr.label: tr for tr in tracks}
    if len(by_label) != len(tracks):
        problems.append("duplicate track labels")
    frames = _frames_of_labels(video)
    for lab in sorted(set(frames) - set(by_label)):
        problems.append(f"label {lab} is in the masks but not in the tracks")
    for tr in tracks:
        present = frames.get(tr.label, [])
        if present != list(range(tr.begin, tr.end + 1)):
            problems.append(f"track {tr.label} ({tr.begin}-{tr.end}) is present in frames "
                            f"{present[:3]}{'...' if len(present) > 3 else ''} instead")
        if tr.parent:
            parent = by_label.get(tr.parent)
            if parent is None:
                problems.append(f"track {tr.label}: parent {tr.parent} is not a track")
            elif parent.end >= tr.begin:
                problems.append(f"track {tr.label}: parent {tr.parent} ends at {parent.end}, "
                                f"not before {tr.begin}")
    return problems


def untracked(label_video) -> tuple[np.ndarray, list[Track]]:
    """Make per-frame instances CTC-valid without linking: every (frame, label) becomes its
    own one-frame track with a unique label. Returns ``(relabelled_video, tracks)``; for SEG
    evaluation (TRA needs :func:`dlsuite.tracking.track`)."""
    video = check_video(label_video)
    out = np.zeros(video.shape, dtype=np.uint32)
    tracks: list[Track] = []
    for t, frame in enumerate(video):
        ids, inverse = np.unique(frame, return_inverse=True)
        base = len(tracks)
        nonzero = ids != 0
        new = np.zeros(len(ids), np.uint32)
        new[nonzero] = base + np.arange(1, nonzero.sum() + 1)
        out[t] = new[inverse.reshape(frame.shape)]
        tracks += [Track(base + k, t, t, 0) for k in range(1, int(nonzero.sum()) + 1)]
    from .labels import as_label_video

    return as_label_video(out), tracks


def write_res_track(path: str | os.PathLike, tracks: Iterable[Track]) -> Path:
    """Write ``res_track.txt`` (``L B E P`` per line, sorted by label), atomically."""
    from dlsuite.data.io import write_text_atomic

    lines = [" ".join(str(int(v)) for v in tr) for tr in sorted(tracks, key=lambda t: t[0])]
    return write_text_atomic(path, "".join(line + "\n" for line in lines))


def write_ctc_result(res_dir: str | os.PathLike, label_video, tracks: Iterable[Track]) -> Path:
    """Write a CTC result folder ``res_dir`` (e.g. ``01_RES``): one uint16 ``maskTTT.tif``
    per frame of ``label_video`` ``(T, H, W)`` and ``res_track.txt``; returns ``res_dir``.

    Raises DataError when the tracks and masks break the CTC rules (see :func:`check_tracks`)
    or a label exceeds 65535 (CTC masks are 16-bit).
    """
    from dlsuite.data.io import write_tiff

    video = check_video(label_video)
    tracks = [Track(*map(int, tr)) for tr in tracks]
    res_dir = Path(res_dir)
    if video.size and int(video.max()) > np.iinfo(np.uint16).max:
        raise DataError(f"{res_dir}: label {int(video.max())} does not fit a 16-bit CTC mask")
    problems = check_tracks(video, tracks)
    if problems:
        raise DataError(f"{res_dir}: tracks inconsistent with the masks: " + "; ".join(problems[:5]))
    for t, frame in enumerate(video):
        write_tiff(res_dir / mask_name(t, len(video)), frame.astype(np.uint16), axes="YX")
    write_res_track(res_dir / "res_track.txt", tracks)
    return res_dir
