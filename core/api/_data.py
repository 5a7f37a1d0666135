"""Data functions of :mod:`dlsuite.api`: example data, layout conversion, tracking of label
videos. None of them imports TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DlsuiteInputError
from ._config import tracking_defaults

__all__ = ["example_data", "prepare_frames", "prepare_videos", "prepare_clips", "prepare_ctc",
           "track"]

# kind -> writer in dlsuite.data.example
_EXAMPLES = {"videos": "write_example_videos", "frames": "write_example_frames"}


def example_data(out_dir: str | os.PathLike, kind: str = "videos", **options: Any) -> dict:
    """Write a small deterministic synthetic phase-contrast dataset under ``out_dir``.

    ``kind="videos"``: ``out_dir/videos`` (videos layout) and ``out_dir/ctc`` (CTC GT with
    tracks); options ``n_videos``, ``frames``, ``size``, ``seed``. Returns ``{"videos", "ctc",
    "inputs", "labels", "sequences", "annotated"}``. ``kind="frames"``: ``out_dir/frames``
    (frames layout); options ``n``, ``size``, ``seed``. Returns ``{"frames", "inputs",
    "labels"}``. Earlier example files there are replaced. Raises DlsuiteInputError for an
    unknown kind, and before writing anything when one video (or frame) of that size needs more
    memory than is available.
    """
    from ..data import example
    from ..predict_memory import available_bytes

    if kind not in _EXAMPLES:
        raise DlsuiteInputError(f"unknown example data kind {kind!r}; choose one of "
                                f"{', '.join(_EXAMPLES)}")
    frames = options.get("frames", 8) if kind == "videos" else 1
    size = options.get("size", 64)
    need, available = example.example_bytes(frames, size), available_bytes()
    if available is not None and need > available:
        raise DlsuiteInputError(
            f"example data of {frames} frame(s) of {size}x{size} pixels need about "
            f"{need / 2**30:.1f} GiB, {available / 2**30:.1f} GiB of memory is available; "
            "choose a smaller --size" + (" or fewer --frames" if kind == "videos" else ""))
    return getattr(example, _EXAMPLES[kind])(out_dir, **options)


def _tif_count(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.tif")) if folder.is_dir() else 0


def prepare_frames(src: str | os.PathLike, dst: str | os.PathLike, *,
                   overwrite: bool = False) -> dict:
    """Split the videos of ``src`` (videos layout: ``inputs/`` and optional ``labels/``) into
    2D frames in ``dst`` (frames layout) with ``videos2im_relation.csv``.

    Returns ``{"inputs", "labels", "relation"}`` (paths) and ``"n_inputs"``, ``"n_labels"``
    (TIFF files in each folder). Raises DataError for unpaired or unreadable files and when
    ``dst`` already holds frames unless ``overwrite``.
    """
    from ..data.prepare import RELATION_CSV, videos_to_frames

    dst = Path(videos_to_frames(src, dst, overwrite=overwrite))
    return {"inputs": dst / "inputs", "labels": dst / "labels", "relation": dst / RELATION_CSV,
            "n_inputs": _tif_count(dst / "inputs"), "n_labels": _tif_count(dst / "labels")}


def prepare_videos(src: str | os.PathLike, dst: str | os.PathLike,
                   csv: str | os.PathLike | None = None) -> list[Path]:  # noqa: A002
    """Rebuild the videos of the frames in ``src`` into ``dst`` using the relation CSV
    ``csv`` (default ``src/videos2im_relation.csv``); returns the video files written. Raises
    DataError naming a missing relation file or frame."""
    from ..data.prepare import RELATION_CSV, frames_to_videos

    return frames_to_videos(src, dst, csv if csv is not None else Path(src) / RELATION_CSV)


def prepare_clips(src: str | os.PathLike, dst: str | os.PathLike, frames: int, *,
                  every: int = 1, layout: str = "auto", overwrite: bool = False) -> dict:
    """Write validation clips of ``frames`` frames ending at every ``every``-th annotated frame
    of ``src`` (``layout`` auto, videos, ctc or frames) into ``dst``.

    Returns ``{"inputs", "labels", "relation"}`` (paths) and ``"n_clips"``. Raises DataError
    for unreadable data and when ``dst`` already holds clips unless ``overwrite``.
    """
    from ..data.prepare import CLIPS_CSV, make_clips

    dst = Path(make_clips(src, dst, frames, every=every, layout=layout, overwrite=overwrite))
    return {"inputs": dst / "inputs", "labels": dst / "labels", "relation": dst / CLIPS_CSV,
            "n_clips": _tif_count(dst / "inputs")}


def prepare_ctc(src: str | os.PathLike, dst: str | os.PathLike, *, kind: str = "GT",
                overwrite: bool = False) -> dict:
    """Export the label videos of ``src`` (``src/labels/`` or ``src`` itself) as CTC
    sequences ``01, 02, ...`` in ``dst``: ``kind="GT"`` writes ``NN_GT/SEG``, ``TRA`` and
    ``man_track.txt``; ``"RES"`` writes ``NN_RES/mask*.tif`` and ``res_track.txt``.

    Returns ``{"sequences": {sequence: video name}, "mapping": dst/sequences.csv}``. Raises
    DataError for unreadable data and when ``dst`` already holds CTC files unless
    ``overwrite``.
    """
    from ..data.prepare import SEQUENCES_CSV, videos_to_ctc

    mapping = videos_to_ctc(src, dst, kind=kind, overwrite=overwrite)
    return {"sequences": mapping, "mapping": Path(dst) / SEQUENCES_CSV}


def track(input_dir: str | os.PathLike, output_dir: str | os.PathLike, *,
          max_distance: float | None = None, min_overlap: float | None = None,
          gap_closing: int | None = None, splitting: bool | None = None,
          fill_gaps: bool = False, sigma: float = 2.0, min_size: int = 0,
          overwrite: bool = False) -> list[dict]:
    """Track every label (or 0/1 mask) video ``(T, H, W)`` of ``input_dir`` and write CTC
    result folders ``output_dir/01_RES, 02_RES, ...`` (``maskTTT.tif`` + ``res_track.txt``)
    and ``output_dir/sequences.csv``.

    Linking options left at None take the config schema's tracking defaults
    (:func:`tracking_defaults`: ``max_distance`` 30 px, as ``dlsuite run`` uses). 0/1 mask
    videos become per-frame instances first (temporal Gaussian gap filling of width
    ``sigma`` with ``fill_gaps``; objects under ``min_size`` px dropped). Returns one
    ``{"sequence", "video", "frames", "tracks", "divisions", "res_dir"}`` per video. Raises
    DataError naming the file for a missing folder, an unreadable file or a 2D image, and
    DlsuiteInputError naming ``output_dir`` when it holds anything but an earlier ``track``'s
    results, or those without ``overwrite`` (which replaces exactly them), or while another
    process tracks into it, all before anything is written.
    """
    from ..tracking.folder import track_folder

    given = {"max_distance": max_distance, "min_overlap": min_overlap,
             "gap_closing": gap_closing, "splitting": splitting}
    linking = {k: tracking_defaults()[k] if v is None else v for k, v in given.items()}
    return track_folder(input_dir, output_dir, fill_gaps=fill_gaps, sigma=sigma,
                        min_size=min_size, overwrite=overwrite, **linking)


def prepare_omezarr(src: str | os.PathLike, dst: str | os.PathLike, *,
                    overwrite: bool = False) -> list[Path]:
    """Convert the 2D or 2D+t TIFF ``src``, or every one directly in the folder ``src``, to an
    OME-Zarr image ``dst/<name>.ome.zarr`` (axes ``yx`` / ``tyx``, pixel size from the TIFF's
    resolution); copied block by block, so TIFFs larger than memory convert too. Returns the images
    written. DataError naming a bad file before anything is written; ``dst`` holding an
    earlier conversion needs ``overwrite``. Needs ``dlsuite[scale]``."""
    from ..scale.cluster import require_scale
    from ..scale.convert import tiffs_to_omezarr

    require_scale("prepare ome-zarr")
    return tiffs_to_omezarr(src, dst, overwrite=overwrite)


def prepare_tiff(src: str | os.PathLike, dst: str | os.PathLike, *,
                 overwrite: bool = False) -> list[Path]:
    """Convert the OME-Zarr image ``src`` (or every one directly in the folder ``src``) back
    to TIFF ``dst/<name>.tif`` (pixel size as resolution). Returns the files written. Needs
    ``dlsuite[scale]``."""
    from ..scale.cluster import require_scale
    from ..scale.convert import omezarr_to_tiffs

    require_scale("prepare tiff")
    return omezarr_to_tiffs(src, dst, overwrite=overwrite)
