"""Reading and writing images: TIFF through tifffile (2D images and 2D+t videos), PNG for 2D.

Promises:

- :func:`read_image` returns ``(H, W)`` for a 2D image or ``(T, H, W)`` for a video, in the
  file's own dtype (any integer or float dtype; nothing is rescaled or cast, so label ids never
  wrap at 256). Singleton channel/sample axes are dropped; a colour axis whose channels are all
  equal is reduced to one channel; true colour data, or more than one non-spatial axis of size
  > 1 (e.g. T and Z together), raise :class:`~dlsuite.errors.DataError` naming the file.
- :func:`read_info` / :func:`read_shape` give the same shape (and the dtype) from the header
  alone, without reading pixels; ``ImageInfo.reading`` says in words how a file whose stored
  shape differs is read (colour channels reduced to one, alpha or singleton axes dropped).
- :func:`write_tiff` writes ImageJ-compatible TIFF with axes metadata (``YX``, ``TYX``, ...)
  for the dtypes ImageJ knows (uint8, uint16, float32); any other dtype (int32, uint32, int64,
  float64, ...) is written as a plain tifffile TIFF whose metadata holds shape and axes, so
  values round-trip exactly. Writes are atomic (temporary file in the same folder, then
  ``os.replace``) and create parent folders. A ``(1, H, W)`` video reads back as ``(1, H, W)``:
  the intended axes are stored in the ImageJ description under ``dlsuite_axes``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import numpy as np

from dlsuite.errors import DataError
from dlsuite.fileio import atomic_write, write_text_atomic

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "is_image_file",
    "tifffile_damage",
    "unread_images",
    "unread_note",
    "warn_or_refuse_unread",
    "read_image",
    "read_info",
    "read_shape",
    "write_text_atomic",
    "write_tiff",
]

#: ImageJ stores these dtypes natively; others go to plain (tifffile "shaped") TIFF.
IMAGEJ_DTYPES = frozenset({np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)})
#: ImageJ hyperstack axis order; a requested axes string must be a subsequence of it.
IMAGEJ_AXES = "TZCYXS"
#: Axes that hold colour/channel samples rather than time or space.
CHANNEL_AXES = frozenset("CS")
#: Default axes when ``write_tiff`` is not told, by number of dimensions.
DEFAULT_AXES = {2: "YX", 3: "TYX", 4: "TYXC"}
_DLSUITE_AXES_KEY = "dlsuite_axes"
#: tifffile log messages that mean the file is damaged (tifffile logs them and reads on).
_DAMAGE = re.compile(r"invalid|corrupt|truncat|incomplete|failed|error", re.IGNORECASE)


@attrs.frozen
class ImageInfo:
    """Shape (as :func:`read_image` would return it) and dtype of an image file; ``reading``
    says how the stored data becomes that shape when it differs (None: read as stored)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    reading: str | None = None


# --------------------------------------------------------------------------------------------
# axis bookkeeping shared by the header and the pixel readers


def _plan(path: Path, shape: tuple[int, ...], axes: str) -> tuple[list[int], list[int]]:
    """Decide which axes to keep and which channel axes to collapse.

    Returns ``(squeeze, collapse)``: axis positions of size 1 to drop and channel axes of size
    > 1 to reduce (allowed only when all channels are equal, checked by the pixel reader).
    Raises DataError when the result would not be 2D or 3D.
    """
    if len(axes) != len(shape):
        axes = "Q" * (len(shape) - 2) + "YX"
    squeeze = [i for i, (a, n) in enumerate(zip(axes, shape)) if n == 1 and a in CHANNEL_AXES]
    collapse = [i for i, (a, n) in enumerate(zip(axes, shape)) if n > 1 and a in CHANNEL_AXES]
    rest = [i for i in range(len(shape)) if i not in squeeze and i not in collapse]
    if len(rest) > 3:  # drop further singleton non-spatial axes (Z=1 in a TZYX file, ...)
        extra = [i for i in rest[:-2] if shape[i] == 1]
        while len(rest) > 3 and extra:
            i = extra.pop(0)
            squeeze.append(i)
            rest.remove(i)
    if len(rest) not in (2, 3):
        raise DataError(
            f"{path}: unsupported image shape {shape} (axes {axes!r}); expected a 2D image "
            "(Y, X) or a 2D+t video (T, Y, X)"
        )
    return sorted(squeeze), collapse


def _reading(shape, axes: str, squeeze, collapse, alpha: bool = False) -> str | None:
    """How a file of ``shape`` / ``axes`` is read, in words (None when read as stored)."""
    parts = [f"stored as {tuple(int(n) for n in shape)}"]
    if alpha:
        parts.append("its alpha channel is dropped")
    if len(axes) != len(shape):
        axes = "Q" * (len(shape) - 2) + "YX"
    for i in collapse:
        parts.append(f"its {shape[i]} colour channels are read as one grey channel (they "
                     "must be equal)")
    extra = [i for i in squeeze if axes[i] not in CHANNEL_AXES]
    if extra:
        parts.append("singleton axes " + "".join(axes[i] for i in extra) + " are dropped")
    kept = [a for i, a in enumerate(axes) if i not in squeeze and i not in collapse]
    if len(kept) == 3 and kept[0] == "Z":  # dlsuite is 2D and 2D+t: there is no Z
        parts.append(f"its {shape[axes.index('Z')]} Z planes are read as the frames of a "
                     "video (segmented plane by plane; a temporal model sees them as time)")
    return "; ".join(parts) if len(parts) > 1 else None


def _planned_shape(shape, squeeze, collapse) -> tuple[int, ...]:
    drop = set(squeeze) | set(collapse)
    return tuple(int(n) for i, n in enumerate(shape) if i not in drop)


def _apply_plan(path: Path, array: np.ndarray, squeeze, collapse) -> np.ndarray:
    for i in sorted(collapse, reverse=True):
        if array.shape[i] == 4:  # RGBA: a constant alpha channel (opaque) carries nothing
            alpha = np.take(array, [3], axis=i)
            if np.all(alpha == alpha.flat[0]):
                array = np.take(array, [0, 1, 2], axis=i)
        first = np.take(array, [0], axis=i)
        if not np.all(array == first):
            # planes before the rows: how tifffile.imwrite stores a (3|4, H, W) array
            video = (f"; if they are the {array.shape[i]} frames of a video, write it again "
                     "with tifffile.imwrite(..., photometric='minisblack')") if i == 0 else ""
            raise DataError(
                f"{path}: colour/multi-channel images are not supported "
                f"(axis {i} has {array.shape[i]} different channels); convert it to one channel"
                f"{video}"
            )
        array = first
    drop = tuple(sorted(set(squeeze) | set(collapse)))
    return np.squeeze(array, axis=drop) if drop else array


# --------------------------------------------------------------------------------------------
# TIFF


def _tiff_shape_axes(tif, path: Path) -> tuple[tuple[int, ...], str]:
    """Shape and axes of the first series, restoring singleton axes we stored ourselves."""
    if not tif.series:
        raise DataError(f"{path}: TIFF file holds no image")
    series = tif.series[0]
    ij = tif.imagej_metadata or {}
    wanted = ij.get(_DLSUITE_AXES_KEY)
    if isinstance(wanted, str) and wanted and set(wanted) <= set(IMAGEJ_AXES):
        full_shape, full_axes = series.get_shape(False), series.get_axes(False)
        if set(wanted) <= set(full_axes):
            return tuple(full_shape[full_axes.index(a)] for a in wanted), wanted
    return tuple(series.shape), series.axes


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            text = " ".join(record.getMessage().split())
            self.messages.append(re.sub(r"^<[^>]*>\s*", "", text))  # tifffile's object repr


@contextmanager
def tifffile_damage(path: Path) -> Iterator[None]:
    """tifffile only *logs* what it finds damaged (and then reads a part of the file): such
    a message becomes a DataError naming the file; its other messages a dlsuite warning."""
    logger = logging.getLogger("tifffile")
    records, propagate = _Records(), logger.propagate
    logger.addHandler(records)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(records)
        logger.propagate = propagate
    damage = [m for m in records.messages if _DAMAGE.search(m)]
    if damage:
        raise DataError(f"{path}: damaged or truncated TIFF ({damage[0]})")
    for message in records.messages:
        logging.getLogger("dlsuite.data").warning("%s: %s", path, message)


def _tiff_info(path: Path) -> ImageInfo:
    import tifffile

    with tifffile_damage(path), tifffile.TiffFile(path) as tif:
        shape, axes = _tiff_shape_axes(tif, path)
        dtype = np.dtype(tif.series[0].dtype)
    squeeze, collapse = _plan(path, shape, axes)
    return ImageInfo(_planned_shape(shape, squeeze, collapse), dtype,
                     _reading(shape, axes, squeeze, collapse))


def _tiff_read(path: Path) -> np.ndarray:
    import tifffile

    with tifffile_damage(path), tifffile.TiffFile(path) as tif:
        shape, axes = _tiff_shape_axes(tif, path)
        array = tif.series[0].asarray()
    array = array.reshape(shape)
    squeeze, collapse = _plan(path, shape, axes)
    return _apply_plan(path, array, squeeze, collapse)


# --------------------------------------------------------------------------------------------
# PNG (2D only)


def _png_read_raw(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))


def _png_axes(array_shape) -> str:
    return "YX" if len(array_shape) == 2 else "YXS"


def _png_info(path: Path) -> ImageInfo:
    import imageio.v3 as iio

    props = iio.improps(path)
    stored = shape = tuple(int(n) for n in props.shape)
    alpha = len(shape) == 3 and shape[-1] in (2, 4)
    if alpha:  # grey+alpha or RGBA: alpha is dropped
        shape = shape[:-1] + (shape[-1] - 1,)
    squeeze, collapse = _plan(path, shape, _png_axes(shape))
    reading = _reading(shape, _png_axes(shape), squeeze, collapse, alpha)
    if reading is not None:
        reading = reading.replace(f"stored as {shape}", f"stored as {stored}", 1)
    return ImageInfo(_planned_shape(shape, squeeze, collapse), np.dtype(props.dtype), reading)


def _png_read(path: Path) -> np.ndarray:
    array = _png_read_raw(path)
    if array.ndim == 3 and array.shape[-1] in (2, 4):
        array = array[..., :-1]
    squeeze, collapse = _plan(path, array.shape, _png_axes(array.shape))
    return _apply_plan(path, array, squeeze, collapse)


# --------------------------------------------------------------------------------------------
# public API

#: suffix -> (info reader, pixel reader); add formats here.
_READERS: dict[str, tuple[Callable[[Path], ImageInfo], Callable[[Path], np.ndarray]]] = {
    ".tif": (_tiff_info, _tiff_read),
    ".tiff": (_tiff_info, _tiff_read),
    ".png": (_png_info, _png_read),
}
IMAGE_SUFFIXES = tuple(_READERS)


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has a suffix :func:`read_image` supports (case-insensitive) and is
    not a hidden file."""
    p = Path(path)
    return p.suffix.lower() in _READERS and not p.name.startswith(".")


#: Image formats users meet that dlsuite does not read (photo and microscope vendor files,
#: NumPy arrays).
UNREAD_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".jp2", ".czi", ".nd2", ".lif",
                   ".oib", ".oif", ".ims", ".vsi", ".zvi", ".dv", ".npy", ".npz")


def unread_images(folder: str | os.PathLike) -> list[Path]:
    """The files directly in ``folder`` (sorted by name) whose suffix is an image format
    dlsuite does not read (:data:`UNREAD_SUFFIXES`): callers name them instead of skipping
    them silently. Empty when ``folder`` is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in UNREAD_SUFFIXES), key=lambda p: p.name)


def unread_note(files: list[Path], lead: str) -> str:
    """``lead`` (``{n}`` stands for the number of ``files``, e.g. ``"{n} file(s) ... are not
    predicted"``), the names of ``files`` (:func:`unread_images`) and how to convert them;
    callers put the folder first."""
    shown = ", ".join(p.name for p in files[:5]) + (
        f" and {len(files) - 5} more" if len(files) > 5 else "")
    return (f"{lead.format(n=len(files))}: {shown}; convert them to TIFF (e.g. Fiji: File > "
            "Save As > Tiff)")


def warn_or_refuse_unread(folder: Path, unread: list[Path], *, found: bool, skipped: str,
                          nothing: str) -> None:
    """Name the files ``unread`` of ``folder`` that a command leaves out: a warning
    (``skipped``, a :func:`unread_note` lead) when it ``found`` files it reads, else a
    DataError (``nothing``); nothing when ``unread`` is empty."""
    if not unread:
        return
    if found:
        logging.getLogger("dlsuite").warning("%s: %s", folder, unread_note(unread, skipped))
        return
    raise DataError(f"{folder}: " + unread_note(unread, nothing))


def _reader(path: Path, which: int):
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    entry = _READERS.get(path.suffix.lower())
    if entry is None:
        raise DataError(
            f"{path}: unsupported image format {path.suffix!r}; supported: "
            + ", ".join(IMAGE_SUFFIXES)
        )
    return entry[which]


def _call(path: Path, fn):
    try:
        found = fn(path)
    except DataError:
        raise
    except Exception as exc:  # tifffile/imageio raise many types for corrupt files
        raise DataError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from exc
    if found.dtype.kind not in "biuf":  # complex (FFT output), strings, records
        raise DataError(f"{path}: {found.dtype} pixels: dlsuite reads images of integers or "
                        "real numbers (save the magnitude or the real part)")
    return found


def read_info(path: str | os.PathLike) -> ImageInfo:
    """Shape and dtype of an image file from its header only (pixels are not read).

    The shape is the one :func:`read_image` returns. Raises DataError naming the file when it
    is missing, unreadable or of an unsupported format/shape.
    """
    p = Path(path)
    return _call(p, _reader(p, 0))


def read_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """``read_info(path).shape``: ``(H, W)`` or ``(T, H, W)``, without reading pixels."""
    return read_info(path).shape


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a 2D image ``(H, W)`` or a video ``(T, H, W)`` in its native dtype.

    Raises DataError naming the file when it is missing, unreadable, of an unsupported format,
    multi-channel with different channels, or not 2D/2D+t.
    """
    p = Path(path)
    return _call(p, _reader(p, 1))


def _axes_for(array: np.ndarray, axes: str | None) -> str:
    if axes is None:
        if array.ndim not in DEFAULT_AXES:
            raise ValueError(f"cannot guess axes of a {array.ndim}-D array; pass axes=")
        return DEFAULT_AXES[array.ndim]
    axes = axes.upper()
    if len(axes) != array.ndim or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} do not fit an array of shape {array.shape}")
    return axes


def _imagej_ok(array: np.ndarray, axes: str) -> bool:
    if array.dtype not in IMAGEJ_DTYPES:
        return False
    if any(n < 2 for n, a in zip(array.shape, axes) if a in "YX"):
        return False  # tifffile reads an ImageJ file one pixel wide back as damaged
    positions = [IMAGEJ_AXES.find(a) for a in axes]
    return all(p >= 0 for p in positions) and positions == sorted(positions)




def write_tiff(path: str | os.PathLike, array, *, axes: str | None = None) -> Path:
    """Write ``array`` to ``path`` as TIFF, atomically; returns the path.

    ``axes`` defaults to ``YX`` (2D), ``TYX`` (3D), ``TYXC`` (4D). uint8/uint16/float32 arrays
    whose axes follow ImageJ order (``TZCYXS``) are written ImageJ-compatible; other dtypes
    (and bool, stored as uint8) are written as plain TIFF with shape/axes metadata. Values are
    never cast: int32/uint32/int64 labels round-trip exactly.
    """
    import tifffile

    p = Path(path)
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    axes = _axes_for(array, axes)
    array = np.ascontiguousarray(array)
    # without an explicit photometric, tifffile stores a (3, H, W) array as planar RGB
    photometric = "rgb" if "S" in axes else "minisblack"
    if _imagej_ok(array, axes):
        metadata = {"axes": axes, _DLSUITE_AXES_KEY: axes}

        def write(tmp: Path) -> None:
            tifffile.imwrite(tmp, array, imagej=True, metadata=metadata, photometric=photometric)
    else:

        def write(tmp: Path) -> None:
            tifffile.imwrite(tmp, array, metadata={"axes": axes}, photometric=photometric)

    return atomic_write(p, write)


