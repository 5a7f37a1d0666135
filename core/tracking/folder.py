"""Track every label (or mask) video of a folder into CTC result folders (``dlsuite track``).

Every video is checked before anything is written: its header (a video, integer labels) and
its pixels (:func:`label_problem`: an intensity image, where every grey value would become an
object and tracking would run for hours, is refused in a fraction of a second).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlsuite.data.checks import MAX_BOUNDARY_SHARE, boundary_share
from dlsuite.data.ctc import RES_FILES, res_folder, sequence_name, write_result
from dlsuite.errors import DataError
from dlsuite.folder_lock import LazyLock

from .gapfill import gap_fill, gap_fill_problem
from .tracker import linking_problem, track

__all__ = ["track_folder", "label_problem"]

#: The file relating each result folder to its video.
SEQUENCES_CSV = "sequences.csv"
#: Smallest mean object size (pixels) of a label image.
MIN_OBJECT_PIXELS = 4


def _videos(input_dir: Path) -> list[Path]:
    """The TIFF/PNG files of ``input_dir``; files in formats dlsuite does not read are named
    (a warning, or the error when there is nothing else)."""
    from dlsuite.data.io import is_image_file, unread_images, warn_or_refuse_unread

    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: input folder not found")
    files = sorted(p for p in input_dir.iterdir() if p.is_file() and is_image_file(p))
    warn_or_refuse_unread(
        input_dir, unread_images(input_dir), found=bool(files),
        skipped="{n} file(s) in a format dlsuite does not read are not tracked",
        nothing="no TIFF/PNG video to track, only {n} file(s) in a format dlsuite does not "
                "read")
    if not files:
        raise DataError(f"{input_dir}: no TIFF/PNG videos in this folder")
    return files


def label_problem(video: np.ndarray, path: str | os.PathLike) -> str | None:
    """Why ``video`` (``(T, H, W)``) is not a label or 0/1 mask video, naming ``path``, or
    None when it is one. Refused: non-integer values, negative ids, and intensity images
    (checked on the first, middle and last frame: most neighbouring non-zero pixels differ,
    or the ids are so many that objects would average under :data:`MIN_OBJECT_PIXELS`
    pixels)."""
    if not (np.issubdtype(video.dtype, np.integer) or video.dtype == np.bool_):
        return (f"{path}: expected a label or 0/1 mask video (integers), got {video.dtype} "
                "values: is it an intensity image?")
    if video.size and video.min() < 0:
        return f"{path}: negative labels (smallest {int(video.min())})"
    for t in sorted({0, video.shape[0] // 2, video.shape[0] - 1}):
        frame = video[t]
        ids = np.unique(frame)
        n_ids = int(np.count_nonzero(ids))
        if n_ids <= 1:
            continue
        share, _ = boundary_share(frame)
        pixels = int(np.count_nonzero(frame))
        if share > MAX_BOUNDARY_SHARE or n_ids * MIN_OBJECT_PIXELS > pixels:
            return (f"{path}: not a label video: frame {t} has {n_ids} distinct values and "
                    f"{share:.0%} of its neighbouring object pixels differ (a label image "
                    "keeps one id across each object); it looks like an intensity image. "
                    "dlsuite track takes label or 0/1 mask videos, e.g. the labels/ that "
                    "dlsuite predict writes")
    return None


def _label_video(path: Path) -> np.ndarray:
    """The video at ``path`` as read; float labels (Fiji's 32-bit) as integers when every
    value is a whole number (DataError naming a value that is not), as ``dlsuite evaluate``
    takes them."""
    from dlsuite.data.io import read_image
    from dlsuite.data.layouts import whole_number_labels

    return whole_number_labels(path, read_image(path))


def _instances(video: np.ndarray, path: Path, fill: bool, sigma: float, min_size: int):
    """Per-frame instances: 0/1 masks are gap-filled (``fill``) or split into 8-connected
    components; label videos are used as they are (checked by :func:`label_problem`)."""
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
    overwrite: bool = False,
) -> list[dict]:
    """Track each video ``(T, H, W)`` of ``input_dir`` (sorted by name) and write CTC folders
    ``output_dir/01_RES``, ``02_RES``, ... plus ``output_dir/sequences.csv`` (sequence,
    video). 0/1 mask videos become per-frame instances first (temporal gap filling with
    ``fill_gaps``; objects under ``min_size`` px dropped). Returns one summary dict per video.
    Raises DataError naming the file, before anything is written, for a missing folder, an
    unreadable file, a 2D image or a video that is not a label video (:func:`label_problem`),
    and DlsuiteInputError for an ``output_dir`` that is ``input_dir``, inside it or holds it.
    ``output_dir`` follows the reuse rule of :class:`~dlsuite.ownership.OwnedFolder` (marker
    ``.dlsuite-track``): new or empty, or holding an earlier ``dlsuite track``'s results,
    which ``overwrite`` replaces (DlsuiteInputError naming the folder otherwise, before
    anything is written), and not while another process tracks into it (DlsuiteInputError
    naming the folder and that process; :mod:`dlsuite.folder_lock`).
    """
    from dlsuite.data.io import read_info
    from dlsuite.ownership import OwnedFolder, check_apart

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    for problem in (linking_problem(max_distance, min_overlap, gap_closing),
                    gap_fill_problem(sigma, min_size)):
        if problem is not None:  # the cheapest refusal: before any file is read
            raise DataError(problem)
    check_apart(output_dir, input_dir, what="tracking results", option="OUTPUT_DIR")
    files = _videos(input_dir)
    for path in files:  # headers first: the cheapest refusals
        info = read_info(path)
        if len(info.shape) != 3:
            raise DataError(f"{path}: expected a video (T, H, W), got a 2D image {info.shape}")
        if info.dtype.kind not in "biuf":  # floats: whole numbers, checked once read
            raise DataError(label_problem(np.zeros((0, 0, 0), info.dtype), path))
    for path in files:
        problem = label_problem(_label_video(path), path)
        if problem is not None:
            raise DataError(problem)
    # each NN_RES folder's own files, not the folder: a file the user added there stays
    written = [f"{res_folder(output_dir, sequence_name(n)).name}/{name}"
               for n in range(1, len(files) + 1) for name in RES_FILES]
    # one process at a time: a second one's --overwrite would remove this one's results
    lock = LazyLock(output_dir, "OUTPUT_DIR")
    try:
        OwnedFolder(output_dir, "track").claim(
            overwrite=overwrite, written=[*written, SEQUENCES_CSV], holds="tracking results",
            hint="pass --overwrite to replace them (files you added beside them stay)",
            before_write=lock.acquire)
        return _track_into(output_dir, files, fill_gaps=fill_gaps, sigma=sigma,
                           min_size=min_size, max_distance=max_distance,
                           min_overlap=min_overlap, gap_closing=gap_closing,
                           splitting=splitting)
    finally:
        lock.release()


def _track_into(output_dir: Path, files: list[Path], *, fill_gaps: bool, sigma: float,
                min_size: int, max_distance: float, min_overlap: float, gap_closing: int,
                splitting: bool) -> list[dict]:
    """Track and write each video of ``files`` into the claimed ``output_dir``."""
    from dlsuite.data.io import write_text_atomic

    summary = []
    for number, path in enumerate(files, start=1):
        video = _label_video(path)
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
    write_text_atomic(output_dir / SEQUENCES_CSV,
                      "sequence,video\n" + "".join(f"{s['sequence']},{s['video']}\n" for s in summary))
    return summary
