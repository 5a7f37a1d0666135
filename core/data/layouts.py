"""Dataset layouts behind one sample model.

Three layouts are understood:

``frames``
    ``inputs/raw_NNN.tif`` + ``labels/instance_ids_NNN.tif``, paired by the token after the
    last ``_`` (numeric tokens compare as numbers, so ``raw_7`` pairs ``instance_ids_007``);
    or the same names in both folders (``inputs/a.tif`` + ``labels/a.tif``), paired by name.
    An input is a 2D image, or a ``(T, H, W)`` clip whose target is a 2D label image of its
    last frame (validation clips made by ``dlsuite prepare clips``).
``videos``
    ``inputs/<name>.tif`` + ``labels/<name>.tif`` (same stem, T frames each).
``ctc``
    Cell Tracking Challenge sequences ``NN/tNNN.tif`` with sparse ground truth
    ``NN_GT/SEG/man_segNNN.tif`` (and ``NN_GT/TRA/`` for tracking, not read here); names
    follow :mod:`dlsuite.data.ctc` (matched in any case).

:func:`detect_layout` decides between them (``layout: auto``), :func:`list_samples` lists the
:class:`Sample` s in a deterministic (natural-sorted) order, :func:`check_dataset` reports
every problem it can find from file headers alone, and
:func:`dlsuite.data.sample_loading.load_sample` loads one as ``(T, H, W)`` arrays with the
indices of annotated frames. Label dtypes are kept as stored (no cast, no
wrap at 256). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import attrs
import numpy as np

from dlsuite.data import ctc
from dlsuite.data.io import ImageInfo, is_image_file, read_info, unread_images, unread_note
from dlsuite.errors import DataError, DlsuiteInputError

__all__ = [
    "INPUT_PREFIX",
    "LABEL_PREFIX",
    "LAYOUTS",
    "LoadedSample",
    "Sample",
    "check_dataset",
    "checked_samples",
    "ctc_frame_files",
    "frame_size",
    "ctc_seg_files",
    "detect_layout",
    "frame_token",
    "list_samples",
    "natural_key",
    "whole_number_labels",
]

LAYOUTS = ("frames", "videos", "ctc")
INPUT_PREFIX = "raw_"
LABEL_PREFIX = "instance_ids_"
_MAX_LISTED = 10  # names listed in one message before "... and N more"

_EXPECTED = (
    "expected one of: frames layout (inputs/raw_NNN.tif + labels/instance_ids_NNN.tif, or "
    "the same names in both), "
    "videos layout (inputs/<name>.tif + labels/<name>.tif), or CTC sequences "
    "(NN/tNNN.tif + NN_GT/SEG/man_segNNN.tif)"
)


@attrs.frozen
class Sample:
    """One input of a dataset: a 2D frame (or clip), a video, or a CTC sequence.

    ``image`` is the image TIFF (frames/videos) or the sequence folder (ctc); ``labels`` is the
    label TIFF, the ``NN_GT/SEG`` folder (ctc), or None when unlabelled.
    """

    name: str
    layout: str
    image: Path
    labels: Path | None


@attrs.frozen(eq=False)
class LoadedSample:
    """Pixels of a :class:`Sample`.

    ``image`` is ``(T, H, W)`` in its native dtype (T=1 for a 2D frame); ``labels`` is
    ``(T, H, W)`` integer (stored dtype kept) or None; ``annotated`` holds the indices of the
    frames that carry labels (all frames for frames/videos, the last frame for a frames-layout
    clip, the ``man_seg`` frames for CTC; the other label frames are zeros).
    """

    name: str
    image: np.ndarray
    labels: np.ndarray | None
    annotated: np.ndarray


# --------------------------------------------------------------------------------------------
# small helpers


def natural_key(name: str) -> tuple:
    """Sort key comparing digit runs as numbers: ``raw_2`` < ``raw_10``; ties by raw text."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts), name


def frame_token(stem: str) -> int | str:
    """The pairing token of a frames-layout file stem: the text after the last ``_``, as an int
    when it is all digits (``raw_017`` -> 17)."""
    token = stem.rsplit("_", 1)[-1]
    return int(token) if token.isdigit() else token


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and is_image_file(p)]
    return sorted(files, key=lambda p: natural_key(p.name))


def _unread_hint(folder: Path) -> str:
    """``"; it holds ... a.jpg; convert them to TIFF ..."`` when ``folder`` holds images in
    a format dlsuite does not read (the likely missing partners), else ``""``."""
    unread = unread_images(folder)
    if not unread:
        return ""
    return "; " + unread_note(unread, "it holds {n} file(s) in a format dlsuite does not read")


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f", ... and {more} more" if more > 0 else "")


def ctc_frame_files(sequence: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(time index, path)`` of the ``tNNN.tif`` files of a CTC sequence folder, by index
    (:func:`dlsuite.data.ctc.list_frames` as pairs)."""
    return list(ctc.list_frames(sequence, "image").items())


def ctc_seg_files(seg_folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(time index, path)`` of the ``man_segNNN.tif`` files of a ``NN_GT/SEG`` folder."""
    return list(ctc.list_frames(seg_folder, "seg").items())


def _ctc_sequences(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    seqs = [p for p in folder.iterdir() if p.is_dir() and ctc.folder_sequence(p.name, "images")]
    return sorted((p for p in seqs if ctc_frame_files(p)), key=lambda p: natural_key(p.name))


# --------------------------------------------------------------------------------------------
# detection


def _is_frames(inputs: list[Path], labels: list[Path]) -> bool:
    if not all(p.stem.startswith(INPUT_PREFIX) for p in inputs):
        return False
    input_stems = {p.stem for p in inputs}
    return not any(p.stem in input_stems for p in labels)


def detect_layout(folder: str | os.PathLike) -> str:
    """Return ``"frames"``, ``"videos"`` or ``"ctc"`` for a dataset folder.

    ``inputs/`` whose files are all ``raw_*`` and whose labels (if any) do not share their
    names is ``frames``; any other non-empty ``inputs/`` is ``videos``; numbered sequence
    folders holding ``tNNN.tif`` files are ``ctc``. Raises DataError naming the folder and the
    expected layouts otherwise.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    inputs = _images(root / "inputs")
    if inputs:
        return "frames" if _is_frames(inputs, _images(root / "labels")) else "videos"
    if _ctc_sequences(root):
        return "ctc"
    if (root / "inputs").is_dir():
        raise DataError(f"{root / 'inputs'}: no input images (.tif, .tiff, .png) found"
                        + _unread_hint(root / "inputs"))
    nested = _dataset_subfolders(root)
    hint = (f"; its subfolder(s) {', '.join(p.name + '/' for p in nested)} hold a dataset: "
            "give one of them" if nested else "")
    raise DataError(f"{root}: no dataset layout found; {_EXPECTED}{hint}")


def _dataset_subfolders(root: Path) -> list[Path]:
    """The direct subfolders of ``root`` that hold a dataset layout (e.g. ``ctc/`` and
    ``videos/`` of a split folder), for the hint of :func:`detect_layout`."""
    return [p for p in sorted(root.iterdir(), key=lambda p: natural_key(p.name))
            if p.is_dir() and (_images(p / "inputs") or _ctc_sequences(p))]


def _resolve_layout(folder: Path, layout: str) -> str:
    if layout == "auto":
        return detect_layout(folder)
    if layout not in LAYOUTS:
        raise DlsuiteInputError(f"unknown layout {layout!r}; choose auto, " + ", ".join(LAYOUTS))
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    return layout


# --------------------------------------------------------------------------------------------
# listing: each scanner returns (samples, problems)


def _pair(
    inputs: list[Path], labels: list[Path], key, folder: Path, require_labels: bool
) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    problems: list[str] = []

    def index(files: list[Path]) -> dict:
        out: dict = {}
        for p in files:
            k = key(p)
            if k in out:
                problems.append(f"{p}: same pairing key as {out[k].name}")
            else:
                out[k] = p
        return out

    by_in, by_lab = index(inputs), index(labels)
    if require_labels:
        lonely = [by_in[k].name for k in by_in if k not in by_lab]
        if lonely:
            problems.append(
                f"{folder / 'labels'}: no label for {len(lonely)} input(s): {_listing(lonely)}"
                + _unread_hint(folder / "labels"))
        orphans = [by_lab[k].name for k in by_lab if k not in by_in]
        if orphans:
            problems.append(
                f"{folder / 'inputs'}: no input for {len(orphans)} label file(s): "
                f"{_listing(orphans)}" + _unread_hint(folder / "inputs"))
    return [(p, by_lab.get(k)) for k, p in by_in.items()], problems


def _same_stems(inputs: list[Path], labels: list[Path]) -> bool:
    """Frames named alike in ``inputs/`` and ``labels/`` (``a.tif`` + ``a.tif``) pair by name,
    as videos do; so do unlabelled inputs not all named ``raw_NNN``."""
    if not labels:
        return not all(p.stem.startswith(INPUT_PREFIX) for p in inputs)
    return bool({p.stem for p in inputs} & {p.stem for p in labels})


def _misnamed(files: list[Path], prefix: str, what: str, folder: Path) -> list[str]:
    """One problem listing the ``files`` not named ``<prefix>NNN`` (none: no problem)."""
    bad = [p.name for p in files if not p.stem.startswith(prefix)]
    if not bad:
        return []
    return [f"{folder}: {len(bad)} {what} file(s) named neither {prefix}NNN nor like the "
            f"{'labels' if what == 'input' else 'inputs'}: {_listing(bad)} (frames layout: "
            f"inputs/raw_NNN + labels/instance_ids_NNN, or the same names in both)"]


def _scan_files(root: Path, layout: str, require_labels: bool):
    inputs = _images(root / "inputs")
    if not inputs:
        return [], [f"{root / 'inputs'}: no input images (.tif, .tiff, .png) found"
                    + _unread_hint(root / "inputs")]
    labels = _images(root / "labels")
    if require_labels and not (root / "labels").is_dir():
        return [], [f"{root / 'labels'}: labels folder not found"]
    if layout == "frames" and not _same_stems(inputs, labels):
        problems = _misnamed(inputs, INPUT_PREFIX, "input", root / "inputs")
        problems += _misnamed(labels, LABEL_PREFIX, "label", root / "labels")
        pairs, more = _pair(inputs, labels, lambda p: frame_token(p.stem), root, require_labels)
    else:
        problems = []
        pairs, more = _pair(inputs, labels, lambda p: p.stem, root, require_labels)
    samples = [Sample(img.stem, layout, img, lab) for img, lab in pairs]
    return samples, problems + more


def _scan_ctc(root: Path, layout: str, require_labels: bool):
    seqs = _ctc_sequences(root)
    if not seqs:
        return [], [f"{root}: no CTC sequence folders (NN/tNNN.tif) found"]
    samples, problems = [], []
    for seq in seqs:
        seg = ctc.seg_folder(ctc.gt_folder(root, seq.name))
        has_seg = seg.is_dir() and bool(ctc_seg_files(seg))
        if require_labels and not has_seg:
            problems.append(f"{seg}: no man_segNNN.tif ground truth for sequence {seq.name}")
        samples.append(Sample(seq.name, "ctc", seq, seg if has_seg else None))
    return samples, problems


_SCANNERS = {"frames": _scan_files, "videos": _scan_files, "ctc": _scan_ctc}


def _scan(folder, layout: str, require_labels: bool) -> tuple[list[Sample], list[str]]:
    root = Path(folder)
    resolved = _resolve_layout(root, layout)
    samples, problems = _SCANNERS[resolved](root, resolved, require_labels)
    return sorted(samples, key=lambda s: natural_key(s.name)), problems


def _raise(problems: list[str]) -> None:
    if problems:
        head = problems[0] if len(problems) == 1 else f"{len(problems)} data problems:\n  "
        raise DataError(head if len(problems) == 1 else head + "\n  ".join(problems))


def list_samples(
    folder: str | os.PathLike, layout: str = "auto", require_labels: bool = True
) -> list[Sample]:
    """List the samples of a dataset folder, sorted naturally by name.

    Raises DataError (naming files) when the folder is missing, holds no inputs, or — with
    ``require_labels`` — has inputs without labels or labels without inputs. Only names are
    checked; see :func:`check_dataset` for shapes and dtypes.
    """
    samples, problems = _scan(folder, layout, require_labels)
    _raise(problems)
    return samples


# --------------------------------------------------------------------------------------------
# per-sample consistency (shared by check_dataset on headers and load_sample on pixels)


def _video_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) + tuple(shape) if len(shape) == 2 else tuple(shape)


def _label_dtype_problem(path: Path, dtype: np.dtype) -> list[str]:
    """Integer and float labels pass (float ones are checked for whole numbers once their
    pixels are read: :func:`whole_number_labels`); any other type is a problem."""
    if dtype.kind in "biuf":
        return []
    return [f"{path}: {dtype} labels; instance labels must be whole-number ids (an integer "
            "type, or floats holding whole numbers)"]


#: Float labels are read as this integer type when every value is a whole number in its range.
_FLOAT_LABELS_AS = np.int32
#: How to turn float labels into integer ones, for the messages that refuse them.
INTEGER_LABELS_HINT = "save them as 16-bit integers (e.g. Fiji: Image > Type > 16-bit)"


def whole_number_labels(path: str | os.PathLike, labels: np.ndarray) -> np.ndarray:
    """``labels`` as read, or float labels (e.g. a label image Fiji saved as 32-bit) as
    int32 when every value is a whole number in its range, as ``dlsuite evaluate`` takes
    them. DataError naming ``path`` and a value that is not."""
    if labels.dtype.kind != "f":
        return labels
    limits = np.iinfo(_FLOAT_LABELS_AS)
    bad = ~np.isfinite(labels) | (labels != np.round(labels))
    if bad.any():
        value = labels[bad].flat[0]
        raise DataError(f"{path}: float labels ({labels.dtype}) holding {float(value):g}, not a "
                        "whole-number id; instance labels are whole numbers, 0 for background: "
                        f"{INTEGER_LABELS_HINT}")
    far = (labels < limits.min) | (labels > limits.max)
    if far.any():
        value = labels[far].flat[0]
        raise DataError(f"{path}: float labels ({labels.dtype}) holding {float(value):g}, "
                        "beyond the ids float labels are read as (whole numbers up to "
                        f"{limits.max}): relabel them, or save them as integers")
    return labels.astype(_FLOAT_LABELS_AS)


def _file_problems(sample: Sample, image: ImageInfo, labels: ImageInfo | None) -> list[str]:
    problems: list[str] = []
    video_shape = _video_shape(image.shape)
    ok_shapes = {video_shape, video_shape[1:]} if video_shape[0] == 1 else {video_shape}
    expected = "the image shape"
    if sample.layout == "frames" and video_shape[0] > 1:  # a clip: target of its last frame
        ok_shapes.add(video_shape[1:])
        expected += f" or {video_shape[1:]} (the clip's last frame)"
    if labels is not None:
        problems += _label_dtype_problem(sample.labels, labels.dtype)
        if labels.shape not in ok_shapes:
            problems.append(
                f"{sample.labels}: label shape {labels.shape} does not match image "
                f"{sample.image.name} shape {image.shape} (expected {expected})"
            )
    return problems


def _ctc_problems(sample: Sample) -> list[str]:
    problems: list[str] = []
    frames = ctc_frame_files(sample.image)
    shapes: dict[tuple, Path] = {}
    for _, path in frames:
        try:
            shape = read_info(path).shape
        except DataError as exc:
            problems.append(str(exc))
            continue
        if len(shape) != 2:
            problems.append(f"{path}: CTC frame must be 2D, got shape {shape}")
        shapes.setdefault(shape, path)
    if len(shapes) > 1:
        desc = ", ".join(f"{p.name}: {s}" for s, p in shapes.items())
        problems.append(f"{sample.image}: frames differ in shape ({desc})")
    frame_shape = next(iter(shapes), None)
    known = {i for i, _ in frames}
    if sample.labels is not None:
        for index, path in ctc_seg_files(sample.labels):
            try:
                info = read_info(path)
            except DataError as exc:
                problems.append(str(exc))
                continue
            problems += _label_dtype_problem(path, info.dtype)
            if index not in known:
                problems.append(f"{path}: no frame {ctc.frame_name('image', index)} in "
                                f"{sample.image}")
            if frame_shape is not None and info.shape != frame_shape:
                problems.append(
                    f"{path}: label shape {info.shape} does not match frame shape {frame_shape}"
                )
    return problems


def frame_size(sample: Sample) -> tuple[int, int] | None:
    """``(H, W)`` of the frames of ``sample`` read from a header (the first frame of a CTC
    sequence); None when it cannot be read (the dataset checks report that)."""
    try:
        if sample.layout == "ctc":
            frames = ctc_frame_files(sample.image)
            shape = read_info(frames[0][1]).shape if frames else None
        else:
            shape = read_info(sample.image).shape
    except DataError:
        return None
    return None if shape is None else (int(shape[-2]), int(shape[-1]))


def _sample_problems(sample: Sample) -> list[str]:
    if sample.layout == "ctc":
        return _ctc_problems(sample)
    try:
        image = read_info(sample.image)
        labels = read_info(sample.labels) if sample.labels is not None else None
    except DataError as exc:
        return [str(exc)]
    return _file_problems(sample, image, labels)


def checked_samples(
    folder: str | os.PathLike, layout: str = "auto", require_labels: bool = True
) -> list[Sample]:
    """:func:`list_samples` with every sample's headers checked too (shapes, dtypes,
    readability, as :func:`check_dataset`): DataError listing every problem, each naming its
    file, before a caller writes anything from the samples."""
    samples, problems = _checked_scan(folder, layout, require_labels)
    _raise(problems)
    return samples


def _checked_scan(folder, layout: str, require_labels: bool) -> tuple[list[Sample], list[str]]:
    """The samples of ``folder`` and the problems of their names and headers."""
    samples, problems = _scan(folder, layout, require_labels)
    for sample in samples:
        problems += _sample_problems(sample)
    return samples, problems


def check_dataset(
    folder: str | os.PathLike, layout: str = "auto", require_labels: bool = True
) -> list[str]:
    """All problems of a dataset folder, each naming the file; an empty list means usable.

    Reports: missing folder, no inputs, unknown layout, unpaired inputs/labels, unreadable
    images, image/label shape mismatches and labels of a type that cannot hold ids (float
    labels pass: their values are checked by :func:`load_sample`). Reads headers only.
    """
    try:
        return _checked_scan(folder, layout, require_labels)[1]
    except DlsuiteInputError as exc:
        return [str(exc)]


def __getattr__(name: str):
    """``load_sample`` (:mod:`dlsuite.data.sample_loading`, which imports this module) is
    still importable from here, where it always was."""
    if name == "load_sample":
        from dlsuite.data.sample_loading import load_sample

        return load_sample
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
