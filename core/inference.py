"""Prediction of 2D images and videos of any size (SPEC I1-I3), and the post-processing chain.

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

Videos (:func:`predict_video`). One prediction per frame from the ``time_windows``-frame
window ending at it (:func:`dlsuite.data.windows.window_indices`: temporal mirroring before
the first frame). For temporal models that follow the split contract below, each frame's
per-frame features are computed once per tile and reused by the ``T`` windows that contain
the frame (a rolling cache of ``T`` maps); otherwise every window is recomputed. When the head
starts with a plain ``ConvLSTM2D``, its input convolution (one frame at a time) is cached as
well and the recurrence runs as one fused convolution per step; only the recurrence, which
starts from a zero state in every window, is computed per window. The cached runner of a model
is memoized per tile shape, so its traced functions serve later calls.

Split contract for temporal architectures (:func:`split_temporal_model`): the full model is
``Input (T, H, W, 1) -> TimeDistributed(frame_model) -> head``, where ``frame_model`` is a
Keras model (the per-frame encoder-decoder: ``(H, W, 1) -> (H, W, F)``), preferably named
``"frame_features"`` (or the ``TimeDistributed`` wrapper so named; without that name the only
``TimeDistributed`` layer wrapping a Keras model is taken), applied directly to the model
input, and ``head`` is a linear chain of layers (each layer's single input is the previous
layer's output: e.g. ``ConvLSTM2D(return_sequences=False)`` then a 1x1 ``Conv2D``) mapping
``(T, h, w, F)`` to logits ``(h, w, C)`` (or ``(1, h, w, C)``). Models that do not follow it
are still predicted correctly, window by window.

Nothing here imports TensorFlow or Keras at module level.
"""

from __future__ import annotations

import math
import os
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from dlsuite.errors import DataError, DlsuiteInputError

__all__ = [
    "FRAME_FEATURES",
    "halo_from_receptive_field",
    "tile_grid",
    "predict_image",
    "predict_video",
    "split_temporal_model",
    "rebuild_at_size",
    "run_postprocess",
    "write_predictions",
]

#: Name of the per-frame sub-model of a temporal architecture (the split contract).
FRAME_FEATURES = "frame_features"


# --------------------------------------------------------------------------------------------
# post-processing chain


def run_postprocess(steps: Iterable[Callable[[np.ndarray], np.ndarray]], probs: np.ndarray):
    """Apply post-processing ``steps`` in order to ``probs`` ``(H, W, C)``; returns the last
    result (an empty chain returns ``probs`` unchanged)."""
    out = probs
    for step in steps:
        out = step(out)
    return out


# --------------------------------------------------------------------------------------------
# geometry


def halo_from_receptive_field(receptive_field: int, fraction: float = 1.0) -> int:
    """Halo (context pixels per side) for ``inference.halo = "auto"``: the receptive-field
    radius ``ceil((rf - 1) / 2)``, times ``fraction`` (the effective receptive field is smaller
    than the theoretical one), rounded up; never negative."""
    if receptive_field < 1:
        raise DlsuiteInputError(f"receptive field must be >= 1 pixel, got {receptive_field}")
    return max(0, math.ceil(fraction * (receptive_field - 1) / 2))


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
    from .heads import activate

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
# temporal models


def _find_frame_model(model):
    """``(wrapper_index, frame_model)`` of the TimeDistributed per-frame network, or None.

    Preferred: the wrapper or the wrapped model is named ``"frame_features"``. Otherwise the
    only ``TimeDistributed`` layer wrapping a Keras model directly on the model input is used.
    """
    import keras

    candidates = [
        (index, layer) for index, layer in enumerate(model.layers)
        if isinstance(layer, keras.layers.TimeDistributed) and isinstance(layer.layer, keras.Model)
    ]
    for index, layer in candidates:
        if FRAME_FEATURES in (layer.name, layer.layer.name):
            return index, layer.layer
    if len(candidates) == 1:
        index, layer = candidates[0]
        return index, layer.layer
    return None


def _is_chain(layers) -> bool:
    """True when each layer has one input: the previous layer's output."""
    for prev, layer in zip(layers, layers[1:]):
        try:
            if layer.input is not prev.output:
                return False
        except (AttributeError, ValueError):
            return False
    return True


def split_temporal_model(model, tile_shape: tuple[int, int] | None = None):
    """Split a temporal model following the contract (module docstring) into
    ``(frame_model, head_model)``, or return None when it does not follow it.

    ``frame_model`` is the model's own per-frame network (shared weights). ``head_model`` is a
    new model ``(T, h, w, F) -> logits`` built from copies of the head layers at spatial size
    ``tile_shape`` (``(h, w)``; None keeps the model's own static size) with the trained
    weights copied (``set_weights``): ConvLSTM2D needs static shapes.
    """
    import keras

    found = _find_frame_model(model)
    if found is None:
        return None
    index, frame_model = found
    head_layers = model.layers[index + 1 :]
    if not head_layers or not _is_chain(model.layers[index : index + 1] + head_layers):
        return None
    if model.layers[index].output is None or model.layers[index].input is not model.inputs[0]:
        return None
    t, h, w = model.input_shape[1:4]
    n_features = model.layers[index].output.shape[-1]
    if tile_shape is not None:
        h, w = tile_shape
    inputs = keras.Input((t, h, w, n_features))
    x = inputs
    for layer in head_layers:
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        clone.set_weights(layer.get_weights())
    head = keras.Model(inputs, x, name="temporal_head")
    return frame_model, head


def predict_video(
    model,
    video,
    *,
    time_windows: int = 5,
    tile_size: int | None = 512,
    halo: int = 32,
    batch_size: int = 4,
    size_multiple: int = 1,
    temporal: bool = True,
    reuse_features: bool = True,
    heads=None,
) -> np.ndarray:
    """Probabilities ``(T, H, W, C)`` float32 for every frame of ``video`` ``(T, H, W)``.

    2D models (``temporal=False``) predict each frame alone (:func:`predict_image`). Temporal
    models predict frame ``t`` from the ``time_windows``-frame window ending at ``t``; with
    ``reuse_features`` and a model following the split contract each frame's per-frame
    features are computed once per tile (otherwise every window is recomputed; the results
    agree within float tolerance). Every model gets tiles of ``tile_size`` + halo: models built
    at a static spatial size (ConvLSTM) are rebuilt at that size (:func:`rebuild_at_size`),
    or, when that fails, get tiles of their own size.
    """
    video = np.asarray(video)
    if video.ndim != 3 or video.size == 0:
        raise DataError(f"predict_video: video must be (T, H, W), got shape {video.shape}")
    video = video.astype(np.float32, copy=False)
    kwargs = dict(tile_size=tile_size, halo=halo, batch_size=batch_size,
                  size_multiple=size_multiple, heads=heads)
    if not temporal:
        return np.stack([predict_image(model, frame, **kwargs) for frame in video])
    _check("time_windows", time_windows, 1)
    _check("batch_size", batch_size, 1)
    model_t = model.input_shape[1] if len(model.input_shape) == 5 else None
    if model_t is not None and model_t != time_windows:
        raise DlsuiteInputError(
            f"predict_video: the model takes windows of {model_t} frames, not time_windows="
            f"{time_windows}"
        )
    ay, ax = _axes(video.shape[1:], tile_size, halo, size_multiple)
    model, ay, ax = _for_tiles(model, (2, 3), video.shape[1:], ay, ax, halo, size_multiple)
    runner = _runner_for(model, (ay.length, ax.length)) if reuse_features else None
    out = None
    for i, j in _tiles(ay, ax):
        tile = _gather(video, ay, ax, i, j)  # (T, h, w)
        if runner is None:
            pred = _tile_windows(model, tile, time_windows, batch_size, heads)
        else:
            pred = _tile_cached(runner, tile, time_windows, batch_size, heads)
        if out is None:
            out = np.empty(video.shape + (pred.shape[-1],), dtype=np.float32)
        _place(out, pred, ay, ax, i, j)
    return out


def _tile_windows(model, tile: np.ndarray, T: int, batch_size: int, heads=None) -> np.ndarray:
    """Probabilities ``(T_video, h, w, C)`` of one tile, every window run through ``model``."""
    frames = tile[..., None]
    preds = []
    for ts in _batches(range(len(tile)), batch_size):
        x = np.stack([frames[_indices(t, T)] for t in ts])
        preds.append(_activate(_run(model, x), heads))
    return np.concatenate(preds)


def _tile_cached(runner: "_Cached", tile: np.ndarray, T: int, batch_size: int,
                 heads=None) -> np.ndarray:
    """As :func:`_tile_windows`, computing each frame's cached maps once: the maps of the
    frames of a batch join a rolling cache that keeps the ``T - 1`` frames before them.
    Window ``t`` of the batch reads the maps of frames ``window_indices(t, T)``."""
    cache: dict[int, Any] = {}
    preds = []
    for ts in _batches(range(len(tile)), batch_size):
        maps = runner.frames(np.ascontiguousarray(tile[list(ts), ..., None]))
        cache.update(zip(ts, runner.unstack(maps)))
        steps = [[cache[_indices(t, T)[k]] for t in ts] for k in range(T)]
        preds.append(_activate(runner.windows(steps), heads))
        keep_from = ts[-1] + 1 - (T - 1)
        for k in [k for k in cache if k < keep_from]:
            del cache[k]
    return np.concatenate(preds)


class _Cached:
    """How a split temporal model runs with cached per-frame maps.

    ``frames(x)`` maps frames ``(b, h, w, 1)`` to per-frame maps ``(b, h, w, K)`` (computed
    once per frame; any array type), ``unstack(maps)`` splits them per frame, and
    ``windows(steps)`` maps ``steps[k][j]`` (the map of step ``k`` of window ``j``) to logits
    ``(b, h, w, C)`` as numpy.
    """

    def __init__(self, frames: Callable, unstack: Callable, windows: Callable):
        self.frames, self.unstack, self.windows = frames, unstack, windows


def _tf_call(model):
    """``model`` in inference mode as one traced TensorFlow function."""
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False), reduce_retracing=True)


_RUNNERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _runner_for(model, tile_shape: tuple[int, int]) -> "_Cached | None":
    """:func:`_cached_runner`, memoized per model and tile shape (its traced functions are
    reused by later calls, as Keras reuses its predict function)."""
    per_model = _RUNNERS.setdefault(model, {})
    if tile_shape not in per_model:
        per_model[tile_shape] = _cached_runner(model, tile_shape)
    return per_model[tile_shape]


def _cached_runner(model, tile_shape: tuple[int, int]) -> "_Cached | None":
    """The cached way of running ``model`` at ``tile_shape``, or None (not splittable).

    When the head starts with a plain ``ConvLSTM2D`` (``return_sequences=False``, 'same'
    padding, stride 1), its input convolution is also moved to the per-frame part (it depends
    on one frame only), and the recurrence runs as one fused convolution per step, the head's
    remaining layers after it; otherwise the per-frame features are cached and the rebuilt head
    runs on each window.
    """
    import tensorflow as tf

    split = split_temporal_model(model, tile_shape)
    if split is None:
        return None
    frame_model, head = split
    fused = _fused_convlstm(frame_model, head)
    if fused is not None:
        return fused
    frames, run_head = _tf_call(frame_model), _tf_call(head)

    def windows(steps):
        x = tf.stack([tf.stack(step) for step in steps], axis=1)
        return _drop_time(_first_output(run_head(x)))

    return _Cached(lambda x: frames(tf.constant(x)), tf.unstack, windows)


def _first_output(out) -> np.ndarray:
    if isinstance(out, (list, tuple)):
        out = out[0]
    return np.asarray(out)


def _plain_convlstm(layer) -> bool:
    import keras

    if not isinstance(layer, keras.layers.ConvLSTM2D):
        return False
    config = layer.get_config()
    return (
        not config.get("return_sequences") and not config.get("return_state")
        and not config.get("go_backwards") and not config.get("stateful")
        and config.get("padding") == "same" and tuple(config.get("strides")) == (1, 1)
        and config.get("data_format", "channels_last") == "channels_last"
    )


def _fused_convlstm(frame_model, head) -> "_Cached | None":
    """A :class:`_Cached` caching ``frame_model`` + the ConvLSTM input convolution, or None."""
    import keras
    import tensorflow as tf

    layers = [layer for layer in head.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers or not _plain_convlstm(layers[0]):
        return None
    lstm, tail_layers = layers[0], layers[1:]
    config = lstm.get_config()
    weights = lstm.get_weights()
    kernel, recurrent = weights[0], weights[1]
    filters = int(config["filters"])
    projection = keras.layers.Conv2D(
        4 * filters, config["kernel_size"], padding="same",
        dilation_rate=config["dilation_rate"], use_bias=bool(config["use_bias"]),
    )
    frame_input = keras.Input(frame_model.input_shape[1:])
    frames = keras.Model(frame_input, projection(frame_model(frame_input)))
    projection.set_weights(weights[:1] + weights[2:3] if config["use_bias"] else [kernel])
    tail = None
    if tail_layers:
        tail_input = keras.Input(tuple(head.output_shape[1:-1]) + (filters,))
        x = tail_input
        for layer in tail_layers:
            clone = layer.__class__.from_config(layer.get_config())
            x = clone(x)
            clone.set_weights(layer.get_weights())
        tail = keras.Model(tail_input, x)
    activation = keras.activations.get(config["activation"])
    gate = keras.activations.get(config["recurrent_activation"])
    recurrent = tf.constant(recurrent)

    @tf.function(reduce_retracing=True)
    def recur(steps):  # steps[k][j]: input convolution (+ bias) of step k of window j
        c = h = None
        for step in steps:
            z = tf.stack(step)
            if h is not None:
                z = z + tf.nn.conv2d(h, recurrent, strides=1, padding="SAME")
            zi, zf, zc, zo = tf.split(z, 4, axis=-1)
            update = gate(zi) * activation(zc)
            c = update if c is None else gate(zf) * c + update
            h = gate(zo) * activation(c)
        return h if tail is None else tail(h, training=False)

    run_frames = _tf_call(frames)
    return _Cached(lambda x: run_frames(tf.constant(x)), tf.unstack,
                   lambda steps: _drop_time(_first_output(recur(steps))))


def _drop_time(out: np.ndarray) -> np.ndarray:
    return out[:, 0] if out.ndim == 5 and out.shape[1] == 1 else out


def _indices(t: int, T: int) -> list[int]:
    from dlsuite.data.windows import window_indices

    return window_indices(t, T)


# --------------------------------------------------------------------------------------------
# outputs


def write_predictions(out_dir: str | os.PathLike, name: str, probs=None, labels=None) -> dict:
    """Write ``probs`` and/or ``labels`` of one input as TIFF under ``out_dir``; atomic.

    ``probs`` ``(H, W, C)`` or ``(T, H, W, C)`` goes to ``out_dir/probabilities/<name>.tif``
    as float32 with the class axis first (ImageJ ``CYX`` / ``TCYX``); ``labels`` ``(H, W)`` or
    ``(T, H, W)`` to ``out_dir/labels/<name>.tif`` as uint16, or uint32 when the largest label
    exceeds 65535. Returns ``{"probabilities": path, "labels": path}`` for what was written.
    """
    from dlsuite.data.io import write_tiff
    from dlsuite.tracking.labels import as_label_video

    out_dir = Path(out_dir)
    stem = Path(name).name
    if stem.lower().endswith((".tif", ".tiff")):
        stem = stem.rsplit(".", 1)[0]
    written = {}
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim not in (3, 4):
            raise DataError(f"{name}: probabilities must be (H, W, C) or (T, H, W, C)")
        axes = "CYX" if probs.ndim == 3 else "TCYX"
        written["probabilities"] = write_tiff(
            out_dir / "probabilities" / f"{stem}.tif", np.moveaxis(probs, -1, -3), axes=axes
        )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.size and labels.min() < 0:
            raise DataError(f"{name}: label image holds negative values")
        labels = as_label_video(labels)
        if labels.ndim not in (2, 3):
            raise DataError(f"{name}: labels must be (H, W) or (T, H, W)")
        written["labels"] = write_tiff(out_dir / "labels" / f"{stem}.tif", labels,
                                       axes="YX" if labels.ndim == 2 else "TYX")
    return written
