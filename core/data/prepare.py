"""Data preparation (``dlsuite prepare``): convert between the layouts of
:mod:`dlsuite.data.layouts` and export Cell Tracking Challenge (CTC) ground truth or results.

- :func:`videos_to_frames`: videos -> 2D frames ``raw_NNN`` numbered from 000 in natural-sorted
  video order, plus ``videos2im_relation.csv`` (``video;frame;index``). Dtypes are kept (labels
  never wrap at 256), so :func:`frames_to_videos` rebuilds the videos exactly.
- :func:`make_clips`: validation clips of T frames ending at each annotated frame (front-filled
  by the mirror rule of :func:`dlsuite.data.windows.window_indices`), target = labels at t.
- :func:`videos_to_ctc`: label videos -> ``NN_GT/{SEG,TRA}`` + ``man_track.txt`` or
  ``NN_RES/mask*.tif`` + ``res_track.txt``. A label that disappears and comes back is split
  into separate tracks (CTC forbids gaps inside a track).
- :func:`write_ctc_sequence` writes one sequence (also used by the example-data generator)
  through :mod:`dlsuite.data.ctc`, which owns the CTC names, :class:`Track`,
  :func:`track_table` and :func:`split_gapped_tracks` (re-exported here).

Compared with the original suite: deterministic order (no ``glob`` order), 0-based contiguous
numbering with the relation stored explicitly (no parsing of ``_start-end`` names, 1-frame
videos work), no uint8 casts, instance-labelled CTC masks with a track file. All writes are
atomic.
"""

from __future__ import annotations

import csv
import glob
import io as _io
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from dlsuite.data import ctc
from dlsuite.data.ctc import Track, split_gapped_tracks, split_gaps, track_table
from dlsuite.data.io import read_image, read_shape, write_text_atomic, write_tiff
from dlsuite.data.layouts import (
    INTEGER_LABELS_HINT,
    INPUT_PREFIX,
    LABEL_PREFIX,
    checked_samples,
    detect_layout,
    frame_token,
    load_sample,
    natural_key,
)
from dlsuite.data.windows import window_indices
from dlsuite.errors import DataError, DlsuiteInputError
from dlsuite.ownership import OwnedFolder, check_apart

__all__ = [
    "CLIPS_CSV",
    "RELATION_CSV",
    "SEQUENCES_CSV",
    "Track",
    "frames_to_videos",
    "make_clips",
    "read_relation",
    "split_gapped_tracks",
    "split_gaps",
    "track_table",
    "videos_to_ctc",
    "videos_to_frames",
    "write_ctc_sequence",
]

RELATION_CSV = "videos2im_relation.csv"
CLIPS_CSV = "clips_relation.csv"
SEQUENCES_CSV = "sequences.csv"
_RELATION_HEADER = ["video", "frame", "index"]
_KINDS = ("inputs", "labels")


def _frame_name(prefix: str, index: int) -> str:
    return f"{prefix}{index:03d}.tif"


def _csv_text(header: list[str], rows: Iterable[Iterable]) -> str:
    buf = _io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _as_video(array: np.ndarray) -> np.ndarray:
    return array[np.newaxis] if array.ndim == 2 else array


_FRAME_OUTPUTS = ("inputs/raw_*.tif", "labels/instance_ids_*.tif")
_CTC_OUTPUTS = ctc.output_files  # the CTC module knows the names (any case)


def _ctc_outputs(dst: Path) -> list[Path]:
    found = _CTC_OUTPUTS(dst)
    return found + ([dst / SEQUENCES_CSV] if (dst / SEQUENCES_CSV).is_file() else [])


def _clear_outputs(dst: Path, outputs: tuple[str, ...] | Callable[[Path], list[Path]],
                   overwrite: bool) -> OwnedFolder:
    """Refuse (or, with ``overwrite``, delete) earlier outputs in ``dst`` (glob patterns, or a
    function listing them) so no stale numbered file from a previous, larger run survives next
    to the new ones. Only files an earlier ``prepare`` recorded in ``dst``'s
    ``.dlsuite-prepare`` marker are deleted: other files with those names are refused, also
    with ``overwrite``, and so is a non-empty ``dst`` without the marker. With patterns, the
    marker then records the fixed names among them; the writer records each file it writes,
    by name, before writing it (:func:`_record`), so a file someone adds there later, even
    named like dlsuite's, is never taken for one. Returns the folder."""
    folder = OwnedFolder(dst, "prepare")
    if callable(outputs):
        old = outputs(dst)
    else:
        old = [p for pattern in outputs for p in dst.glob(pattern) if p.is_file()]
    _refuse_unrecorded(folder, old)  # first: --overwrite would not help with these
    if folder.read() is None and dst.is_dir() and next(
            (p for p in dst.rglob("*") if not p.is_dir() or p.is_symlink()), None):
        raise DataError(f"{dst} is not empty and was not written by dlsuite (no "
                        ".dlsuite-prepare marker): nothing in it is deleted or replaced, not "
                        "even with --overwrite; choose an empty or new folder")
    if old and not overwrite:
        raise DataError(
            f"{dst}: already holds {len(old)} output file(s) of an earlier dlsuite prepare "
            f"(e.g. {old[0].relative_to(dst)}); choose an empty folder or pass overwrite=True "
            "(--overwrite)"
        )
    for p in old:
        p.unlink()
    if not callable(outputs):  # claimed before writing: what is written next is recorded
        marker = folder.read()
        gone = {p.relative_to(dst).as_posix() for p in old}
        kept = [e for e in (marker.written if marker else ()) if e not in outputs
                and e not in gone]
        folder.create([*kept, *(o for o in outputs if not glob.has_magic(o))])
    return folder


def _record(folder: OwnedFolder, paths: Iterable[Path]) -> None:
    """Record ``paths`` (inside ``folder``) as written, before writing them."""
    folder.record(p.relative_to(folder.root).as_posix() for p in paths)


def _refuse_unrecorded(folder: OwnedFolder, paths: list[Path]) -> None:
    """DataError when one of ``paths`` exists but no earlier ``prepare`` recorded it."""
    marker = folder.read()
    recorded = {p for e in (marker.written if marker else ()) for p in folder.matches(e)}
    foreign = [p for p in paths if p.exists() and not ({p, *p.parents} & recorded)]
    if foreign:
        raise DataError(
            f"{foreign[0]}: exists and was not written by dlsuite prepare "
            f"({len(foreign)} such file(s) in {folder.root}); nothing is deleted or replaced, "
            "not even with --overwrite: move them, or choose another folder")


# --------------------------------------------------------------------------------------------
# videos <-> frames


def videos_to_frames(
    src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False
) -> Path:
    """Split a videos-layout folder into a frames-layout folder; returns ``dst``.

    Writes ``dst/inputs/raw_NNN.tif`` (and ``dst/labels/instance_ids_NNN.tif`` when ``src`` has
    ``labels/``), numbered from 000 across videos in natural-sorted name order, and
    ``dst/videos2im_relation.csv`` with rows ``video;frame;index``. Dtypes are kept.
    Raises DataError for unpaired, unreadable or mismatched files, and when ``dst`` already
    holds frames unless ``overwrite`` (then the old ``raw_*``/``instance_ids_*`` go first).
    """
    src, dst = Path(src), Path(dst)
    check_apart(dst, src, what="the frames", option="DST")
    labelled = (src / "labels").is_dir()
    samples = checked_samples(src, layout="videos", require_labels=labelled)  # before writing
    owned = _clear_outputs(dst, _FRAME_OUTPUTS + (RELATION_CSV,), overwrite)
    rows, index = [], 0
    for sample in samples:
        loaded = load_sample(sample)
        numbers = range(index, index + loaded.image.shape[0])
        _record(owned, [dst / kind / _frame_name(prefix, i) for i in numbers
                        for kind, prefix in (("inputs", INPUT_PREFIX), ("labels", LABEL_PREFIX))
                        if kind == "inputs" or loaded.labels is not None])
        for frame in range(loaded.image.shape[0]):
            write_tiff(dst / "inputs" / _frame_name(INPUT_PREFIX, index), loaded.image[frame])
            if loaded.labels is not None:
                write_tiff(
                    dst / "labels" / _frame_name(LABEL_PREFIX, index), loaded.labels[frame]
                )
            rows.append((sample.name, frame, index))
            index += 1
    write_text_atomic(dst / RELATION_CSV, _csv_text(_RELATION_HEADER, rows))
    return dst


def read_relation(csv_path: str | os.PathLike) -> dict[str, list[int]]:
    """Read a ``videos2im_relation.csv``: video name -> frame file indices in frame order.

    Accepts the ``video;frame;index`` form written by :func:`videos_to_frames` and the original
    suite's ``Video; Frame`` form (``<video>;raw_NNN.tif``, frames in row order). Raises
    DataError naming the file for a missing file, unknown header, or frames of a video that
    are not exactly ``0..n-1``.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise DataError(f"{path}: relation CSV not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:  # Excel writes a BOM
        rows = [[c.strip() for c in row] for row in csv.reader(fh, delimiter=";") if row]
    if not rows:
        raise DataError(f"{path}: empty relation CSV")
    header = [c.lower() for c in rows[0]]
    frames: dict[str, dict[int, int]] = {}
    try:
        if header[:3] == _RELATION_HEADER:
            for line, (video, frame, index, *_) in enumerate(rows[1:], start=2):
                per = frames.setdefault(video, {})
                if int(frame) in per:
                    raise DataError(f"{path}:{line}: frame {frame} of {video} listed twice")
                per[int(frame)] = int(index)
        elif header[:2] == ["video", "frame"]:  # original suite: <video>;raw_NNN.tif
            for video, name, *_ in rows[1:]:
                per = frames.setdefault(video, {})
                per[len(per)] = int(frame_token(Path(name).stem))
        else:
            raise DataError(f"{path}: expected header 'video;frame;index', got {rows[0]}")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: malformed row ({exc})") from exc
    out = {}
    for video, per in frames.items():
        if not video or video in (".", "..") or any(c in video for c in '/\\\0'):
            # the name of a file written into the destination, not a path out of it
            raise DataError(f"{path}: video name {video!r} is not a file name (no folders, "
                            "'/', '\\' or '..')")
        if sorted(per) != list(range(len(per))):
            raise DataError(f"{path}: frames of {video} are not 0..{len(per) - 1}: {sorted(per)}")
        out[video] = [per[f] for f in range(len(per))]
    return out


def _index_files(folder: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if not p.is_file() or p.suffix.lower() not in (".tif", ".tiff"):
            continue
        token = frame_token(p.stem)
        if isinstance(token, int):
            if token in out:
                raise DataError(f"{p}: same frame index {token} as {out[token].name}")
            out[token] = p
    return out


def _stack(paths: list[Path]) -> np.ndarray:
    first = read_image(paths[0])
    video = np.empty((len(paths),) + first.shape, dtype=first.dtype)
    video[0] = first
    for i, path in enumerate(paths[1:], start=1):
        frame = read_image(path)
        if frame.shape != first.shape or frame.dtype != first.dtype:
            raise DataError(
                f"{path}: {frame.shape} {frame.dtype} differs from {paths[0].name} "
                f"{first.shape} {first.dtype} of the same video"
            )
        video[i] = frame
    return video


def frames_to_videos(
    src: str | os.PathLike, dst: str | os.PathLike, csv: str | os.PathLike  # noqa: A002
) -> list[Path]:
    """Rebuild videos from frames using the relation file ``csv`` (see :func:`read_relation`);
    returns the video files written.

    If ``src`` has ``inputs/`` and/or ``labels/`` each is rebuilt into ``dst/<same>/<video>.tif``;
    otherwise ``src`` is a flat folder of frames (e.g. predictions) matched by the number after
    the last ``_`` and rebuilt into ``dst/<video>.tif``. Dtypes are kept, so
    ``frames_to_videos(videos_to_frames(v))`` gives ``v`` back exactly. Raises DataError naming
    a missing frame file, or a video file already in ``dst`` that no earlier ``prepare``
    wrote (it is never replaced).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DataError(f"{src}: frames folder not found")
    check_apart(dst, src, what="the videos", option="DST")
    relation = read_relation(csv)
    kinds = [k for k in _KINDS if (src / k).is_dir()]
    pairs = [(src / k, dst / k) for k in kinds] or [(src, dst)]
    indexed = []
    for folder, out in pairs:
        files = _index_files(folder)
        for video, indices in relation.items():
            missing = [i for i in indices if i not in files]
            if missing:
                raise DataError(
                    f"{folder}: no frame file with index {missing[0]} for video {video} "
                    f"({len(missing)} missing)"
                )
            indexed.append((out / f"{video}.tif", [files[i] for i in indices]))
    owned = OwnedFolder(dst, "prepare")
    _refuse_unrecorded(owned, [target for target, _ in indexed])
    owned.record([target.relative_to(dst).as_posix() for target, _ in indexed])
    return [write_tiff(target, _stack(frames)) for target, frames in indexed]


# --------------------------------------------------------------------------------------------
# validation clips


def make_clips(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    T: int,
    every: int = 1,
    layout: str = "auto",
    *,
    overwrite: bool = False,
) -> Path:
    """Write validation clips of ``T`` frames ending at every ``every``-th annotated frame.

    For each labelled video / CTC sequence of ``src`` and each selected annotated frame ``t``,
    writes ``dst/inputs/raw_NNN.tif`` = frames ``window_indices(t, T)`` as ``(T, H, W)`` and
    ``dst/labels/instance_ids_NNN.tif`` = labels at ``t`` ``(H, W)``, numbered from 000, plus
    ``dst/clips_relation.csv`` (``video;frame;index``, frame = t). Returns ``dst``. Refuses a
    ``dst`` that already holds frames unless ``overwrite``. Clips ending before frame ``T - 1``
    have their missing frames mirrored (as the temporal model pads a video's start); one
    warning says how many.
    """
    if T < 1 or every < 1:
        raise DlsuiteInputError(f"make_clips needs T >= 1 and every >= 1, got T={T}, every={every}")
    src, dst = Path(src), Path(dst)
    check_apart(dst, src, what="the clips", option="DST")
    rows, index, mirrored = [], 0, 0
    samples = checked_samples(src, layout=layout, require_labels=True)  # before writing
    owned = _clear_outputs(dst, _FRAME_OUTPUTS + (CLIPS_CSV,), overwrite)
    for sample in samples:
        loaded = load_sample(sample)
        numbers = range(index, index + len(loaded.annotated[::every]))
        _record(owned, [dst / kind / _frame_name(prefix, i) for i in numbers
                        for kind, prefix in (("inputs", INPUT_PREFIX), ("labels", LABEL_PREFIX))])
        for t in loaded.annotated[::every]:
            t = int(t)
            clip = loaded.image[window_indices(t, T)]
            write_tiff(dst / "inputs" / _frame_name(INPUT_PREFIX, index), clip, axes="TYX")
            write_tiff(dst / "labels" / _frame_name(LABEL_PREFIX, index), loaded.labels[t])
            rows.append((sample.name, t, index))
            index += 1
            mirrored += t < T - 1
    if not rows:
        raise DataError(f"{src}: no annotated frames to make clips from")
    if mirrored:
        logging.getLogger("dlsuite.data").warning(
            "%s: %d of %d clip(s) end before frame %d (T=%d); their missing earlier frames "
            "are padded from the video's first frames (mirrored), as the temporal model "
            "pads a video's start",
            src, mirrored, len(rows), T - 1, T)
    write_text_atomic(dst / CLIPS_CSV, _csv_text(_RELATION_HEADER, rows))
    return dst


# --------------------------------------------------------------------------------------------
# CTC


def _check_kind(kind: str) -> None:
    if kind not in ("GT", "RES"):
        raise DlsuiteInputError(f"unknown CTC kind {kind!r}; choose GT or RES")


def write_ctc_sequence(
    root: str | os.PathLike,
    sequence: str,
    labels: np.ndarray,
    *,
    images: np.ndarray | None = None,
    kind: str = "GT",
    annotated: Iterable[int] | None = None,
    parents: Mapping[int, int] | None = None,
) -> dict[str, Path]:
    """Write one CTC sequence under ``root``; returns the folders/files written by role.

    ``labels`` is ``(T, H, W)`` with temporally contiguous ids (see
    :func:`split_gapped_tracks`); its tracks are :func:`track_table` (with ``parents``).
    ``kind="GT"`` writes ``NN_GT`` (:func:`dlsuite.data.ctc.write_ground_truth`: TRA masks of
    all frames, ``man_track.txt``, SEG masks of the ``annotated`` frames, default all);
    ``kind="RES"`` writes ``NN_RES`` (:func:`dlsuite.data.ctc.write_result`).
    ``images`` (``(T, H, W)``), if given, go to ``NN/tTTT.tif``. Masks are uint16 when the ids
    fit, else uint32 (kept rather than refused: ids never wrap). The sequence's files are
    recorded in ``root``'s ``.dlsuite-prepare`` marker first.
    """
    _check_kind(kind)
    root = Path(root)
    labels = _as_video(np.asarray(labels))
    tracks = ctc.track_table(labels, parents)
    if images is not None:
        images = _as_video(np.asarray(images))
        if images.shape != labels.shape:
            raise DataError(f"sequence {sequence}: images {images.shape} vs labels {labels.shape}")
    folder = ctc.gt_folder(root, sequence) if kind == "GT" else ctc.res_folder(root, sequence)
    # recorded before writing, file by file (a file someone adds to a sequence folder is
    # not dlsuite's): a later --overwrite may remove exactly these
    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    if kind == "GT":
        tra = rel(ctc.tra_folder(folder))
        entries = [f"{rel(ctc.seg_folder(folder))}/{ctc.FRAME_KINDS['seg']}*.tif",
                   f"{tra}/{ctc.FRAME_KINDS['tra']}*.tif", rel(ctc.man_track_file(folder))]
    else:
        entries = [f"{rel(folder)}/{name}" for name in ctc.RES_FILES]
    if images is not None:
        entries.append(f"{sequence}/{ctc.FRAME_KINDS['image']}*.tif")
    OwnedFolder(root, "prepare").record(entries)
    out: dict[str, Path] = {}
    if images is not None:
        out["images"] = ctc.write_frames(root / sequence, "image", images)
    if kind == "GT":
        gt = ctc.write_ground_truth(ctc.gt_folder(root, sequence), labels, tracks,
                                    annotated=annotated, allow_wide=True)
        out.update(tra=ctc.tra_folder(gt), seg=ctc.seg_folder(gt),
                   track_file=ctc.man_track_file(gt))
    else:
        res = ctc.write_result(ctc.res_folder(root, sequence), labels, tracks, allow_wide=True)
        out.update(res=res, track_file=ctc.res_track_file(res))
    return out


def _label_videos(src: Path) -> tuple[list[Path], Path | None]:
    labels_dir = src / "labels" if (src / "labels").is_dir() else src
    inputs_dir = src / "inputs" if (src / "inputs").is_dir() else None
    files = sorted(
        (p for p in labels_dir.iterdir() if p.is_file() and p.suffix.lower() in (".tif", ".tiff")),
        key=lambda p: natural_key(p.stem),
    )
    if not files:
        raise DataError(f"{labels_dir}: no label videos (.tif) found")
    return files, inputs_dir


def videos_to_ctc(
    src: str | os.PathLike, dst: str | os.PathLike, kind: str = "GT", *, overwrite: bool = False
) -> dict[str, str]:
    """Export label videos as CTC sequences ``01, 02, ...`` (natural-sorted video order).

    ``src`` is a videos-layout folder (labels from ``labels/``, images from ``inputs/`` are
    written to ``NN/tTTT.tif`` when present) or a flat folder of label videos. Labels with a
    temporal gap are split into separate tracks, the later one the child of the earlier
    (CTC's link across a gap). Writes ``dst/sequences.csv``
    (``sequence;video``). Returns ``{sequence: video name}``. Refuses a ``dst`` that already
    holds CTC files unless ``overwrite`` (then they are deleted first).
    """
    _check_kind(kind)
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DataError(f"{src}: folder not found")
    check_apart(dst, src, what="the CTC sequences", option="DST")
    files, inputs_dir = _label_videos(src)
    pairs = [(path, _input_video(path, inputs_dir)) for path in files]  # before writing
    owned = _clear_outputs(dst, _ctc_outputs, overwrite)
    owned.record([SEQUENCES_CSV])
    mapping: dict[str, str] = {}
    for number, (path, image_path) in enumerate(pairs, start=1):
        labels = _as_video(read_image(path))
        images = None if image_path is None else _as_video(read_image(image_path))
        sequence = ctc.sequence_name(number, len(files))
        split, parents = split_gaps(labels)  # a gap keeps its object's identity
        write_ctc_sequence(dst, sequence, split, images=images, kind=kind, parents=parents)
        mapping[sequence] = path.stem
    write_text_atomic(dst / SEQUENCES_CSV, _csv_text(["sequence", "video"], mapping.items()))
    return mapping


def _input_video(labels: Path, inputs_dir: Path | None) -> Path | None:
    """The input video of the label video ``labels`` (same name in ``inputs_dir``), checked
    from the headers: integer labels, an input of the same shape. DataError naming the file,
    or the dataset when it is a frames dataset (2D images, no videos to export)."""
    from dlsuite.data.io import read_info

    info = read_info(labels)
    if info.dtype.kind not in "biu":
        raise DataError(f"{labels}: {info.dtype} labels; CTC sequences need integer instance "
                        f"labels: {INTEGER_LABELS_HINT}")
    if inputs_dir is None:
        return None
    candidates = [inputs_dir / f"{labels.stem}{s}" for s in (".tif", ".tiff")]
    image_path = next((c for c in candidates if c.is_file()), None)
    if image_path is None:
        if detect_layout(inputs_dir.parent) == "frames":
            raise DataError(f"{inputs_dir.parent}: a frames dataset (2D images raw_NNN.tif, "
                            "instance_ids_NNN.tif): CTC sequences are videos; rebuild them "
                            "with dlsuite prepare videos, then export those")
        raise DataError(f"{inputs_dir}: no input video {labels.stem}.tif for {labels}")
    shape = tuple(_as_video_shape(tuple(info.shape)))
    if tuple(_as_video_shape(read_shape(image_path))) != shape:
        raise DataError(f"{image_path}: shape differs from labels {labels} {shape}")
    return image_path


def _as_video_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) + shape if len(shape) == 2 else shape
