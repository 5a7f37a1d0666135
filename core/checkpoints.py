"""Checkpoints, the resumable state, and the safe stops that decide when they are written.

* :class:`Checkpoints` writes ``best.keras`` (monitored metric), ``last.keras``, periodic
  ``epoch_NNNN.keras`` and the resumable state (``checkpoints/resume/``: model weights,
  optimizer variables incl. ``iterations``, ``state.json``), every file atomically. It never
  writes after the loss became NaN, so the last good checkpoint survives.
* :func:`load_resume_state` / :func:`restore_model_state` read that state back into a freshly
  built model; :class:`RestoreCallbackState` puts back the LR-schedule and early-stopping
  counters.
* :class:`GracefulStop` turns the first SIGINT / SIGTERM into a flag; :class:`StopOnSignal`
  stops training at the end of the current batch; the epoch-end checkpoint then holds the
  resumable state. A second signal interrupts at once (KeyboardInterrupt).
* :class:`NanGuard` stops at the first non-finite loss and remembers where.

Which checkpoint predicts is :func:`dlsuite.inference.choose_checkpoint`.
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import keras
import numpy as np

from .errors import DlsuiteInputError
from .fileio import atomic_write, write_json_atomic
from .signal_handlers import install
from .ownership import OwnedFolder
from .run_layout import PERIODIC_ENTRY, is_resume_folder
from .rundir import RunDir, read_json

__all__ = ["Monitor", "Checkpoints", "GracefulStop", "StopOnSignal", "NanGuard", "ResumeState",
           "load_resume_state", "original_sharing_wandb_run", "restore_model_state",
           "RestoreCallbackState"]

log = logging.getLogger("dlsuite.training")


@attrs.frozen
class Monitor:
    """The metric that drives checkpoints, the LR schedule and early stopping."""

    name: str
    mode: str  # "max" or "min"

    def better(self, value: float, best: float | None) -> bool:
        """True when the finite ``value`` improves on ``best`` (any finite value beats None)."""
        if value is None or not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best



# --------------------------------------------------------------------------------------------
# signals and NaN


class GracefulStop:
    """Context manager: the first SIGINT/SIGTERM sets ``signum`` (training stops at a safe
    point); a second one raises KeyboardInterrupt at once. Handlers are installed only in the
    main thread (not for a signal inherited as ignored: it stays ignored) and restored on
    exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.partial_epoch = False  # set when training stopped before an epoch's last step
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("%s received: stopping after the current batch and saving a resumable "
                    "checkpoint (send it again to stop at once)", signal.Signals(signum).name)

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = install(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class StopOnSignal(keras.callbacks.Callback):
    """Stops training at the end of the batch during which a signal arrived; when that was
    not the epoch's last step, marks the epoch partial (``stop.partial_epoch``): it is then
    not counted, not recorded in the history and redone on resume."""

    def __init__(self, stop: GracefulStop):
        super().__init__()
        self.stop = stop
        self._steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.stop.signum is not None and not self.model.stop_training:
            self.model.stop_training = True
            total = (self.params or {}).get("steps")
            self.stop.partial_epoch = bool(total) and self._steps < total


class NanGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss; ``where`` = (epoch 1-based, batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.where: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.where is None:
            self.where = (self._epoch, int(batch) + 1)
            self.model.stop_training = True


# --------------------------------------------------------------------------------------------
# resumable state


@attrs.define
class ResumeState:
    """What ``checkpoints/resume/state.json`` records."""

    epoch: int  # completed epochs; training continues at this 0-based initial_epoch
    iterations: int
    folder: str  # subfolder of checkpoints/resume holding the weights and optimizer files
    best: float | None = None
    best_epoch: int | None = None
    monitor: str | None = None
    wandb_run_id: str | None = None
    seed: int | None = None
    config_hash: str | None = None
    interrupted: str | None = None  # signal name when the run was stopped by a signal
    callbacks: dict[str, dict[str, Any]] = attrs.field(factory=dict)


def load_resume_state(run: RunDir) -> ResumeState:
    """Read ``checkpoints/resume/state.json``; a missing or broken one raises
    DlsuiteInputError naming it."""
    data = read_json(run.resume_state)
    try:
        return ResumeState(**data)
    except TypeError as exc:
        raise DlsuiteInputError(f"{run.resume_state}: not a dlsuite resume state ({exc})") from None


def original_sharing_wandb_run(run: RunDir, run_id: str | None) -> Path | None:
    """The run ``run`` was copied from when that one still continues the W&B run ``run_id``:
    the folder ``run``'s ``config.json`` records as output_dir, another run directory whose
    resumable state names the same W&B run. None for a run in the place it was first
    written, a run moved (nothing left there) or a W&B run of its own."""
    if run_id is None or not run.config_json.is_file():
        return None
    try:
        recorded = read_json(run.config_json)["config"]["output_dir"]
        other = RunDir(Path(recorded).expanduser().resolve())
        if other.root == run.root.resolve() or not other.resume_state.is_file():
            return None
        return other.root if load_resume_state(other).wandb_run_id == run_id else None
    except (DlsuiteInputError, KeyError, TypeError, OSError):
        return None  # an unreadable original shares nothing that can be told


def _save_optimizer(path: Path, optimizer) -> None:
    arrays = {f"v{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    names = np.array([v.path for v in optimizer.variables])

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, __names__=names, **arrays)

    atomic_write(path, write)


def _saved_learning_rate(run: RunDir) -> float | None:
    """``optimizer.learning_rate`` of the run's ``config.json`` (None when absent)."""
    if not run.config_json.is_file():
        return None
    data = read_json(run.config_json)
    try:
        return float(data["config"]["optimizer"]["learning_rate"])
    except (KeyError, TypeError, ValueError):
        return None


def _read_optimizer_file(path: Path) -> list[np.ndarray]:
    try:
        with np.load(path) as data:
            names = list(data["__names__"])
            return [data[f"v{i:05d}"] for i in range(len(names))]
    except Exception as exc:  # noqa: BLE001 - any failure to read is a broken file
        raise DlsuiteInputError(
            f"{path}: cannot read the resumable optimizer state ({type(exc).__name__}: {exc}); "
            "the file is damaged: start the run again with --overwrite") from None


def restore_model_state(run: RunDir, state: ResumeState, model: keras.Model) -> None:
    """Load the resumable weights and optimizer variables (incl. ``iterations`` and the
    learning rate) into a freshly built, compiled ``model``.

    When the compiled learning rate (the config's) differs from the run's ``config.json``
    (the config changed on resume; ``config.json`` is rewritten only after this), the new
    learning rate replaces the restored one. Errors are DlsuiteInputError naming the file: a
    missing or unreadable weights / optimizer file, or weights / optimizer variables that do
    not fit the model (Keras' own warnings are silenced)."""
    folder = run.resume_dir / state.folder
    weights, optimizer_file = folder / "model.weights.h5", folder / "optimizer.npz"
    for path in (weights, optimizer_file):
        if not path.is_file():
            raise DlsuiteInputError(
                f"{path}: missing; {run.resume_state.name} names the resumable state of epoch "
                f"{state.epoch} in {folder.name}/, but it is incomplete. Start the run again "
                "with --overwrite")
    opt = model.optimizer
    opt.build(model.trainable_variables)  # before loading, so no variable is skipped
    config_lr = np.float32(keras.ops.convert_to_numpy(opt.learning_rate))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.load_weights(weights)
        except OSError as exc:
            raise DlsuiteInputError(
                f"{weights}: cannot read the resumable weights ({exc}); the file is damaged: "
                "start the run again with --overwrite") from None
        except Exception as exc:  # noqa: BLE001
            raise DlsuiteInputError(
                f"{weights}: the resumable weights do not fit the model of this config "
                f"({type(exc).__name__}: {exc}); resume with the run's own config.json") from None
    values = _read_optimizer_file(optimizer_file)
    if len(values) != len(opt.variables) or any(
            tuple(v.shape) != tuple(a.shape) for v, a in zip(opt.variables, values)):
        raise DlsuiteInputError(
            f"{optimizer_file}: optimizer state ({len(values)} variables) does not fit "
            f"optimizer {type(opt).__name__} ({len(opt.variables)} variables); was the "
            "optimizer changed?")
    for var, value in zip(opt.variables, values):
        var.assign(value)
    saved_lr = _saved_learning_rate(run)
    if saved_lr is not None and np.float32(saved_lr) != config_lr:
        restored = float(keras.ops.convert_to_numpy(opt.learning_rate))
        opt.learning_rate = float(config_lr)
        log.info("optimizer.learning_rate changed %.6g -> %.6g: training continues with "
                 "%.6g (the run was at %.6g)", saved_lr, config_lr, config_lr, restored)
    log.info("resumed from epoch %d (optimizer step %d)", state.epoch,
             int(keras.ops.convert_to_numpy(opt.iterations)))


class Checkpoints(keras.callbacks.Callback):
    """At each epoch end (unless the loss went NaN): ``best.keras`` when the monitored metric
    improved, ``last.keras``, ``epoch_NNNN.keras`` every N epochs, and the resumable state.
    Every file is written atomically; old resumable states are removed after the new one is
    recorded."""

    def __init__(self, run: RunDir, checkpoint_config, monitor: Monitor, *,
                 nan_guard: NanGuard, stop: GracefulStop | None = None,
                 state: ResumeState | None = None, extra_state: Callable[[], dict] | None = None,
                 stateful_callbacks: Sequence[keras.callbacks.Callback] = ()):
        super().__init__()
        self.run, self.cfg, self.monitor = run, checkpoint_config, monitor
        self.nan_guard, self.stop = nan_guard, stop
        same = state is not None and state.monitor == monitor.name
        self.best = state.best if same else None
        self.best_epoch: int | None = state.best_epoch if same else None
        self.extra_state = extra_state or (lambda: {})
        self.stateful = list(stateful_callbacks)
        self.epochs_done = state.epoch if state is not None else 0
        self._warned_missing = False

    def _save_model(self, path: Path) -> None:
        atomic_write(path, lambda tmp: self.model.save(tmp))

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_guard.where is not None:
            return
        if self.stop is not None and self.stop.partial_epoch:
            # cut short by a signal: keep the weights and optimizer steps, redo the epoch
            self.save_resume_state(epoch)
            log.info("epoch %d was cut short by the signal: it will be redone on resume",
                     epoch + 1)
            return
        logs = logs or {}
        done = epoch + 1
        saved: Path | None = None

        def place(target: Path) -> None:
            nonlocal saved
            if saved is None:
                self._save_model(target)
                saved = target
            else:
                atomic_write(target, lambda tmp: shutil.copyfile(saved, tmp))

        value = logs.get(self.monitor.name)
        if value is None and not self._warned_missing:
            self._warned_missing = True
            log.warning("monitored metric %r is not in the logs (%s); best.keras is not kept",
                        self.monitor.name, ", ".join(sorted(logs)))
        if value is not None and self.monitor.better(float(value), self.best):
            self.best, self.best_epoch = float(value), done
            if self.cfg.save_best:
                place(self.run.best)
                log.info("epoch %d: %s improved to %.5g, saved %s", done, self.monitor.name,
                         self.best, self.run.best.name)
        if self.cfg.save_last:
            place(self.run.last)
        if self.cfg.every_n_epochs and done % self.cfg.every_n_epochs == 0:
            # recorded by name before it is written: a file of the user's named like it
            # elsewhere in checkpoints/ is never taken for one (--overwrite keeps it)
            OwnedFolder(self.run.root, "run").record([PERIODIC_ENTRY.format(epoch=done)])
            place(self.run.periodic(done))
        self.save_resume_state(done)

    def save_resume_state(self, done: int) -> None:
        """Write weights, optimizer variables and ``state.json`` for ``done`` completed epochs."""
        folder_name = f"epoch_{done:04d}"
        folder = self.run.resume_dir / folder_name
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "model.weights.h5", lambda tmp: self.model.save_weights(tmp))
        _save_optimizer(folder / "optimizer.npz", self.model.optimizer)
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        signum = self.stop.signum if self.stop is not None else None
        state = ResumeState(
            epoch=done, iterations=iterations, folder=folder_name, best=self.best,
            best_epoch=self.best_epoch, monitor=self.monitor.name,
            interrupted=signal.Signals(signum).name if signum is not None else None,
            callbacks={type(cb).__name__: _callback_state(cb) for cb in self.stateful},
            **self.extra_state())
        write_json_atomic(self.run.resume_state, attrs.asdict(state))
        self.epochs_done = done
        for old in self.run.resume_dir.iterdir():  # earlier states: only training's own
            if old.is_dir() and old.name != folder_name and is_resume_folder(old.name):
                shutil.rmtree(old, ignore_errors=True)


#: what a resumed fit puts back on a callback of the same class, and as which type
_STATEFUL_ATTRS = {"best": float, "wait": int, "cooldown_counter": int, "rate_scale": float,
                   "recoveries": int}


def _callback_state(cb) -> dict[str, Any]:
    out = {}
    for attr, kind in _STATEFUL_ATTRS.items():
        value = getattr(cb, attr, None)
        if isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(float(value)):
            out[attr] = kind(value)
    return out


class RestoreCallbackState(keras.callbacks.Callback):
    """On resume, after the other callbacks reset themselves in ``on_train_begin``, put back
    the counters (best, wait, cooldown) ReduceLROnPlateau / EarlyStopping had, and the rate
    scale and count of the collapse recovery."""

    def __init__(self, callbacks: Sequence[keras.callbacks.Callback], saved: dict[str, dict]):
        super().__init__()
        self.callbacks, self.saved = list(callbacks), saved

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            for attr, value in self.saved.get(type(cb).__name__, {}).items():
                setattr(cb, attr, value)
