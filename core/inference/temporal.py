"""Prediction of videos: temporal windows and the per-frame feature cache.

Videos (:func:`predict_video`). One prediction per frame from the ``time_windows``-frame
window ending at it (:func:`dlsuite.data.windows.window_indices`: temporal mirroring before
the first frame). For temporal models that follow the split contract below, each frame's
per-frame features are computed once per tile and reused by the ``T`` windows that contain
the frame (a rolling cache of ``T`` maps); otherwise every window is recomputed. When the head
starts with a plain ``ConvLSTM2D``, its input convolution (one frame at a time) is cached as
well and the recurrence runs as one fused convolution per step; only the recurrence, which
starts from a zero state in every window, is computed per window. The cached runner of a model
is memoized per tile shape, so its traced functions serve later calls. Tiling, halo and the
rebuild of static-size models are those of :mod:`dlsuite.inference.tiling`.

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

import weakref
from typing import Any, Callable

import numpy as np

from dlsuite.errors import DataError, DlsuiteInputError

from .tiling import (_activate, _axes, _batches, _check, _for_tiles, _gather, _place, _run,
                     _tiles, predict_image)

__all__ = ["FRAME_FEATURES", "predict_video", "split_temporal_model"]

#: Name of the per-frame sub-model of a temporal architecture (the split contract).
FRAME_FEATURES = "frame_features"


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
    tta: bool = False,
) -> np.ndarray:
    """Probabilities ``(T, H, W, C)`` float32 for every frame of ``video`` ``(T, H, W)``.

    2D models (``temporal=False``) predict each frame alone (:func:`predict_image`). Temporal
    models predict frame ``t`` from the ``time_windows``-frame window ending at ``t``; with
    ``reuse_features`` and a model following the split contract each frame's per-frame
    features are computed once per tile (otherwise every window is recomputed; the results
    agree within float tolerance). Every model gets tiles of ``tile_size`` + halo: models built
    at a static spatial size (ConvLSTM) are rebuilt at that size (:func:`rebuild_at_size`),
    or, when that fails, get tiles of their own size. ``tta``: the mean over the 8 flips and
    quarter turns of the frames (:func:`dlsuite.inference.tta.dihedral_average`).
    """
    # every option but the frames and tta, for the 8 passes of tta (none is forgotten)
    passes = {k: v for k, v in locals().items() if k not in ("model", "video", "tta")}
    video = np.asarray(video)
    if video.ndim != 3 or video.size == 0:
        raise DataError(f"predict_video: video must be (T, H, W), got shape {video.shape}")
    video = video.astype(np.float32, copy=False)
    if tta:
        from .tta import dihedral_average

        return dihedral_average(lambda v: predict_video(model, v, **passes), video)
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
