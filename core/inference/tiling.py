"""Tiled prediction of 2D images of any size, and the tiling settings.

Tiling (:func:`predict_image`). The image is cut into cores of ``tile_size`` x ``tile_size``
output pixels; each core is predicted from a network input extended by ``halo`` pixels of
context on every side (more at the bottom/right when needed to reach a multiple of
``size_multiple``). Context outside the image is mirrored (``numpy`` ``reflect``: the edge
pixel is not repeated). ``halo`` and the core size are rounded up to multiples of
``size_multiple``, so every tile sees the pooling grid of a plain pass over the whole image;
with ``halo`` at least the receptive-field radius a tiled prediction therefore equals an
untiled one (``tile_size=None``: one tile covering the image, with the same mirrored halo)
up to float rounding. Tiles are gathered by index arithmetic (no padded copy of the image)
and written into one preallocated output, so memory beyond input and output is bounded by
``batch_size`` tiles. Images smaller than a tile give one smaller tile. Models built at a
static spatial size (ConvLSTM needs static shapes; training builds them at the patch size) are
rebuilt at the tile input size with the same weights (:func:`rebuild_at_size`, memoized), so
a large time-lapse is cut into a few large tiles rather than many patch-sized ones.

Probabilities: models output logits; :func:`predict_image` returns softmax probabilities
(sigmoid for a 1-channel output) as float32 ``(H, W, C)``.

:class:`TileSettings` bundles how a model is run over an image (the arguments of
:func:`dlsuite.inference.predict_video`); :func:`halo_pixels` turns the config's
``inference.halo`` (pixels or ``"auto"``) into pixels.

Nothing here imports TensorFlow or Keras at module level.
"""

from __future__ import annotations

import math
import weakref
from typing import Iterator, Sequence

import attrs
import numpy as np

from dlsuite.errors import DataError, DlsuiteInputError
from dlsuite.models import halo_from_receptive_field, halo_pixels, used_halo

__all__ = ["halo_from_receptive_field", "halo_pixels", "used_halo", "tile_grid", "predict_image",
           "rebuild_at_size", "TileSettings", "model_tile_settings"]

# --------------------------------------------------------------------------------------------
# geometry




def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m




class _Axis:
    """Tiling of one axis of length ``n``: cores of ``core`` pixels, inputs of ``length``."""

    def __init__(self, n: int, tile_size: int | None, halo: int, multiple: int):
        halo = _round_up(halo, multiple)  # keeps the pooling grid of a plain whole-image pass
        whole = _round_up(n, multiple)
        core = whole if tile_size is None else min(_round_up(tile_size, multiple), whole)
        self.n, self.core, self.halo = n, core, halo
        self.length = _round_up(core + 2 * halo, multiple)
        self.count = -(-n // core)

    def input_index(self, i: int) -> np.ndarray:
        """Image indices (mirrored outside 0..n-1) of the input of tile ``i``."""
        return _reflect(np.arange(self.length) + i * self.core - self.halo, self.n)

    def core_span(self, i: int) -> tuple[int, int, int]:
        """``(start, stop, offset)``: image range of tile ``i``'s core and its offset in the
        tile's output."""
        start = i * self.core
        return start, min(start + self.core, self.n), self.halo


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """Map indices onto ``0..n-1`` by mirroring without repeating the edge (numpy reflect)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    k = np.mod(index, period)
    return np.where(k < n, k, period - k)


def tile_grid(shape: tuple[int, int], tile_size: int | None, halo: int, size_multiple: int = 1):
    """The tiling :func:`predict_image` uses for an image of ``shape``: returns
    ``(input_shape, n_tiles)`` with ``input_shape`` the network input ``(h, w)`` of each tile."""
    ay, ax = (_Axis(n, tile_size, halo, size_multiple) for n in shape)
    return (ay.length, ax.length), ay.count * ax.count


def _check(name: str, value: int, low: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < low:
        raise DlsuiteInputError(f"inference: {name} must be an integer >= {low}, got {value!r}")


def _axes(shape, tile_size, halo, size_multiple) -> tuple[_Axis, _Axis]:
    _check("halo", halo, 0)
    _check("size_multiple", size_multiple, 1)
    if tile_size is not None:
        _check("tile_size", tile_size, 1)
    return tuple(_Axis(int(n), tile_size, int(halo), int(size_multiple)) for n in shape)


def _tiles(ay: _Axis, ax: _Axis) -> list[tuple[int, int]]:
    return [(i, j) for i in range(ay.count) for j in range(ax.count)]


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for k in range(0, len(items), size):
        yield items[k : k + size]


def _gather(image: np.ndarray, ay: _Axis, ax: _Axis, i: int, j: int) -> np.ndarray:
    """The network input of tile (i, j) of a 2D ``image`` (or ``(T, H, W)`` video)."""
    rows, cols = ay.input_index(i), ax.input_index(j)
    return image[..., rows[:, None], cols[None, :]]


def _place(out: np.ndarray, pred: np.ndarray, ay: _Axis, ax: _Axis, i: int, j: int) -> None:
    """Write tile (i, j)'s core of ``pred`` ``(..., h, w, C)`` into ``out`` ``(..., H, W, C)``."""
    y0, y1, oy = ay.core_span(i)
    x0, x1, ox = ax.core_span(j)
    out[..., y0:y1, x0:x1, :] = pred[..., oy : oy + y1 - y0, ox : ox + x1 - x0, :]


# --------------------------------------------------------------------------------------------
# running a model


def _activate(logits: np.ndarray, heads=None) -> np.ndarray:
    """Per-head activation of the logits (:func:`dlsuite.heads.activate`; ``heads=None``:
    softmax over all channels, sigmoid for one channel), float32."""
    from dlsuite.heads import activate

    return activate(logits, heads)


def _run(model, batch: np.ndarray) -> np.ndarray:
    """Model logits of one batch in inference mode, as numpy; a singleton time axis of
    ``(B, 1, h, w, C)`` outputs is dropped."""
    out = model.predict_on_batch(np.ascontiguousarray(batch, dtype=np.float32))
    if isinstance(out, (list, tuple)):  # multi-output models: the segmentation head first
        out = out[0]
    out = np.asarray(out)
    if out.ndim == 5 and out.shape[1] == 1:
        out = out[:, 0]
    return out


def _static_hw(model, spatial_axes: tuple[int, int]) -> tuple[int | None, int | None]:
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    return tuple(shape[a] for a in spatial_axes)


def _as_image(image, name: str = "image") -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise DataError(f"predict_image: {name} must be 2D (H, W), got shape {image.shape}")
    if image.size == 0:
        raise DataError(f"predict_image: {name} is empty")
    return image.astype(np.float32, copy=False)


def predict_image(
    model,
    image,
    *,
    tile_size: int | None = 512,
    halo: int = 32,
    batch_size: int = 4,
    size_multiple: int = 1,
    heads=None,
) -> np.ndarray:
    """Probabilities ``(H, W, C)`` float32 of a 2D ``model`` on ``image`` ``(H, W)``
    (``heads``: the target's output heads, each activated as it declares; None: softmax).

    ``tile_size`` is the core (output) size of a tile, ``None`` for one tile covering the
    image; ``halo`` the mirrored context per side; ``size_multiple`` what the model needs H and
    W divisible by (see the module docstring for the equality tiled == untiled). Any image size
    works, including images smaller than a tile and sizes not divisible by ``size_multiple``.
    A model built at a static input size is rebuilt at the tile input size
    (:func:`rebuild_at_size`); if that fails it is fed tiles of its own size (the core
    shrinks).
    """
    image = _as_image(image)
    ay, ax = _axes(image.shape, tile_size, halo, size_multiple)
    model, ay, ax = _for_tiles(model, (1, 2), image.shape, ay, ax, halo, size_multiple)
    _check("batch_size", batch_size, 1)
    out = None
    for batch in _batches(_tiles(ay, ax), batch_size):
        x = np.stack([_gather(image, ay, ax, i, j) for i, j in batch])[..., None]
        pred = _activate(_run(model, x), heads)
        if out is None:
            out = np.empty(image.shape + (pred.shape[-1],), dtype=np.float32)
        for k, (i, j) in enumerate(batch):
            _place(out, pred[k], ay, ax, i, j)
    return out


_RESIZED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _for_tiles(model, spatial_axes, shape, ay: _Axis, ax: _Axis, halo, size_multiple):
    """``(model, ay, ax)`` to run: a model built at a static spatial size other than the tile
    input is rebuilt at the tile input size (:func:`rebuild_at_size`, memoized); when it cannot
    be rebuilt, the tiles are fitted to its static size instead (the core shrinks)."""
    static = _static_hw(model, spatial_axes)
    if all(s is None for s in static):
        return model, ay, ax
    wanted = (ay.length, ax.length)
    if tuple(static) == wanted:
        return model, ay, ax
    per_model = _RESIZED.setdefault(model, {})
    if wanted not in per_model:
        try:
            per_model[wanted] = rebuild_at_size(model, wanted)
        except Exception:  # noqa: BLE001 - any failure: keep the model's own size
            per_model[wanted] = None
    if per_model[wanted] is not None:
        return per_model[wanted], ay, ax
    return (model,) + _fit_static(shape, static, halo, size_multiple)


def rebuild_at_size(model, spatial: tuple[int, int]):
    """A copy of the functional Keras ``model`` (weights shared by value) whose input, and the
    inputs of its nested models, take spatial size ``spatial`` ``(h, w)`` instead of their
    static size: for models that need static shapes (ConvLSTM2D), so that they can be run on
    tiles larger than their training patches. Raises when the architecture cannot be rebuilt
    at that size (e.g. a layer with a hard-coded spatial shape)."""
    config = model.get_config()

    def resize(node):
        if isinstance(node, dict):
            node.pop("build_config", None)  # layers are rebuilt by calling them
            if node.get("class_name") == "InputLayer":
                shape = list(node["config"]["batch_shape"])
                if len(shape) >= 4:
                    shape[-3], shape[-2] = spatial
                node["config"]["batch_shape"] = shape
            for value in node.values():
                resize(value)
        elif isinstance(node, list):
            for value in node:
                resize(value)

    resize(config)
    rebuilt = model.__class__.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _fit_static(shape, static, halo, size_multiple) -> tuple[_Axis, _Axis]:
    """Axes whose tile input equals a model's static input size (core = size - 2 * halo,
    rounded down to the multiple)."""
    axes = []
    for n, s in zip(shape, static):
        if s is None:
            axes.append(_Axis(int(n), None, halo, size_multiple))
            continue
        core = (s - 2 * _round_up(halo, size_multiple)) // size_multiple * size_multiple
        if core < 1:
            raise DlsuiteInputError(
                f"inference: the model's static input size {s} leaves no room for a core "
                f"with halo {halo}; lower the halo or rebuild the model at a larger size"
            )
        axis = _Axis(int(n), core, halo, size_multiple)
        axis.length = s
        axes.append(axis)
    return tuple(axes)


# --------------------------------------------------------------------------------------------
# settings




@attrs.frozen
class TileSettings:
    """How a model is run over an image: :func:`dlsuite.inference.predict_video` arguments.
    ``halo`` is the halo tiling uses (already rounded up to ``size_multiple``,
    :func:`used_halo`); ``receptive_field`` and ``receptive_field_source`` (``"declared"``,
    ``"measured"``; None when the halo was given in pixels) record where an ``auto`` halo
    came from (``predict.json`` holds all of it)."""

    tile_size: int | None
    halo: int = attrs.field(converter=int)
    batch_size: int
    size_multiple: int = 1
    temporal: bool = False
    time_windows: int = 1
    receptive_field: int | None = None
    receptive_field_source: str | None = None
    heads: tuple | None = None  # the target's output heads (None: softmax over all channels)
    tta: bool = False  # mean over the 8 flips and quarter turns (dlsuite.inference.tta)

    def __attrs_post_init__(self):
        object.__setattr__(self, "halo", used_halo(self.halo, self.size_multiple))

    def kwargs(self) -> dict:
        """Keyword arguments of :func:`dlsuite.inference.predict_video`."""
        return {"tile_size": self.tile_size, "halo": self.halo, "batch_size": self.batch_size,
                "size_multiple": self.size_multiple, "temporal": self.temporal,
                "time_windows": self.time_windows, "heads": self.heads, "tta": self.tta}


def model_tile_settings(model, *, tile_size: int | None = 1024, halo: int | str = 32,
                        batch_size: int = 2, size_multiple: int | None = None,
                        time_windows: int | None = None) -> TileSettings:
    """:class:`TileSettings` for a bare ``keras.Model``: temporal when its input is
    ``(B, T, H, W, 1)`` (``time_windows`` defaults to the model's ``T``, else 5); the size
    multiple is inferred from the layers' strides unless given; ``halo="auto"`` measures the
    model's receptive field (:func:`dlsuite.inference.receptive_field.measure_model`; its input H and W
    must be dynamic)."""
    from dlsuite.keras_helpers import infer_size_multiple

    shape = model.input_shape[0] if isinstance(model.input_shape, list) else model.input_shape
    temporal = len(shape) == 5
    if time_windows is None:
        time_windows = (shape[1] or 5) if temporal else 1
    if size_multiple is None:
        size_multiple = infer_size_multiple(model)
    rf = source = None
    if halo == "auto":
        from .receptive_field import measure_model

        rf, source = measure_model(model, size_multiple=size_multiple).receptive_field, "measured"
        halo = halo_from_receptive_field(rf)
    return TileSettings(tile_size, int(halo), int(batch_size), int(size_multiple), temporal,
                        int(time_windows), rf, source)
