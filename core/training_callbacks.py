"""The callbacks dlsuite adds to a fit besides checkpoints: the standard Keras ones the
config enables (:func:`standard_callbacks`), :class:`AveragedWeights`, :class:`DivergenceGuard`
and :class:`StuckLossWarning`.
"""

from __future__ import annotations

import importlib.util
import logging
import math

import keras
import numpy as np

from .checkpoints import Monitor, NanGuard
from .collapse_recovery import LOSS_RISE, CollapseRecovery, watched_metrics
from .rundir import RunDir

log = logging.getLogger("dlsuite.training")


# --------------------------------------------------------------------------------------------
# callbacks


def standard_callbacks(config, run: RunDir, monitor: Monitor) -> list[keras.callbacks.Callback]:
    """TensorBoard, the learning-rate warm-up (:mod:`dlsuite.lr_warmup`), the cosine decay
    (:mod:`dlsuite.lr_cosine`), ReduceLROnPlateau and EarlyStopping as the config's
    ``train`` section asks (each only when enabled)."""
    t = config.train
    out: list[keras.callbacks.Callback] = []
    if t.tensorboard.enabled and importlib.util.find_spec("tensorboard") is None:
        log.warning("train.tensorboard is enabled but the tensorboard package is not "
                    "installed: no TensorBoard logs (pip install tensorboard)")
    elif t.tensorboard.enabled:
        out.append(keras.callbacks.TensorBoard(
            log_dir=str(run.logs), update_freq=t.tensorboard.update_freq,
            histogram_freq=t.tensorboard.histogram_freq, write_graph=False))
    if t.warmup_steps:
        from .lr_warmup import LinearWarmup

        out.append(LinearWarmup(config.optimizer.learning_rate, t.warmup_steps))
    if t.cosine_decay.enabled:
        from .lr_cosine import CosineDecay

        out.append(CosineDecay(config.optimizer.learning_rate, t.cosine_decay.min_lr,
                               t.warmup_steps))
    if t.reduce_lr.enabled:
        r = t.reduce_lr
        out.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor.name, mode=monitor.mode, factor=r.factor, patience=r.patience,
            min_delta=r.min_delta, cooldown=r.cooldown, min_lr=r.min_lr, verbose=0))
    if t.early_stopping.enabled:
        e = t.early_stopping
        out.append(keras.callbacks.EarlyStopping(
            monitor=monitor.name, mode=monitor.mode, patience=e.patience,
            min_delta=e.min_delta, verbose=0))
    return out


def collapse_recovery(config, registry, standard) -> list[keras.callbacks.Callback]:
    """[:class:`~dlsuite.collapse_recovery.CollapseRecovery`] as ``train.collapse_recovery``
    says, lowering the rate of the warm-up / cosine decay among ``standard`` too; [] when it
    is disabled or no metric grows as the model improves."""
    c = config.train.collapse_recovery
    metrics = watched_metrics(config, registry)
    if not c.enabled or not metrics:
        return []
    return [CollapseRecovery(metrics, drop=c.drop, healthy=c.healthy, factor=c.factor,
                             max_times=c.max_times,
                             schedules=[cb for cb in standard if hasattr(cb, "rate_scale")])]


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """Keeps the optimizer's moving average of the weights (``optimizer.ema_momentum``) in
    the model wherever it is judged or saved: during validation and from the end of each
    epoch (so checkpoints, their resumable state and the epoch-end callbacks after this one
    see it) to the start of the next, when the trained weights come back.

    ``resumed``: the model was restored from a resumable state, which holds the averaged
    weights in the model and the trained ones in the optimizer, so the first epoch starts by
    swapping them back. After the last epoch both hold the average (Keras' finalisation), so
    a finished run resumed for more epochs trains on from the averaged weights."""

    def __init__(self, *, resumed: bool = False) -> None:
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = resumed


# --------------------------------------------------------------------------------------------
# guards and notices


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class DivergenceGuard(NanGuard):
    """Stops training when it diverged; ``where`` = (epoch 1-based, step) and ``reason``
    say when and why.

    Checked after every step: the loss is not finite, or exceeds ``explode_factor`` times
    the first step's loss (at least ``explode_factor * 0.1``). Checked at every epoch end,
    before the checkpoints of that epoch are written (so none is): the weights, the learning
    rate and the validation loss are finite."""

    def __init__(self, explode_factor: float = 1e3) -> None:
        super().__init__()
        self.reason: str | None = None
        self.explode_factor = explode_factor
        self._first: float | None = None
        self._step = 0

    def _diverged(self, step: int, reason: str) -> None:
        if self.where is None:
            self.where, self.reason = (self._epoch, step), reason
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        self._step = int(batch) + 1
        if loss is None or self.where is not None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            self._diverged(self._step, f"the loss became {loss}")
        elif self._first is None:
            self._first = loss
        elif loss > self.explode_factor * max(abs(self._first), 0.1):
            self._diverged(self._step, f"the loss exploded to {loss:.4g} (it started at "
                                       f"{self._first:.4g})")

    def on_epoch_end(self, epoch, logs=None):
        if self.where is not None:
            return
        from .logging.callbacks import current_lr

        lr = current_lr(self.model)
        if lr is not None and not _finite(lr):
            self._diverged(self._step, f"the learning rate is {lr}")
        elif not all(np.isfinite(keras.ops.convert_to_numpy(w)).all()
                     for w in self.model.weights):
            self._diverged(self._step, "the weights became NaN/inf")
        elif not _finite((logs or {}).get("val_loss", 0.0)):
            self._diverged(self._step, f"the validation loss became {logs['val_loss']}")


_RECOVERY_ADVICE = {
    True: " (train.collapse_recovery did not bring it back: its max_times are used up, or the "
          f"training loss did not rise above {LOSS_RISE:g}x its last healthy value)",
    False: ", or enable train.collapse_recovery (it puts back the last healthy epoch at a "
           "lower rate)"}


class StuckLossWarning(keras.callbacks.Callback):
    """Warns once when, for ``epochs`` epochs in a row, the training loss stays within
    ``rtol`` of its value at the first of them while some training metrics stay exactly 0
    (validation metrics do not count: a validation set without objects scores 0; the model is
    not learning: from the start, often data that is NaN, constant or without objects; later,
    a model collapsed to predicting one class everywhere). When one of those metrics reached
    0.1 or more before, the warning says so (the metric, its peak and epoch) and names the
    learning rate instead of the data; ``recovery`` (whether ``train.collapse_recovery`` is
    enabled; None: not said) adds what the recovery did not do: enable it, or it is used up or
    the loss did not rise enough for it."""

    def __init__(self, epochs: int = 3, rtol: float = 0.01, recovery: bool | None = None):
        super().__init__()
        self.epochs, self.rtol, self.recovery = epochs, rtol, recovery
        self.rows: list[dict[str, float]] = []
        self.numbers: list[int] = []  # the 1-based epoch of each row (a resumed fit skips some)
        self.warned: str | None = None

    def on_epoch_end(self, epoch, logs=None):
        row = {k: float(v) for k, v in (logs or {}).items()
               if isinstance(v, (int, float, np.floating, np.integer))}
        self.rows.append(row)
        self.numbers.append(int(epoch) + 1)
        if self.warned or len(self.rows) < self.epochs:
            return
        recent = self.rows[-self.epochs:]
        first = recent[0].get("loss")
        if first is None or not _finite(first) or any(
                abs(r.get("loss", math.inf) - first) > self.rtol * max(abs(first), 1e-12)
                for r in recent):
            return
        # training metrics only: a validation set without objects scores 0 in a healthy run
        zero = [k for k in recent[0] if not k.endswith("loss") and k != "learning_rate"
                and not k.startswith("val_") and all(r.get(k) == 0 for r in recent)]
        if zero:
            start = self.numbers[-self.epochs]
            since = "its epoch-1 value" if start == 1 else f"since epoch {start}"
            stuck = (f"the training loss has stayed at {first:.4g} ({since}) for "
                     f"{self.epochs} epochs while {', '.join(zero)} stay 0")
            before = [(r.get(k, 0.0), n, k) for r, n in zip(self.rows[:-self.epochs],
                                                            self.numbers) for k in zero]
            peak, when, name = max(before, default=(0.0, 0, ""))
            if peak >= 0.1:  # it had learned: a collapse, not data without objects
                self.warned = (
                    f"{stuck}, after {name} reached {peak:.3g} in epoch {when}: the model "
                    "collapsed to predicting one class and is not learning any more. The best "
                    "checkpoint is likely from before the collapse; to train on, lower "
                    "optimizer.learning_rate or set optimizer.clipnorm or train.cosine_decay"
                    + _RECOVERY_ADVICE.get(self.recovery, ""))
            else:
                self.warned = (
                    f"{stuck}: the model is not learning. Check the data (NaN or constant "
                    "images, labels without objects), the target and optimizer.learning_rate "
                    "(a model that collapsed to one class after its first steps often trains "
                    "with train.warmup_steps, e.g. 200)")
            log.warning("%s", self.warned)
