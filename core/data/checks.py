"""Pixel checks of a dataset (before training) or of prediction inputs (before predicting).

The header checks of :func:`dlsuite.data.layouts.check_dataset` cannot see what is wrong inside
the pixels. :func:`check_pixels` reads every sample of a dataset folder once and
:func:`check_array` checks one array already read; both return :class:`Findings`:

errors (bad input: the run must not start)
    a file that cannot be read to its end (truncated, corrupt, colour channels that differ),
    NaN/Inf pixels in an input image (unless the policy is ``"mask"``), negative label ids,
    a label image that looks like an intensity image (:func:`intensity_problem`: most
    neighbouring object pixels differ; inputs and labels swapped).
warnings (the run can start, but probably learns nothing useful from it)
    a constant input image or constant frames of a video; with ``training``: label images
    without any object (the patch sampler has nothing to aim at); masked NaN/Inf pixels;
    label images whose one object id covers several separate regions (a binary mask given
    as instance labels: touching-cell targets and SEG would see one object).
notes (how a file is read, when that is not obvious)
    colour files read as one grey channel, a 3D file in the frames layout read as a clip
    whose target is its last frame, a 2D image in the videos layout read as a one-frame video.

Messages name the file (a CTC frame file for a CTC sequence); warnings and notes about many
files are one line each with the first names. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import defaultdict
from pathlib import Path

import attrs
import numpy as np

from dlsuite.data.io import read_info
from dlsuite.data.layouts import (Sample, ctc_frame_files, ctc_seg_files, list_samples,
                                  load_sample)
from dlsuite.errors import DataError, DlsuiteInputError

__all__ = ["NONFINITE_POLICIES", "Findings", "check_pixels", "check_array", "check_inputs",
           "mask_warning", "one_id_many_regions", "intensity_problem", "boundary_share",
           "MAX_BOUNDARY_SHARE"]

#: What to do with NaN/Inf pixels of input images: refuse the input (default) or mask them
#: (the normalizers ignore them and set them to 0).
NONFINITE_POLICIES = ("refuse", "mask")
_LISTED = 3  # file names shown in a grouped warning or note


@attrs.define
class Findings:
    """What :func:`check_pixels` / :func:`check_array` found. ``errors`` are one line each,
    naming the file; ``warnings`` and ``notes`` are grouped, one line per kind."""

    errors: list[str] = attrs.field(factory=list)
    files: int = 0          # image files (or CTC frame files) whose pixels were read
    seconds: float = 0.0
    _warn: dict = attrs.field(factory=lambda: defaultdict(list))
    _note: dict = attrs.field(factory=lambda: defaultdict(list))

    @property
    def warnings(self) -> list[str]:
        return [_group(text, paths) for text, paths in self._warn.items()]

    @property
    def notes(self) -> list[str]:
        return [_group(text, paths) for text, paths in self._note.items()]

    def warn(self, text: str, path) -> None:
        self._warn[text].append(Path(path))

    def note(self, text: str, path) -> None:
        self._note[text].append(Path(path))


def _group(text: str, paths: list[Path]) -> str:
    if len(paths) == 1:
        return f"{paths[0]}: {text}"
    names = ", ".join(p.name for p in paths[:_LISTED])
    more = f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else ""
    return f"{len(paths)} files in {paths[0].parent} ({names}{more}): {text}"


# --------------------------------------------------------------------------------------------
# one array


def _frames(array: np.ndarray) -> np.ndarray:
    return array.reshape((-1,) + array.shape[-2:]) if array.ndim >= 2 else array[None, None]


def _nonfinite(array: np.ndarray, path: Path, frame_paths, nonfinite: str,
               out: Findings) -> None:
    if array.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(array)
    count = int(np.count_nonzero(bad))
    if not count:
        return
    position = np.unravel_index(int(np.argmax(bad)), array.shape)
    where = _frame_path(path, frame_paths, position)
    if nonfinite == "mask":
        out.warn("NaN/Inf pixels are masked (ignored by the normalizer and set to 0; "
                 "data.nonfinite_pixels is \"mask\")", where)
        return
    yx = f"y={position[-2]}, x={position[-1]}" if array.ndim >= 2 else ""
    if array.ndim == 3 and not frame_paths:
        yx = f"frame {position[0]}, {yx}"
    out.errors.append(
        f"{where}: {count} NaN/Inf pixel(s) (first at {yx}); they would turn the whole "
        "normalised image into NaN. Fix the image, or set $.data.nonfinite_pixels to "
        "\"mask\" to ignore them (they become 0 after normalisation)")


def _frame_path(path: Path, frame_paths, position) -> Path:
    """The file holding frame ``position[0]`` of a CTC sequence, else ``path``."""
    if frame_paths and len(position) == 3 and position[0] < len(frame_paths):
        return Path(frame_paths[position[0]])
    return path


def _constant(array: np.ndarray, path: Path, frame_paths, out: Findings) -> None:
    if array.size == 0:
        return
    frames = _frames(array).reshape(_frames(array).shape[0], -1)
    # a frame of NaN only: reported as such by _nonfinite, not as NumPy's "All-NaN slice"
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanmin(frames, axis=1) if array.dtype.kind == "f" else frames.min(axis=1)
        hi = np.nanmax(frames, axis=1) if array.dtype.kind == "f" else frames.max(axis=1)
    flat = (lo == hi) | np.isnan(lo.astype(np.float64))
    if not flat.any():
        return
    if flat.all():
        value = lo[0]
        out.warn(f"constant image (every pixel {value:g}): it carries no signal", path)
    elif frame_paths:
        for t in np.flatnonzero(flat):
            out.warn("constant frame: it carries no signal", frame_paths[int(t)])
    else:
        frames_txt = ", ".join(str(int(t)) for t in np.flatnonzero(flat)[:5])
        out.warn(f"constant frame(s) {frames_txt}{' ...' if flat.sum() > 5 else ''} "
                 f"({int(flat.sum())} of {flat.size}): they carry no signal", path)


def check_array(array: np.ndarray, path: str | os.PathLike, *, nonfinite: str = "refuse",
                frame_paths=None, findings: Findings | None = None) -> Findings:
    """Check the pixels of one input image or video ``array`` read from ``path``: NaN/Inf
    pixels (an error unless ``nonfinite == "mask"``: then a warning) and constant images or
    frames (a warning). ``frame_paths`` names the file of each frame (CTC sequences).
    Returns ``findings`` (a new :class:`Findings` when None) with what was found added."""
    if nonfinite not in NONFINITE_POLICIES:
        raise DlsuiteInputError(f"nonfinite_pixels must be one of {NONFINITE_POLICIES}, "
                                f"got {nonfinite!r}")
    out = findings if findings is not None else Findings()
    array = np.asarray(array)
    _nonfinite(array, Path(path), frame_paths, nonfinite, out)
    _constant(array, Path(path), frame_paths, out)
    return out


# --------------------------------------------------------------------------------------------
# a dataset


#: A label image holding one object id in at least this many separate regions of at least
#: :data:`_MASK_REGION` pixels is probably a binary mask, not instance labels.
_MASK_REGIONS, _MASK_REGION = 2, 16
_MASK_WARNING = ("one object id in {n}+ separate regions: a binary mask (e.g. 0/255) rather "
                 "than instance labels? Instance targets (distance, contours), SEG and F1 "
                 "count all those cells as one object; give each cell its own id (e.g. "
                 "skimage.measure.label)")


#: Share of neighbouring object pixels (pairs of pixels, both non-zero) holding different
#: values above which a label image is taken for an intensity image: label images stay well
#: under 1 % even with many touching objects, intensity images are mostly above it. Judged
#: on at least :data:`_MIN_PAIRS` such pairs.
MAX_BOUNDARY_SHARE, _MIN_PAIRS = 0.5, 64


def boundary_share(frame: np.ndarray) -> tuple[float, int]:
    """``(share, pairs)``: of the ``pairs`` of neighbouring pixels of ``frame`` that are both
    non-zero, the share whose values differ."""
    diff = total = 0
    for a, b in ((frame[:, 1:], frame[:, :-1]), (frame[1:, :], frame[:-1, :])):
        both = (a != 0) & (b != 0)
        diff += int(np.count_nonzero((a != b) & both))
        total += int(np.count_nonzero(both))
    return (diff / total if total else 0.0), total


def intensity_problem(frame: np.ndarray) -> str | None:
    """Why the 2D integer ``frame`` looks like an intensity image rather than instance labels
    (most neighbouring non-zero pixels differ, see :data:`MAX_BOUNDARY_SHARE`), or None."""
    share, pairs = boundary_share(frame)
    if pairs < _MIN_PAIRS or share <= MAX_BOUNDARY_SHARE:
        return None
    return (f"{share:.0%} of its neighbouring object pixels differ (a label image keeps one "
            "id across each object): it looks like an intensity image")


def mask_warning() -> str:
    """The warning for a label image :func:`one_id_many_regions` flags (after its path)."""
    return _MASK_WARNING.format(n=_MASK_REGIONS)


def one_id_many_regions(frame: np.ndarray) -> bool:
    """True when the non-zero pixels of ``frame`` share one id and fall into at least
    :data:`_MASK_REGIONS` separate (8-connected) regions of :data:`_MASK_REGION` pixels."""
    from scipy import ndimage

    foreground = frame != 0
    ids = frame[foreground]
    if ids.size < _MASK_REGIONS * _MASK_REGION or ids.min() != ids.max():
        return False
    regions, _ = ndimage.label(foreground, structure=np.ones((3, 3), bool))
    sizes = np.bincount(regions.ravel())[1:]
    return int((sizes >= _MASK_REGION).sum()) >= _MASK_REGIONS


def _label_checks(sample: Sample, labels: np.ndarray, annotated: np.ndarray, out: Findings,
                  empty: list[Path], total: list[int]) -> None:
    seg_paths = [p for _, p in ctc_seg_files(sample.labels)] if sample.layout == "ctc" else None
    swapped = False  # one error per sample, not one per frame
    for n, t in enumerate(annotated):
        frame = labels[int(t)]
        path = seg_paths[n] if seg_paths else sample.labels
        total[0] += 1
        if frame.size and np.issubdtype(frame.dtype, np.signedinteger) and frame.min() < 0:
            out.errors.append(f"{path}: negative label ids (smallest {int(frame.min())}); "
                              "labels are 0 (background) or positive object ids")
        elif not frame.any():
            empty.append(Path(path))
        elif (frame.ndim == 2 and not swapped
              and (problem := intensity_problem(frame)) is not None):
            swapped = True
            where = f" (frame {int(t)})" if labels.shape[0] > 1 and not seg_paths else ""
            out.errors.append(f"{path}{where}: not instance labels: {problem}; are the "
                              "inputs and labels swapped?")
        elif frame.ndim == 2 and one_id_many_regions(frame):
            out.warn(mask_warning(), path)


def _reading_notes(sample: Sample, out: Findings) -> None:
    """How the sample's input file is read, when that is not obvious (headers only)."""
    if sample.layout == "ctc":
        frames = ctc_frame_files(sample.image)
        path = frames[0][1] if frames else None
    else:
        path = sample.image
    if path is None:
        return
    try:
        info = read_info(path)
    except DataError:
        return  # reported when the pixels are read
    if info.reading:
        out.note(f"{info.reading}", path)
    if sample.layout == "frames" and len(info.shape) == 3:
        out.note(f"a {info.shape[0]}-frame stack in the frames layout: read as a clip whose "
                 "label image is that of its last frame", path)
    if sample.layout == "videos" and len(info.shape) == 2:
        out.note("a 2D image in the videos layout: read as a one-frame video", path)


def check_pixels(folder: str | os.PathLike, layout: str = "auto", *, nonfinite: str = "refuse",
                 training: bool = False, require_labels: bool = True) -> Findings:
    """Read every sample of the dataset ``folder`` once and check its pixels (see the module
    docstring). ``training``: also warn about label images without any object. A folder
    whose listing fails returns that failure as its only error (the header checks of
    :func:`dlsuite.data.layouts.check_dataset` report it in more detail)."""
    start = time.perf_counter()
    out = Findings()
    try:
        samples = list_samples(folder, layout, require_labels=require_labels)
    except DlsuiteInputError as exc:
        out.errors.append(str(exc))
        return out
    empty: list[Path] = []
    total = [0]
    for sample in samples:
        _reading_notes(sample, out)
        try:
            loaded = load_sample(sample)
        except DataError as exc:
            out.errors.append(str(exc))
            continue
        frame_paths = ([p for _, p in ctc_frame_files(sample.image)]
                       if sample.layout == "ctc" else None)
        out.files += len(frame_paths) if frame_paths else 1 + (sample.labels is not None)
        image = loaded.image[0] if loaded.image.shape[0] == 1 else loaded.image
        check_array(image, sample.image, nonfinite=nonfinite, frame_paths=frame_paths,
                    findings=out)
        if loaded.labels is not None:
            _label_checks(sample, loaded.labels, loaded.annotated, out, empty, total)
    if training and empty:
        if len(empty) == total[0]:
            out.warn(f"none of the {total[0]} label images holds an object (all background): "
                     "the patch sampler has nothing to aim at and the model can only learn "
                     "background", Path(folder))
        else:
            for path in empty:
                out.warn(f"label image(s) without any object ({len(empty)} of {total[0]}): "
                         "patches from them show background only", path)
    out.seconds = time.perf_counter() - start
    return out


def check_inputs(items, nonfinite: str = "refuse") -> Findings:
    """Read and check every prediction input (objects with ``path`` and ``load()``, as
    :func:`dlsuite.predict.list_inputs` returns them) once, before anything is written.
    Raises DataError listing every error (unreadable or truncated files, NaN/Inf pixels
    unless ``nonfinite == "mask"``); logs the warnings; returns the findings."""
    import logging

    start = time.perf_counter()
    out = Findings()
    for item in items:
        try:
            check_array(item.load(), item.path, nonfinite=nonfinite, findings=out)
            reading = read_info(item.path).reading if Path(item.path).is_file() else None
            if reading:
                out.note(reading, item.path)
        except DataError as exc:
            out.errors.append(str(exc))
        out.files += 1
    out.seconds = time.perf_counter() - start
    if out.errors:
        head = "" if len(out.errors) == 1 else f"{len(out.errors)} input problems:\n  "
        raise DataError(head + "\n  ".join(out.errors))
    log = logging.getLogger("dlsuite.data")
    for warning in out.warnings:
        log.warning("%s", warning)
    for note in out.notes:  # how files are read when not as stored (a Z-stack as a video)
        log.info("%s", note)
    log.info("pixels of %d input(s) checked in %.1f s", out.files, out.seconds)
    return out
