"""``train.cosine_decay``: the learning rate follows half a cosine from
``optimizer.learning_rate`` down to ``min_lr`` over the run's optimizer steps.

For a run whose length is known (``train.epochs`` of ``steps_per_epoch``), ending at a low
rate settles the weights where a plateau schedule may still be at a rate it chose minutes
earlier. The decay starts after ``train.warmup_steps`` (:mod:`dlsuite.lr_warmup` owns the
rate before that) and reaches ``min_lr`` at the last step of the last epoch. The position is
the optimizer's own ``iterations``, so a resumed run continues the curve where it stopped.
"""

from __future__ import annotations

import math

import keras

__all__ = ["CosineDecay", "cosine_rate"]


def cosine_rate(step: int, total: int, base: float, min_lr: float, warmup: int = 0) -> float:
    """The rate before optimizer step ``step`` (0-based) of ``total``: ``base`` at step
    ``warmup``, ``min_lr`` at step ``total - 1`` and after, half a cosine between."""
    span = max(total - 1 - warmup, 1)
    frac = min(max(step - warmup, 0) / span, 1.0)
    return min_lr + (base - min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))


class CosineDecay(keras.callbacks.Callback):
    """Sets ``optimizer.learning_rate`` to :func:`cosine_rate` times ``rate_scale`` (1; a
    collapse recovery lowers it) before every optimizer step from ``warmup`` on; the run's
    length is the fit's ``epochs * steps``."""

    def __init__(self, base: float, min_lr: float, warmup: int = 0):
        super().__init__()
        self.base, self.min_lr, self.warmup = float(base), float(min_lr), int(warmup)
        self.total = 0
        self.rate_scale = 1.0

    def on_train_begin(self, logs=None):
        self.total = int(self.params["epochs"]) * int(self.params["steps"])

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        step = int(keras.ops.convert_to_numpy(optimizer.iterations))
        if step >= self.warmup:
            optimizer.learning_rate = self.rate_scale * cosine_rate(
                step, self.total, self.base, self.min_lr, self.warmup)
