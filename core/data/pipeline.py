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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import numpy as np

from dlsuite.data.layouts import LoadedSample, Sample, list_samples, load_sample
from dlsuite.data.resize import resize_frames, resize_labels
from dlsuite.data.windows import window_indices
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

#: Pixels of label context around a patch used when computing its target (contours need 1,
#: the weight map's separation term ~4 sigma = 20 at the default sigma 5).
TARGET_CONTEXT = 24
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
# plugins


def _instantiate(registry, choice) -> tuple[Any, Any]:
    """Resolve a config Choice to ``(registry entry, factory product)``; params are the
    plugin's defaults when the config did not fill them."""
    entry = registry.resolve(choice.kind, choice.name)
    params = choice.params if choice.params is not None else entry.spec.params()
    return entry, entry.load()(params)


def make_normalizer(config, registry) -> Callable[[np.ndarray], np.ndarray]:
    """The normalizer of ``config.datagen.normalization``: ``array -> float32`` same shape
    (``(H, W)`` or ``(T, H, W)``). Use it at inference so training and prediction agree."""
    return _instantiate(registry, config.datagen.normalization)[1]


@attrs.frozen
class DatagenPlugins:
    """The instantiated datagen plugins of a config."""

    normalizer: Callable
    sampler: Callable
    target: Callable
    n_classes: int  # model output channels: the sum of the target's head channels
    channels: tuple[str, ...]
    augmentations: tuple[Callable, ...]


def load_plugins(config, registry) -> DatagenPlugins:
    """Instantiate normalizer, sampler, target and augmentation chain from ``config.datagen``
    (PluginError naming the plugin when one cannot be resolved or loaded)."""
    d = config.datagen
    _, normalizer = _instantiate(registry, d.normalization)
    _, sampler = _instantiate(registry, d.sampling)
    target_entry, target = _instantiate(registry, d.target)
    augs = tuple(_instantiate(registry, a)[1] for a in d.augmentation)
    from ..heads import heads_of, output_channels  # model output channels: all heads

    return DatagenPlugins(normalizer, sampler, target, output_channels(heads_of(target_entry.spec)),
                          tuple(target_entry.spec.channels), augs)


# --------------------------------------------------------------------------------------------
# array helpers


def cut(array: np.ndarray, top: int, left: int, height: int, width: int,
        frames: list[int] | None = None) -> np.ndarray:
    """``array[..., top:top+height, left:left+width]`` (the last two axes are spatial), with
    regions outside the array filled by symmetric reflection (scipy's ``reflect``). With
    ``frames``, only those indices of the first axis are taken (in that order). Copies only the
    selected pixels."""
    H, W = array.shape[-2:]
    y0, y1 = max(top, 0), min(top + height, H)
    x0, x1 = max(left, 0), min(left + width, W)
    part = array[frames, y0:y1, x0:x1] if frames is not None else array[..., y0:y1, x0:x1]
    pads = [(y0 - top, top + height - y1), (x0 - left, left + width - x1)]
    if any(p for pair in pads for p in pair):
        part = np.pad(part, [(0, 0)] * (part.ndim - 2) + pads, mode="symmetric")
    return part


def _centre_crop(array: np.ndarray, size: tuple[int, int], spatial: int) -> np.ndarray:
    """Central ``size`` of the two spatial axes starting at ``spatial`` (0 or -2)."""
    axes = (spatial, spatial + 1) if spatial >= 0 else (array.ndim - 2, array.ndim - 1)
    index = [slice(None)] * array.ndim
    for axis, n in zip(axes, size):
        start = (array.shape[axis] - n) // 2
        index[axis] = slice(start, start + n)
    return array[tuple(index)]


def grid_positions(length: int, patch: int) -> list[int]:
    """Start positions of tiles of ``patch`` covering ``0..length`` (last tile flush with the
    end; tiles overlap only there)."""
    starts = list(range(0, max(length - patch, 0) + 1, patch))
    if starts[-1] + patch < length:
        starts.append(length - patch)
    return starts


# --------------------------------------------------------------------------------------------
# data source: load, check, normalise, pad, (cache)


@attrs.frozen
class Prepared:
    """A loaded sample ready for patching: ``image`` float32 ``(T, H, W)`` normalised and
    padded to at least the patch size, ``labels`` integer ``(T, H, W)`` padded alike,
    ``annotated`` frame indices with labels."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    annotated: np.ndarray


class PatchSource:
    """The samples of one dataset folder, loaded through :func:`dlsuite.data.layouts.load_sample`.

    Images are normalized, then resized by ``scale`` (``data.scale``; labels by nearest
    neighbour). Construction loads every sample once to check it (integer labels, matching
    shapes, at least one annotated frame overall) and to find frames smaller than the patch
    after resizing (one warning listing them); with ``cache`` the prepared arrays stay in
    memory, otherwise :meth:`get` re-reads them. Raises DataError naming the folder or file.
    """

    def __init__(self, folder: str, layout: str, normalizer: Callable,
                 patch_size: tuple[int, int], cache: bool = True, scale: float = 1.0):
        self.folder = folder
        self.scale = float(scale)
        self.patch_size = tuple(int(v) for v in patch_size)
        self.normalizer = normalizer
        self.cache = cache
        self.samples: list[Sample] = list_samples(folder, layout, require_labels=True)
        if not self.samples:
            raise DataError(f"{folder}: empty dataset (no samples)")
        self._cache: dict[int, Prepared] = {}
        self.annotated: list[np.ndarray] = []
        self.shapes: list[tuple[int, ...]] = []
        padded = []
        for i, sample in enumerate(self.samples):
            prepared, was_padded = self._prepare(sample)
            self.annotated.append(prepared.annotated)
            self.shapes.append(prepared.image.shape)
            if was_padded:
                padded.append(f"{sample.image} {was_padded}")
            if cache:
                self._cache[i] = prepared
        if not any(a.size for a in self.annotated):
            raise DataError(f"{folder}: empty dataset (no annotated frames)")
        if padded:
            warnings.warn(
                f"{len(padded)} image(s) smaller than the patch {self.patch_size} are "
                f"reflect-padded: " + "; ".join(padded), stacklevel=3)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def n_targets(self) -> int:
        """Number of annotated frames over all samples."""
        return int(sum(a.size for a in self.annotated))

    def _prepare(self, sample: Sample) -> tuple[Prepared, str]:
        loaded: LoadedSample = load_sample(sample)
        where = sample.labels or sample.image
        if loaded.labels is None:
            raise DataError(f"{sample.image}: no labels")
        labels = loaded.labels
        if labels.dtype.kind not in "iub":
            raise DataError(f"{where}: float-valued ({labels.dtype}) labels; instance labels "
                            "must be an integer type")
        if labels.shape != loaded.image.shape:
            raise DataError(f"{where}: label shape {labels.shape} does not match image "
                            f"{sample.image} shape {loaded.image.shape}")
        try:
            image = np.asarray(self.normalizer(loaded.image), dtype=np.float32)
        except DlsuiteInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - name the file whatever the plugin raised
            raise DataError(f"{sample.image}: normalization failed: {type(exc).__name__}: "
                            f"{exc}") from exc
        image = resize_frames(image, self.scale)
        labels = resize_labels(labels, self.scale)
        H, W = image.shape[-2:]
        h, w = self.patch_size
        pad_y, pad_x = max(h - H, 0), max(w - W, 0)
        note = ""
        if pad_y or pad_x:
            pads = [(0, 0), (pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)]
            image = np.pad(image, pads, mode="symmetric")
            labels = np.pad(labels, pads, mode="symmetric")
            note = f"({H}x{W})"
        return Prepared(sample.name, image, labels, np.asarray(loaded.annotated)), note

    def get(self, index: int) -> Prepared:
        """The prepared sample ``index`` (from the cache, or re-read)."""
        if index in self._cache:
            return self._cache[index]
        return self._prepare(self.samples[index])[0]


# --------------------------------------------------------------------------------------------
# patch making


def _call_aug(aug: Callable, image, target, rng, patch_size):
    if hasattr(aug, "margin"):
        return aug(image, target, rng, patch_size=patch_size)
    return aug(image, target, rng)


class PatchMaker:
    """Cuts one ``(x, y)`` training or validation example from a prepared sample.

    Training: the image window and the label frame are cut around the patch with the context
    the target needs (:data:`TARGET_CONTEXT`) plus the margin the augmentations declare; the
    augmentation chain runs on ``(image, labels as channel 0)`` — geometric steps resample
    channel 0 with nearest neighbour, so instance ids stay exact — asked for the patch plus
    the target context (``patch_size=`` keyword); the target is then computed on the augmented
    labels (boundaries and weights match the warped geometry) and everything is cropped to the
    patch. Validation (``rng=None``): no augmentation, same target computation.
    """

    def __init__(self, plugins: DatagenPlugins, patch_size: tuple[int, int],
                 time_windows: int | None):
        self.plugins = plugins
        self.patch = tuple(int(v) for v in patch_size)
        self.time_windows = time_windows
        c = TARGET_CONTEXT
        self.out = (self.patch[0] + 2 * c, self.patch[1] + 2 * c)
        my = mx = 0
        for aug in plugins.augmentations:
            if hasattr(aug, "margin"):
                a, b = aug.margin(self.out)
                my, mx = my + int(a), mx + int(b)
        self.aug_margin = (my, mx)
        self.weight_channels = [i for i, ch in enumerate(plugins.channels) if ch == "weight"]

    def frames(self, t: int) -> list[int]:
        """Frame indices of the input for target frame ``t``."""
        return window_indices(int(t), self.time_windows) if self.time_windows else [int(t)]

    def _augment(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        ids, inverse = None, None
        small = labels.dtype.kind in "ub" and labels.dtype.itemsize <= 2  # float32-exact
        if not small and labels.size and (int(labels.max()) >= 1 << 24
                                          or int(labels.min()) < 0):
            ids, inverse = np.unique(labels, return_inverse=True)  # float32-exact ids
            labels = inverse.reshape(labels.shape)
        channel = labels.astype(np.float32)[..., None]
        for aug in self.plugins.augmentations:
            image, channel = _call_aug(aug, image, channel, rng, self.out)
        image = _centre_crop(image, self.out, -2)
        warped = np.rint(_centre_crop(channel, self.out, 0)[..., 0]).astype(np.int64)
        if ids is not None:
            warped = ids[np.clip(warped, 0, ids.size - 1)]
        return image, warped

    def make(self, prepared: Prepared, t: int, top: int, left: int,
             rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """``x`` float32 ``(T, h, w)`` and ``y`` float32 ``(h, w, C)`` for the patch at
        ``(top, left)`` of frame ``t``; augmented when ``rng`` is given."""
        h, w = self.patch
        c = TARGET_CONTEXT
        frames = self.frames(t)
        if rng is not None and self.plugins.augmentations:
            my, mx = self.aug_margin
            y0, x0 = top - c - my, left - c - mx
            size = (self.out[0] + 2 * my, self.out[1] + 2 * mx)
            image = cut(prepared.image, y0, x0, *size, frames=frames)
            labels = cut(prepared.labels[t], y0, x0, *size)
            image, labels = self._augment(image, labels, rng)
            image = _centre_crop(image, self.patch, -2)
        else:
            image = cut(prepared.image, top, left, h, w, frames=frames)
            labels = cut(prepared.labels[t], top - c, left - c, *self.out)
        try:
            if getattr(self.plugins.target, "takes_crop", False):  # only the kept centre
                target = self.plugins.target(labels, crop=self.patch)
            else:
                target = self.plugins.target(labels)
        except DataError as exc:
            raise DataError(f"{prepared.name} frame {t}: {exc}") from exc
        target = _centre_crop(target, self.patch, 0)
        if self.weight_channels:
            target = np.array(target, dtype=np.float32)
            for k in self.weight_channels:
                mean = float(target[..., k].mean())
                if mean > 0:
                    target[..., k] /= mean
        return np.asarray(image, dtype=np.float32), target


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> bool:
    """Undo TensorFlow's generator-dataset malloc setting (see module docstring): on glibc,
    mmap threshold 32 MB and trim threshold 64 MB. Returns whether it applied."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                    and libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20))
    except (OSError, AttributeError):
        return False


def _seed_sequence(seed: int | None) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed if seed is not None else None)


def train_batches(source: PatchSource, maker: PatchMaker, batch_size: int,
                  patches_per_image: int, seed: int | None, temporal: bool,
                  shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Infinite generator of training batches ``(x, y)`` (see module docstring). The same
    ``seed`` gives the same sequence of batches. ``shard = (k, n)``: only every n-th usable
    sample from the k-th (a worker's share; disjoint for k = 0..n-1), with a stream of
    random numbers of its own."""
    tune_malloc()
    index, count = shard
    entropy = seed if count == 1 or seed is None else [int(seed), int(index)]
    rng = np.random.default_rng(_seed_sequence(entropy))
    usable = [i for i in range(len(source)) if source.annotated[i].size][index::count]
    if not usable:
        raise DataError(f"{source.folder}: no annotated sample left for worker {index} of "
                        f"{count}: use fewer workers or more training samples")
    order: list[int] = []
    B = batch_size * patches_per_image
    while True:
        chosen = []
        while len(chosen) < batch_size:
            if not order:
                order = [usable[j] for j in rng.permutation(len(usable))]
            chosen.append(order.pop())
        xs, ys = [], []
        for index in chosen:
            prepared = source.get(index)
            for _ in range(patches_per_image):
                t = int(prepared.annotated[rng.integers(prepared.annotated.size)])
                top, left = maker.plugins.sampler(prepared.labels[t], maker.patch, rng)
                x, y = maker.make(prepared, t, int(top), int(left), rng)
                xs.append(x)
                ys.append(y)
        yield _stack(xs, ys, temporal, B)


def _stack(xs, ys, temporal: bool, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack(xs).astype(np.float32, copy=False)
    x = x[..., None] if temporal else x[:, 0, ..., None]
    y = np.stack(ys).astype(np.float32, copy=False)
    assert x.shape[0] == n and y.shape[0] == n
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _val_items(source: PatchSource, patch: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    items = []
    for i in range(len(source)):
        H, W = source.shapes[i][-2:]
        for t in source.annotated[i]:
            for top in grid_positions(H, patch[0]):
                for left in grid_positions(W, patch[1]):
                    items.append((i, int(t), top, left))
    return items


def val_batches(source: PatchSource, maker: PatchMaker, batch: int, temporal: bool,
                full: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Finite, deterministic validation batches: grid tiles of every annotated frame.
    ``full``: the last batch is completed with the first tiles again (every batch has
    ``batch`` rows, as replicas of a distributed run need)."""
    tune_malloc()
    items = _val_items(source, maker.patch)
    for start in range(0, len(items), batch):
        xs, ys = [], []
        chunk = items[start:start + batch]
        if full:
            chunk = [items[(start + k) % len(items)] for k in range(batch)]
        for i, t, top, left in chunk:
            x, y = maker.make(source.get(i), t, top, left, None)
            xs.append(x)
            ys.append(y)
        yield _stack(xs, ys, temporal, len(chunk))


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

    Raises DataError naming the folder/file for unusable data (float labels, shape mismatch,
    empty dataset, no data.train), PluginError for unknown plugins.
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
