"""``dlsuite prepare ome-zarr`` / ``prepare tiff``: a folder of 2D or 2D+t TIFFs to OME-Zarr
images and back.

TIFF -> OME-Zarr copies block by block from a lazily read TIFF (memory: one block), axes
``yx`` / ``tyx``, the pixel size from the TIFF's resolution tags (micrometer) as the NGFF
scale. OME-Zarr -> TIFF writes each image whole (ImageJ-compatible for uint8/uint16/float32),
the NGFF scale as resolution. Each output is written under a temporary name and renamed when
complete; the destination's ``.dlsuite-prepare`` marker records what was written, so
``--overwrite`` replaces only earlier conversions (:mod:`dlsuite.ownership`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write
from ..ownership import OwnedFolder, check_apart
from .omezarr import _create_image, is_omezarr, open_source
from .zarr_module import zarr_module

__all__ = ["tiffs_to_omezarr", "omezarr_to_tiffs"]

_BLOCK = 2048


def _inputs(src: Path, pick) -> list[Path]:
    from ..data.layouts import natural_key

    if not src.exists():
        raise DataError(f"{src}: no such file or folder")
    if not src.is_dir():
        raise DataError(f"{src}: not a folder")
    found = [p for p in sorted(src.iterdir(), key=lambda p: natural_key(p.name)) if pick(p)]
    if not found:
        # a dataset folder (inputs/, labels/): say which of its folders to convert
        holding = [d.name for d in sorted(src.iterdir(), key=lambda p: natural_key(p.name))
                   if d.is_dir() and not pick(d) and any(pick(p) for p in d.iterdir())]
        hint = ""
        if len(holding) == 1:
            hint = f"; its folder {holding[0]}/ holds some: convert it (SRC {src / holding[0]})"
        elif holding:
            hint = (f"; its folders {', '.join(f'{n}/' for n in holding)} hold some: convert "
                    f"each (e.g. SRC {src / holding[0]}, DST {Path('DST') / holding[0]})")
        raise DataError(f"{src}: nothing to convert directly in this folder{hint}")
    return found


def _claim(dst: Path, planned: list[str], overwrite: bool) -> None:
    OwnedFolder(dst, "prepare").claim(overwrite=overwrite, written=planned, holds="a conversion",
                                      hint="pass --overwrite to replace it, or choose another DST")


def tiffs_to_omezarr(src: str | os.PathLike, dst: str | os.PathLike, *,
                     overwrite: bool = False, chunk: int = 1024) -> list[Path]:
    """Convert the TIFF ``src``, or every TIFF directly in the folder ``src``, to
    ``dst/<name>.ome.zarr``; returns them. DataError naming a file that is not a 2D or 2D+t
    image, before anything is written."""
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    check_apart(dst, src, what="the OME-Zarr images", option="DST")
    is_tiff = lambda p: p.is_file() and p.suffix.lower() in (".tif", ".tiff")  # noqa: E731
    _name_other_images(src, is_tiff)
    files = [src] if src.is_file() else _inputs(src, is_tiff)
    sources = [open_source(p) for p in files]  # headers only: bad files fail here
    planned = [f"{s.name}.ome.zarr" for s in sources]
    _claim(dst, planned, overwrite)
    written = []
    for source, name in zip(sources, planned):
        tmp = dst / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:  # an interrupted or failed conversion leaves no half-written folder
            _copy_blocks(source, tmp, chunk)
            os.replace(tmp, dst / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        written.append(dst / name)
    return written


def _name_other_images(src: Path, is_tiff) -> None:
    """Images directly in the folder ``src`` that are not TIFFs (PNG, JPEG, vendor files)
    are not converted: a warning names them, or the error when there is no TIFF."""
    from ..data.io import is_image_file, unread_images, warn_or_refuse_unread

    if not src.is_dir():
        return
    entries = [p for p in src.iterdir() if p.is_file()]
    others = sorted({*unread_images(src), *(p for p in entries
                                            if is_image_file(p) and not is_tiff(p))},
                    key=lambda p: p.name)
    warn_or_refuse_unread(
        src, others, found=any(is_tiff(p) for p in entries),
        skipped="{n} image file(s) that are not TIFFs are not converted",
        nothing="no TIFF to convert, only {n} image file(s) in other formats")


def _copy_blocks(source, folder: Path, chunk: int) -> None:
    """Write ``source`` as an OME-Zarr image at ``folder``, block by block."""
    zarr = zarr_module()

    names = "tyx" if len(source.shape) == 3 else "yx"
    height, width = source.shape[-2:]
    chunks = ((1,) if len(source.shape) == 3 else ()) + (min(chunk, height), min(chunk, width))
    root = zarr.open_group(str(folder), mode="w")
    arr = _create_image(root, names, source.shape, chunks, source.dtype, source.pixel_size,
                        source.unit, source.name)
    for t in range(source.frames):
        for y0 in range(0, height, _BLOCK):
            for x0 in range(0, width, _BLOCK):
                block = source.read(t, y0, min(height, y0 + _BLOCK), x0,
                                    min(width, x0 + _BLOCK))
                index = ((t,) if len(source.shape) == 3 else ()) + (
                    slice(y0, y0 + block.shape[0]), slice(x0, x0 + block.shape[1]))
                arr[index] = block


def omezarr_to_tiffs(src: str | os.PathLike, dst: str | os.PathLike, *,
                     overwrite: bool = False) -> list[Path]:
    """Convert every OME-Zarr image directly in ``src`` (or ``src`` itself) to
    ``dst/<name>.tif``; returns them."""
    import tifffile

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    check_apart(dst, src, what="the TIFFs", option="DST")
    folders = [src] if is_omezarr(src) else _inputs(src, is_omezarr)
    sources = [open_source(p) for p in folders]
    planned = [f"{s.name}.tif" for s in sources]
    _claim(dst, planned, overwrite)
    written = []
    for source, name in zip(sources, planned):
        dtype = np.dtype(source.dtype)
        kwargs = {"metadata": {"axes": "TYX" if len(source.shape) == 3 else "YX"}}
        if source.pixel_size:
            py, px = source.pixel_size
            kwargs["resolution"] = (1.0 / px, 1.0 / py)
        imagej = dtype in (np.uint8, np.uint16, np.float32)
        written.append(atomic_write(dst / name, lambda tmp: tifffile.imwrite(
            tmp, _frames(source), shape=source.shape, dtype=dtype, imagej=imagej,
            photometric="minisblack", **kwargs)))
    return written


def _frames(source):
    """The frames of ``source`` one at a time (a TIFF page each): one frame in memory, not
    the whole image."""
    height, width = source.shape[-2:]
    for t in range(source.frames):
        yield source.read(t, 0, height, 0, width)
