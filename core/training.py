"""The whole fit: seeds, datasets, model, callbacks, checkpoints, resume, signals, metrics.

:func:`fit` is the training sequence of ``dlsuite train`` / ``dlsuite run``: seeds (shifted on
resume so the data stream does not replay the first epochs) -> precision -> datasets ->
model + optimizer + loss + metrics (resumable state restored) -> monitor -> W&B ->
callbacks -> ``config.json`` -> ``model.fit`` -> divergence / interruption outcomes ->
``metrics.json`` and the W&B summary. What each piece promises:

* :func:`seed_everything` seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)
  and, with ``deterministic``, enables TensorFlow op determinism.
* :func:`build_model` / :func:`compile_model` build the architecture, loss, metrics and
  optimizer the config names, through the registry.
* :func:`fit_callbacks` assembles the callbacks in order; checkpoints, the resumable state and
  the safe stops (signals) are :mod:`dlsuite.checkpoints`.
* :class:`DivergenceGuard` stops training at a non-finite or exploding loss, and at an epoch
  end whose weights, learning rate or validation loss are not finite (so a NaN learning rate,
  which leaves the loss of the step that applies it finite, is caught in the same epoch); no
  checkpoint is written for that epoch and :class:`~dlsuite.steps.TrainingDiverged` says why.
* :class:`StuckLossWarning` warns once when the training loss stays at its first-epoch value
  for several epochs while metrics stay at 0 (the model is not learning).

The set-up lives in :mod:`dlsuite.training_setup`, the callbacks in
:mod:`dlsuite.training_callbacks` (their public names are re-exported here).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import attrs
import keras
import numpy as np

from .checkpoints import (Checkpoints, GracefulStop, Monitor, NanGuard, RestoreCallbackState,
                          ResumeState, StopOnSignal, load_resume_state,
                          original_sharing_wandb_run, restore_model_state)
from .collapse_recovery import CollapseRecovery
from .errors import LOCATION_ERRNOS, DlsuiteInputError
from .fileio import write_json_atomic
from .logging.wandb_run import JOB_TRAIN, WandbRun
from .provenance import describe_provenance
from .wandb_results import best_summary
from .rundir import RunDir, write_run_config
from .steps import (RunContext, TrainingDiverged, TrainingInterrupted, TrainingStoppedByStorage,
                    TrainOutput, resume_config)
from .threads import threads_line
# the names imported from the two modules below lived in this module: re-exported here
from .training_callbacks import (AveragedWeights, DivergenceGuard, StuckLossWarning,
                                 collapse_recovery, standard_callbacks)
from .training_setup import (build_model, compile_model, make_optimizer, resolve_monitor,
                             seed_everything, set_precision)

__all__ = [
    "fit", "fit_callbacks", "build_training_data",
    "Monitor", "seed_everything", "set_precision", "build_model",
    "compile_model",
    "make_optimizer", "resolve_monitor", "Checkpoints", "GracefulStop", "StopOnSignal",
    "NanGuard", "ResumeState", "load_resume_state",
    "restore_model_state", "standard_callbacks", "RestoreCallbackState",
    "AveragedWeights", "DivergenceGuard", "StuckLossWarning",
]

log = logging.getLogger("dlsuite.training")


# --------------------------------------------------------------------------------------------
# the fit sequence


def build_training_data(ctx: RunContext, *, temporal: bool, time_windows: int | None,
                        config=None):
    """Datasets for fit from :func:`dlsuite.data.pipeline.build_datasets` (``train``,
    ``val``, ``steps_per_epoch``, ``validation_steps``, ``n_classes``)."""
    from .data.pipeline import build_datasets

    return build_datasets(config or ctx.config, ctx.registry, temporal=temporal,
                          time_windows=time_windows)


def _sample_batch(dataset, n: int):
    if dataset is None or n <= 0:
        return None
    try:
        x, y = next(iter(dataset.take(1)))[:2]
        return np.asarray(x)[:n], np.asarray(y)[:n]
    except Exception as exc:  # noqa: BLE001 - only for W&B pictures
        log.warning("no sample batch for W&B images: %s", exc)
        return None


def fit_callbacks(ctx: RunContext, data, monitor: Monitor, state: ResumeState | None,
                  stop: GracefulStop, nan_guard: NanGuard) -> tuple[list, Any, Checkpoints]:
    """The fit callbacks, in order: signal stop, NaN guard, averaged weights
    (``optimizer.ema_momentum``), BatchNorm (precise statistics
    before validation and checkpoints, the watch: :mod:`dlsuite.batchnorm`), the collapse
    recovery (:mod:`dlsuite.collapse_recovery`), warm-up / cosine decay / TensorBoard /
    ReduceLROnPlateau / EarlyStopping, history.csv, checkpoints (+ resumable state), epoch log
    line, W&B, progress bars, plugins' ``dlsuite_callbacks``, and on resume the restore of
    the LR schedule / early-stopping counters. Returns ``(callbacks, history, checkpoints)``."""
    from .batchnorm import batchnorm_callbacks
    from .config import config_hash
    from .logging.callbacks import EpochLog, HistoryCsv, RichProgress, WandbMetrics, read_history

    cfg = ctx.config
    initial_epoch = state.epoch if state is not None else 0
    previous = [r for r in read_history(ctx.run.history_csv) if r["epoch"] <= initial_epoch]
    standard = standard_callbacks(cfg, ctx.run, monitor)
    recovery = collapse_recovery(cfg, ctx.registry, standard)
    # what a resumed fit needs back: counters, and the rate a recovery lowered
    stateful = [cb for cb in [*standard, *recovery] if isinstance(cb, (
        keras.callbacks.ReduceLROnPlateau, keras.callbacks.EarlyStopping, CollapseRecovery))
        or hasattr(cb, "rate_scale")]
    partial = lambda: stop.partial_epoch  # noqa: E731 - epoch cut short by a signal
    history_cb = HistoryCsv(ctx.run.history_csv, previous, skip_epoch=partial)
    checkpoints = Checkpoints(
        ctx.run, cfg.train.checkpoint, monitor, nan_guard=nan_guard, stop=stop, state=state,
        stateful_callbacks=stateful,
        extra_state=lambda: {"wandb_run_id": ctx.wandb.id, "seed": ctx.seed,
                             "config_hash": config_hash(cfg, ctx.registry)})
    samples = _sample_batch(data.val if data.val is not None else data.train, cfg.wandb.n_images)
    # the averaged weights go in first, so precise BatchNorm, validation and checkpoints see them
    averaged = ([AveragedWeights(resumed=state is not None)]
                if cfg.optimizer.ema_momentum is not None else [])
    callbacks = [StopOnSignal(stop), nan_guard, *averaged,
                 *batchnorm_callbacks(cfg, ctx.registry, data), *recovery,
                 *standard, history_cb, checkpoints,
                 EpochLog(cfg.train.epochs, skip_epoch=partial),
                 StuckLossWarning(recovery=cfg.train.collapse_recovery.enabled),
                 WandbMetrics(ctx.wandb, samples, n_images=cfg.wandb.n_images,
                              class_labels={i: f"class {i}" for i in range(data.n_classes)},
                              skip_epoch=partial)]
    if not ctx.quiet:
        callbacks.append(RichProgress(cfg.train.epochs, data.steps_per_epoch, initial_epoch))
    callbacks += ctx.registry.call_event("dlsuite_callbacks", config=cfg)
    if state is not None:
        callbacks.append(RestoreCallbackState(stateful, state.callbacks))
    return callbacks, history_cb, checkpoints


def fit(ctx: RunContext, *, resume: bool, log_model: bool = True) -> TrainOutput:
    """Fit the model as ``ctx``'s config says, into ``ctx.run`` (see the module docstring);
    W&B is started here (``ctx.wandb``) and left open for the caller to finish. The model
    artifact is logged here (``wandb.log_model``) unless ``log_model`` is False (the caller
    logs it with the exported models).

    Raises :class:`~dlsuite.steps.TrainingDiverged` when the loss became NaN (the last good
    checkpoints are kept) and :class:`~dlsuite.steps.TrainingInterrupted` after a signal
    saved a resumable state."""
    from .config.converter import unstructure_config

    cfg = ctx.config
    dist = ctx.distribution
    if dist is None:
        from .distribute import start_distribution

        dist = ctx.distribution = start_distribution(cfg)
    # a worker other than the chief writes a scratch folder; it resumes from the chief's run
    source = ctx.run if dist.is_chief else RunDir(Path(cfg.output_dir).expanduser().resolve())
    state = load_resume_state(source) if resume else None
    seed = state.seed if state is not None and state.seed is not None else cfg.seed
    # On resume, a shifted seed so the data stream does not replay the first epochs.
    ctx.seed = seed_everything(seed, cfg.train.deterministic)
    run_seed = ctx.seed + (state.epoch if state is not None else 0)
    if run_seed != ctx.seed:
        seed_everything(run_seed)
    log.info("dtype policy %s", set_precision(cfg.train.mixed_precision))

    geo = ctx.geometry()
    data = build_training_data(ctx, temporal=geo["temporal"], time_windows=geo["time_windows"],
                               config=attrs.evolve(cfg, seed=run_seed))
    log.info("%s", dist.describe())
    threads = threads_line()
    if threads:
        log.info("%s", threads)
    with dist.scope():  # model, optimizer, metrics and restored state: on every replica
        model, _entry = build_model(cfg, ctx.registry, n_classes=data.n_classes)
        compile_model(model, cfg, ctx.registry, n_classes=data.n_classes)
        if state is not None:
            restore_model_state(source, state, model)
        elif model.built and not model.optimizer.built:
            # as restore_model_state does: built by Keras only at the first trace of the train
            # step (without a strategy), which then traces it a second time
            model.optimizer.build(model.trainable_variables)
    fit_train, fit_val = _fit_datasets(data, dist, cfg)
    monitor = resolve_monitor(cfg, ctx.registry, has_validation=data.val is not None)
    log.info("monitoring %s (%s)", monitor.name, monitor.mode)

    prov = ctx.provenance()
    log.info("plugins: %s", describe_provenance(prov))
    resume_id = state.wandb_run_id if state is not None else None
    original = original_sharing_wandb_run(ctx.run, resume_id) if dist.is_chief else None
    if original is not None:  # its own W&B run, or syncing would merge it into the original's
        log.info("this run is a copy of the run in %s: it continues in a new W&B run (%s "
                 "keeps W&B run %s)", original, original, resume_id)
        resume_id = None
    if dist.is_chief:
        ctx.wandb = WandbRun.start(wandb_config=cfg.wandb, run_dir=ctx.run.root, name=cfg.name,
                                   config={**unstructure_config(cfg, ctx.registry),
                                           "provenance": prov},
                                   resume_id=resume_id,
                                   job_type=cfg.wandb.job_type or JOB_TRAIN,
                                   overrides=ctx.loaded.overrides)
        ctx.wandb.track_best(monitor.name, monitor.mode)

    initial_epoch = state.epoch if state is not None else 0
    stop, nan_guard = GracefulStop(), DivergenceGuard()
    callbacks, history_cb, checkpoints = fit_callbacks(ctx, data, monitor, state, stop,
                                                       nan_guard)

    # written once everything is built, so a config or data error leaves no "run" behind
    write_run_config(ctx.run, ctx.loaded, ctx.registry, seed=ctx.seed, resumed=resume)
    with stop, _storage_stop(ctx, checkpoints):
        if initial_epoch < cfg.train.epochs:
            log.info("training %s: epochs %d..%d, %d steps per epoch", cfg.model.name,
                     initial_epoch + 1, cfg.train.epochs, data.steps_per_epoch)
            model.fit(fit_train, epochs=cfg.train.epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=data.steps_per_epoch, validation_data=fit_val,
                      validation_steps=data.validation_steps, callbacks=callbacks,
                      verbose=0, shuffle=False)
        else:
            log.info("nothing to train: %d of %d epochs already done", initial_epoch,
                     cfg.train.epochs)
    _raise_unless_finished(ctx, nan_guard, stop, checkpoints)

    history = history_cb.rows
    metrics = {"train": _train_metrics(history, monitor, checkpoints)}
    model_path = _checkpoint_or_none(ctx.run, cfg.inference.weights)
    write_json_atomic(ctx.run.metrics_json, {**metrics, "provenance": prov, "notes": ctx.notes})
    ctx.wandb.summary(best_summary(monitor.name, monitor.mode, checkpoints.best,
                                   checkpoints.best_epoch, checkpoints.epochs_done))
    if log_model and cfg.wandb.log_model and model_path is not None:
        ctx.wandb.log_model(model_path, name=cfg.name,
                            aliases=["latest"] + ([cfg.inference.weights] if
                                                  cfg.inference.weights in ("best", "last")
                                                  else []),
                            metadata={"monitor": monitor.name, "best": checkpoints.best,
                                      "best_epoch": checkpoints.best_epoch,
                                      "weights": cfg.inference.weights})
    return TrainOutput(model_path, history, metrics, data.n_classes)


@contextlib.contextmanager
def _storage_stop(ctx: RunContext, checkpoints: Checkpoints):
    """A full disk (or quota, size limit, read-only location) met by a write during the fit
    becomes :class:`TrainingStoppedByStorage` saying which epoch is kept and how to resume
    (in the first epoch: that nothing is, and how to start again)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in LOCATION_ERRNOS:
            raise
        raise TrainingStoppedByStorage(exc, ctx.run.root, checkpoints.epochs_done,
                                       resume_config(ctx)) from exc


def _fit_datasets(data, dist, cfg) -> tuple[Any, Any]:
    """The datasets ``model.fit`` reads: as built, or split over the strategy's replicas
    (:mod:`dlsuite.data.distributed`)."""
    if dist.strategy is None:
        return data.train, data.val
    from .data.distributed import distribute_datasets

    d = cfg.datagen
    log.info("global batch %d images, %d per replica", d.batch_size,
             d.batch_size // dist.replicas)
    return distribute_datasets(data, dist.strategy, batch_size=d.batch_size,
                               patches_per_image=d.patches_per_image)


def _raise_unless_finished(ctx: RunContext, nan_guard: NanGuard, stop: GracefulStop,
                           checkpoints: Checkpoints) -> None:
    if nan_guard.where is not None:
        epoch, step = nan_guard.where
        good = checkpoints.epochs_done
        reason = getattr(nan_guard, "reason", None) or "the loss became NaN/inf"
        kept = (f"the last good checkpoints ({ctx.run.checkpoints}) are from epoch {good}"
                if good else "no checkpoint was written")
        hint = ("set optimizer.learning_rate to a positive number" if "learning rate" in reason
                else "lower optimizer.learning_rate or set optimizer.clipnorm")
        raise TrainingDiverged(f"training stopped at epoch {epoch}, step {step}: {reason}; "
                               f"{kept}. Check the data and {hint}")
    if stop.signum is not None:
        raise TrainingInterrupted(stop.signum, ctx.run.root, checkpoints.epochs_done,
                                  resume_config(ctx))


def _train_metrics(history: list, monitor: Monitor, checkpoints: Checkpoints) -> dict:
    last = dict(history[-1]) if history else {}
    last.pop("epoch", None)
    return {"epochs": checkpoints.epochs_done, "monitor": monitor.name, "mode": monitor.mode,
            "best": checkpoints.best, "best_epoch": checkpoints.best_epoch, "last": last}


def _checkpoint_or_none(run: RunDir, weights: str):
    """The checkpoint prediction will use (:func:`dlsuite.inference.choose_checkpoint`), or
    None when training left none."""
    from .inference import choose_checkpoint

    try:
        return choose_checkpoint(run, weights)
    except DlsuiteInputError:
        return None
