"""Fit-loop glue: seeds, model + optimizer from the config, callbacks, checkpoints, resume,
signals.

What each piece promises:

* :func:`seed_everything` seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)
  and, with ``deterministic``, enables TensorFlow op determinism.
* :func:`build_model` / :func:`compile_model` build the architecture, loss, metrics and
  optimizer the config names, through the registry.
* :class:`Checkpoints` writes ``best.keras`` (monitored metric), ``last.keras``, periodic
  ``epoch_NNNN.keras`` and the resumable state (``checkpoints/resume/``: model weights,
  optimizer variables incl. ``iterations``, ``state.json``), every file atomically. It never
  writes after the loss became NaN, so the last good checkpoint survives.
* :class:`GracefulStop` turns the first SIGINT / SIGTERM into a flag; :class:`StopOnSignal`
  stops training at the end of the current batch; the epoch-end checkpoint then holds the
  resumable state. A second signal interrupts at once (KeyboardInterrupt).
* :class:`NanGuard` stops at the first non-finite loss and remembers where.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import random
import shutil
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import keras
import numpy as np

from .errors import DlsuiteInputError
from .fileio import atomic_write, write_json_atomic
from .rundir import RunDir, read_json

__all__ = [
    "Monitor", "seed_everything", "set_precision", "build_model",
    "compile_model",
    "make_optimizer", "resolve_monitor", "Checkpoints", "GracefulStop", "StopOnSignal",
    "NanGuard", "ResumeState", "load_resume_state",
    "restore_model_state", "standard_callbacks", "RestoreCallbackState",
]

log = logging.getLogger("dlsuite.training")


# --------------------------------------------------------------------------------------------
# seeds, precision


def seed_everything(seed: int | None, deterministic: bool = False) -> int:
    """Seed Python, NumPy and TensorFlow; a ``None`` seed draws one. Returns the seed used.
    ``deterministic`` enables TensorFlow op determinism (it stays on for the process)."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**31 - 1)
        log.info("seed: null in the config, drew %d", seed)
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        log.info("TensorFlow op determinism enabled")
    return int(seed)


def set_precision(mixed: bool) -> str:
    """Set the Keras global dtype policy: ``mixed_float16`` on GPU, ``mixed_bfloat16`` on CPU
    when ``mixed``, else ``float32``. Returns the policy name."""
    if mixed:
        import tensorflow as tf

        name = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    else:
        name = "float32"
    keras.mixed_precision.set_global_policy(name)
    return name


# --------------------------------------------------------------------------------------------
# model, loss, metrics, optimizer


def build_model(config, registry, *, n_classes: int) -> tuple[keras.Model, Any]:
    """Build the architecture the config names; returns ``(model, architecture entry)``.

    ``train.pretrained_weights`` (``.keras`` or ``.weights.h5``) is loaded into it; with
    ``train.load_from_frozen`` the encoder is unfrozen after loading.
    """
    from .models import build_model as build_architecture

    entry = registry.resolve("architectures", config.model.name)
    model = build_architecture(config, registry, n_classes=n_classes)
    weights = config.train.pretrained_weights
    if weights:
        try:
            model.load_weights(weights)
        except Exception as exc:  # noqa: BLE001 - any Keras loading failure is bad input
            raise DlsuiteInputError(
                f"$.train.pretrained_weights: cannot load {weights} into model "
                f"{config.model.name!r}: {type(exc).__name__}: {exc}") from None
        log.info("loaded pretrained weights from %s", weights)
        if config.train.load_from_frozen:
            from dlsuite_plugins.architectures.freeze import set_encoder_trainable

            set_encoder_trainable(model, True)
            log.info("encoder unfrozen after loading weights of a frozen-encoder run")
    return model, entry


# optimizer name -> (Keras class, keyword arguments it accepts from the config)
_OPTIMIZERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "adam": ("Adam", ("clipnorm",)),
    "adamw": ("AdamW", ("clipnorm", "weight_decay")),
    "sgd": ("SGD", ("clipnorm", "weight_decay")),
    "rmsprop": ("RMSprop", ("clipnorm",)),
}


def make_optimizer(opt_config) -> keras.optimizers.Optimizer:
    """A Keras optimizer from the config's ``optimizer`` section (unset options omitted)."""
    cls_name, allowed = _OPTIMIZERS[opt_config.name]
    kwargs = {k: getattr(opt_config, k) for k in allowed if getattr(opt_config, k) is not None}
    return getattr(keras.optimizers, cls_name)(learning_rate=opt_config.learning_rate, **kwargs)


def compile_model(model: keras.Model, config, registry, *, n_classes: int) -> keras.Model:
    """Compile ``model`` with the config's optimizer, loss plugin and metric plugins (for the
    target's heads, :func:`dlsuite.head_losses.build_loss_and_metrics`)."""
    from .head_losses import build_loss_and_metrics

    loss, metrics = build_loss_and_metrics(config, registry, n_classes=n_classes)
    model.compile(optimizer=make_optimizer(config.optimizer), loss=loss, metrics=metrics)
    return model


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


def resolve_monitor(config, registry, *, has_validation: bool) -> Monitor:
    """The monitored metric and its direction.

    Without validation data a ``val_`` metric falls back to its training twin (if that
    metric is logged) or to ``loss``, with a logged note. Mode ``auto`` takes the metric
    plugin's declared mode (``loss``: min).
    """
    name = config.train.monitor
    logged = {"loss"} | {c.name.rpartition(":")[2] for c in config.metrics}
    if name.startswith("val_") and not has_validation:
        twin = name[4:]
        fallback = twin if twin in logged else "loss"
        log.warning("no validation data: monitoring %r instead of %r", fallback, name)
        name = fallback
    mode = config.train.monitor_mode
    if mode == "auto":
        base = name[4:] if name.startswith("val_") else name
        mode = "min"
        for choice in config.metrics:
            if choice.name.rpartition(":")[2] == base:
                mode = getattr(registry.resolve("metrics", choice.name).spec, "mode", "max")
    return Monitor(name, mode)


# --------------------------------------------------------------------------------------------
# signals and NaN


class GracefulStop:
    """Context manager: the first SIGINT/SIGTERM sets ``signum`` (training stops at a safe
    point); a second one raises KeyboardInterrupt at once. Handlers are installed only in the
    main thread and restored on exit."""

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
                self._previous[sig] = signal.signal(sig, self._handle)
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


def _save_optimizer(path: Path, optimizer) -> None:
    arrays = {f"v{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    names = np.array([v.path for v in optimizer.variables])

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, __names__=names, **arrays)

    atomic_write(path, write)


def restore_model_state(run: RunDir, state: ResumeState, model: keras.Model) -> None:
    """Load the resumable weights and optimizer variables (incl. ``iterations`` and the
    learning rate) into a freshly built, compiled ``model``. A state that does not fit the
    model (config changed) raises DlsuiteInputError."""
    folder = run.resume_dir / state.folder
    opt = model.optimizer
    opt.build(model.trainable_variables)  # before loading, so no variable is skipped
    try:
        model.load_weights(folder / "model.weights.h5")
    except Exception as exc:  # noqa: BLE001
        raise DlsuiteInputError(
            f"{folder}: resumable weights do not fit the model of this config "
            f"({type(exc).__name__}: {exc}); resume with the run's own config.json") from None
    with np.load(folder / "optimizer.npz") as data:
        names = list(data["__names__"])
        values = [data[f"v{i:05d}"] for i in range(len(names))]
    if len(values) != len(opt.variables) or any(
            tuple(v.shape) != tuple(a.shape) for v, a in zip(opt.variables, values)):
        raise DlsuiteInputError(
            f"{folder}: optimizer state ({len(values)} variables) does not fit optimizer "
            f"{type(opt).__name__} ({len(opt.variables)} variables); was the optimizer changed?")
    for var, value in zip(opt.variables, values):
        var.assign(value)
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
        for old in self.run.resume_dir.iterdir():
            if old.is_dir() and old.name != folder_name:
                shutil.rmtree(old, ignore_errors=True)


_STATEFUL_ATTRS = ("best", "wait", "cooldown_counter")


def _callback_state(cb) -> dict[str, Any]:
    out = {}
    for attr in _STATEFUL_ATTRS:
        value = getattr(cb, attr, None)
        if isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(float(value)):
            out[attr] = float(value) if attr == "best" else int(value)
    return out


class RestoreCallbackState(keras.callbacks.Callback):
    """On resume, after the other callbacks reset themselves in ``on_train_begin``, put back
    the counters (best, wait, cooldown) ReduceLROnPlateau / EarlyStopping had."""

    def __init__(self, callbacks: Sequence[keras.callbacks.Callback], saved: dict[str, dict]):
        super().__init__()
        self.callbacks, self.saved = list(callbacks), saved

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            for attr, value in self.saved.get(type(cb).__name__, {}).items():
                setattr(cb, attr, value)


def standard_callbacks(config, run: RunDir, monitor: Monitor) -> list[keras.callbacks.Callback]:
    """TensorBoard, ReduceLROnPlateau and EarlyStopping as the config's ``train`` section asks
    (each only when enabled)."""
    t = config.train
    out: list[keras.callbacks.Callback] = []
    if t.tensorboard.enabled and importlib.util.find_spec("tensorboard") is None:
        log.warning("train.tensorboard is enabled but the tensorboard package is not "
                    "installed: no TensorBoard logs (pip install tensorboard)")
    elif t.tensorboard.enabled:
        out.append(keras.callbacks.TensorBoard(
            log_dir=str(run.logs), update_freq=t.tensorboard.update_freq,
            histogram_freq=t.tensorboard.histogram_freq, write_graph=False))
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
