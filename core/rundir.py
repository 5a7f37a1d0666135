"""The run directory of a training run: where each file lives, and the rule for reusing one.

Layout (``config.output_dir``)::

    config.json          resolved config + config_hash + package versions
    run.log              log of the run
    history.csv          one row per epoch (all Keras logs + learning_rate)
    metrics.json         final training and test metrics
    checkpoints/         best.keras, last.keras, epoch_NNNN.keras
    checkpoints/resume/  model.weights.h5 + optimizer.npz + state.json (resumable state)
    logs/                TensorBoard
    predictions/         predicted probabilities and masks of the test set
    report/              PNG pictures (training curves, test overlays)
    wandb/               offline W&B run files

A folder holding ``config.json`` is a run: it is reused only with ``resume`` or
``overwrite``. No TensorFlow is imported here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import attrs

from .errors import DlsuiteInputError

__all__ = ["RunDir", "prepare_run_dir", "read_json",
           "load_run_config"]


@attrs.frozen
class RunDir:
    """Paths of one run directory (nothing is created by constructing it)."""

    root: Path

    @property
    def config_json(self) -> Path:
        return self.root / "config.json"

    @property
    def run_log(self) -> Path:
        return self.root / "run.log"

    @property
    def history_csv(self) -> Path:
        return self.root / "history.csv"

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.keras"

    def periodic(self, epoch: int) -> Path:
        """``checkpoints/epoch_NNNN.keras`` for the 1-based ``epoch``."""
        return self.checkpoints / f"epoch_{epoch:04d}.keras"

    @property
    def resume_dir(self) -> Path:
        return self.checkpoints / "resume"

    @property
    def resume_state(self) -> Path:
        return self.resume_dir / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def report(self) -> Path:
        return self.root / "report"

    def is_run(self) -> bool:
        """True when the folder already holds a run (a ``config.json``)."""
        return self.config_json.is_file()

    def make(self) -> "RunDir":
        """Create the folders of the run; returns self."""
        for folder in (self.root, self.checkpoints, self.resume_dir, self.logs, self.report):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def prepare_run_dir(output_dir: str | os.PathLike, *, resume: bool = False,
                    overwrite: bool = False) -> RunDir:
    """Return the (created) run directory at ``output_dir``, applying the reuse rule.

    * a folder holding ``config.json`` and neither flag: DlsuiteInputError saying to pass
      ``--resume`` or ``--overwrite``;
    * ``resume``: the folder must hold a resumable state (``checkpoints/resume/state.json``),
      else DlsuiteInputError; nothing is deleted;
    * ``overwrite``: the previous run's files are deleted first (only the folder's content).
    ``resume`` and ``overwrite`` together are refused.
    """
    if resume and overwrite:
        raise DlsuiteInputError("--resume and --overwrite exclude each other: pick one")
    run = RunDir(Path(output_dir).expanduser().resolve())
    if run.root.exists() and not run.root.is_dir():
        raise DlsuiteInputError(f"{run.root}: output_dir exists and is not a folder")
    if resume:
        if not run.resume_state.is_file():
            raise DlsuiteInputError(
                f"{run.root}: nothing to resume (no {run.resume_state.relative_to(run.root)}); "
                "run without --resume to start a new run")
        return run.make()
    if run.is_run():
        if not overwrite:
            raise DlsuiteInputError(
                f"{run.root} already holds a run (config.json); pass --resume to continue it "
                "or --overwrite to replace it, or choose another output_dir")
        for child in run.root.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    return run.make()


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file written by this module; a broken file raises DlsuiteInputError."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DlsuiteInputError(f"{path}: cannot read: {exc}") from None


def load_run_config(run_dir: str | os.PathLike, registry: Any = None) -> Any:
    """The validated config of the run in ``run_dir`` (from its ``config.json``, whose
    ``"config"`` key holds the resolved config), as a ``LoadedConfig``; data paths are not
    checked. DlsuiteInputError when the folder holds no run."""
    from .config import parse_config

    run = RunDir(Path(run_dir))
    if not run.is_run():
        raise DlsuiteInputError(f"{run.root}: not a dlsuite run directory (no config.json)")
    data = read_json(run.config_json)
    if not isinstance(data, dict) or "config" not in data:
        raise DlsuiteInputError(f"{run.config_json}: no \"config\" key; not written by dlsuite")
    return parse_config(data["config"], registry, source=str(run.config_json), check_paths=False)
