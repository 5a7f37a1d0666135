"""Checks of a config against its data and model made before a run starts (no TensorFlow).

:func:`preflight` is called by :func:`dlsuite.pipeline.train` / :func:`dlsuite.pipeline.run`
before the run directory is created, so bad input stops with one message (a
:class:`~dlsuite.errors.ConfigError` listing every problem with its JSON path; exit 2 in the
CLI) and leaves no run directory and no ``config.json`` behind. Each check is one function in
:data:`CHECKS` taking ``(config, registry)`` and returning ``(json_path, message)`` problems.

Preflight is the check of ``dlsuite config validate`` (every value, the cross-section rules
of :mod:`dlsuite.config.rules`; already done when the config was parsed) plus what needs the
data, repeated here for configs parsed with ``check_paths=False``. What is checked:

* data: the data folders and weight files exist and hold a usable dataset (the same check as
  config validation, repeated for configs parsed with ``check_paths=False``); training data is
  required.
* model: the architecture and the datagen plugins are installed (an unknown name is an error
  naming the key, with suggestions).
* fit (:data:`dlsuite.config.rules.CONFIG_RULES`, also run by ``config validate``):
  ``datagen.patch_size`` is divisible by the model's ``size_multiple`` (``2**pools`` for
  the U-Nets, 32 for MobileNetV2 encoders): otherwise the skip connections of the decoder
  would not line up.
* inference: a model with a static input size (ConvLSTM) predicts tiles of
  ``datagen.patch_size``; ``inference.halo`` on both sides must leave a core.
* heads: a target with several output heads is trained by a multi-head loss.
* amount of data: a training step takes ``datagen.batch_size`` *different* training samples
  (images, videos or CTC sequences); fewer training samples than ``batch_size`` is an error
  rather than a silent repetition of the same images within one batch; a side of
  ``datagen.patch_size`` over twice the largest training frame's (after ``data.scale``) is
  an error too: such patches would be mostly mirrored padding.
* W&B: a ``WANDB_MODE`` environment variable that is not a W&B mode; threads: a
  ``DLSUITE_THREADS`` that is not a positive whole number (:mod:`dlsuite.threads`).
* roles: data keys naming one folder are an info line saying what the scores then measure
  (validation on the training images, tuning on the test images);
* pixels (:func:`dlsuite.data.checks.check_pixels`, every file of train, val and test read
  once): unreadable or truncated files, NaN/Inf pixels (refused unless
  ``data.nonfinite_pixels`` is ``"mask"``), negative label ids are errors; constant images
  and training label images without any object are logged as warnings, the way unusual files
  (colour, stacks) are read as info lines, and so is the time the check took.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .errors import ConfigError, DlsuiteInputError
from .registry import PluginRejected

__all__ = ["preflight", "preflight_problems", "data_pixel_problems", "CHECKS"]

Problem = tuple[str, str]

log = logging.getLogger("dlsuite.preflight")


def _data_paths(config, registry) -> list[Problem]:
    from .config.loader import check_data_paths

    problems: list[Problem] = []
    if not config.data.train:
        problems.append(("$.data.train", "no training data folder configured"))
    return problems + check_data_paths(config)


def _plugins(config, registry) -> list[Problem]:
    problems: list[Problem] = []
    d = config.datagen
    choices = [("$.model", config.model), ("$.loss", config.loss),
               ("$.datagen.sampling", d.sampling), ("$.datagen.normalization", d.normalization),
               ("$.datagen.target", d.target)]
    choices += [(f"$.datagen.augmentation[{i}]", a) for i, a in enumerate(d.augmentation)]
    for path, choice in choices:
        try:
            registry.resolve(choice.kind, choice.name)
        except DlsuiteInputError as exc:
            problems.append((path, str(exc)))
    return problems


def _config_rules(config, registry) -> list[Problem]:
    from .config.rules import config_problems

    return config_problems(config, registry)


def _data_rules(config, registry) -> list[Problem]:
    from .config.rules import data_problems

    return data_problems(config, registry)


def _wandb_mode_env(config, registry) -> list[Problem]:
    from .logging.wandb_run import invalid_env_mode

    bad = invalid_env_mode()
    if bad is None:
        return []
    return [("$.wandb.mode", f"the environment variable WANDB_MODE={bad!r}, which overrides "
             f"it, is not a W&B mode: set it to online, offline or disabled, or unset it to "
             f"use the config's {config.wandb.mode!r}")]


def _threads_env(config, registry) -> list[Problem]:
    import os

    from .threads import THREADS_ENV, THREADS_PROBLEM, threads_from_env

    try:
        threads_from_env()
    except DlsuiteInputError:
        return [(f"environment variable {THREADS_ENV}",
                 f"{os.environ[THREADS_ENV]!r}: {THREADS_PROBLEM}")]
    return []


def _shared_folder_meaning(keys: list[str]) -> str:
    """What the scores mean when the data keys ``keys`` name one folder."""
    if "train" not in keys:
        return ("the post-processing is tuned on the test images: the test scores are "
                "optimistic for new images")
    parts = []
    if "val" in keys:
        parts.append("validation (best checkpoint, early stopping, post-processing tuning) "
                     "sees the training images")
    if "test" in keys:
        parts.append("the test scores are on training images")
    return "; ".join(parts) + ": they measure the fit, not how the model does on new images"


def data_pixel_problems(config, registry) -> list[Problem]:
    """Every file of train, val and test read once (a folder named by several keys once;
    folders whose headers are fine); ``(json_path, message)`` problems, notes and warnings
    logged. The last check of :func:`preflight`, and alone that of ``dlsuite config
    validate`` (where a config without training data, e.g. for prediction, is valid)."""
    from pathlib import Path

    from .data.checks import check_pixels
    from .data.layouts import check_dataset

    keys_of: dict[Path, list[str]] = {}
    for key in ("train", "val", "test"):
        folder = getattr(config.data, key)
        if folder is not None:
            keys_of.setdefault(Path(folder).resolve(), []).append(key)
    problems: list[Problem] = []
    for folder, keys in keys_of.items():
        if len(keys) > 1:
            log.info("%s are one folder (%s): %s", ", ".join(f"data.{k}" for k in keys),
                     folder, _shared_folder_meaning(keys))
        if check_dataset(folder, config.data.layout, require_labels=True):
            continue  # headers already reported by _data_paths
        found = check_pixels(folder, config.data.layout, training="train" in keys,
                             nonfinite=config.data.nonfinite_pixels)
        problems += [(f"$.data.{keys[0]}", msg) for msg in found.errors]
        label = ", ".join(f"data.{key}" for key in keys)
        for note in found.notes:
            log.info("%s: %s", label, note)
        for warning in found.warnings:
            log.warning("%s: %s", label, warning)
        log.info("%s: pixels of %d files checked in %.1f s", label, found.files, found.seconds)
    return problems


def _heads_trained(config, registry) -> list[Problem]:
    from .heads import heads_problems

    return heads_problems(config, registry)


#: The checks :func:`preflight` runs, in order (the pixel check, the slowest, last).
CHECKS: tuple[Callable[[Any, Any], list[Problem]], ...] = (
    _data_paths, _plugins, _config_rules, _data_rules, _heads_trained, _wandb_mode_env,
    _threads_env, data_pixel_problems)


def preflight_problems(config, registry) -> list[Problem]:
    """Every problem :data:`CHECKS` find in ``config``, as ``(json_path, message)`` pairs
    (empty: the run can start). Imports no TensorFlow."""
    problems: list[Problem] = []
    for check in CHECKS:
        problems += check(config, registry)
    return problems


def preflight(loaded, registry) -> None:
    """Raise :class:`~dlsuite.errors.ConfigError` (a DlsuiteInputError: exit 2, no traceback)
    naming every problem of the LoadedConfig ``loaded`` found by :func:`preflight_problems`;
    return None when the run can start."""
    problems = preflight_problems(loaded.config, registry)
    if problems:
        raise ConfigError(problems, loaded.source)
