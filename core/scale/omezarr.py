"""OME-Zarr (NGFF) images and large TIFFs read lazily; OME-Zarr predictions written block by
block.

* :func:`open_source` -- a 2D (``yx``) or 2D+t (``tyx``) OME-Zarr image (its multiscales'
  axes, level 0 and pixel size, read with ``ome-zarr``), or a TIFF read lazily through
  tifffile's zarr store, as a picklable :class:`Source` (opened again in each worker process;
  :meth:`Source.dask` gives the dask array);
* :class:`Target` -- the output image ``<name>.ome.zarr``: probabilities ``(t,) c, y, x``
  float32 as the image, instance labels under its ``labels/instances`` group, pixel size
  carried over; chunks are the prediction blocks, so workers write disjoint chunks;
* :func:`is_omezarr`.

Nothing here imports TensorFlow; zarr, ome-zarr and dask are imported when used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ..errors import DataError
from .zarr_module import zarr_module

__all__ = ["Source", "Target", "open_source", "is_omezarr", "holds_omezarr", "write_image", "read_image_zarr",
           "LABELS_NAME"]

#: The name of the instance label image under ``<image>/labels/``.
LABELS_NAME = "instances"
_OPEN: dict = {}  # per-process cache of opened arrays


def _attrs_of(path: Path) -> dict:
    """The group attributes of a zarr v2 (``.zattrs``) or v3 (``zarr.json``) folder."""
    if (path / "zarr.json").is_file():
        meta = json.loads((path / "zarr.json").read_text())
        return meta.get("attributes", {})
    if (path / ".zattrs").is_file():
        return json.loads((path / ".zattrs").read_text())
    return {}


def _ngff(attributes: dict) -> dict:
    """NGFF metadata of a group: 0.5 nests it under ``ome``, 0.4 keeps it at the top."""
    return attributes.get("ome", attributes)


def is_omezarr(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding an OME-Zarr image (NGFF ``multiscales``)."""
    p = Path(path)
    return p.is_dir() and "multiscales" in _ngff(_attrs_of(p))


def holds_omezarr(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding OME-Zarr images (and is not one itself)."""
    p = Path(path)
    return p.is_dir() and not is_omezarr(p) and any(is_omezarr(c) for c in p.iterdir()
                                                    if c.suffix == ".zarr")


def _open_array(path: str):
    if path not in _OPEN:
        zarr = zarr_module()

        _OPEN[path] = zarr.open_array(path, mode="r")
    return _OPEN[path]


def _open_tiff(path: str):
    """The pixels of a TIFF as an array read window by window: memory-mapped when they are
    stored uncompressed in one piece (tifffile's default, a single strip per page, which
    tifffile's zarr view would decode whole for every window: 0.4 s and the whole frame in
    memory per 1024 x 1024 window of a 20000 x 20000 image), else tifffile's zarr view of
    its strips or tiles."""
    if path not in _OPEN:
        import tifffile

        try:
            _OPEN[path] = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed, tiled or scattered: "not memory-mappable"
            zarr = zarr_module()
            _OPEN[path] = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    return _OPEN[path]


@attrs.frozen
class Source:
    """The pixels of one 2D or 2D+t image, read window by window: ``kind`` ``zarr`` (``path``
    the level-0 array of an OME-Zarr image), ``tiff`` (``path`` a TIFF file) or ``memory``
    (``array``); ``shape`` ``(H, W)`` or ``(T, H, W)``; ``pixel_size`` ``(y, x)`` and
    ``unit`` (None when unknown); ``name`` for outputs."""

    kind: str
    path: str
    shape: tuple
    dtype: str
    name: str
    pixel_size: tuple | None = None
    unit: str | None = None
    array: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def frames(self) -> int:
        return self.shape[0] if len(self.shape) == 3 else 1

    def _store(self):
        if self.kind == "memory":
            return self.array
        return _open_array(self.path) if self.kind == "zarr" else _open_tiff(self.path)

    def read(self, t: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` of frame ``t`` (native dtype). DataError naming the
        file when its pixels there cannot be read (a damaged or truncated TIFF)."""
        if self.kind != "tiff":
            return self._window(t, y0, y1, x0, x1)
        from ..data.io import tifffile_damage

        try:
            with tifffile_damage(Path(self.path)):
                return self._window(t, y0, y1, x0, x1)
        except (DataError, MemoryError):  # a block too large is not a damaged file
            raise
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types for bad files
            raise DataError(f"{self.path}: damaged or truncated TIFF ({exc})") from None

    def _window(self, t: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        store = self._store()
        if len(self.shape) == 3:
            return np.asarray(store[t, y0:y1, x0:x1])
        return np.asarray(store[y0:y1, x0:x1])

    def dask(self, chunk: int = 1024):
        """The whole image as a lazy dask array (chunks of ``chunk`` pixels per frame)."""
        import dask.array as da

        store = self._store()
        if isinstance(store, np.ndarray):  # in memory or memory-mapped
            return da.from_array(store, chunks=(1,) * (len(self.shape) - 2) + (chunk, chunk))
        return da.from_zarr(store)


def open_source(path: str | os.PathLike) -> Source:
    """A :class:`Source` for an OME-Zarr image folder or a TIFF file (pixels not read).
    DataError naming the path for anything else: no multiscales, axes other than ``yx`` /
    ``tyx`` (a single channel ``c`` or ``z`` axis of size 1 is dropped), unreadable."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() in (".tif", ".tiff"):
        return _tiff_source(p)
    if not is_omezarr(p):
        raise DataError(f"{p}: not an OME-Zarr image (no NGFF multiscales) or a TIFF file")
    multiscale = _ngff(_attrs_of(p))["multiscales"][0]
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in multiscale.get("axes", [])]
    dataset = multiscale["datasets"][0]
    array_path = p / dataset["path"]
    arr = _open_array(str(array_path))
    shape = tuple(int(n) for n in arr.shape)
    if not axes:
        axes = ["t", "y", "x"][-len(shape):]
    keep = [i for i, a in enumerate(axes) if not (a in ("c", "z") and shape[i] == 1)]
    names = "".join(axes[i] for i in keep)
    if names not in ("yx", "tyx") or len(keep) != len(shape):
        if names in ("yx", "tyx"):  # singleton c/z axes: not supported lazily by the tasks
            raise DataError(f"{p}: axes {''.join(axes)} with singleton channel/z axes; "
                            "re-save as yx or tyx (dlsuite prepare ome-zarr)")
        raise DataError(f"{p}: axes {''.join(axes)}: expected a 2D (yx) or 2D+t (tyx) image")
    pixel, unit = None, None
    for tr in dataset.get("coordinateTransformations", []):
        if tr.get("type") == "scale":
            pixel = (float(tr["scale"][-2]), float(tr["scale"][-1]))
    units = [a.get("unit") for a in multiscale.get("axes", []) if isinstance(a, dict)
             and a.get("name") in ("y", "x")]
    unit = units[0] if units else None
    name = p.name[:-len(".ome.zarr")] if p.name.endswith(".ome.zarr") else p.stem
    return Source("zarr", str(array_path), shape, str(arr.dtype), name, pixel, unit)


def _tiff_source(p: Path) -> Source:
    import tifffile

    from ..data.io import tifffile_damage

    try:
        with tifffile_damage(p), tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            shape = tuple(int(n) for n in series.shape)
            dtype = str(series.dtype)
            axes = series.axes
            pixel = _tiff_pixel_size(tif)
            _check_complete(tif, p)
    except DataError:
        raise
    except Exception as exc:  # tifffile raises many types for broken files
        raise DataError(f"{p}: unreadable TIFF ({exc})") from None
    squeezed = tuple(n for n, a in zip(shape, axes) if not (n == 1 and a not in "YX"))
    if len(squeezed) not in (2, 3) or len(squeezed) != len(shape):
        raise DataError(f"{p}: shape {shape} (axes {axes}): block-wise prediction reads 2D "
                        "(YX) or 2D+t TIFFs")
    # read lazily as they are stored, colour samples would become frames
    if any(a == "S" and n > 1 for n, a in zip(shape, axes)):
        raise DataError(f"{p}: shape {shape} (axes {axes}): a colour or channel axis; "
                        "block-wise prediction and OME-Zarr conversion read 2D (YX) or 2D+t "
                        "greyscale TIFFs: save it as one greyscale channel (e.g. Fiji: Image > "
                        "Type > 8-bit), or predict it whole (without --block-size)")
    name = p.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Source("tiff", str(p), shape, dtype, name, pixel, "micrometer" if pixel else None)


def _check_complete(tif, p: Path) -> None:
    """DataError when a page's pixel data ends past the end of the file (a truncated copy):
    found from the headers, before a conversion or prediction writes anything."""
    size = p.stat().st_size
    for page in tif.pages:
        ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
        if ends and max(ends) > size:
            raise DataError(f"{p}: damaged or truncated TIFF (the pixels of page {page.index} "
                            f"end at byte {max(ends)}, the file has {size})")


def _tiff_pixel_size(tif) -> tuple | None:
    """``(y, x)`` pixel size from the resolution tags, None when absent or 1 pixel/unit."""
    page = tif.pages[0]
    try:
        xres = page.tags["XResolution"].value
        yres = page.tags["YResolution"].value
    except KeyError:
        return None
    x = xres[1] / xres[0] if xres[0] else None
    y = yres[1] / yres[0] if yres[0] else None
    if not x or not y or (x == 1 and y == 1):
        return None
    return (float(y), float(x))


# --------------------------------------------------------------------------------------------
# writing


def _axes(names: str, unit: str | None) -> list[dict]:
    kinds = {"t": "time", "c": "channel", "y": "space", "x": "space"}
    out = []
    for n in names:
        axis = {"name": n, "type": kinds[n]}
        if n in "yx" and unit:
            axis["unit"] = unit
        out.append(axis)
    return out


def _scale(names: str, pixel: tuple | None) -> list[dict]:
    py, px = pixel or (1.0, 1.0)
    return [{"type": "scale", "scale": [py if n == "y" else px if n == "x" else 1.0
                                        for n in names]}]


def _create_image(group, names: str, shape: tuple, chunks: tuple, dtype, pixel, unit,
                  name: str):
    """An NGFF image in zarr ``group`` with one level ``0``; returns the array."""
    from ome_zarr.writer import write_multiscales_metadata

    arr = group.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0,
                             overwrite=True) if hasattr(group, "create_array") else \
        group.create_dataset("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0,
                             overwrite=True)
    write_multiscales_metadata(group, [{"path": "0", "coordinateTransformations":
                                        _scale(names, pixel)}],
                               axes=_axes(names, unit), name=name)
    return arr


#: The labels array of a :class:`Target`, relative to its folder.
_LABELS_ARRAY = os.path.join("labels", LABELS_NAME, "0")


def _target_arrays(source: Source, n_classes: int, block: int, labels: bool) -> dict:
    """``{array path in the target: (axis names, shape, chunks)}`` of the output of
    ``source``: probabilities ``(t,) c, y, x`` and, with ``labels``, labels ``(t,) y, x``;
    chunks one block of one frame (no larger than the image: a chunk is allocated whole)."""
    temporal = len(source.shape) == 3
    lead = (source.frames,) if temporal else ()
    one = (1,) if temporal else ()
    t = "t" if temporal else ""
    height, width = source.shape[-2:]
    edges = (min(block, height), min(block, width))
    arrays = {"0": (t + "cyx", lead + (n_classes, height, width), one + (n_classes, *edges))}
    if labels:
        arrays[_LABELS_ARRAY] = (t + "yx", lead + (height, width), one + edges)
    return arrays


@attrs.frozen
class Target:
    """The OME-Zarr output of one image (``path``: ``<name>.ome.zarr``): probabilities and,
    with ``labels``, instance labels; ``shape`` is the image's ``(H, W)``."""

    path: str
    shape: tuple
    frames: int
    temporal: bool
    labels: bool

    @classmethod
    def create(cls, path: str | os.PathLike, source: Source, n_classes: int, block: int,
               labels: bool) -> "Target":
        """Create the groups and empty arrays (chunks: one block of one frame)."""
        zarr = zarr_module()

        path = Path(path)
        layout = _target_arrays(source, n_classes, block, labels)
        root = zarr.open_group(str(path), mode="w")
        names, shape, chunks = layout["0"]
        _create_image(root, names, shape, chunks, "float32", source.pixel_size, source.unit,
                      f"{source.name} probabilities")
        if labels:
            from ome_zarr.writer import write_label_metadata

            lroot = root.require_group("labels")
            lgroup = lroot.require_group(LABELS_NAME)
            names, shape, chunks = layout[_LABELS_ARRAY]
            _create_image(lgroup, names, shape, chunks, "uint32", source.pixel_size,
                          source.unit, LABELS_NAME)
            write_label_metadata(lroot, LABELS_NAME)  # lists it in labels/, marks it a label image
        return cls(str(path), tuple(source.shape[-2:]), source.frames, len(source.shape) == 3,
                   labels)

    @classmethod
    def reopen(cls, path: str | os.PathLike, source: Source, n_classes: int, block: int,
               labels: bool) -> "Target | None":
        """The output :meth:`create` made earlier with these arguments (a stopped prediction
        being resumed), or None when it is missing or its arrays differ."""
        for sub, (_, shape, chunks) in _target_arrays(source, n_classes, block, labels).items():
            try:
                arr = _open_array_rw(os.path.join(str(path), sub))
            except Exception:  # missing or unreadable: predicted again from scratch
                return None
            if tuple(arr.shape) != shape or tuple(arr.chunks) != chunks:
                return None
        return cls(str(path), tuple(source.shape[-2:]), source.frames, len(source.shape) == 3,
                   labels)

    def _probs(self):
        return _open_array_rw(os.path.join(self.path, "0"))

    def _labels(self):
        return _open_array_rw(os.path.join(self.path, _LABELS_ARRAY))

    def _index(self, t: int, *rest) -> tuple:
        return ((t,) if self.temporal else ()) + tuple(rest)

    def write_probs(self, block, probs: np.ndarray) -> None:
        """Probabilities ``(h, w, C)`` of ``block`` into its chunk."""
        self._probs()[self._index(block.t, slice(None), slice(block.y0, block.y1),
                                  slice(block.x0, block.x1))] = np.moveaxis(probs, -1, 0)

    def read_probs(self, t: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Probabilities ``(h, w, C)`` of a window of frame ``t``."""
        data = self._probs()[self._index(t, slice(None), slice(y0, y1), slice(x0, x1))]
        return np.moveaxis(np.asarray(data), 0, -1)

    def write_labels(self, block, labels: np.ndarray) -> None:
        self._labels()[self._index(block.t, slice(block.y0, block.y1),
                                   slice(block.x0, block.x1))] = labels.astype(np.uint32)

    def read_labels(self, block) -> np.ndarray:
        return np.asarray(self._labels()[self._index(block.t, slice(block.y0, block.y1),
                                                     slice(block.x0, block.x1))])


def _open_array_rw(path: str):
    zarr = zarr_module()

    return zarr.open_array(path, mode="r+")


# --------------------------------------------------------------------------------------------
# whole images (prepare, tests)


def write_image(path: str | os.PathLike, image: np.ndarray, *, pixel_size: tuple | None = None,
                unit: str | None = None, chunk: int = 1024) -> Path:
    """Write a 2D ``(H, W)`` or 2D+t ``(T, H, W)`` image as an OME-Zarr image (one level,
    axes ``yx`` / ``tyx``, the pixel size as the scale) at ``path``; returns it."""
    zarr = zarr_module()

    path = Path(path)
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise DataError(f"{path}: expected a 2D image or a 2D+t video, got shape {image.shape}")
    names = "tyx" if image.ndim == 3 else "yx"
    chunks = ((1,) if image.ndim == 3 else ()) + (min(chunk, image.shape[-2]),
                                                  min(chunk, image.shape[-1]))
    root = zarr.open_group(str(path), mode="w")
    arr = _create_image(root, names, image.shape, chunks, image.dtype, pixel_size, unit,
                        path.name)
    arr[...] = image
    return path


def read_image_zarr(path: str | os.PathLike) -> np.ndarray:
    """The whole level-0 image of an OME-Zarr image (in memory)."""
    source = open_source(path)
    return np.asarray(_open_array(source.path)[...])
