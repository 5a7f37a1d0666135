"""The Cell Tracking Challenge (CTC) file format: the one module that knows its names and files.

Used by ``dlsuite prepare`` (export), the tracker (result folders), the evaluation (reading
result and ground-truth folders), the dataset layouts (CTC datasets) and the tests. Layout of a
CTC root, ``NN`` being the sequence number::

    NN/tTTT.tif                   images (one 2D frame per file)
    NN_GT/SEG/man_segTTT.tif      segmentation ground truth (usually a sparse set of frames)
    NN_GT/TRA/man_trackTTT.tif    tracking markers (every frame) + NN_GT/TRA/man_track.txt
    NN_RES/maskTTT.tif            results (every frame) + NN_RES/res_track.txt

A track file holds one ``L B E P`` line per track (:class:`Track`): label, first and last frame
(inclusive), parent label (0: none). The CTC rules checked by :func:`check_tracks`: every
non-zero label of the masks is a track, present in every frame from ``B`` to ``E`` and in no
other frame; a parent is a track that ends before its child begins.

Case rule (one for every name here): names are *matched* case-insensitively (``MASK000.TIF``,
``01_gt/seg/Man_Seg000.tif`` and ``RES_TRACK.TXT`` are read like their canonical spelling), and
always *written* in the canonical spelling of the CTC specification: lower-case file names
(``t``, ``man_seg``, ``man_track``, ``mask``, ``man_track.txt``, ``res_track.txt``, ``.tif``),
upper-case folder parts (``NN_GT``, ``NN_RES``, ``SEG``, ``TRA``). When a folder holds a name in
both spellings (possible on case-sensitive file systems) the exact canonical one wins.

Frame numbers: any number of digits is read (``.tif`` or ``.tiff``); frames are written with 3
digits, 4 from 1001 frames on, as the CTC does. 3D slice names (``man_segTTT_ZZZ.tif``) are
not frames (dlsuite is 2D). Result and tracking masks are 16-bit; ids above 65535 are refused
unless ``allow_wide`` (then uint32, which not every CTC tool reads). Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dlsuite.data.io import read_image, write_tiff
from dlsuite.errors import DataError
from dlsuite.fileio import write_text_atomic

__all__ = [
    "FRAME_KINDS",
    "PREDICT_CTC_FOLDER",
    "RES_FILES",
    "Track",
    "check_tracks",
    "folder_sequence",
    "frame_index",
    "frame_name",
    "gt_folder",
    "is_ground_truth",
    "list_frames",
    "lookup",
    "man_track_file",
    "output_files",
    "read_frame",
    "read_sequence",
    "read_track_file",
    "res_folder",
    "res_track_file",
    "seg_folder",
    "sequence_name",
    "split_gapped_tracks",
    "split_gaps",
    "track_table",
    "tra_folder",
    "write_frames",
    "write_ground_truth",
    "write_result",
    "write_track_file",
]

#: Frame kinds and their file-name prefixes: images, SEG ground truth, TRA markers, results.
FRAME_KINDS = {"image": "t", "seg": "man_seg", "tra": "man_track", "res": "mask"}
_FRAME_RES = {kind: re.compile(rf"^{prefix}(\d+)\.tiff?$", re.IGNORECASE)
              for kind, prefix in FRAME_KINDS.items()}
#: Folder roles: the image folder ``NN``, the ground truth ``NN_GT``, the result ``NN_RES``.
_FOLDER_RES = {"images": re.compile(r"^(\d+)$"),
               "GT": re.compile(r"^(\d+)_GT$", re.IGNORECASE),
               "RES": re.compile(r"^(\d+)_RES$", re.IGNORECASE)}
_SEG, _TRA = "SEG", "TRA"
_MAN_TRACK, _RES_TRACK = "man_track.txt", "res_track.txt"
_UINT16_MAX = int(np.iinfo(np.uint16).max)


class Track(NamedTuple):
    """One line of a CTC track file: label, first frame, last frame (inclusive), parent label
    (0: none). A tuple, so ``Track(*row)`` and ``tuple(track)`` convert from and to rows."""

    label: int
    begin: int
    end: int
    parent: int = 0

    def line(self) -> str:
        """The ``L B E P`` text line (no newline)."""
        return f"{self.label} {self.begin} {self.end} {self.parent}"


# --------------------------------------------------------------------------------------------
# names


def _kind(kind: str) -> str:
    if kind not in FRAME_KINDS:
        raise ValueError(f"unknown CTC frame kind {kind!r}; choose one of {', '.join(FRAME_KINDS)}")
    return kind


def frame_name(kind: str, t: int, n_frames: int = 0) -> str:
    """Canonical file name of frame ``t`` of ``kind`` ("image", "seg", "tra", "res") in a
    sequence of ``n_frames``: ``mask007.tif`` (4 digits when ``n_frames`` > 1000)."""
    digits = 4 if n_frames > 1000 else 3
    return f"{FRAME_KINDS[_kind(kind)]}{int(t):0{digits}d}.tif"


def frame_index(name: str, kind: str) -> int | None:
    """The frame number of file name ``name`` when it is a ``kind`` frame (any case, any
    number of digits, ``.tif``/``.tiff``), else None."""
    m = _FRAME_RES[_kind(kind)].match(name)
    return int(m.group(1)) if m else None


def sequence_name(number: int, count: int = 0) -> str:
    """Sequence folder number ``01``, ``02``, ...: at least two digits, more when ``count``
    (the number of sequences) needs them."""
    return f"{int(number):0{max(2, len(str(int(count))))}d}"


def folder_sequence(name: str, role: str) -> str | None:
    """The sequence number in folder name ``name`` of ``role`` ("images": ``NN``, "GT":
    ``NN_GT``, "RES": ``NN_RES``; suffix in any case), else None."""
    m = _FOLDER_RES[role].match(name)
    return m.group(1) if m else None


def lookup(folder: str | os.PathLike, name: str) -> Path:
    """``folder/name`` when it exists, else the entry of ``folder`` whose name equals ``name``
    ignoring case, else ``folder/name`` (the canonical path to create)."""
    folder = Path(folder)
    path = folder / name
    if path.exists() or not folder.is_dir():
        return path
    low = name.lower()
    return next((p for p in sorted(folder.iterdir()) if p.name.lower() == low), path)


def gt_folder(root: str | os.PathLike, sequence: str) -> Path:
    """The ``NN_GT`` folder of ``sequence`` under ``root`` (an existing one in any case)."""
    return lookup(root, f"{sequence}_GT")


#: The files of an ``NN_RES`` folder (globs): what a writer of one records as written, so
#: that replacing it leaves a file someone added there.
RES_FILES = ("mask*.tif", "res_track.txt")

#: The folder of ``dlsuite predict --ctc``'s output holding its ``NN_RES`` folders.
PREDICT_CTC_FOLDER = "ctc"


def res_folder(root: str | os.PathLike, sequence: str) -> Path:
    """The ``NN_RES`` folder of ``sequence`` under ``root`` (an existing one in any case)."""
    return lookup(root, f"{sequence}_RES")


def seg_folder(gt_dir: str | os.PathLike) -> Path:
    """``NN_GT/SEG`` (an existing one in any case)."""
    return lookup(gt_dir, _SEG)


def tra_folder(gt_dir: str | os.PathLike) -> Path:
    """``NN_GT/TRA`` (an existing one in any case)."""
    return lookup(gt_dir, _TRA)


def man_track_file(gt_dir: str | os.PathLike) -> Path:
    """``NN_GT/TRA/man_track.txt`` (an existing one in any case)."""
    return lookup(tra_folder(gt_dir), _MAN_TRACK)


def res_track_file(res_dir: str | os.PathLike) -> Path:
    """``NN_RES/res_track.txt`` (an existing one in any case)."""
    return lookup(res_dir, _RES_TRACK)


def is_ground_truth(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a ``SEG`` or ``TRA`` folder (a CTC ``NN_GT`` folder)."""
    return seg_folder(folder).is_dir() or tra_folder(folder).is_dir()


# --------------------------------------------------------------------------------------------
# reading


def list_frames(folder: str | os.PathLike, kind: str) -> dict[int, Path]:
    """``{frame number: file}`` of the ``kind`` frames of ``folder``, in frame order (empty
    when the folder does not exist). Raises DataError naming both files when two give the same
    number (``mask01.tif`` and ``MASK001.tif``)."""
    folder = Path(folder)
    found: dict[int, Path] = {}
    if not folder.is_dir():
        return found
    for p in sorted(folder.iterdir()):
        t = frame_index(p.name, kind)
        if t is not None and p.is_file():
            if t in found:
                raise DataError(f"{folder}: frame {t} appears twice ({found[t].name}, {p.name})")
            found[t] = p
    return dict(sorted(found.items()))


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """One 2D CTC frame in its stored dtype; DataError naming the file when it is not 2D."""
    frame = read_image(path)
    if frame.ndim != 2:
        raise DataError(f"{path}: CTC frame must be 2D, got shape {frame.shape}")
    return frame


def read_sequence(folder: str | os.PathLike, kind: str = "image") -> tuple[list[int], np.ndarray]:
    """All ``kind`` frames of ``folder`` stacked: ``(frame numbers, (T, H, W) array)`` in the
    stored dtype. DataError naming the file when there is none, or frames differ in shape or
    dtype."""
    frames = list_frames(folder, kind)
    if not frames:
        raise DataError(f"{folder}: no {FRAME_KINDS[kind]}NNN.tif frames")
    paths = list(frames.values())
    first = read_frame(paths[0])
    video = np.empty((len(paths),) + first.shape, dtype=first.dtype)
    video[0] = first
    for i, path in enumerate(paths[1:], start=1):
        frame = read_frame(path)
        if frame.shape != first.shape or frame.dtype != first.dtype:
            raise DataError(f"{path}: frame {frame.shape} {frame.dtype} differs from "
                            f"{paths[0].name} {first.shape} {first.dtype}")
        video[i] = frame
    return list(frames), video


def read_track_file(path: str | os.PathLike) -> list[Track]:
    """A CTC track file (``L B E P`` per line, blank lines ignored) as :class:`Track` s in file
    order. Raises DataError naming the file and line when a line does not hold four
    non-negative integers."""
    path = Path(path)
    tracks = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            values = [int(x) for x in line.split()]
        except ValueError:
            values = []
        if len(values) != 4 or min(values) < 0:
            raise DataError(f"{path}:{i}: expected 'label begin end parent', got {line!r}")
        tracks.append(Track(*values))
    return tracks


# --------------------------------------------------------------------------------------------
# the track rules


def _label_video(labels, where: str) -> np.ndarray:
    video = np.asarray(labels)
    if video.ndim != 3:
        raise DataError(f"{where}: expected a (T, H, W) label video, got shape {video.shape}")
    if not (np.issubdtype(video.dtype, np.integer) or video.dtype == np.bool_):
        raise DataError(f"{where}: expected integer labels, got {video.dtype}")
    if video.size and video.min() < 0:
        raise DataError(f"{where}: negative label ids (CTC labels are non-negative)")
    return video


def _presence(video: np.ndarray) -> dict[int, list[int]]:
    """label -> the frames it is present in (ascending)."""
    frames: dict[int, list[int]] = {}
    for t, frame in enumerate(video):
        for label in np.unique(frame):
            if label:
                frames.setdefault(int(label), []).append(t)
    return frames


def track_table(labels, parents: Mapping[int, int] | None = None) -> list[Track]:
    """The tracks of a ``(T, H, W)`` label video: each label's first and last frame, sorted by
    label; ``parents`` maps a label to its mother (default 0). Raises DataError when a label
    has a temporal gap (CTC forbids it) or a parent is not a label."""
    parents = dict(parents or {})
    presence = _presence(_label_video(labels, "label video"))
    tracks = []
    for label, frames in sorted(presence.items()):
        if frames[-1] - frames[0] + 1 != len(frames):
            raise DataError(f"label {label} has a temporal gap (frames {frames})")
        parent = int(parents.get(label, 0))
        if parent and parent not in presence:
            raise DataError(f"label {label}: parent {parent} does not appear in the labels")
        tracks.append(Track(label, frames[0], frames[-1], parent))
    return tracks


def _runs(frames: list[int]) -> list[list[int]]:
    runs = [[frames[0]]]
    for t in frames[1:]:
        if t == runs[-1][-1] + 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def split_gapped_tracks(labels: np.ndarray) -> np.ndarray:
    """Give every temporally disconnected run of a label its own id, so the video obeys the
    no-gap rule. ``labels`` is ``(T, H, W)``; the first run keeps its id, later runs get new
    ids above the current maximum (the dtype is widened if needed). Returns ``labels`` itself
    when no label has a gap, else a relabelled copy. :func:`split_gaps` also gives the links
    that keep each object's identity across its gaps."""
    return split_gaps(labels)[0]


def split_gaps(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """``(labels, parents)``: :func:`split_gapped_tracks`' video, and for each new id the id of
    the run before its gap, its parent, as the CTC format links a track across a gap (one
    object: the same id before and after frames it is missing from). ``{}`` without gaps."""
    presence = _presence(labels)
    gapped = {k: _runs(v) for k, v in presence.items() if len(_runs(v)) > 1}
    if not gapped:
        return labels, {}
    n_new = sum(len(r) - 1 for r in gapped.values())
    top = max(presence) + n_new
    dtype = np.result_type(labels.dtype, np.min_scalar_type(top))
    out = labels.astype(dtype, copy=True)
    next_id = max(presence) + 1
    parents: dict[int, int] = {}
    for label in sorted(gapped):
        before = label
        for run in gapped[label][1:]:
            for t in run:
                out[t][labels[t] == label] = next_id
            parents[next_id], before = before, next_id
            next_id += 1
    return out, parents


def check_tracks(labels, tracks: Iterable) -> list[str]:
    """Problems (empty list: none) between a ``(T, H, W)`` label video and ``tracks`` (rows
    ``L B E P``) under the CTC rules of the module docstring."""
    video = _label_video(labels, "label video")
    tracks = [Track(*map(int, tr)) for tr in tracks]
    problems = []
    by_label = {tr.label: tr for tr in tracks}
    if len(by_label) != len(tracks):
        problems.append("duplicate track labels")
    frames = _presence(video)
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


# --------------------------------------------------------------------------------------------
# writing


def write_frames(folder: str | os.PathLike, kind: str, video,
                 frames: Iterable[int] | None = None) -> Path:
    """Write frames ``frames`` (default all) of ``video`` ``(T, H, W)`` as canonical ``kind``
    files in ``folder`` (created), in the array's dtype, atomically; returns ``folder``. No
    check of the content: see :func:`write_result` / :func:`write_ground_truth`."""
    folder = Path(folder)
    video = np.asarray(video)
    n = len(video)
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n) if frames is None else sorted({int(f) for f in frames}):
        write_tiff(folder / frame_name(kind, t, n), video[t], axes="YX")
    return folder


def write_track_file(path: str | os.PathLike, tracks: Iterable) -> Path:
    """Write a track file (``L B E P`` per line, sorted by label) atomically; ``tracks`` are
    :class:`Track` s or rows of four integers. No check (see :func:`check_tracks`)."""
    rows = sorted((Track(*map(int, tr)) for tr in tracks), key=lambda tr: tr.label)
    return write_text_atomic(path, "".join(tr.line() + "\n" for tr in rows))


def _masks(labels, tracks: Iterable, where: Path,
           allow_wide: bool) -> tuple[np.ndarray, list[Track]]:
    """The checked mask video (uint16, or uint32 above 65535 with ``allow_wide``) and tracks."""
    video = _label_video(labels, str(where))
    tracks = [Track(*map(int, tr)) for tr in tracks]
    top = int(video.max()) if video.size else 0
    if top > _UINT16_MAX and not allow_wide:
        raise DataError(f"{where}: label {top} does not fit a 16-bit CTC mask")
    problems = check_tracks(video, tracks)
    if problems:
        raise DataError(f"{where}: tracks inconsistent with the masks: " + "; ".join(problems[:5]))
    dtype = next(d for d in (np.uint16, np.uint32, np.uint64) if top <= np.iinfo(d).max)
    return video.astype(dtype, copy=False), tracks


def write_result(res_dir: str | os.PathLike, labels, tracks: Iterable, *,
                 allow_wide: bool = False) -> Path:
    """Write a CTC result folder ``res_dir`` (``NN_RES``): ``maskTTT.tif`` for every frame of
    the label video ``labels`` ``(T, H, W)`` and ``res_track.txt``; returns ``res_dir``.

    Raises DataError before writing anything when ``tracks`` and the masks break the CTC rules
    (:func:`check_tracks`), or a label exceeds 65535 and not ``allow_wide``.
    """
    res_dir = Path(res_dir)
    video, tracks = _masks(labels, tracks, res_dir, allow_wide)
    write_frames(res_dir, "res", video)
    write_track_file(res_dir / _RES_TRACK, tracks)
    return res_dir


def write_ground_truth(gt_dir: str | os.PathLike, labels, tracks: Iterable, *,
                       annotated: Iterable[int] | None = None, allow_wide: bool = False) -> Path:
    """Write a CTC ground-truth folder ``gt_dir`` (``NN_GT``): ``TRA/man_trackTTT.tif`` for
    every frame of ``labels`` ``(T, H, W)``, ``TRA/man_track.txt``, and
    ``SEG/man_segTTT.tif`` for the ``annotated`` frames (default all); returns ``gt_dir``.
    Checks as :func:`write_result`."""
    gt_dir = Path(gt_dir)
    video, tracks = _masks(labels, tracks, gt_dir, allow_wide)
    write_frames(gt_dir / _TRA, "tra", video)
    write_frames(gt_dir / _SEG, "seg", video, annotated)
    write_track_file(gt_dir / _TRA / _MAN_TRACK, tracks)
    return gt_dir


def output_files(root: str | os.PathLike) -> list[Path]:
    """The CTC files directly under the sequence folders of ``root`` (what a CTC export
    writes: image, SEG, TRA and result frames and both track files), any case; for refusing or
    replacing an earlier export without touching other files."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[Path] = []

    def add(folder: Path, kind: str, track_file: Path | None = None) -> None:
        found.extend(list_frames(folder, kind).values())
        if track_file is not None and track_file.is_file():
            found.append(track_file)

    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder_sequence(child.name, "images"):
            add(child, "image")
        elif folder_sequence(child.name, "GT"):
            add(seg_folder(child), "seg")
            add(tra_folder(child), "tra", man_track_file(child))
        elif folder_sequence(child.name, "RES"):
            add(child, "res", res_track_file(child))
    return found
