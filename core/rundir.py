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
import logging
import os
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from .errors import DlsuiteInputError
from .fileio import write_json_atomic

__all__ = ["RunDir", "prepare_run_dir", "read_json", "load_run_config", "package_versions",
           "write_run_config"]

log = logging.getLogger("dlsuite")


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


def write_run_config(run: RunDir, loaded: Any, registry: Any, *, seed: int | None,
                     resumed: bool) -> dict:
    """Write ``config.json`` of the run: ``{"config": resolved config, "config_hash",
    "versions", "seed", "source", "legacy_migrated", "created", "resumed"}`` (``created`` and
    earlier ``resumed`` times are kept from a previous file); returns what was written."""
    from .config import config_hash
    from .config.converter import unstructure_config

    config = loaded.config
    previous = read_json(run.config_json) if run.config_json.is_file() else {}
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    data = {
        "config": unstructure_config(config, registry),
        "config_hash": config_hash(config, registry),
        "versions": package_versions(),
        "seed": seed,
        "source": loaded.source,
        "legacy_migrated": loaded.is_legacy,
        "created": previous.get("created", now),
        "resumed": previous.get("resumed", []) + ([now] if resumed else []),
    }
    if resumed and previous.get("config_hash") not in (None, data["config_hash"]):
        log.warning("the config differs from the run's config.json (hash %s, now %s); "
                    "continuing with the new one", previous.get("config_hash"),
                    data["config_hash"])
    write_json_atomic(run.config_json, data)
    return data
