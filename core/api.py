"""The public Python API of dlsuite.

Everything the CLI does is available here, with the same behaviour. Heavy modules
(TensorFlow, the training pipeline) are imported only by the functions that need them.
"""

from __future__ import annotations

import os
from typing import Any

from .config import LoadedConfig, load_config as _load_config, parse_config
from .registry import Registry, get_registry

__all__ = ["load_config", "plugins", "validate_config", "train", "run", "evaluate", "predict"]


def load_config(path: str | os.PathLike, *, check_paths: bool = True) -> LoadedConfig:
    """Load and validate the config at ``path``.

    A legacy flat config of the original suite is migrated first (``.migration`` holds the
    rows old key -> new key). Returns a :class:`~dlsuite.config.LoadedConfig` whose
    ``.config`` is the typed :class:`~dlsuite.config.Config` with every default filled in.
    Raises :class:`~dlsuite.errors.ConfigError` listing every problem with its JSON path,
    or :class:`~dlsuite.errors.DlsuiteInputError` for an unreadable file.
    """
    return _load_config(path, get_registry(), check_paths=check_paths)


def validate_config(data: Any, *, check_paths: bool = True) -> LoadedConfig:
    """Validate config data already in memory (a dict as in the JSON file)."""
    return parse_config(data, get_registry(), check_paths=check_paths)


def _loaded(config: Any) -> LoadedConfig:
    if isinstance(config, LoadedConfig):
        return config
    if isinstance(config, dict):
        return validate_config(config)
    return load_config(config)


def train(config: Any, *, resume: bool = False, overwrite: bool = False, quiet: bool = False):
    """Train the model of ``config`` (a path, a dict, or a LoadedConfig).

    Writes the run directory ``config.output_dir`` (config.json, checkpoints/, logs/,
    history.csv, metrics.json, report/) and returns a ``RunResult(run_dir, metrics, history,
    wandb_run_id)``. An existing run directory is refused unless ``resume`` (continue from
    the last resumable checkpoint, same W&B run) or ``overwrite``. Ctrl-C/SIGTERM raise
    :class:`~dlsuite.pipeline.TrainingInterrupted` after a resumable checkpoint is written.
    """
    from . import pipeline

    return pipeline.train(_loaded(config), resume=resume, overwrite=overwrite, quiet=quiet,
                          registry=get_registry())


def run(config: Any, *, resume: bool = False, overwrite: bool = False, quiet: bool = False):
    """Train, then predict the test set, post-process, track, export CTC results, evaluate
    and write the report. Same arguments and result as :func:`train`; ``result.metrics``
    also holds ``test`` (the evaluation metrics), ``per_sequence`` and ``notes``."""
    from . import pipeline

    return pipeline.run(_loaded(config), resume=resume, overwrite=overwrite, quiet=quiet,
                        registry=get_registry())


def plugins(refresh: bool = False) -> Registry:
    """The plugin registry built from the installed ``dlsuite`` entry points.

    ``registry.describe()`` gives a JSON-able listing; ``registry.resolve(kind, name)`` the
    entry a config name selects.
    """
    return get_registry(refresh=refresh)


def evaluate(res: str | os.PathLike, gt: str | os.PathLike, metrics: Any = None) -> dict:
    """Evaluate results ``res`` against ground truth ``gt``.

    Both are CTC-format folders (a root holding ``NN_RES``/``NN_GT``, or the sequence folders
    themselves) or folders of label images with the same file names. ``metrics`` is a list
    or comma-separated string of ``SEG, DET, TRA, jaccard, dice, precision, recall, f1,
    temporal_stability`` (default: all). Returns ``{"metrics": {name: value},
    "per_sequence": [...], "per_frame": [...]}``; a metric that cannot be computed is None
    with the reason in its sequence's ``"unavailable"``.
    """
    from .evaluation import evaluate as _evaluate

    return _evaluate(res, gt, metrics)


def predict(model_or_run_dir: Any, image_or_video: Any, **overrides: Any):
    """Class probabilities of one 2D image or video, as a float32 ndarray: ``(H, W)`` ->
    ``(H, W, C)``, ``(T, H, W)`` -> ``(T, H, W, C)`` (softmax; sigmoid for one class).

    ``model_or_run_dir`` is a run directory (its config's normalization, tiling, temporal
    windows and the ``best.keras`` checkpoint by default: the same probabilities as
    ``dlsuite predict`` writes) or a ``keras.Model`` (no normalization unless given).
    ``image_or_video`` is an ndarray or the path of a TIFF/PNG file. ``overrides``:
    ``weights`` (``best``/``last``/a path), ``tile_size`` (None: whole image), ``halo``
    (int or ``"auto"``), ``batch_size``, ``normalize`` (bool or a callable),
    ``time_windows``, ``size_multiple``. Raises DlsuiteInputError / DataError naming the
    path for a missing run, checkpoint or unreadable image.
    """
    from .predict import predict as _predict

    return _predict(model_or_run_dir, image_or_video, registry=get_registry(), **overrides)
