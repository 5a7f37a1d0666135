"""An exported model in place of a run directory: ``dlsuite predict`` / ``api.predict`` with a
bioimage.io package (zip or folder), a SavedModel folder or a ``.keras`` file
(:mod:`dlsuite.export.reopen` reads and checks it).

Where the run's settings come from, first match wins:

1. ``--config FILE`` (``config``): a dlsuite config, e.g. the run's ``config.json``
   (a ``postprocess.json`` beside it brings the run's tuned values): its normalizer,
   ``inference`` tiling and halo, post-processing chain and tracking; the architecture of its
   ``model`` section gives the size multiple and receptive field, as for the run.
2. What ``dlsuite export`` embedded (:mod:`dlsuite.export.embedded`, bioimage.io packages and
   SavedModels it wrote): the run's config, tuned post-processing values and halo, so the
   labels equal those predicted from the run.
3. Otherwise the defaults of a dlsuite config, with a package's preprocessing as the
   normalizer, its halo and its size step; a ``.keras``/SavedModel file gets the default
   normalizer (with a note) and ``halo: auto`` measures the model's receptive field.

Flags (``tile_size``, ``halo``, ``batch_size``) override any of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import attrs

from .errors import DlsuiteInputError
from .steps import Predictor, RunContext, tile_settings

__all__ = ["open_exported"]


def _with_normalization(config, registry, normalization: dict):
    """``config`` with ``datagen.normalization`` replaced by ``{"name", "params"}``."""
    from .config import parse_config

    section = {"name": normalization["name"], **normalization["params"]}
    choice = parse_config({"datagen": {"normalization": section}}, registry,
                          check_paths=False).config.datagen.normalization
    return attrs.evolve(config, datagen=attrs.evolve(config.datagen, normalization=choice))


def _from_file(config_file, registry) -> tuple[Any, list]:
    """The config in ``config_file`` (a config, or a run's ``config.json`` whose ``config``
    key holds it) and its run's tuned chain (``postprocess.json`` beside it), with a note
    when the recorded values do not fit the chain."""
    from .config import load_config
    from .tuning import tuned_chain

    config = load_config(config_file, registry, check_paths=False).config
    chain, why = tuned_chain(config.postprocess, Path(config_file).expanduser().parent,
                             registry)
    return attrs.evolve(config, postprocess=chain), [why] if why else []


def _from_metadata(opened, registry) -> tuple[Any, list]:
    """The run's config embedded by ``dlsuite export``, with its tuned chain and halo; None
    (and a note) when it does not load here, e.g. a plugin it names is not installed."""
    from .config import parse_config
    from .errors import ConfigError
    from .tuning import tuned_chain

    meta = opened.metadata
    try:
        config = parse_config(meta["config"], registry, check_paths=False).config
        chain, why = tuned_chain(config.postprocess, opened.path, registry,
                                 data=meta.get("postprocess_json"))
    except (ConfigError, DlsuiteInputError, KeyError, TypeError) as exc:
        return None, [f"{opened.path}: the dlsuite config it carries does not load here "
                      f"({str(exc).splitlines()[0]}); using the package's own description "
                      "and dlsuite's defaults"]
    config = attrs.evolve(config, postprocess=chain, inference=attrs.evolve(
        config.inference, halo=int(meta.get("halo", config.inference.halo))
        if meta.get("halo") is not None else config.inference.halo))
    return config, [why] if why else []


def _defaults(opened, registry) -> tuple[Any, list]:
    from .config import parse_config

    config = parse_config({}, registry, check_paths=False).config
    notes = []
    if opened.normalization is not None:
        config = _with_normalization(config, registry, opened.normalization)
    else:
        notes.append(f"{opened.path}: no normalization recorded with this model: using "
                     f"dlsuite's default ({config.datagen.normalization.name}); pass --config "
                     "with the run's config.json to predict as the run did")
    if opened.halo is not None:
        config = attrs.evolve(config, inference=attrs.evolve(config.inference,
                                                             halo=int(opened.halo)))
    return config, notes


def _fit_fixed_size(opened, tiles, ctx):
    """The tile settings a SavedModel with a fixed height and width (a temporal one) is run
    with: it cannot be rebuilt at another size, so each tile's core is that size minus the
    halo on both sides, whatever ``tile_size`` asked (recorded as such, with a note). Refuses,
    before anything is written, a halo that leaves its tiles no core."""
    shape = opened.model.input_shape
    fixed = [int(n) for n in shape[-3:-1] if n is not None]
    if opened.kind != "savedmodel" or not fixed:
        return tiles
    m = max(1, tiles.size_multiple)
    core = (min(fixed) - 2 * tiles.halo) // m * m
    if core < 1:
        raise DlsuiteInputError(
            f"{opened.path}: the SavedModel takes a fixed {shape[-3]} x {shape[-2]} px input, "
            f"which leaves no core inside the halo of {tiles.halo} px (a SavedModel cannot be "
            "rebuilt at a larger size); pass a smaller --halo, or predict with the run's "
            "bioimage.io package or .keras export")
    if tiles.tile_size != core:
        ctx.note(f"the SavedModel takes a fixed {shape[-3]} x {shape[-2]} px input (it cannot "
                 f"be rebuilt at another size): tiles of {core} px inside the halo of "
                 f"{tiles.halo} px, not tile_size {tiles.tile_size}; probabilities may differ "
                 "slightly from the run's at tile borders (the .keras or bioimage.io export "
                 "predicts as the run did)")
        tiles = attrs.evolve(tiles, tile_size=core)
    return tiles


def open_exported(path: str | os.PathLike, *, inference_overrides: Callable,
                  config: str | os.PathLike | None = None, normalize: bool | Callable = True,
                  time_windows: int | None = None, quiet: bool = True,
                  registry=None) -> Predictor:
    """A :class:`~dlsuite.steps.Predictor` for the exported model at ``path``, with its
    settings from ``config``, the export or dlsuite's defaults (see the module docstring),
    then ``inference_overrides`` (``inference section -> inference section``, the flags)
    applied. ``normalize``: False for none, a callable replaces the normalizer.
    DlsuiteInputError naming the path for a model dlsuite cannot predict with or a bad
    config file; nothing is written."""
    from .config.loader import LoadedConfig
    from .export.reopen import open_export
    from .inference import model_tile_settings
    from .registry import get_registry
    from .rundir import RunDir

    registry = registry or get_registry()
    opened = open_export(path)
    cfg, notes, run_like = None, [], True
    if config is not None:
        cfg, notes = _from_file(config, registry)
    elif opened.metadata is not None:
        cfg, notes = _from_metadata(opened, registry)
    if cfg is None:
        run_like = False
        cfg, more = _defaults(opened, registry)
        notes += more
    cfg = attrs.evolve(cfg, inference=inference_overrides(cfg.inference))
    ctx = RunContext(LoadedConfig(cfg, str(opened.path)), registry, RunDir(opened.path),
                     quiet=quiet)
    for note in notes:
        ctx.note(note)
    if run_like:  # the architecture's geometry, as the run predicted
        tiles = tile_settings(ctx, time_windows=time_windows)
    else:
        inf = cfg.inference
        tiles = model_tile_settings(opened.model, tile_size=inf.tile_size, halo=inf.halo,
                                    batch_size=inf.batch_size,
                                    size_multiple=opened.size_multiple,
                                    time_windows=time_windows)
    tiles = _fit_fixed_size(opened, tiles, ctx)
    if callable(normalize):
        normalizer = normalize
    elif normalize:
        from .data.datagen_plugins import make_normalizer

        normalizer = make_normalizer(cfg, registry)
    else:
        normalizer = None
    return Predictor(ctx, opened.model, opened.path, normalizer, tiles)
