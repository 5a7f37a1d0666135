"""The training and validation streams of :mod:`dlsuite.data.pipeline` split over the
replicas of a ``tf.distribute`` strategy (``strategy.distribute_datasets_from_function``).

With ``R`` replicas over ``P`` input pipelines (one per worker process; ``L = R / P`` local
replicas each) and the global batch ``B`` (``datagen.batch_size`` images times
``patches_per_image``), each replica gets ``B / R`` rows a step:

* training: pipeline ``p`` draws only from its share of the training samples (every P-th
  annotated sample from the p-th, :func:`~dlsuite.data.pipeline.train_batches` ``shard``),
  so no two workers draw the same samples, with its own random stream; its batches of
  ``B / P`` rows are cut into ``L`` consecutive per-replica pieces. With one pipeline
  (``mirrored``) the rows of a step are exactly those of the undistributed run with the
  same seed, so both compute the same loss.
* validation: every pipeline makes the same full global batches (the last one completed
  with the first tiles, so every replica has rows) and keeps the pieces of its replicas.

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from typing import Any

from dlsuite.data.batches import train_batches, val_batches
from dlsuite.data.pipeline import TrainingData, _dataset
from dlsuite.errors import DataError

__all__ = ["distribute_datasets", "split_rows"]


def split_rows(batches, pieces: int, first: int = 0, count: int | None = None):
    """Yield, for each ``(x, y)`` of ``batches``, its rows cut into ``pieces`` equal
    consecutive parts, parts ``first .. first + count - 1`` only (default: all)."""
    count = pieces if count is None else count
    for x, y in batches:
        n = x.shape[0] // pieces
        for k in range(first, first + count):
            yield x[k * n:(k + 1) * n], y[k * n:(k + 1) * n]


def distribute_datasets(data: TrainingData, strategy: Any, *, batch_size: int,
                        patches_per_image: int) -> tuple[Any, Any]:
    """``(train, val)`` for ``model.fit`` under ``strategy`` (see the module docstring);
    ``val`` is None without validation data. Raises DataError when a worker's share of the
    training samples would be empty."""
    parts = data.parts
    replicas = int(strategy.num_replicas_in_sync)
    rows = batch_size * patches_per_image
    per_replica = rows // replicas
    x_tail, y_tail = tuple(parts["x_tail"]), tuple(parts["y_tail"])
    source, maker, seed, temporal = parts["train"], parts["maker"], parts["seed"], parts["temporal"]
    usable = sum(1 for a in source.annotated if a.size)

    def train_fn(ctx):
        p, n = ctx.input_pipeline_id, ctx.num_input_pipelines
        if usable < n:
            raise DataError(f"{source.folder}: {usable} annotated training samples cannot be "
                            f"shared by {n} workers: use fewer workers or more samples")
        local = replicas // n
        stream = lambda: split_rows(  # noqa: E731
            train_batches(source, maker, batch_size // n, patches_per_image, seed, temporal,
                          shard=(p, n)), local)
        return _dataset(stream, (per_replica,) + x_tail, (per_replica,) + y_tail)

    train = strategy.distribute_datasets_from_function(train_fn)
    val = None
    if parts["val"] is not None:
        val_source = parts["val"]

        def val_fn(ctx):
            p, n = ctx.input_pipeline_id, ctx.num_input_pipelines
            local = replicas // n
            def stream():
                # endless: Keras under a strategy reads one batch of an exhausted iterator
                # before each validation; validation_steps bounds every pass
                while True:
                    yield from split_rows(val_batches(val_source, maker, rows, temporal,
                                                      full=True), replicas, p * local, local)
            return _dataset(stream, (per_replica,) + x_tail, (per_replica,) + y_tail)

        val = strategy.distribute_datasets_from_function(val_fn)
    return train, val
