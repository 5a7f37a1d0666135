"""``dlsuite train`` and ``dlsuite run``: the steps in order, with typed inputs and outputs.

``train(loaded)``: preflight -> run directory -> :func:`dlsuite.training.fit` (seeds,
datasets, model, callbacks, checkpoints, W&B, signals) -> metrics.json.

``run(loaded)``: :func:`train`'s steps, then :func:`predict_step` (test set, tiled/temporal)
-> :func:`postprocess_step` -> :func:`export_step` (label TIFFs, CTC ``NN_RES`` with tracks)
-> :func:`evaluate_step` -> :func:`report_step` (metrics.json, pictures, W&B summary) -> the
model exported in ``export.formats`` (:func:`dlsuite.export_step.export_models_step`; its
notes are added to metrics.json). The scores are written before the exports, so a stop or a
failure while exporting keeps them.
Things the user should know (e.g. CTC export without ``laptrack``, an evaluation that could
not run) are listed in ``RunResult.metrics["notes"]``.

The types and helpers the steps share with ``dlsuite predict`` live in :mod:`dlsuite.steps`
(re-exported here); TensorFlow is imported only when training starts.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import attrs
import numpy as np

from .config import LoadedConfig
from .errors import ConfigError, DlsuiteInputError
from .fileio import write_json_atomic
from .logging.handlers import attached
from .registry import Registry, get_registry
from . import folder_lock
from .rundir import RunDir, package_versions, prepare_run_dir, run_dir_refusal
from .steps import (Predictions, RunContext, SamplePrediction, TrainingDiverged,
                    TrainingInterrupted, TrainOutput, open_predictor, progress, resolve_halo,
                    resume_config, sample_probabilities, write_tracked)

__all__ = ["RunResult", "TrainingInterrupted", "TrainingDiverged", "RunContext", "TrainOutput",
           "SamplePrediction", "Predictions", "Evaluation", "train",
           "run", "package_versions", "predict_step", "postprocess_step", "export_step",
           "evaluate_step", "report_step", "resolve_halo", "progress", "write_tracked"]

log = logging.getLogger("dlsuite")


# --------------------------------------------------------------------------------------------
# step outputs of this module


@attrs.frozen
class RunResult:
    """What :func:`train` and :func:`run` return."""

    run_dir: Path
    metrics: dict
    history: list
    wandb_run_id: str | None


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
# run directory, logging


@contextmanager
def _file_log(run: RunDir) -> Iterator[None]:
    """Log the ``dlsuite`` logger (INFO and up) to ``run.log`` for the duration."""
    handler = logging.FileHandler(run.run_log, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    with attached(handler):
        yield


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
    from .distribute import start_distribution
    from .preflight import preflight

    registry = registry or get_registry()
    if loaded.config.train.distribute.strategy != "multi_worker":  # (a worker's is scratch)
        refusal = run_dir_refusal(loaded.config.output_dir, resume=resume, overwrite=overwrite,
                                  output_folder=loaded.config.inference.output_folder)
        if refusal is not None:  # said before the pixels of the data are read
            raise DlsuiteInputError(refusal)
        if resume:  # a user's file among the earlier test predictions: said before training
            from . import run_predictions

            run_predictions.refuse_foreign(Path(loaded.config.output_dir).expanduser()
                                           / loaded.config.inference.output_folder)
    preflight(loaded, registry)  # bad input stops here: no run directory is created
    dist = start_distribution(loaded.config)  # so do a bad cluster and an unsplittable batch
    _check_training_memory(loaded, registry, workers=dist.workers)
    if not dist.is_chief:  # the chief writes the run; the others a scratch folder
        import tempfile

        scratch = tempfile.mkdtemp(prefix=f"dlsuite-worker{dist.worker_index}-")
        run_dir = prepare_run_dir(scratch, loaded=loaded, registry=registry)
    else:
        run_dir = prepare_run_dir(loaded.config.output_dir, resume=resume, overwrite=overwrite,
                                  loaded=loaded, registry=registry)
    try:
        return RunContext(loaded, registry, run_dir, quiet=quiet, distribution=dist)
    except BaseException:
        folder_lock.release(run_dir.root)
        raise


def _check_training_memory(loaded: LoadedConfig, registry: Registry, *, workers: int) -> None:
    """Refuse, as a config error on ``$.datagen.patch_size``, a training batch that cannot
    fit in memory (:mod:`dlsuite.training_memory`), before the run directory is made."""
    from .training_memory import training_memory_problem

    problem = training_memory_problem(loaded.config, registry, workers=workers)
    if problem is not None:
        raise ConfigError([("$.datagen.patch_size", problem)], loaded.source)


@contextmanager
def _unlocked_after(ctx: RunContext) -> Iterator[None]:
    """Release the run directory's lock (taken by ``prepare_run_dir``) on the way out."""
    try:
        yield
    finally:
        folder_lock.release(ctx.run.root)


@contextmanager
def _scratch_removed(ctx: RunContext) -> Iterator[None]:
    """On a worker other than the chief, remove its scratch run folder on the way out."""
    try:
        yield
    finally:
        if ctx.distribution is not None and not ctx.distribution.is_chief:
            import shutil

            shutil.rmtree(ctx.run.root, ignore_errors=True)


def train(loaded: LoadedConfig, *, resume: bool = False, overwrite: bool = False,
          quiet: bool = False, registry: Registry | None = None) -> RunResult:
    """Train the model of ``loaded`` into its ``output_dir`` (see the module docstring).

    Raises DlsuiteInputError when the run directory already holds a run and neither
    ``resume`` nor ``overwrite`` is set; :class:`TrainingInterrupted`
    (``exit_code`` 130/143) after a signal saved a resumable state;
    :class:`TrainingDiverged` when the loss became NaN.
    """
    ctx = _start(loaded, resume=resume, overwrite=overwrite, quiet=quiet, registry=registry)
    with _unlocked_after(ctx), _scratch_removed(ctx), _file_log(ctx.run), _wandb_finished(ctx):
        from .training import fit  # TensorFlow: only once the input was checked

        out = fit(ctx, resume=resume)
        run_id = ctx.wandb.id
    return RunResult(_result_dir(ctx), {**out.metrics, "notes": ctx.notes}, out.history, run_id)


def _result_dir(ctx: RunContext) -> Path:
    """The run directory (the chief's ``output_dir`` also on the other workers)."""
    if ctx.distribution is not None and not ctx.distribution.is_chief:
        return Path(ctx.config.output_dir).expanduser().resolve()
    return ctx.run.root


# --------------------------------------------------------------------------------------------
# run: predict -> post-process -> export -> evaluate -> report


def predict_step(ctx: RunContext, trained: TrainOutput) -> Predictions:
    """Probabilities for every test sample with the checkpoint ``inference.weights`` names
    (:func:`dlsuite.steps.open_predictor`: the same normalization, tiling and temporal
    windows as ``dlsuite predict``)."""
    from .data.layouts import list_samples
    from .data.sample_loading import load_sample

    cfg = ctx.config
    if cfg.data.test is None:
        ctx.note("no data.test: prediction, evaluation and test pictures skipped")
        return Predictions([])
    predictor = open_predictor(ctx, trained.model_path)
    out = []
    samples = list_samples(*_test_set(ctx))
    kept = len(ctx.kept_probabilities)
    for sample in progress(samples, "predicting", ctx.quiet):
        loaded = load_sample(sample)
        probs = sample_probabilities(ctx, predictor, sample, loaded.image)
        out.append(SamplePrediction(sample.name, loaded.image, loaded.labels, loaded.annotated,
                                    probs, truth_path=sample.labels, layout=sample.layout))
    reused = kept - len(ctx.kept_probabilities)
    ctx.kept_probabilities.clear()
    log.info("predicted %d test sample(s) with %s%s", len(out), predictor.checkpoint.name,
             f" ({reused} already predicted by the tuning step)" if reused else "")
    return Predictions(out)


def _test_set(ctx: RunContext) -> tuple[str, str]:
    """(folder, layout) of the test samples: ``data.test``, or with ``data.videos_csv`` its
    frames rebuilt into videos in the prediction folder (:mod:`dlsuite.data.test_videos`)."""
    from .data.prepare import frames_to_videos
    from .data.test_videos import TEST_VIDEOS

    cfg = ctx.config
    if not cfg.data.videos_csv:
        return cfg.data.test, cfg.data.layout
    dst = ctx.run.root / cfg.inference.output_folder / TEST_VIDEOS
    frames_to_videos(cfg.data.test, dst, cfg.data.videos_csv)
    log.info("test frames rebuilt into videos by data.videos_csv in %s", dst)
    return str(dst), "videos"


def postprocess_step(ctx: RunContext, preds: Predictions) -> Predictions:
    """Instance labels ``(T, H, W)`` per sample from the config's post-processing chain
    (:func:`dlsuite.inference.build_postprocess`; a chain ending without instance labels is
    completed by connected-component labelling)."""
    from .inference import build_postprocess

    chain = build_postprocess(ctx.config.postprocess, ctx.registry)
    return Predictions([attrs.evolve(s, labels=chain.labels(s.probs))
                        for s in progress(preds.samples, "post-processing", ctx.quiet)])


def export_step(ctx: RunContext, preds: Predictions) -> Export:
    """Write probabilities and instance labels under ``inference.output_folder`` (label file
    named as the sample's ground-truth file; what an earlier prediction of the run wrote
    there is removed first, :mod:`dlsuite.run_predictions`) and, for videos, CTC ``NN_RES``
    folders with the overlap tracker's ``res_track.txt`` when tracking is enabled."""
    from . import run_predictions
    from .inference import write_predictions
    from .inference.outputs import prediction_paths

    if not preds.samples:
        return Export(None, None)
    root = ctx.run.root / ctx.config.inference.output_folder
    run_predictions.remove_earlier(root)
    save_probs = ctx.config.inference.save_probabilities
    # named like the ground-truth file, so label folders pair by name for evaluation
    names = [s.truth_path.name if s.truth_path is not None and s.layout != "ctc"
             else f"{s.name}.tif" for s in preds.samples]
    videos = [s for s in preds.samples if s.layout != "frames"]
    tracked = ctx.config.tracking.enabled and bool(videos)
    sequences = [s.name if s.layout == "ctc" else f"{k:02d}" for k, s in
                 enumerate(videos, start=1)] if tracked else []
    run_predictions.record(root, [  # before writing: the next prediction replaces just these
        *(path for name in names for kind, path in prediction_paths(name).items()
          if kind == "labels" or save_probs),
        *(f"ctc/{sequence}_RES" for sequence in sequences)])
    for s, name in zip(preds.samples, names):
        probs = s.probs if save_probs else None
        labels = s.labels
        if s.layout == "frames":  # single images stay 2D
            labels, probs = labels[0], None if probs is None else probs[0]
        write_predictions(root, name, probs=probs, labels=labels)
    ctc_dir = root / "ctc" if tracked else None
    for s, sequence in zip(videos if tracked else [], sequences):
        write_tracked(ctx, ctc_dir / f"{sequence}_RES", s.labels)
    return Export(root / "labels", ctc_dir)


def evaluate_step(ctx: RunContext, preds: Predictions, export: Export) -> Evaluation:
    """Foreground Jaccard/Dice on the annotated test frames, plus the configured
    ``evaluation.metrics`` (:func:`dlsuite.evaluation.evaluate`) of the exported CTC folders
    (CTC test data) or label files (frames / videos) against the ground truth."""
    from .evaluation import evaluate
    from .evaluation.runner import partial_means

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
            unavailable = _unavailable(per_sequence)
            if unavailable:  # requested (DET/TRA by default) but not computable: say why
                metrics["unavailable"] = unavailable
                for reason in dict.fromkeys(unavailable.values()):
                    log.info("test %s not computed: %s", ", ".join(
                        k for k, v in unavailable.items() if v == reason), reason)
            for line in partial_means(per_sequence, result["metrics"]):
                log.info("test %s", line)  # a mean over some test sequences only
    log.info("test metrics: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()
                                           if isinstance(v, float)))
    return Evaluation(metrics, per_sequence)


def _unavailable(per_sequence: list[dict]) -> dict[str, str]:
    """Metric -> why it was not computed, for the metrics no sequence could compute."""
    reasons: dict[str, str] = {}
    for row in per_sequence:
        for name, reason in row.get("unavailable", {}).items():
            reasons.setdefault(name, reason)
    return {k: v for k, v in reasons.items()
            if all(row.get(k) is None for row in per_sequence)}


def report_step(ctx: RunContext, trained: TrainOutput, preds: Predictions,
                evaluation: Evaluation) -> dict:
    """metrics.json (train + test + plugin provenance + notes), report pictures, W&B test
    summary and the table of test images (:func:`dlsuite.wandb_results.log_test_results`)."""
    from .report import write_report
    from .wandb_results import log_test_results

    metrics = {**trained.metrics, "test": evaluation.metrics,
               "per_sequence": evaluation.per_sequence, "provenance": ctx.provenance(),
               "notes": ctx.notes}
    write_json_atomic(ctx.run.metrics_json, metrics)
    pictures = write_report(ctx.run.report, trained.history, preds.samples,
                            monitor=trained.metrics["train"]["monitor"])
    log_test_results(ctx.wandb, preds.samples, evaluation.metrics, ctx.config.wandb.n_images)
    return {"metrics": metrics, "pictures": pictures}


@contextmanager
def _resumable_after_training(ctx: RunContext) -> Iterator[None]:
    """A location refusing a write after training (a full disk while predicting, exporting,
    reporting) says that training is done and that ``--resume`` finishes the run without
    training again (DlsuiteInputError, exit 2); other errors pass unchanged."""
    from .errors import LOCATION_ERRNOS, os_error_head

    try:
        yield
    except OSError as exc:
        if exc.errno not in LOCATION_ERRNOS:
            raise
        config = resume_config(ctx)
        raise DlsuiteInputError(
            f"{os_error_head(exc)}: training is finished (checkpoints in "
            f"{ctx.run.checkpoints}); free space there (or fix the permissions), then "
            f"dlsuite run {config} --resume predicts, evaluates and reports without training "
            "again") from exc


def run(loaded: LoadedConfig, *, resume: bool = False, overwrite: bool = False,
        quiet: bool = False, registry: Registry | None = None) -> RunResult:
    """Train (as :func:`train`), then tune the post-processing on the validation set
    (:func:`dlsuite.tune_step.tune_step`), predict the test set, post-process, export,
    evaluate, report, and export the model in ``export.formats`` (:mod:`dlsuite.export_step`,
    with the W&B model artifact). Same errors as :func:`train`, and ConfigError before
    anything is written for an ``export.formats`` entry the run could not write. ``metrics``
    holds ``train``, ``test`` and ``notes`` (steps skipped because a module is not
    installed)."""
    from .errors import ConfigError
    from .export_step import export_models_step, export_problems
    from .tune_step import tune_step

    registry = registry or get_registry()
    problems = export_problems(loaded.config, registry)  # export.formats: before any work
    if problems:
        raise ConfigError(problems, loaded.source)
    ctx = _start(loaded, resume=resume, overwrite=overwrite, quiet=quiet, registry=registry)
    formats = ctx.config.export.formats
    with _unlocked_after(ctx), _scratch_removed(ctx), _file_log(ctx.run), _wandb_finished(ctx):
        from .training import fit  # TensorFlow: only once the input was checked

        trained = fit(ctx, resume=resume, log_model=not formats)
        if not ctx.distribution.is_chief:  # prediction and the report: the chief's alone
            return RunResult(_result_dir(ctx), {"train": trained.metrics["train"],
                                                "notes": ctx.notes}, trained.history, None)
        with _resumable_after_training(ctx):
            tune_step(ctx, trained)  # postprocess.json; the test set uses the tuned chain
            preds = postprocess_step(ctx, predict_step(ctx, trained))
            exported = export_step(ctx, preds)
            evaluation = evaluate_step(ctx, preds, exported)
            # the scores first: a Ctrl-C or an error while exporting (the slowest formats
            # take minutes) used to leave metrics.json without them
            report = report_step(ctx, trained, preds, evaluation)
            if formats:  # the tuned chain is in postprocess.json: the exports carry it
                noted = len(ctx.notes)
                export_models_step(ctx, trained)
                if len(ctx.notes) > noted:  # a format failed: metrics.json says so too
                    write_json_atomic(ctx.run.metrics_json, report["metrics"])  # notes: ctx's
        run_id = ctx.wandb.id
    return RunResult(ctx.run.root, report["metrics"], trained.history, run_id)
