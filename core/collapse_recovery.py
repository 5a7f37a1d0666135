"""``train.collapse_recovery``: a fit whose model collapsed goes back to its last healthy
weights at a lower learning rate, instead of training on a model that predicts one class.

At a high learning rate a small network trained from scratch can, after many good epochs,
fall within two or three epochs into predicting background everywhere, and never leave it
(ReLUs that no longer fire): the instance recipe's 2D model on the video frames went from
training Jaccard 0.86 to 0 at epoch 72 of 99 at learning rate 3e-3.

A collapse: at an epoch end a watched training metric (one whose plugin grows as the model
improves, e.g. ``jaccard`` or ``dice``; validation metrics do not count) that reached at least
0.1 before is under ``drop`` times its peak, while the training loss rose to more than
``LOSS_RISE`` times its value at the last healthy epoch end (in the collapses seen, 3 to 6
times). ``drop`` 0.7 (not lower) because a loss spike often leaves the metric at half to two
thirds of its peak, and such a partial fall can take dozens of epochs to climb back: a U-Net
trained with Dice went from training Jaccard 0.78 to 0.51 (loss x2.5) and stayed 0.03-0.05
under its peak for the next 50 epochs, its validation Jaccard 0.1 lower. Without the rise it
is no collapse: a model trained from scratch often scores some Dice in its first epoch by
predicting foreground widely, then 0 for a few epochs while its loss keeps falling (it learns
the background first), and finds the cells on its own (the quickstart does). Nor is a model
that had not learned yet: the first epoch is never the healthy epoch to go back to, nor an
epoch whose loss is not under the first epoch's (the legacy example, 3 steps per epoch at
3e-3: training Jaccard 0.16 at chance loss 0.69 in epoch 1, a loss spike to 5.7 in epoch 2;
going back to epoch 1 three times left the rate at an eighth for the rest of the run).

The recovery puts back the weights and the optimizer's slots (not its step count) of the last
healthy epoch end, one where every watched metric, and its validation counterpart when the
epoch has one, was at least ``healthy`` times its peak (the quickstart, seed 1: at epoch 28
training Jaccard was at 0.93 of its peak but validation Jaccard at 0.56; the collapse came at
epoch 29; going back to epoch 28 it fell again the next epoch at half the rate, going back to
27 it did not), and multiplies the learning rate by ``factor``: the optimizer's, and the rate
the warm-up / cosine decay set from then on (``rate_scale``). At most ``max_times`` times per run; then it
only warns. The collapsed epoch's history row keeps the metrics it measured, so the curve
shows what happened; its checkpoints hold the restored weights. The healthy copy lives in
memory (weights plus the optimizer's slots, about three times the model for Adam) and is not
part of the resumable state: a resumed fit keeps the count and the rate scale, and takes a new
copy at its first healthy epoch end.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import keras

from .head_losses import metric_modes
from .logging.callbacks import current_lr

__all__ = ["CollapseRecovery", "watched_metrics"]

log = logging.getLogger("dlsuite.training")

#: a metric must have reached this before a fall counts as a collapse
MIN_PEAK = 0.1
#: ... and the training loss must have risen above this many times its healthy value
LOSS_RISE = 1.5


def watched_metrics(config, registry) -> list[str]:
    """The names of the config's metrics that grow as the model improves (the plugin's
    declared ``mode``, ``max`` when it declares none)."""
    return [name for name, mode in metric_modes(config, registry).items() if mode == "max"]


def _matches(key: str, name: str) -> bool:
    # training metrics only; a head's metric is logged as <head>_<name>
    return not key.startswith("val_") and (key == name or key.endswith("_" + name))


class CollapseRecovery(keras.callbacks.Callback):
    """Restores the last healthy weights and lowers the learning rate when a watched training
    metric collapses (see the module docstring). ``schedules``: callbacks that set the rate
    themselves and multiply it by their ``rate_scale``. ``recoveries`` counts the restores."""

    def __init__(self, metrics: Sequence[str], *, drop: float = 0.7, healthy: float = 0.8,
                 factor: float = 0.5, max_times: int = 3,
                 schedules: Sequence[keras.callbacks.Callback] = ()):
        super().__init__()
        self.metrics, self.drop, self.healthy = list(metrics), drop, healthy
        self.factor, self.max_times, self.schedules = factor, max_times, list(schedules)
        self.recoveries = 0
        self.peaks: dict[str, tuple[float, int]] = {}  # metric -> (peak, its 1-based epoch)
        # epoch, weights, optimizer slots, learning rate, loss
        self._copy: tuple[int, list, list, float, float] | None = None
        self._gave_up = False
        self._first_loss = math.inf  # the training loss of the run's epoch 1

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        values = {k: float(logs[k]) for name in self.metrics for k in logs  # config order
                  if _matches(k, name) and math.isfinite(float(logs[k]))}
        fallen = [(k, v) for k, v in values.items()
                  if self.peaks.get(k, (0.0, 0))[0] >= MIN_PEAK
                  and v < self.drop * self.peaks[k][0]]
        loss = float(logs.get("loss", math.nan))
        if fallen and self._copy is not None and loss > LOSS_RISE * self._copy[4]:
            # named: the deepest fall, the first in the config's order among equals
            deepest = min(fallen, key=lambda kv: kv[1] / self.peaks[kv[0]][0])
            self._collapsed(int(epoch) + 1, *deepest, loss)
            return
        # healthy also asks the validation counterparts, when the epoch logged them: a
        # training metric can still be near its peak at the first epoch of a fall that the
        # validation metric already shows
        checks = dict(values)
        checks.update({f"val_{k}": float(logs[f"val_{k}"]) for k in values
                       if f"val_{k}" in logs and math.isfinite(float(logs[f"val_{k}"]))})
        for k, v in checks.items():
            if v > self.peaks.get(k, (-math.inf, 0))[0]:
                self.peaks[k] = (v, int(epoch) + 1)
        if int(epoch) == 0 and math.isfinite(loss):
            self._first_loss = loss
        # epoch 1 is never the healthy copy: its metrics come from a model that has not
        # learned yet (see the module docstring), and a copy is taken only once the loss is
        # under epoch 1's (a resumed fit, which has no epoch 1, takes its first healthy one)
        learned = int(epoch) > 0 and loss < self._first_loss
        if values and math.isfinite(loss) and learned and all(
                v >= self.healthy * self.peaks[k][0] for k, v in checks.items()):
            self._keep(int(epoch) + 1, loss)

    def _keep(self, epoch: int, loss: float) -> None:
        optimizer = self.model.optimizer
        self._copy = (epoch, [keras.ops.convert_to_numpy(w) for w in self.model.weights],
                      [keras.ops.convert_to_numpy(v) for v in self._slots(optimizer)],
                      current_lr(self.model), loss)

    @staticmethod
    def _slots(optimizer) -> list:
        """The optimizer's variables except its step count (schedules count on it)."""
        return [v for v in optimizer.variables if v is not optimizer.iterations]

    def _collapsed(self, epoch: int, name: str, value: float, loss: float) -> None:
        peak, when = self.peaks[name]
        what = (f"epoch {epoch}: {name} fell to {value:.3g} from its peak {peak:.3g} (epoch "
                f"{when}) and the loss rose to {loss:.3g} (epoch {self._copy[0]}: "
                f"{self._copy[4]:.3g}): the model collapsed")
        if self.recoveries >= self.max_times:
            if not self._gave_up:
                self._gave_up = True
                log.warning("%s; not recovered: train.collapse_recovery.max_times (%d) used "
                            "up. Lower optimizer.learning_rate or set optimizer.clipnorm",
                            what, self.max_times)
            return
        kept, weights, slots, rate, healthy_loss = self._copy
        for variable, value_ in zip(self.model.weights, weights):
            variable.assign(value_)
        optimizer = self.model.optimizer
        for variable, value_ in zip(self._slots(optimizer), slots):
            variable.assign(value_)
        optimizer.learning_rate = rate * self.factor
        for schedule in self.schedules:
            schedule.rate_scale = getattr(schedule, "rate_scale", 1.0) * self.factor
        self.recoveries += 1
        self._copy = (kept, weights, slots, rate * self.factor, healthy_loss)  # lower again
        log.warning("%s; restored the weights of epoch %d and lowered the learning rate from "
                    "%.3g to %.3g (recovery %d of %d, train.collapse_recovery)", what, kept,
                    rate, rate * self.factor, self.recoveries, self.max_times)

