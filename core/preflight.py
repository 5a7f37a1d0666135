"""Checks of a config against its data and model made before a run starts (no TensorFlow).

:func:`preflight` is called by :func:`dlsuite.pipeline.train` / :func:`dlsuite.pipeline.run`
before the run directory is created, so bad input stops with one message (a
:class:`~dlsuite.errors.ConfigError` listing every problem with its JSON path; exit 2 in the
CLI) and leaves no run directory and no ``config.json`` behind. Each check is one function in
:data:`CHECKS` taking ``(config, registry)`` and returning ``(json_path, message)`` problems.

What is checked:

* data: the data folders and weight files exist and hold a usable dataset (the same check as
  config validation, repeated for configs parsed with ``check_paths=False``); training data is
  required.
* model: the architecture and the datagen plugins are installed (an unknown name is an error
  naming the key, with suggestions).
* fit: ``datagen.patch_size`` is divisible by the model's ``size_multiple`` (``2**pools`` for
  the U-Nets, 32 for MobileNetV2 encoders): otherwise the skip connections of the decoder
  would not line up.
* inference: a model with a static input size (ConvLSTM) predicts tiles of
  ``datagen.patch_size``; ``inference.halo`` on both sides must leave a core.
* heads: a target with several output heads is trained by a multi-head loss.
* amount of data: a training step takes ``datagen.batch_size`` *different* training samples
  (images, videos or CTC sequences); fewer training samples than ``batch_size`` is an error
  rather than a silent repetition of the same images within one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ConfigError, DlsuiteInputError

__all__ = ["preflight", "preflight_problems", "CHECKS"]

Problem = tuple[str, str]


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


def _patch_fits_model(config, registry) -> list[Problem]:
    from .models import model_geometry

    try:
        geo = model_geometry(config, registry)
    except DlsuiteInputError:
        return []  # reported by _plugins
    m = int(geo["size_multiple"] or 1)
    patch = [int(v) for v in config.datagen.patch_size]
    bad = [v for v in patch if v % m]
    if not bad:
        return []
    fit = [max(m, v - v % m) for v in patch]
    return [("$.datagen.patch_size",
             f"{patch} does not fit model {config.model.name!r}: height and width must be "
             f"divisible by {m} (its size_multiple, e.g. 2**pools for U-Nets); "
             f"use e.g. {fit} or fewer pools ($.model)")]


def _static_model_leaves_a_core(config, registry) -> list[Problem]:
    """A model with a static input size (ConvLSTM models, built at ``datagen.patch_size``)
    predicts tiles of exactly that size; the halo on both sides must leave a core (the rule of
    :mod:`dlsuite.inference`). Checked only when a test set is to be predicted."""
    from .inference import halo_from_receptive_field
    from .models import model_geometry

    if not config.data.test:
        return []
    try:
        geo = model_geometry(config, registry)
    except DlsuiteInputError:
        return []
    if geo["supports_dynamic_size"]:
        return []
    m = int(geo["size_multiple"] or 1)
    halo = config.inference.halo
    if halo == "auto":
        rf = geo["receptive_field"]
        halo = 32 if rf is None else int(halo_from_receptive_field(rf))
    rounded = -(-int(halo) // m) * m
    size = min(int(v) for v in config.datagen.patch_size)
    if (size - 2 * rounded) // m * m >= 1:
        return []
    return [("$.inference.halo",
             f"{config.inference.halo!r} (= {halo} px, {rounded} px at the model's size "
             f"multiple {m}) leaves no core in the {size} px tiles model "
             f"{config.model.name!r} predicts (its input size is fixed at "
             f"$.datagen.patch_size): set inference.halo to at most "
             f"{max((size - m) // 2 // m * m, 0)} or "
             "use a larger patch_size")]


def _enough_training_samples(config, registry) -> list[Problem]:
    from .data.layouts import list_samples

    if not config.data.train:
        return []
    try:
        samples = list_samples(config.data.train, config.data.layout, require_labels=True)
    except DlsuiteInputError:
        return []  # reported by _data_paths
    batch = int(config.datagen.batch_size)
    if len(samples) >= batch:
        return []
    kind = samples[0].layout if samples else "samples"
    unit = {"frames": "images", "videos": "videos", "ctc": "sequences"}.get(kind, "samples")
    return [("$.datagen.batch_size",
             f"{batch} training samples per batch, but {config.data.train} holds only "
             f"{len(samples)} labelled {unit}: lower datagen.batch_size to at most "
             f"{max(len(samples), 1)} (use datagen.patches_per_image for more patches per "
             "step) or add training data")]


#: The checks :func:`preflight` runs, in order.
def _heads_trained(config, registry) -> list[Problem]:
    from .heads import heads_problems

    return heads_problems(config, registry)


CHECKS: tuple[Callable[[Any, Any], list[Problem]], ...] = (
    _data_paths, _plugins, _patch_fits_model, _static_model_leaves_a_core,
    _enough_training_samples, _heads_trained)


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
