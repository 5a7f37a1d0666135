"""Block-wise prediction of an image larger than memory (a 2D or 2D+t OME-Zarr image, a large
TIFF read lazily), in one process or as tasks on a Dask cluster.

The image is cut into blocks of ``block_size`` output pixels per frame (rounded up to the
model's size multiple). A block is predicted from a window extended by the run's halo on every
side (clipped at the image border, where the tiling mirrors exactly as for the whole image),
normalized with statistics of the whole image (:mod:`.normalize`), with the run's own tiling
(:func:`dlsuite.steps.probabilities`); its core is written into the output array at its place.
Since every window starts on the model's pooling grid and its halo covers the receptive field,
the result equals untiled prediction up to float rounding. A temporal model's task is one block
over a run of frames (:data:`FRAMES_PER_TASK`), read with the ``time_windows - 1`` frames
before them, so each frame is predicted from the same window as in the whole video. Then, when
the run has a post-processing chain, labels per block (from the probabilities of the block and a margin of
``halo`` pixels), made global and merged across borders (:mod:`.labels`).

Tasks are plain functions of picklable arguments (the :class:`~.omezarr.Source` and the
output location, never pixels), so the client holds no image and every worker holds one
block at a time plus the model (:func:`dlsuite.scale.cluster.worker_predictor`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

import attrs
import numpy as np

from .normalize import GlobalNormalizer

__all__ = ["Block", "block_grid", "frame_groups", "Runner", "predict_blocks"]

log = logging.getLogger("dlsuite")


@attrs.frozen
class Block:
    """The output pixels ``[y0:y1, x0:x1]`` of frame ``t`` (grid position ``(i, j)``)."""

    t: int
    i: int
    j: int
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def key(self) -> tuple:
        return (self.t, self.i, self.j)

    def window(self, margin: int, height: int, width: int) -> tuple[int, int, int, int]:
        """The block extended by ``margin`` on every side, clipped to the image."""
        return (max(0, self.y0 - margin), min(height, self.y1 + margin),
                max(0, self.x0 - margin), min(width, self.x1 + margin))


def block_grid(frames: int, height: int, width: int, block_size: int) -> list[Block]:
    """Blocks of ``block_size`` (the last ones smaller) covering every frame."""
    blocks = []
    for t in range(frames):
        for i, y0 in enumerate(range(0, height, block_size)):
            for j, x0 in enumerate(range(0, width, block_size)):
                blocks.append(Block(t, i, j, y0, min(height, y0 + block_size), x0,
                                    min(width, x0 + block_size)))
    return blocks


def neighbours(blocks: list[Block]) -> list[tuple]:
    """``(first key, second key, "vertical" | "horizontal")`` of blocks sharing a border."""
    keys = {b.key for b in blocks}
    out = []
    for b in blocks:
        if (b.t, b.i + 1, b.j) in keys:
            out.append((b.key, (b.t, b.i + 1, b.j), "vertical"))
        if (b.t, b.i, b.j + 1) in keys:
            out.append((b.key, (b.t, b.i, b.j + 1), "horizontal"))
    return out


# --------------------------------------------------------------------------------------------
# running tasks: here, or on a Dask client


@attrs.frozen
class Runner:
    """Runs ``fn(*args)`` for each argument tuple: in this process (``client`` None) or as
    tasks on a ``distributed.Client``; results in the order given. ``on_done(stage, done,
    total)``, when given, hears of each finished task of a :meth:`map` given a ``stage``;
    ``on_result(i)``, given to :meth:`map`, of each finished task by its index. ``rerun``:
    how a lost cluster's error says to go on (:func:`~.cluster.completed`)."""

    client: Any = None
    on_done: Callable[[str, int, int], None] | None = None
    rerun: str | None = None

    def map(self, fn: Callable, arg_list: Iterable[tuple], stage: str | None = None,
            on_result: Callable[[int], None] | None = None) -> list:
        arg_list = list(arg_list)
        tick = self.on_done if stage is not None else None
        results: list = [None] * len(arg_list)
        if self.client is None:
            for i, args in enumerate(arg_list):
                results[i] = fn(*args)
                if on_result is not None:
                    on_result(i)
                if tick is not None:
                    tick(stage, i + 1, len(arg_list))
            return results
        from .cluster import completed

        futures = [self.client.submit(fn, *args, pure=False) for args in arg_list]
        index = {f.key: i for i, f in enumerate(futures)}
        again = {} if self.rerun is None else {"rerun": self.rerun}
        for done, future in enumerate(completed(self.client, futures, **again), start=1):
            results[index[future.key]] = future.result()
            future.release()
            if on_result is not None:
                on_result(index[future.key])
            if tick is not None:
                tick(stage, done, len(futures))
        return results


# --------------------------------------------------------------------------------------------
# tasks (worker side)


def probs_task(model_key: tuple, source, norm: GlobalNormalizer, blocks, target,
               context: int = 0):
    """Predict ``blocks`` of ``source`` (one :class:`Block`, or the same block of consecutive
    frames, see :func:`frame_groups`) and write their probabilities into ``target`` (an
    :class:`~.omezarr.Target`); returns None (``target`` None: the ``(frames, h, w, C)``
    probabilities). ``context`` frames before the first are read too (a temporal model's
    window less one), so every frame is predicted from the window it has in the whole video;
    their own probabilities are dropped."""
    from ..steps import probabilities
    from .cluster import worker_predictor

    group = [blocks] if isinstance(blocks, Block) else list(blocks)
    first = group[0]
    pred, _, lock = worker_predictor(*model_key)
    height, width = source.shape[-2:]
    halo = int(pred.tiles.halo)
    wy0, wy1, wx0, wx1 = first.window(halo, height, width)
    start = max(0, first.t - int(context))
    x = np.stack([norm(source.read(t, wy0, wy1, wx0, wx1), t)
                  for t in range(start, group[-1].t + 1)])
    with lock:  # a video of the window's frames: a temporal model sees its time windows
        probs = probabilities(pred.model, x, pred.tiles, None)
    cores = probs[first.t - start:, first.y0 - wy0:first.y1 - wy0, first.x0 - wx0:first.x1 - wx0]
    if target is None:
        return cores
    for block, core in zip(group, cores):
        target.write_probs(block, core)
    return None


def labels_task(model_key: tuple, target, block: Block, margin: int) -> tuple:
    """Label ``block`` from the probabilities around it (``margin`` pixels of context) with the
    run's chain; write local ids 1..n; returns ``(key, n, faces)``."""
    from .cluster import worker_predictor
    from .labels import faces, local_labels

    _, chain, lock = worker_predictor(*model_key)
    height, width = target.shape
    wy0, wy1, wx0, wx1 = block.window(margin, height, width)
    probs = target.read_probs(block.t, wy0, wy1, wx0, wx1)
    with lock:
        labels = chain.labels(probs[np.newaxis])[0]
    core, n = local_labels(labels[block.y0 - wy0:block.y1 - wy0, block.x0 - wx0:block.x1 - wx0])
    target.write_labels(block, core)
    return block.key, n, faces(core)


def relabel_task(target, block: Block, table: np.ndarray) -> None:
    """Replace the local ids of ``block`` by their global ids (``table[local]``)."""
    local = target.read_labels(block)
    target.write_labels(block, table[local])


# --------------------------------------------------------------------------------------------
# the whole image


def block_size_for(requested: int, multiple: int) -> int:
    """``requested`` rounded up to the model's size ``multiple``."""
    return int(-(-int(requested) // multiple) * multiple)


#: Output frames per task of a temporal model (each task also reads the window's context).
FRAMES_PER_TASK = 16


def frame_groups(blocks: list[Block], per_task: int) -> list[list[Block]]:
    """``blocks`` grouped by grid position into runs of at most ``per_task`` consecutive
    frames (aligned on multiples of ``per_task``): the tasks of a temporal model."""
    groups: dict[tuple, list[Block]] = {}
    for b in sorted(blocks, key=lambda b: (b.i, b.j, b.t)):
        groups.setdefault((b.i, b.j, b.t // per_task), []).append(b)
    return list(groups.values())


def probs_tasks(model_key: tuple, source, norm: GlobalNormalizer, blocks: list[Block], target,
                time_windows: int = 1, per_task: int | None = None) -> list[tuple]:
    """The argument tuples of :func:`probs_task` for ``blocks``: one block per task for a
    2D model (``time_windows`` 1), runs of ``per_task`` (default :data:`FRAMES_PER_TASK`)
    frames of one block with ``time_windows - 1`` frames of context for a temporal one."""
    if time_windows <= 1:
        return [(model_key, source, norm, b, target) for b in blocks]
    return [(model_key, source, norm, group, target, time_windows - 1)
            for group in frame_groups(blocks, per_task or FRAMES_PER_TASK)]


def predict_blocks(runner: Runner, model_key: tuple, source, norm: GlobalNormalizer, target,
                   block_size: int, margin: int, labels: bool, time_windows: int = 1,
                   progress=None) -> dict:
    """Predict every block (``block_size``, a multiple of the model's size multiple) of
    ``source`` into ``target``: probabilities (a temporal model, ``time_windows`` > 1: each
    block over runs of frames, every frame from its whole-video window), then, with
    ``labels``, instance labels from the probabilities of each block and ``margin`` pixels
    around it, made global and merged across borders. ``progress`` (a
    :class:`~.progress.BlockProgress`): the blocks it holds as done are not predicted again,
    and each block predicted is recorded in it as its task reports back. Returns
    ``{"blocks": n, "objects": N or None}``."""
    frames = source.shape[0] if len(source.shape) == 3 else 1
    height, width = source.shape[-2:]
    blocks = block_grid(frames, height, width, block_size)
    done = progress.done if progress is not None else set()
    tasks = probs_tasks(model_key, source, norm, [b for b in blocks if b.key not in done],
                        target, time_windows)

    def record(i: int) -> None:
        group = tasks[i][3]
        progress.finished([b.key for b in ([group] if isinstance(group, Block) else group)])

    runner.map(probs_task, tasks, stage=f"{source.name}: probabilities",
               on_result=record if progress is not None else None)
    objects = None
    if labels:
        from .labels import merge_table

        found = runner.map(labels_task, [(model_key, target, b, margin) for b in blocks],
                           stage=f"{source.name}: labels")
        counts = {key: n for key, n, _ in found}
        block_faces = {key: f for key, _, f in found}
        tables, objects = merge_table(counts, block_faces, neighbours(blocks))
        runner.map(relabel_task, [(target, b, tables[b.key]) for b in blocks],
                   stage=f"{source.name}: merging labels")
    return {"blocks": len(blocks), "objects": objects}
