"""The batch streams: :func:`train_batches` (infinite, seeded, shardable) and
:func:`val_batches` (finite, deterministic grid tiles) as NumPy arrays, and
:func:`tune_malloc`, run as each stream starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlsuite.data.patch_source import PatchSource
from dlsuite.data.patches import PatchMaker, grid_positions
from dlsuite.errors import DataError


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> bool:
    """Undo TensorFlow's generator-dataset malloc setting (see the docstring of
    :mod:`dlsuite.data.pipeline`): on glibc, mmap threshold 32 MB and trim threshold 64 MB.
    Returns whether it applied."""
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
    """Infinite generator of training batches ``(x, y)`` (see the docstring of
    :mod:`dlsuite.data.pipeline`). The same ``seed`` gives the same sequence of batches.
    ``shard = (k, n)``: only every n-th usable sample from the k-th (a worker's share;
    disjoint for k = 0..n-1), with a stream of random numbers of its own."""
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
