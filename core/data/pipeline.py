"""The training input pipeline: datagen plugins -> NumPy patches -> tf.data.

:func:`build_datasets` turns ``config.data.train`` / ``config.data.val`` (any layout: frames,
videos or CTC) into :class:`TrainingData`:

* ``train`` yields ``(x, y)`` float32 batches forever; ``x`` is ``(B, h, w, 1)`` (2D models) or
  ``(B, T, h, w, 1)`` (temporal models), ``y`` is ``(B, h, w, C)`` as the target plugin makes
  it, ``B = batch_size * patches_per_image``. Each step takes ``batch_size`` images (videos) in
  a shuffled cycle and cuts ``patches_per_image`` patches from each: an annotated frame ``t``
  is drawn uniformly (any annotated frame, first and last included), the sampler plugin picks
  the patch position on its labels, the window and the label frame are cut *with only the
  context the augmentations and the target need* (never the whole frame), the augmentation
  chain runs on the image and the instance labels (nearest neighbour, ids exact), the target
  plugin turns the augmented labels into the target (so contours and weights follow the warped
  geometry), and the centre ``(h, w)`` is kept (see :class:`PatchMaker`). Every row of every
  batch is real data.
* Temporal models get the window ``window_indices(t, T)`` (:mod:`dlsuite.data.windows`: ends at
  ``t``, temporal mirroring before the first frame), the same rule inference uses.
* ``val`` is deterministic: no augmentation, every annotated frame of every validation sample
  tiled by a fixed grid of patch-sized tiles covering the whole (padded) frame; finite and
  identical every epoch; the last batch may be smaller. ``validation_steps`` is its length.
* Images are read and normalised once (normalizer plugin, ``per`` image or video) and, with
  ``datagen.cache``, kept in memory as float32 (without it they are re-read per sample).
* Frames smaller than the patch are reflect-padded (symmetric) at load; one warning lists the
  files concerned.
* Same ``config.seed`` -> identical batches; ``seed: null`` draws fresh entropy.
* Speed without stealing the training step's cores (on 2 cores, tf.data's autotuned
  parallelism takes a core and halves training speed): patches are made in NumPy by one
  Python generator feeding ``tf.data.Dataset.from_generator``, prefetching 2 batches, on a
  private thread pool of 1 thread with intra-op parallelism 1 and autotune off.
* TensorFlow's generator dataset sets glibc's ``M_TRIM_THRESHOLD`` to 128 kB when its iterator
  starts, which also freezes the mmap threshold: every array over 128 kB is then mmap'ed and
  page-faulted afresh, and patch making runs ~5x slower (measured: 9 ms vs 43 ms per batch of
  four 256x256 patches). Each generator therefore sets ``M_MMAP_THRESHOLD`` = 32 MB and
  ``M_TRIM_THRESHOLD`` = 64 MB when it starts (glibc only; a no-op elsewhere), so freed
  memory up to that size is reused instead of returned to the OS.

Weight channels (named ``"weight"`` by the target) are divided by their mean over each final
patch, so every patch's weights average exactly 1.

TensorFlow is imported inside the functions that build datasets only.

The parts live in :mod:`dlsuite.data.datagen_plugins` (the plugins),
:mod:`dlsuite.data.patch_source` (loading), :mod:`dlsuite.data.patches` (cutting) and
:mod:`dlsuite.data.batches` (the NumPy streams); their public names are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np

# the names imported from the parts below lived in this module: re-exported here
from dlsuite.data.batches import _val_items, train_batches, tune_malloc, val_batches
from dlsuite.data.datagen_plugins import DatagenPlugins, load_plugins, make_normalizer
from dlsuite.data.patch_source import PatchSource, Prepared
from dlsuite.data.patches import TARGET_CONTEXT, PatchMaker, cut, grid_positions
from dlsuite.errors import DataError, DlsuiteInputError

__all__ = [
    "TrainingData",
    "DatagenPlugins",
    "PatchSource",
    "PatchMaker",
    "Prepared",
    "build_datasets",
    "make_normalizer",
    "load_plugins",
    "train_batches",
    "val_batches",
    "grid_positions",
    "cut",
    "TARGET_CONTEXT",
    "tune_malloc",
    "PREFETCH",
]

#: Batches the tf.data pipeline prepares ahead of the training step.
PREFETCH = 2


@attrs.frozen
class TrainingData:
    """Datasets and the numbers ``model.fit`` needs (see module docstring)."""

    train: Any
    val: Any | None
    steps_per_epoch: int
    validation_steps: int | None
    n_classes: int
    target_channels: tuple[str, ...]
    parts: Any = None  # what dlsuite.data.distributed needs to rebuild the streams per replica


# --------------------------------------------------------------------------------------------
# tf.data


def _options():
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    options.deterministic = True
    return options


def _dataset(generator_fn: Callable[[], Iterator], x_shape, y_shape):
    import tensorflow as tf

    signature = (tf.TensorSpec(x_shape, tf.float32), tf.TensorSpec(y_shape, tf.float32))
    ds = tf.data.Dataset.from_generator(generator_fn, output_signature=signature)
    return ds.prefetch(PREFETCH).with_options(_options())


def _time_windows(config, temporal: bool, time_windows: int | None) -> int | None:
    if not temporal:
        return None
    if time_windows is None:
        time_windows = getattr(config.model.params, "time_windows", None)
    if not time_windows or int(time_windows) < 1:
        raise DlsuiteInputError(
            f"model {config.model.name!r} is temporal but no time_windows is known "
            "($.model.time_windows)")
    return int(time_windows)


def build_datasets(config, registry, *, temporal: bool,
                   time_windows: int | None = None) -> TrainingData:
    """Build the training (infinite) and validation (finite, deterministic) datasets of
    ``config`` (see module docstring). ``time_windows`` defaults to the model's
    ``time_windows`` parameter for temporal models.

    Raises DataError naming the folder/file for unusable data (labels that are not whole
    numbers, shape mismatch, empty dataset, no data.train), PluginError for unknown plugins.
    """
    d = config.datagen
    if not config.data.train:
        raise DataError("$.data.train: no training data folder configured")
    if d.batch_size < 1 or d.patches_per_image < 1:
        raise DlsuiteInputError("$.datagen: batch_size and patches_per_image must be >= 1")
    patch = tuple(int(v) for v in d.patch_size)
    T = _time_windows(config, temporal, time_windows)
    plugins = load_plugins(config, registry)
    maker = PatchMaker(plugins, patch, T)
    train_src = PatchSource(config.data.train, config.data.layout, plugins.normalizer, patch,
                            d.cache, config.data.scale)
    B = d.batch_size * d.patches_per_image
    C = len(plugins.channels)
    x_tail = ((T,) if temporal else ()) + patch + (1,)
    y_tail = patch + (C,)
    seed = config.seed if config.seed is not None else int(
        np.random.SeedSequence().generate_state(1)[0])

    train = _dataset(lambda: train_batches(train_src, maker, d.batch_size, d.patches_per_image,
                                           seed, temporal),
                     (B,) + x_tail, (B,) + y_tail)
    steps = d.steps_per_epoch or max(1, train_src.n_targets // d.batch_size)

    val = None
    val_steps = None
    if config.data.val:
        val_src = PatchSource(config.data.val, config.data.layout, plugins.normalizer, patch,
                              d.cache, config.data.scale)
        n_val = len(_val_items(val_src, patch))
        val_steps = math.ceil(n_val / B)
        val = _dataset(lambda: val_batches(val_src, maker, B, temporal),
                       (None,) + x_tail, (None,) + y_tail)
    parts = {"train": train_src, "val": val_src if config.data.val else None, "maker": maker,
             "seed": seed, "temporal": temporal, "x_tail": x_tail, "y_tail": y_tail}
    return TrainingData(train, val, int(steps), val_steps, plugins.n_classes, plugins.channels,
                        parts)
