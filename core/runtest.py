"""``dlsuite test CONFIG|RUN_DIR``: a finished run's checkpoint applied to the test set.

What the original suite's ``test.py`` did, with the steps of ``dlsuite run`` and no training:
:func:`dlsuite.pipeline.predict_step` -> ``postprocess_step`` -> ``export_step`` ->
``evaluate_step``. The results go into ``test/<weights>/`` of the run directory (label TIFFs,
CTC ``NN_RES`` folders, ``metrics.json``); the entry ``test`` is recorded in the run's marker
first (:mod:`dlsuite.ownership`), so a later ``--overwrite`` removes it and nothing else is
touched. A W&B run of job type ``evaluate`` records the test (:func:`_record`; its files in
``test/<weights>/wandb``). No
TensorFlow is imported before the input is checked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import attrs

from .config import LoadedConfig
from .errors import DlsuiteInputError
from .fileio import write_json_atomic
from .registry import Registry, get_registry
from .rundir import RunDir, load_run_config

__all__ = ["TestResult", "test_run", "TEST_FOLDER"]

#: Where the results of ``dlsuite test`` go in the run directory.
TEST_FOLDER = "test"


@attrs.frozen
class TestResult:
    """What :func:`test_run` returns: the run, the results folder, the checkpoint used and
    ``metrics`` (``{"weights", "checkpoint", "data", "time", "postprocess", "test",
    "per_sequence", "notes"}``, as written to ``<results>/metrics.json``; ``postprocess``:
    the chain used, ``{"steps", "tuned"}``, ``tuned`` the ``postprocess.json`` whose values
    it holds or None)."""

    __test__ = False  # not a pytest test class

    run_dir: Path
    results: Path
    checkpoint: Path
    metrics: dict


def _open(target: Any, registry: Registry, config_loader) -> tuple[LoadedConfig, RunDir]:
    """(config, run directory) of a run folder, or of a config (file) whose output_dir holds
    the run."""
    if not isinstance(target, LoadedConfig):
        path = Path(target).expanduser()
        if path.is_dir():
            return load_run_config(path, registry), RunDir(path.resolve())
        target = config_loader(path)
    return target, _run_of(target)


def _run_of(loaded: LoadedConfig) -> RunDir:
    """The run a config names: its ``output_dir`` (for the ``config.json`` a run wrote, the
    folder holding it, as the loader reads it: a run copied or moved elsewhere)."""
    return RunDir(Path(loaded.config.output_dir).expanduser().resolve())


def test_run(target: Any, *, weights: str = "best", quiet: bool = False,
             registry: Registry | None = None, config_loader=None) -> TestResult:
    """Predict, post-process, export and evaluate the test set of ``target`` (a run
    directory, whose ``config.json`` gives the config, or a config whose ``output_dir`` holds
    the trained run) with its ``weights`` checkpoint (``best`` / ``last``) and the
    post-processing values tuned into the run's ``postprocess.json`` (unless a config's
    chain differs from the run's). DlsuiteInputError
    naming the folder when it holds no run or no such checkpoint, or when the config has no
    existing ``data.test``."""
    from . import folder_lock, run_predictions
    from .inference import choose_checkpoint
    from .ownership import OwnedFolder
    from .steps import RunContext

    registry = registry or get_registry()
    if weights not in ("best", "last"):
        raise DlsuiteInputError(f"--weights {weights}: choose best or last")
    loaded, run = _open(target, registry, config_loader or (lambda p: _load(p, registry)))
    if not run.is_run():
        raise DlsuiteInputError(f"{run.root}: not a dlsuite run directory (no config.json); "
                                "train it first (dlsuite train/run)")
    test = loaded.config.data.test
    if test is None:
        raise DlsuiteInputError(f"{loaded.source or run.root}: data.test is not set: nothing "
                                "to test")
    if not Path(test).is_dir():
        raise DlsuiteInputError(f"{test}: test data folder not found (data.test)")
    checkpoint = choose_checkpoint(run, weights)
    folder = f"{TEST_FOLDER}/{weights}"
    run_predictions.refuse_foreign(run.root / folder)  # a user's file there: said first
    config, tuned, note = _with_tuned_chain(loaded.config, run, registry)
    config = attrs.evolve(config, inference=attrs.evolve(
        config.inference, weights=weights, output_folder=folder))
    with folder_lock.held(run.root, "run"):  # not while another process writes the run
        OwnedFolder(run.root, "run").record([TEST_FOLDER])  # before anything is written
        ctx = RunContext(attrs.evolve(loaded, config=config), registry, run, quiet=quiet)
        if note:
            ctx.note(note)
        return _test(ctx, checkpoint, weights, test, folder,
                     logged=loaded.config.inference.weights, tuned=tuned)


def _with_tuned_chain(config, run: RunDir, registry: Registry):
    """``(config, tuned, note)``: the config with the values of the run's
    ``postprocess.json`` in its post-processing chain when that chain is the run's own, as
    ``dlsuite run`` tested and ``dlsuite predict`` predicts; ``tuned`` names the file applied
    (None: none applied) and ``note`` says why a tuned file was not applied (a config whose
    chain differs from the run's). DlsuiteInputError naming a broken file."""
    from .config.converter import unstructure_config
    from .tuning import POSTPROCESS_JSON, read_postprocess_json, tuned_chain

    path = run.root / POSTPROCESS_JSON
    data = read_postprocess_json(run.root)
    if data is None:
        return config, None, None
    own = load_run_config(run.root, registry).config
    if (unstructure_config(config, registry)["postprocess"]
            != unstructure_config(own, registry)["postprocess"]):
        return config, None, (f"{path} not applied: the config's post-processing chain "
                              "differs from the run's (its configured values are used)")
    steps, note = tuned_chain(config.postprocess, run.root, registry, data=data)
    if note:
        return config, None, note
    return attrs.evolve(config, postprocess=steps), str(path), None


def _test(ctx, checkpoint: Path, weights: str, test: str, folder: str, *,
          logged: str, tuned: str | None) -> TestResult:
    """The test of :func:`test_run` once its input is checked and the run is locked."""
    from . import pipeline  # TensorFlow: only once the input was checked
    from .inference.chain_choice import chain_steps_record
    from .steps import TrainOutput

    run = ctx.run
    trained = TrainOutput(checkpoint, [], {}, 0)
    preds = pipeline.postprocess_step(ctx, pipeline.predict_step(ctx, trained))
    exported = pipeline.export_step(ctx, preds)
    evaluation = pipeline.evaluate_step(ctx, preds, exported)
    metrics = {"weights": weights, "checkpoint": str(checkpoint), "data": str(test),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "postprocess": {"steps": chain_steps_record(ctx.config, ctx.registry)["steps"],
                               "tuned": tuned},
               "test": evaluation.metrics,
               "per_sequence": evaluation.per_sequence, "notes": ctx.notes}
    results = run.root / folder
    results.mkdir(parents=True, exist_ok=True)
    write_json_atomic(results / "metrics.json", metrics)
    _record(ctx, results, preds.samples, evaluation.metrics, weights, logged=logged)
    return TestResult(run.root, results, checkpoint, metrics)


def _record(ctx, results: Path, samples, metrics: dict, weights: str, logged: str) -> None:
    """The W&B ``evaluate`` run of this test (files in ``results/wandb``, beside the test's
    results), in the training run's group: the test summary
    and image table (:mod:`dlsuite.wandb_results`) and, when the tested checkpoint is the one
    training logged (``logged``: its ``inference.weights``), that model artifact as its
    input. Never raises."""
    from .config.converter import unstructure_config
    from .logging.wandb_run import JOB_EVALUATE, WandbRun
    from .wandb_results import log_test_results

    cfg = ctx.config
    wandb = WandbRun.start(wandb_config=cfg.wandb, run_dir=results,
                           name=f"{cfg.name}-test-{weights}",
                           config=unstructure_config(cfg, ctx.registry),
                           job_type=JOB_EVALUATE, overrides=ctx.loaded.overrides)
    try:
        if weights == logged and cfg.wandb.log_model:
            wandb.use_model(cfg.name, alias=weights)
        log_test_results(wandb, samples, metrics, cfg.wandb.n_images)
    finally:
        wandb.finish()


test_run.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def _load(path: str | os.PathLike, registry: Registry) -> LoadedConfig:
    from .config import load_config

    return load_config(path, registry)
