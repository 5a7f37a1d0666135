"""Receptive fields measured on built Keras models.

What the number means. The *receptive field* of an architecture is ``2 r + 1`` pixels, where
``r`` (the *reach*) is the largest distance, along either axis and on either side, from an
output pixel to an input pixel that influences it, taken over every output pixel. For a
network that downsamples (pooling, strided convolutions) the reach of a pixel depends on its
position modulo the size multiple ``m`` (its *phase*: where it sits in the pooling grid), so
``r`` is the maximum over all ``m`` phases; the textbook ``1 + sum((k - 1) * jump)``
underestimates it for U-Nets. ``inference.halo = "auto"`` uses ``r`` (``ceil((rf - 1) / 2)``)
rounded up to a multiple of ``m``; with that halo a tiled prediction equals an untiled one.

How it is measured (:func:`measure_reach`). The gradient of one output pixel with respect to
the input is non-zero exactly on the input pixels that influence it (through the paths active
for that input). The model gets a batch of random inputs, one output pixel per batch element
on the diagonal of the image centre, one per phase ``0..m-1`` (and ``draws`` random inputs
per phase, because ReLUs and max-pooling pass gradients only along active paths, so one input
may hide some of them); the reach is the farthest non-zero gradient from its output pixel
over the batch. A gradient is never non-zero without a real dependence, so the measurement
never overestimates; it can underestimate only when every draw blocks the farthest paths,
which becomes improbable with a few draws and, for a registry entry, a few freshly built
models (a random initialisation of a tiny network can leave a whole layer inactive). If the gradient reaches the border of the input
the size is doubled (up to ``max_size``); a reach still cut at ``max_size`` is reported as a
lower bound (``Reach.complete`` False).

:func:`measured_receptive_field` measures a registry entry at a parameter set once per process
(cached) -- used for architectures that declare no ``receptive_field`` and by the contract
test of :class:`dlsuite.testing.ArchitectureContract`.

TensorFlow is imported only inside the functions that measure.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Callable

import attrs
import numpy as np

__all__ = ["Reach", "measure_reach", "measure_model", "measured_receptive_field",
           "radius_of"]


@attrs.frozen
class Reach:
    """A measured reach: ``radius`` pixels (``receptive_field = 2 radius + 1``), the largest
    over ``phases`` phases; ``size`` the side of the input it was measured on; ``complete``
    False when the gradient still reached the input border at the largest size tried (the
    radius is then only a lower bound); ``per_phase`` the radius of each phase."""

    radius: int
    size: int
    phases: int
    complete: bool = True
    per_phase: tuple = ()

    @property
    def receptive_field(self) -> int:
        return 2 * self.radius + 1


def radius_of(receptive_field: int) -> int:
    """The reach ``r`` of a receptive field of ``receptive_field`` pixels:
    ``ceil((receptive_field - 1) / 2)``."""
    return max(0, -(-(int(receptive_field) - 1) // 2))


def _round_up(n: int, m: int) -> int:
    return -(-int(n) // m) * m


def _first(out):
    return out[0] if isinstance(out, (list, tuple)) else out


def _reach_once(model, size: int, multiple: int, phases: list[int], temporal: bool,
                time_windows: int, draws: int, seed: int, chunk: int) -> tuple[dict, bool]:
    """Radius per phase of ``phases`` at input side ``size`` (0: no gradient at all), and
    whether a gradient touched the input border."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    centre = (size // 2) // multiple * multiple
    jobs = [p for p in phases for _ in range(draws)]
    radii = dict.fromkeys(phases, 0)
    touched = False
    for start in range(0, len(jobs), chunk):
        batch = jobs[start:start + chunk]
        lead = (len(batch), time_windows) if temporal else (len(batch),)
        # zero-mean inputs: each ReLU is active for about half the draws
        x = tf.Variable(rng.normal(size=(*lead, size, size, 1)).astype(np.float32))
        mask = np.zeros((len(batch), size, size, 1), np.float32)
        for i, p in enumerate(batch):
            mask[i, centre + p, centre + p, 0] = 1.0
        with tf.GradientTape() as tape:
            y = _first(model(x, training=False))
            if len(y.shape) == 5:  # (B, T', H, W, C): every output frame
                y = tf.reduce_sum(y, axis=1)
            weights = rng.normal(size=(int(y.shape[-1]),)).astype(np.float32)
            target = tf.reduce_sum(y * mask * tf.constant(weights))
        grad = tape.gradient(target, x)
        if grad is None:
            continue
        g = np.abs(grad.numpy()).reshape(len(batch), -1, size, size).max(axis=1)
        for i, p in enumerate(batch):
            rows = np.flatnonzero(g[i].max(axis=1) > 0)
            cols = np.flatnonzero(g[i].max(axis=0) > 0)
            if rows.size == 0:
                continue
            c = centre + p
            radius = max(c - rows[0], rows[-1] - c, c - cols[0], cols[-1] - c)
            radii[p] = max(radii[p], int(radius))
            touched |= bool(rows[0] == 0 or cols[0] == 0 or rows[-1] == size - 1
                            or cols[-1] == size - 1)
    return radii, touched


def _reach_at(model, size: int, multiple: int, temporal: bool, time_windows: int,
              draws: int, seed: int, chunk: int, retries: int = 3) -> tuple[list[int], bool]:
    """Radius of every phase at input side ``size``; phases whose every draw gave no gradient
    (all paths blocked by inactive ReLUs) are drawn again, up to ``retries`` times."""
    phases = list(range(multiple))
    radii: dict[int, int] = {}
    touched = False
    for attempt in range(retries + 1):
        found, hit = _reach_once(model, size, multiple, phases, temporal, time_windows,
                                 draws, seed + 7919 * attempt, chunk)
        radii.update(found)
        touched |= hit
        phases = [p for p, r in radii.items() if r == 0]
        if not phases:
            break
    return [radii[p] for p in range(multiple)], touched


def measure_reach(build: Callable[[int], Any], *, size_multiple: int = 1,
                  temporal: bool = False, time_windows: int = 1, start_size: int | None = None,
                  max_size: int = 1024, draws: int = 2, seed: int = 0,
                  chunk: int = 8) -> Reach:
    """Measure the reach of the model ``build(size)`` returns (a Keras model taking
    ``(B, size, size, 1)``, or ``(B, time_windows, size, size, 1)`` when ``temporal``; it may
    return the same dynamic-size model for every size) over every phase modulo
    ``size_multiple``, doubling the input side from ``start_size`` (default: a few multiples
    and at least 64 px) while the gradient reaches the border, up to ``max_size``. Inference
    mode (``training=False``); ``draws`` random inputs per phase, ``chunk`` per batch."""
    m = max(1, int(size_multiple))
    size = _round_up(max(start_size or 0, 64, 4 * m), m)
    limit = max(_round_up(max_size, m), size)
    while True:
        model = build(size)
        if size < limit:  # a cheap probe (two phases, one draw) while the input is too small
            _, touched = _reach_once(model, size, m, sorted({0, m // 2}), temporal,
                                     int(time_windows), 1, seed, int(chunk))
            if touched:
                size = min(2 * size, limit)
                continue
        radii, touched = _reach_at(model, size, m, temporal, int(time_windows), int(draws),
                                   seed, int(chunk))
        if not touched or size >= limit:
            return Reach(max(radii), size, m, not touched, tuple(radii))
        size = min(2 * size, limit)


_MODEL_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def measure_model(model, *, size_multiple: int | None = None, builds: int = 3,
                  **kwargs) -> Reach:
    """:func:`measure_reach` of a built Keras ``model``; ``size_multiple`` defaults to the one
    inferred from its strides (:func:`dlsuite.keras_helpers.infer_size_multiple`); temporal
    when its input is 5D. A model with a static input size is rebuilt at each measured size
    (:func:`dlsuite.inference.rebuild_at_size`). The reach is the largest over the model and
    ``builds - 1`` clones with fresh random weights (``keras.models.clone_model``; skipped
    for models that cannot be cloned). Cached per model object and arguments."""
    from ..keras_helpers import infer_size_multiple

    shape = model.input_shape[0] if isinstance(model.input_shape, list) else model.input_shape
    temporal = len(shape) == 5
    if size_multiple is None:
        size_multiple = infer_size_multiple(model)
    key = (int(size_multiple), int(builds), tuple(sorted(kwargs.items())))
    per_model = _MODEL_CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    static = any(s is not None for s in shape[-3:-1])
    reaches = []
    for index in range(max(1, int(builds))):
        net = model if index == 0 else _clone(model)
        if net is None:
            break

        def build(size: int, net=net):
            if not static:
                return net
            from .tiling import rebuild_at_size

            return rebuild_at_size(net, (size, size))

        reaches.append(measure_reach(
            build, size_multiple=size_multiple, temporal=temporal,
            time_windows=(shape[1] or 1) if temporal else 1, **{"seed": index, **kwargs}))
    per_model[key] = reach = _largest(reaches, int(size_multiple))
    return reach


def _clone(model):
    """``model`` with fresh random weights, or None when it cannot be cloned."""
    import keras

    try:
        return keras.models.clone_model(model)
    except Exception:  # noqa: BLE001 - subclassed or unusual models: measure the model only
        return None


def _largest(reaches: list[Reach], multiple: int) -> Reach:
    """The union of several measurements of one architecture."""
    return Reach(max(r.radius for r in reaches), max(r.size for r in reaches), multiple,
                 all(r.complete for r in reaches),
                 tuple(max(phase) for phase in zip(*(r.per_phase for r in reaches))))


def _params_key(params: Any) -> str:
    try:
        return json.dumps(attrs.asdict(params), sort_keys=True, default=repr)
    except Exception:  # noqa: BLE001 - not an attrs instance: its repr
        return repr(params)


_CACHE: dict[tuple, Reach] = {}


def measured_receptive_field(entry, params: Any, *, n_classes: int = 2, builds: int = 3,
                             **kwargs) -> Reach:
    """The :class:`Reach` of the architecture of registry ``entry`` (a
    :class:`dlsuite.registry.Entry`) built with ``params`` and ``n_classes`` outputs, measured
    once per plugin, version and parameter set in this process (cached). A receptive field is
    a property of the architecture, so the models have fresh random weights; the reach is the
    largest over ``builds`` models (in a tiny network one random initialisation may leave a
    whole layer inactive for every input, hiding the paths through it). Models that need a
    static size are built at each measured size. The spec's ``size_multiple`` gives the
    phases; ``kwargs`` go to :func:`measure_reach`."""
    spec = entry.spec
    key = (entry.plugin, entry.dist, entry.version, entry.name, _params_key(params), n_classes,
           builds, tuple(sorted(kwargs.items())))
    if key in _CACHE:
        return _CACHE[key]
    from ..registry import call_spec

    multiple = int(call_spec(entry, "size_multiple", params) or 1)
    windows = int(getattr(params, "time_windows", 1) or 1) if spec.temporal else 1
    factory = entry.load()
    models: dict[Any, Any] = {}

    def build(size: int):
        hw = None if spec.supports_dynamic_size else (size, size)
        if hw not in models:
            models.clear()  # one model alive at a time
            frame = (None, None, 1) if hw is None else (*hw, 1)
            shape = (windows, *frame) if spec.temporal else frame
            models[hw] = factory(params, n_classes=n_classes, input_shape=shape)
        return models[hw]

    reaches = []
    for index in range(max(1, int(builds))):
        reaches.append(measure_reach(build, size_multiple=multiple, temporal=spec.temporal,
                                     time_windows=windows, **{"seed": index, **kwargs}))
        models.clear()  # the next measurement builds a model with other random weights
    _CACHE[key] = reach = _largest(reaches, multiple)
    return reach
