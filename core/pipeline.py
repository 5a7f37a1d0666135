"""The steps of ``dlsuite train`` / ``dlsuite run`` as functions with typed inputs and outputs.

``train(loaded)``: run directory -> seeds -> datasets -> model -> fit with callbacks
(checkpoints, LR schedule, TensorBoard, history, W&B, progress, signals) -> metrics.json.

``run(loaded)``: :func:`train`'s steps, then :func:`predict_step` (test set, tiled/temporal)
-> :func:`postprocess_step` -> :func:`export_step` (label TIFFs, CTC ``NN_RES`` with tracks)
-> :func:`evaluate_step` -> :func:`report_step` (metrics.json, pictures, W&B summary).
Things the user should know (e.g. CTC export without ``laptrack``, an evaluation that could
not run) are listed in ``RunResult.metrics["notes"]``.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import signal
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

import attrs
import numpy as np

from .config import LoadedConfig, config_hash
from .errors import DlsuiteInputError
from .logging.handlers import attached
from .logging.wandb_run import WandbRun
from .registry import Registry, get_registry
from .fileio import write_json_atomic
from .rundir import RunDir, prepare_run_dir, read_json

__all__ = ["RunResult", "TrainingInterrupted", "TrainingDiverged", "RunContext", "TrainOutput",
           "Predictions", "Evaluation", "train",
           "run", "package_versions", "predict_step", "postprocess_step", "export_step",
           "evaluate_step", "report_step", "resolve_halo", "progress", "write_tracked"]

log = logging.getLogger("dlsuite")


# --------------------------------------------------------------------------------------------
# outcomes other than success (TF-free, so the CLI can catch them without importing TF)


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a resumable state. ``exit_code`` is
    130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, signum: int, run_dir: Path, epoch: int, config_source: str | None):
        self.signum = signum
        self.exit_code = 128 + int(signum)
        self.run_dir = run_dir
        self.epoch = epoch
        name = signal.Signals(signum).name
        config = config_source or "CONFIG"
        super().__init__(
            f"training interrupted by {name} after {epoch} epoch(s); resumable state saved in "
            f"{run_dir / 'checkpoints' / 'resume'}. Continue with: dlsuite run {config} --resume "
            f"(or dlsuite train {config} --resume)")


class TrainingDiverged(DlsuiteInputError):
    """The loss became NaN or infinite; the last good checkpoints were kept."""


# --------------------------------------------------------------------------------------------
# typed step inputs / outputs


@attrs.frozen
class RunResult:
    """What :func:`train` and :func:`run` return."""

    run_dir: Path
    metrics: dict
    history: list
    wandb_run_id: str | None


@attrs.define
class RunContext:
    """Shared by the steps of one run: config, registry, run directory, W&B run, options."""

    loaded: LoadedConfig
    registry: Registry
    run: RunDir
    quiet: bool = False
    wandb: WandbRun = attrs.field(factory=WandbRun)
    notes: list = attrs.field(factory=list)
    seed: int | None = None

    @property
    def config(self):
        return self.loaded.config

    def note(self, message: str) -> None:
        """Record (and log) something the user should know about this run."""
        log.warning(message)
        self.notes.append(message)


@attrs.frozen
class TrainOutput:
    """Output of training: the checkpoint prediction uses, history rows, train metrics."""

    model_path: Path | None  # the checkpoint prediction uses (inference.weights)
    history: list
    metrics: dict
    n_classes: int


@attrs.frozen
class SamplePrediction:
    """One test sample: its pixels and ground truth, predicted probabilities and (after
    post-processing) instance labels."""

    name: str
    image: np.ndarray  # (T, H, W) raw
    truth: np.ndarray | None  # (T, H, W) instance labels
    annotated: np.ndarray  # indices of the frames that carry ground truth
    probs: np.ndarray  # (T, H, W, C)
    labels: np.ndarray | None = None  # (T, H, W) instances after post-processing
    truth_path: Path | None = None
    layout: str = "videos"  # the sample's dataset layout (frames samples are single images)


@attrs.frozen
class Predictions:
    """Output of :func:`predict_step` / :func:`postprocess_step`."""

    samples: list  # SamplePrediction


@attrs.frozen
class Export:
    """Where :func:`export_step` wrote label TIFFs and CTC ``NN_RES`` folders (None: not
    written)."""

    labels_dir: Path | None
    ctc_dir: Path | None


@attrs.frozen
class Evaluation:
    """Test metrics (summary) and per-sequence rows."""

    metrics: dict
    per_sequence: list = attrs.field(factory=list)


# --------------------------------------------------------------------------------------------
# run directory, logging, versions


def package_versions() -> dict[str, str | None]:
    """Versions of python, dlsuite, tensorflow, keras, numpy, wandb (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name, dists in (("dlsuite", ("dlsuite",)), ("tensorflow", ("tensorflow-cpu", "tensorflow")),
                        ("keras", ("keras",)), ("numpy", ("numpy",)), ("wandb", ("wandb",))):
        out[name] = None
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def _unstructured(ctx: RunContext) -> dict:
    from .config.converter import unstructure_config

    return unstructure_config(ctx.config, ctx.registry)


def write_run_config(ctx: RunContext, *, resumed: bool) -> dict:
    """Write ``config.json``: ``{"config": resolved config, "config_hash", "versions",
    "seed", "source", "created", "resumed"}``; returns what was written."""
    previous = read_json(ctx.run.config_json) if ctx.run.config_json.is_file() else {}
    data = {
        "config": _unstructured(ctx),
        "config_hash": config_hash(ctx.config, ctx.registry),
        "versions": package_versions(),
        "seed": ctx.seed,
        "source": ctx.loaded.source,
        "legacy_migrated": ctx.loaded.is_legacy,
        "created": previous.get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "resumed": previous.get("resumed", []) + ([time.strftime("%Y-%m-%dT%H:%M:%S%z")]
                                                  if resumed else []),
    }
    if resumed and previous.get("config_hash") not in (None, data["config_hash"]):
        log.warning("the config differs from the run's config.json (hash %s, now %s); "
                    "continuing with the new one", previous.get("config_hash"),
                    data["config_hash"])
    write_json_atomic(ctx.run.config_json, data)
    return data


@contextmanager
def _file_log(run: RunDir) -> Iterator[None]:
    """Log the ``dlsuite`` logger (INFO and up) to ``run.log`` for the duration."""
    handler = logging.FileHandler(run.run_log, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    with attached(handler):
        yield


def progress(items: list, description: str, quiet: bool) -> Iterable:
    """Iterate ``items`` with a rich progress bar on stderr (none when quiet)."""
    if quiet or not items:
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    yield from track(items, description=description, console=Console(stderr=True),
                     transient=True)


# --------------------------------------------------------------------------------------------
# training data


def build_training_data(ctx: RunContext, *, temporal: bool, time_windows: int | None,
                        config=None):
    """Datasets for fit from :func:`dlsuite.data.pipeline.build_datasets` (``train``,
    ``val``, ``steps_per_epoch``, ``validation_steps``, ``n_classes``)."""
    from .data.pipeline import build_datasets

    return build_datasets(config or ctx.config, ctx.registry, temporal=temporal,
                          time_windows=time_windows)


# --------------------------------------------------------------------------------------------
# training


def _geometry(ctx: RunContext) -> dict:
    from .models import model_geometry

    return model_geometry(ctx.config, ctx.registry)


def _sample_batch(dataset, n: int):
    if dataset is None or n <= 0:
        return None
    try:
        x, y = next(iter(dataset.take(1)))[:2]
        return np.asarray(x)[:n], np.asarray(y)[:n]
    except Exception as exc:  # noqa: BLE001 - only for W&B pictures
        log.warning("no sample batch for W&B images: %s", exc)
        return None


def _callbacks(ctx: RunContext, data, monitor, state, stop, nan_guard) -> tuple[list, Any, Any]:
    """The fit callbacks, in order: signal stop, NaN guard, TensorBoard / ReduceLROnPlateau /
    EarlyStopping, history.csv, checkpoints (+ resumable state), epoch log line, W&B,
    progress bars, plugins' ``dlsuite_callbacks``, and on resume the restore of the LR
    schedule / early-stopping counters. Returns ``(callbacks, history, checkpoints)``."""
    import keras

    from . import training as T
    from .logging.callbacks import EpochLog, HistoryCsv, RichProgress, WandbMetrics, read_history

    cfg = ctx.config
    initial_epoch = state.epoch if state is not None else 0
    previous = [r for r in read_history(ctx.run.history_csv) if r["epoch"] <= initial_epoch]
    standard = T.standard_callbacks(cfg, ctx.run, monitor)
    stateful = [cb for cb in standard if not isinstance(cb, keras.callbacks.TensorBoard)]
    partial = lambda: stop.partial_epoch  # noqa: E731 - epoch cut short by a signal
    history_cb = HistoryCsv(ctx.run.history_csv, previous, skip_epoch=partial)
    checkpoints = T.Checkpoints(
        ctx.run, cfg.train.checkpoint, monitor, nan_guard=nan_guard, stop=stop, state=state,
        stateful_callbacks=stateful,
        extra_state=lambda: {"wandb_run_id": ctx.wandb.id, "seed": ctx.seed,
                             "config_hash": config_hash(cfg, ctx.registry)})
    samples = _sample_batch(data.val if data.val is not None else data.train, cfg.wandb.n_images)
    callbacks = [T.StopOnSignal(stop), nan_guard, *standard, history_cb, checkpoints,
                 EpochLog(cfg.train.epochs, skip_epoch=partial),
                 WandbMetrics(ctx.wandb, samples, n_images=cfg.wandb.n_images,
                              class_labels={i: f"class {i}" for i in range(data.n_classes)},
                              skip_epoch=partial)]
    if not ctx.quiet:
        callbacks.append(RichProgress(cfg.train.epochs, data.steps_per_epoch, initial_epoch))
    callbacks += ctx.registry.call_event("dlsuite_callbacks", config=cfg)
    if state is not None:
        callbacks.append(T.RestoreCallbackState(stateful, state.callbacks))
    return callbacks, history_cb, checkpoints


def _train_core(ctx: RunContext, *, resume: bool) -> TrainOutput:
    """Fit the model as the config says; W&B is started here and left open for ``run``."""
    from . import training as T

    cfg = ctx.config
    state = T.load_resume_state(ctx.run) if resume else None
    seed = state.seed if state is not None and state.seed is not None else cfg.seed
    # On resume, a shifted seed so the data stream does not replay the first epochs.
    ctx.seed = T.seed_everything(seed, cfg.train.deterministic)
    run_seed = ctx.seed + (state.epoch if state is not None else 0)
    if run_seed != ctx.seed:
        T.seed_everything(run_seed)
    policy = T.set_precision(cfg.train.mixed_precision)
    log.info("dtype policy %s", policy)

    geo = _geometry(ctx)
    data = build_training_data(ctx, temporal=geo["temporal"], time_windows=geo["time_windows"],
                               config=attrs.evolve(cfg, seed=run_seed))
    model, _entry = T.build_model(cfg, ctx.registry, n_classes=data.n_classes)
    T.compile_model(model, cfg, ctx.registry, n_classes=data.n_classes)
    if state is not None:
        T.restore_model_state(ctx.run, state, model)
    monitor = T.resolve_monitor(cfg, ctx.registry, has_validation=data.val is not None)
    log.info("monitoring %s (%s)", monitor.name, monitor.mode)

    ctx.wandb = WandbRun.start(wandb_config=cfg.wandb, run_dir=ctx.run.root, name=cfg.name,
                               config=_unstructured(ctx),
                               resume_id=state.wandb_run_id if state is not None else None)

    initial_epoch = state.epoch if state is not None else 0
    stop, nan_guard = T.GracefulStop(), T.NanGuard()
    callbacks, history_cb, checkpoints = _callbacks(ctx, data, monitor, state, stop, nan_guard)

    # written once everything is built, so a config or data error leaves no "run" behind
    write_run_config(ctx, resumed=resume)
    with stop:
        if initial_epoch < cfg.train.epochs:
            log.info("training %s: epochs %d..%d, %d steps per epoch", cfg.model.name,
                     initial_epoch + 1, cfg.train.epochs, data.steps_per_epoch)
            model.fit(data.train, epochs=cfg.train.epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=data.steps_per_epoch, validation_data=data.val,
                      validation_steps=data.validation_steps, callbacks=callbacks,
                      verbose=0, shuffle=False)
        else:
            log.info("nothing to train: %d of %d epochs already done", initial_epoch,
                     cfg.train.epochs)
    history = history_cb.rows
    if nan_guard.where is not None:
        epoch, step = nan_guard.where
        good = checkpoints.epochs_done
        raise TrainingDiverged(
            f"training diverged: the loss became NaN/inf at epoch {epoch}, step {step}; "
            f"the last good checkpoints ({ctx.run.checkpoints}) are from epoch {good}. "
            "Lower optimizer.learning_rate or set optimizer.clipnorm")
    if stop.signum is not None:
        raise TrainingInterrupted(stop.signum, ctx.run.root, checkpoints.epochs_done,
                                    ctx.loaded.source)

    metrics = {"train": _train_metrics(history, monitor, checkpoints)}
    model_path = _weights_path(ctx)
    write_json_atomic(ctx.run.metrics_json, {**metrics, "notes": ctx.notes})
    ctx.wandb.summary({f"best_{monitor.name}": checkpoints.best,
                       "epochs": checkpoints.epochs_done})
    if cfg.wandb.log_model and model_path is not None and model_path.is_file():
        ctx.wandb.log_model(model_path, name=cfg.name, aliases=["latest"],
                            metadata={"monitor": monitor.name, "best": checkpoints.best})
    return TrainOutput(model_path, history, metrics, data.n_classes)


def _train_metrics(history: list, monitor, checkpoints) -> dict:
    last = dict(history[-1]) if history else {}
    last.pop("epoch", None)
    return {"epochs": checkpoints.epochs_done, "monitor": monitor.name, "mode": monitor.mode,
            "best": checkpoints.best, "best_epoch": checkpoints.best_epoch, "last": last}


def _weights_path(ctx: RunContext) -> Path | None:
    w = ctx.config.inference.weights
    path = {"best": ctx.run.best, "last": ctx.run.last}.get(w, Path(w))
    if w == "best" and not path.is_file() and ctx.run.last.is_file():
        log.warning("no best.keras (monitored metric never logged): using last.keras")
        path = ctx.run.last
    return path if path.is_file() else None


@contextmanager
def _wandb_finished(ctx: RunContext) -> Iterator[None]:
    """Finish the run's W&B run on the way out: exit code 0 on success, 1 on any failure."""
    try:
        yield
    except BaseException:
        ctx.wandb.finish(exit_code=1)
        raise
    ctx.wandb.finish()


def _start(loaded: LoadedConfig, *, resume: bool, overwrite: bool, quiet: bool,
           registry: Registry | None) -> RunContext:
    from .preflight import preflight

    registry = registry or get_registry()
    preflight(loaded, registry)  # bad input stops here: no run directory is created
    run_dir = prepare_run_dir(loaded.config.output_dir, resume=resume, overwrite=overwrite)
    return RunContext(loaded, registry, run_dir, quiet=quiet)


def train(loaded: LoadedConfig, *, resume: bool = False, overwrite: bool = False,
          quiet: bool = False, registry: Registry | None = None) -> RunResult:
    """Train the model of ``loaded`` into its ``output_dir`` (see the module docstring).

    Raises DlsuiteInputError when the run directory already holds a run and neither
    ``resume`` nor ``overwrite`` is set; :class:`TrainingInterrupted`
    (``exit_code`` 130/143) after a signal saved a resumable state;
    :class:`TrainingDiverged` when the loss became NaN.
    """
    ctx = _start(loaded, resume=resume, overwrite=overwrite, quiet=quiet, registry=registry)
    with _file_log(ctx.run), _wandb_finished(ctx):
        out = _train_core(ctx, resume=resume)
        run_id = ctx.wandb.id
    return RunResult(ctx.run.root, {**out.metrics, "notes": ctx.notes}, out.history, run_id)


# --------------------------------------------------------------------------------------------
# run: predict -> post-process -> export -> evaluate -> report


def _normalizer(ctx: RunContext):
    from .data.pipeline import make_normalizer

    return make_normalizer(ctx.config, ctx.registry)


def resolve_halo(ctx: RunContext, geo: dict) -> int:
    """The halo in pixels: ``inference.halo``, or for ``"auto"`` the radius of the
    architecture's receptive field (32 when the architecture declares none)."""
    halo = ctx.config.inference.halo
    if halo != "auto":
        return int(halo)
    from .inference import halo_from_receptive_field

    rf = geo["receptive_field"]
    return 32 if rf is None else int(halo_from_receptive_field(rf))


def predict_step(ctx: RunContext, trained: TrainOutput) -> Predictions:
    """Probabilities for every test sample with the checkpoint ``inference.weights`` names.

    Uses :func:`dlsuite.inference.predict_video` (tiled, temporal windows)."""
    from .data.layouts import list_samples, load_sample
    from .inference import predict_video
    from .models import load_model_file

    cfg = ctx.config
    if cfg.data.test is None:
        ctx.note("no data.test: prediction, evaluation and test pictures skipped")
        return Predictions([])
    if trained.model_path is None:
        raise DlsuiteInputError(f"{ctx.run.checkpoints}: no checkpoint to predict with")
    model = load_model_file(trained.model_path)
    geo = _geometry(ctx)
    normalize = _normalizer(ctx)
    inf = cfg.inference
    out = []
    samples = list_samples(cfg.data.test, cfg.data.layout)
    for sample in progress(samples, "predicting", ctx.quiet):
        loaded = load_sample(sample)
        probs = predict_video(model, normalize(loaded.image),
                              time_windows=geo["time_windows"] or 1, tile_size=inf.tile_size,
                              halo=resolve_halo(ctx, geo), batch_size=inf.batch_size,
                              size_multiple=geo["size_multiple"], temporal=geo["temporal"],
                              heads=geo["heads"])
        out.append(SamplePrediction(sample.name, loaded.image, loaded.labels, loaded.annotated,
                                    probs, truth_path=sample.labels, layout=sample.layout))
    log.info("predicted %d test sample(s) with %s", len(out), trained.model_path.name)
    return Predictions(out)


def postprocess_step(ctx: RunContext, preds: Predictions) -> Predictions:
    """Instance labels ``(T, H, W)`` per sample from the config's post-processing chain
    (a chain ending without instance labels is completed by connected-component labelling)."""
    from scipy import ndimage

    from .inference import run_postprocess

    steps = []
    for choice in ctx.config.postprocess:
        entry = ctx.registry.resolve("postprocessors", choice.name)
        steps.append(entry.load()(choice.params if choice.params is not None
                                  else entry.spec.params()))
    out = []
    for s in progress(preds.samples, "post-processing", ctx.quiet):
        frames = []
        for probs in s.probs:
            res = np.asarray(run_postprocess(steps, probs))
            if res.dtype.kind == "f":  # still probabilities: take the argmax
                res = np.argmax(res, axis=-1).astype(np.uint8)
            if res.dtype.kind == "b" or res.dtype == np.uint8:  # a mask: label it
                res = ndimage.label(res > 0)[0]
            frames.append(res.astype(np.int64))
        out.append(attrs.evolve(s, labels=np.stack(frames)))
    return Predictions(out)


def export_step(ctx: RunContext, preds: Predictions) -> Export:
    """Write probabilities and instance labels under ``inference.output_folder`` (label file
    named as the sample's ground-truth file) and, for videos, CTC ``NN_RES`` folders with the
    overlap tracker's ``res_track.txt`` when tracking is enabled."""
    from .inference import write_predictions

    if not preds.samples:
        return Export(None, None)
    root = ctx.run.root / ctx.config.inference.output_folder
    for s in preds.samples:
        # named like the ground-truth file, so label folders pair by name for evaluation
        name = (s.truth_path.name if s.truth_path is not None and s.layout != "ctc"
                else f"{s.name}.tif")
        probs = s.probs if ctx.config.inference.save_probabilities else None
        labels = s.labels
        if s.layout == "frames":  # single images stay 2D
            labels, probs = labels[0], None if probs is None else probs[0]
        write_predictions(root, name, probs=probs, labels=labels)
    ctc_dir = None
    videos = [s for s in preds.samples if s.layout != "frames"]
    if ctx.config.tracking.enabled and videos:
        ctc_dir = root / "ctc"
        for k, s in enumerate(videos, start=1):
            sequence = s.name if s.layout == "ctc" else f"{k:02d}"
            write_tracked(ctx, ctc_dir / f"{sequence}_RES", s.labels)
    return Export(root / "labels", ctc_dir)


def write_tracked(ctx: RunContext, res_dir: Path, labels: np.ndarray) -> None:
    """Optional gap filling, then linking with the overlap tracker (or, without
    ``laptrack``, one track per frame object, with a note), then a CTC ``NN_RES`` folder."""
    from .tracking import gap_fill, track, untracked, write_ctc_result

    t = ctx.config.tracking
    if t.gap_fill.enabled:
        labels = gap_fill(labels > 0, sigma=t.gap_fill.sigma, threshold=t.gap_fill.threshold,
                          min_size=t.gap_fill.min_size)
    if importlib.util.find_spec("laptrack") is None:
        if "laptrack" not in " ".join(ctx.notes):
            ctx.note("laptrack is not installed (pip install laptrack): CTC results "
                     "are written without linking objects over time, so TRA is meaningless")
        video, tracks = untracked(labels)
    else:
        video, tracks = track(labels, max_distance=t.max_distance, min_overlap=t.min_overlap,
                              gap_closing=t.gap_closing, splitting=t.splitting)
    write_ctc_result(res_dir, video, tracks)


def evaluate_step(ctx: RunContext, preds: Predictions, export: Export) -> Evaluation:
    """Foreground Jaccard/Dice on the annotated test frames, plus the configured
    ``evaluation.metrics`` (:func:`dlsuite.evaluation.evaluate`) of the exported CTC folders
    (CTC test data) or label files (frames / videos) against the ground truth."""
    from .evaluation import evaluate

    if not preds.samples:
        return Evaluation({})
    jac, dice = [], []
    for s in preds.samples:
        if s.truth is None:
            continue
        for t in np.asarray(s.annotated, dtype=int):
            g, r = s.truth[t] > 0, s.labels[t] > 0
            inter, union = np.logical_and(g, r).sum(), np.logical_or(g, r).sum()
            total = g.sum() + r.sum()
            jac.append(1.0 if union == 0 else inter / union)
            dice.append(1.0 if total == 0 else 2 * inter / total)
    metrics: dict[str, Any] = {"foreground_jaccard": float(np.mean(jac)) if jac else None,
                               "foreground_dice": float(np.mean(dice)) if dice else None}
    per_sequence: list = []
    layout = preds.samples[0].layout
    if layout == "ctc":  # CTC folders: SEG/DET/TRA against NN_GT
        res, gt = export.ctc_dir, ctx.config.data.test
    else:  # label files paired by name with the ground-truth files
        res = export.labels_dir
        gt = preds.samples[0].truth_path.parent if preds.samples[0].truth_path else None
    if res is not None and gt is not None:
        try:
            result = evaluate(res, gt, ctx.config.evaluation.metrics)
        except DlsuiteInputError as exc:
            ctx.note(f"evaluation skipped: {exc}")
        else:
            metrics.update(result["metrics"])
            metrics["matching"] = result.get("matching")  # per-IoU-threshold instance scores
            per_sequence = result["per_sequence"]
    log.info("test metrics: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()
                                           if isinstance(v, float)))
    return Evaluation(metrics, per_sequence)


def report_step(ctx: RunContext, trained: TrainOutput, preds: Predictions,
                evaluation: Evaluation) -> dict:
    """metrics.json (train + test + notes), report pictures, W&B test summary and images."""
    from .report import write_report

    metrics = {**trained.metrics, "test": evaluation.metrics,
               "per_sequence": evaluation.per_sequence, "notes": ctx.notes}
    write_json_atomic(ctx.run.metrics_json, metrics)
    pictures = write_report(ctx.run.report, trained.history, preds.samples,
                            monitor=trained.metrics["train"]["monitor"])
    ctx.wandb.summary({f"test/{k}": v for k, v in evaluation.metrics.items()
                       if isinstance(v, (int, float))})
    images = []
    for s in preds.samples[: ctx.config.wandb.n_images]:
        t = int(s.annotated[0]) if len(s.annotated) else 0
        img = ctx.wandb.image(s.image[t], truth=None if s.truth is None else (s.truth[t] > 0),
                              prediction=s.labels[t] > 0, caption=f"{s.name} frame {t}",
                              class_labels={0: "background", 1: "cell"})
        if img is not None:
            images.append(img)
    ctx.wandb.log_images("test/samples", images)
    return {"metrics": metrics, "pictures": pictures}


def run(loaded: LoadedConfig, *, resume: bool = False, overwrite: bool = False,
        quiet: bool = False, registry: Registry | None = None) -> RunResult:
    """Train (as :func:`train`), then tune the post-processing on the validation set
    (:func:`dlsuite.tune_step.tune_step`), predict the test set, post-process, export,
    evaluate and report. Same errors as :func:`train`. ``metrics`` holds ``train``, ``test``
    and ``notes`` (steps skipped because a module is not installed)."""
    from .tune_step import tune_step

    ctx = _start(loaded, resume=resume, overwrite=overwrite, quiet=quiet, registry=registry)
    with _file_log(ctx.run), _wandb_finished(ctx):
        trained = _train_core(ctx, resume=resume)
        tune_step(ctx, trained)  # postprocess.json; the test set uses the tuned chain
        preds = postprocess_step(ctx, predict_step(ctx, trained))
        exported = export_step(ctx, preds)
        evaluation = evaluate_step(ctx, preds, exported)
        report = report_step(ctx, trained, preds, evaluation)
        run_id = ctx.wandb.id
    return RunResult(ctx.run.root, report["metrics"], trained.history, run_id)
