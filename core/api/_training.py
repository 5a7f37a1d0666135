"""Training, end-to-end runs and model inspection of :mod:`dlsuite.api`. TensorFlow is imported
only inside the functions, when they run."""

from __future__ import annotations

from typing import Any, Callable

from ..config import LoadedConfig
from ..registry import get_registry
from ._config import loaded

__all__ = ["train", "run", "model_summary"]

OnLoaded = Callable[[LoadedConfig], None]


def _start(config: Any, on_loaded: OnLoaded | None, overrides: Any = None) -> LoadedConfig:
    result = loaded(config, overrides=overrides)
    if on_loaded is not None:
        on_loaded(result)
    return result


def train(config: Any, *, resume: bool = False, overwrite: bool = False, quiet: bool = False,
          on_loaded: OnLoaded | None = None, overrides: Any = None):
    """Train the model of ``config`` (a path, a dict, or a LoadedConfig).

    Writes the run directory ``config.output_dir`` (config.json, checkpoints/, logs/,
    history.csv, metrics.json, report/) and returns a ``RunResult(run_dir, metrics, history,
    wandb_run_id)``. An existing run directory is refused unless ``resume`` (continue from
    the last resumable checkpoint, same W&B run) or ``overwrite``. Ctrl-C/SIGTERM raise
    :class:`~dlsuite.api.TrainingInterrupted` (``exit_code`` 130/143) after a resumable
    checkpoint is written. ``on_loaded`` is called with the validated config before any file
    is written (the CLI prints a legacy-config migration there). ``overrides``
    (``{"model.n_filters": 32}`` or ``["model.n_filters=32"]``, as ``--set``; see
    :func:`load_config`) change the config before validation and are recorded in the run's
    ``config.json``. A config error raises ConfigError before anything is written.
    """
    from .. import pipeline

    return pipeline.train(_start(config, on_loaded, overrides), resume=resume, overwrite=overwrite,
                          quiet=quiet, registry=get_registry())


def run(config: Any, *, resume: bool = False, overwrite: bool = False, quiet: bool = False,
        on_loaded: OnLoaded | None = None, overrides: Any = None):
    """Train, then predict the test set, post-process, track, export CTC results, evaluate
    and write the report. Same arguments, errors and result as :func:`train`;
    ``result.metrics`` also holds ``test`` (the evaluation metrics), ``per_sequence`` and
    ``notes``."""
    from .. import pipeline

    return pipeline.run(_start(config, on_loaded, overrides), resume=resume, overwrite=overwrite,
                        quiet=quiet, registry=get_registry())


def model_summary(config: Any) -> dict:
    """Build the model of ``config`` (a path, a dict or a LoadedConfig; data paths are not
    checked) and return ``{"name"`` (the Keras model name), ``"total", "trainable",
    "non_trainable"`` (parameter counts),
    ``"input_shape", "output_shape"`` (lists, None for free dimensions), ``"architecture"``
    (the model name), ``"size_multiple"`` (height and width must be multiples of it),
    ``"receptive_field"`` (pixels, None when the architecture declares none) and
    ``"training_memory_gib"`` (the lower bound ``dlsuite run`` refuses a training batch
    by, :mod:`dlsuite.training_memory`; None when not known)}. Imports TensorFlow. Raises
    ConfigError for an invalid config."""
    from ..keras_helpers import summarize
    from ..models import build_model, model_geometry
    from ..training_memory import training_memory_bytes

    result = loaded(config, check_paths=False)
    registry = get_registry()
    info = summarize(build_model(result.config, registry))
    info["architecture"] = result.config.model.name
    geometry = model_geometry(result.config, registry)
    info["size_multiple"] = int(geometry["size_multiple"])
    field = geometry["receptive_field"]
    info["receptive_field"] = None if field is None else int(field)
    need = training_memory_bytes(result.config, registry)
    info["training_memory_gib"] = None if need is None else round(need / 2**30, 2)
    return info
