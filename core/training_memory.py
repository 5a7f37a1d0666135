"""Does a training step fit in memory? Checked before the run directory is made, so a
``datagen.patch_size`` or ``datagen.batch_size`` far too large for the machine stops at once
with one line naming the keys, instead of the kernel killing the process minutes into the
first epoch (exit 137, no message).

The estimate is a lower bound: TensorFlow's baseline
(:data:`dlsuite.predict_memory.BASELINE_BYTES`) plus :data:`ACTIVATION_FACTOR` times the
bytes of every layer output for one training batch (``batch_size * patches_per_image``
patches; the activations kept for the gradient), counted on the configured model built at
the patch size, with the per-frame network of a ``TimeDistributed`` counted for every frame
and a ConvLSTM's gate convolutions for every time step
(:func:`dlsuite.keras_helpers.activation_elements`). Peak resident memory of real
``dlsuite train`` runs on this kind of machine (4 images x 2 patches) was 0.8 to 0.95 times
those bytes above the baseline for U-Nets with and without BatchNorm (patches 256 to 1536),
1.5 times for ``mobilenet_mobileunet``; and (4 patches) 1.19 and 1.25 times for
``unet_lstm`` (16 filters, patch 256 x 5 frames, 384 x 3) and 1.15 times for
``mobilenet_mobileunet_lstm`` (512 x 5: 12.7 GiB, where the layer outputs alone, before the
frames and states were counted, came to 0.4 GiB); :data:`ACTIVATION_FACTOR` stays below all
of them, so a refused run could not have fitted.
A run whose lower bound is over half the memory available gets a warning. Models that are
not Keras functional models (a plugin's subclassed model) are not counted.
"""

from __future__ import annotations

import logging

from .keras_helpers import activation_elements
from .predict_memory import BASELINE_BYTES, available_bytes

__all__ = ["ACTIVATION_FACTOR", "training_memory_bytes", "training_memory_problem"]

log = logging.getLogger("dlsuite.training")

#: Lower bound of the training step's memory per byte of layer outputs (see the module doc).
ACTIVATION_FACTOR = 0.75

_GIB = 2**30


def _lower_bound(config, registry, batch: int) -> int | None:
    import keras

    from .models import build_model

    try:
        model = build_model(config, registry, spatial=tuple(config.datagen.patch_size))
        shapes = [(1,) + tuple(int(d) for d in x.shape[1:]) for x in model.inputs]
        elements = activation_elements(model, shapes, training=True)
    except Exception as exc:  # noqa: BLE001 - an estimate only; training reports real errors
        log.debug("training memory not estimated: %s: %s", type(exc).__name__, exc)
        return None
    finally:
        keras.backend.clear_session()  # the real model gets the layer names it always had
    if elements is None:
        return None
    value_bytes = 2 if config.train.mixed_precision else 4
    return int(BASELINE_BYTES + ACTIVATION_FACTOR * batch * elements * value_bytes)


def _batch(config, workers: int) -> int:
    """Patches one process holds per training step."""
    patches = int(config.datagen.batch_size) * int(config.datagen.patches_per_image)
    return max(1, -(-patches // max(1, workers)))


def training_memory_bytes(config, registry, *, workers: int = 1) -> int | None:
    """The lower bound (bytes) of the memory one process needs for a training step of
    ``config`` (module docstring), split over ``workers`` processes; None when the model is
    not a functional Keras model or cannot be built. Imports TensorFlow."""
    return _lower_bound(config, registry, _batch(config, workers))


def training_memory_problem(config, registry, *, workers: int = 1,
                            available: int | None = None) -> str | None:
    """One line when a training batch of ``config`` (``datagen.batch_size`` images times
    ``datagen.patches_per_image`` patches, split over ``workers`` processes) cannot fit in
    the memory ``available`` (default: what the system has now), naming the patch, the batch
    and both amounts; a warning is logged when it needs over half of it; None when it fits
    or nothing is known (memory, or a model that is not a functional Keras model). Imports
    TensorFlow."""
    available = available_bytes() if available is None else available
    d = config.datagen
    batch = _batch(config, workers)
    need = None if available is None else _lower_bound(config, registry, batch)
    if need is None:
        return None
    h, w = d.patch_size
    what = (f"a training batch of {batch} patch(es) of {h} x {w} pixels "
            f"(datagen.batch_size x patches_per_image{' per worker' if workers > 1 else ''}) "
            f"needs at least {need / _GIB:.1f} GiB of memory with model "
            f"{config.model.name!r}")
    if need > available:
        return (f"{what}, {available / _GIB:.1f} GiB is available: lower datagen.patch_size, "
                "batch_size or patches_per_image")
    if 2 * need > available:
        log.warning("%s, over half of the %.1f GiB available: the run may be killed for "
                    "want of memory", what, available / _GIB)
    return None
