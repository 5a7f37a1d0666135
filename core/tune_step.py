"""``dlsuite run``'s tuning step: after training, tune the post-processing on the validation set.

:func:`tune_step` predicts the annotated frames of ``data.val`` with the checkpoint the test
set will use, searches the chain's tunable parameters (:func:`dlsuite.tuning.tune_postprocess`,
metric ``evaluation.tune_metric``, budget ``evaluation.tune_seconds``), writes
``postprocess.json`` into the run directory, logs the chosen values to W&B (summary keys
``postprocess/<index>.<step>.<param>``, ``postprocess/score``, ``postprocess/default_score``)
and puts the tuned chain into the run's config in memory, so the test set's post-processing
step uses it. ``dlsuite predict`` reads the same file (:func:`dlsuite.tuning.tuned_chain`).
"""

from __future__ import annotations

import logging

import attrs
import numpy as np

__all__ = ["tune_step", "tune_run", "validation_predictions", "stale_exports"]

log = logging.getLogger("dlsuite")


def validation_predictions(ctx, model_path) -> tuple[list, list]:
    """``(probs, truths)``: the activated model outputs ``(H, W, C)`` and reference labels
    ``(H, W)`` of every annotated frame of ``data.val`` (same normalization, tiling, temporal
    windows and heads as the test set's prediction). When ``data.test`` is the same folder,
    the probabilities are kept in ``ctx`` for the test set's prediction step, which then
    does not predict these samples again."""
    from pathlib import Path

    from .data.layouts import list_samples
    from .data.sample_loading import load_sample
    from .steps import open_predictor, sample_probabilities

    cfg = ctx.config
    predictor = open_predictor(ctx, model_path)
    keep = (cfg.data.test is not None and not cfg.data.videos_csv  # else: other samples
            and Path(cfg.data.test).resolve() == Path(cfg.data.val).resolve())
    probs, truths = [], []
    for sample in list_samples(cfg.data.val, cfg.data.layout):
        loaded = load_sample(sample)
        if loaded.labels is None or not len(loaded.annotated):
            continue
        p = sample_probabilities(ctx, predictor, sample, loaded.image, keep=keep)
        p = p[np.newaxis] if p.ndim == 3 else p  # a 2D image is a one-frame video
        for t in np.asarray(loaded.annotated, dtype=int):
            probs.append(p[t])
            truths.append(np.asarray(loaded.labels[t]))
    return probs, truths


def _has_tunable(chain, registry) -> bool:
    """True when a step of the config's post-processing ``chain`` declares tunable
    parameters."""
    return any(registry.resolve("postprocessors", c.name).spec.tunable for c in chain)


def tune_step(ctx, trained, *, write: bool = True):
    """Tune the post-processing on ``data.val`` (module docstring); returns the
    :class:`~dlsuite.tuning.TuningResult`, or None (with a note) when tuning is disabled, there
    is no validation data or checkpoint, or no step of the chain has a tunable parameter.
    ``write=False``: the run's ``postprocess.json`` is not written (the caller keeps the
    values elsewhere)."""
    from .tuning import tune_postprocess, write_postprocess_json

    cfg = ctx.config
    ev = cfg.evaluation
    if not getattr(ev, "tune_postprocess", False):
        return None
    if cfg.data.val is None or trained.model_path is None:
        ctx.note("post-processing not tuned: no validation data (data.val) or no checkpoint")
        return None
    if not _has_tunable(cfg.postprocess, ctx.registry):
        log.info("post-processing not tuned: no step of the chain has tunable parameters")
        return None
    probs, truths = validation_predictions(ctx, trained.model_path)
    if not probs:
        ctx.note("post-processing not tuned: data.val has no annotated frame")
        return None
    result = tune_postprocess(probs, truths, cfg.postprocess, ctx.registry,
                              metric=ev.tune_metric, time_budget=ev.tune_seconds)
    if write:
        write_postprocess_json(ctx.run.root, result)
    tuned = []
    for choice, step in zip(cfg.postprocess, result.steps):
        entry = ctx.registry.resolve("postprocessors", choice.name)
        base = choice.params if choice.params is not None else entry.spec.params()
        tuned.append(attrs.evolve(choice, params=attrs.evolve(base, **step["params"])))
    ctx.loaded = attrs.evolve(ctx.loaded, config=attrs.evolve(cfg, postprocess=tuned))
    ctx.wandb.summary({**{f"postprocess/{k}": v for k, v in result.tuned.items()},
                       "postprocess/score": result.score,
                       "postprocess/default_score": result.default_score})
    log.info("post-processing tuned on %d validation frame(s): %s %.4f (configured %.4f); %s",
             len(probs), result.metric, result.score, result.default_score,
             ", ".join(f"{k}={v}" for k, v in result.tuned.items()))
    if result.timed_out:
        ctx.note(f"post-processing search stopped after {ev.tune_seconds:g} s "
                 "(evaluation.tune_seconds): the best values found so far are used")
    return result


def tune_run(run_dir, *, weights: str = "best", metric: str | None = None,
             seconds: float | None = None, overwrite: bool = False, quiet: bool = False,
             postprocess=None, output=None, registry=None):
    """``dlsuite tune RUN_DIR``: :func:`tune_step` on a trained run, e.g. one stopped before
    its tuning step or trained with ``evaluation.tune_postprocess`` off: the run's chain
    searched on its ``data.val`` with its ``weights`` checkpoint (``best``/``last``),
    maximising ``metric`` (``SEG``/``f1``; default ``evaluation.tune_metric``) within
    ``seconds`` (default ``evaluation.tune_seconds``); writes ``RUN_DIR/postprocess.json``,
    which ``dlsuite predict`` and ``dlsuite test`` then use. With ``output`` (a file path)
    the tuned chain is written there instead, as a chain file for ``dlsuite predict
    --postprocess`` (:mod:`dlsuite.tuned_chain_file`; the run is not touched);
    ``postprocess`` (a chain file or list, checked against the run's model outputs as
    ``dlsuite predict --postprocess`` checks it) tunes that chain instead of the run's and
    needs ``output``. Returns the
    :class:`~dlsuite.tuning.TuningResult`. DlsuiteInputError naming the folder, file or
    value, before any prediction: not a run, no checkpoint, no ``data.val`` folder, a chain
    with nothing to tune, an existing ``postprocess.json`` without ``overwrite``, a bad
    ``metric``/``seconds``, a chain that does not fit, an ``output`` that may not be
    written; also when ``data.val`` holds no annotated frame."""
    from contextlib import nullcontext
    from pathlib import Path

    from . import folder_lock
    from .errors import DlsuiteInputError
    from .inference import choose_checkpoint
    from .registry import get_registry
    from .rundir import RunDir, load_run_config
    from .steps import RunContext, TrainOutput
    from .tuning import POSTPROCESS_JSON

    registry = registry or get_registry()
    if weights not in ("best", "last"):
        raise DlsuiteInputError(f"--weights {weights}: choose best or last")
    if metric is not None and metric not in ("SEG", "f1"):
        raise DlsuiteInputError(f"--metric {metric}: choose SEG or f1")
    if seconds is not None and not seconds > 0:
        raise DlsuiteInputError(f"--seconds {seconds}: must be > 0")
    if postprocess is not None and output is None:
        raise DlsuiteInputError("--postprocess needs --output FILE: the run's postprocess.json "
                                "holds values for the run's own chain only")
    run = RunDir(Path(run_dir).expanduser().resolve())
    if not run.is_run():
        raise DlsuiteInputError(f"{run.root}: not a dlsuite run directory (no config.json)")
    chain_from = "run"
    if postprocess is not None:
        from .inference.chain_choice import load_predict_config

        chosen = load_predict_config(run.root, registry, chain=postprocess)
        loaded, chain_from = chosen.loaded, chosen.chain_from
    else:
        loaded = load_run_config(run.root, registry)
    cfg = loaded.config
    if cfg.data.val is None or not Path(cfg.data.val).is_dir():
        state = "is not set" if cfg.data.val is None else f"not found: {cfg.data.val}"
        raise DlsuiteInputError(f"{run.config_json}: data.val {state}: post-processing is "
                                "tuned on the validation set")
    if not _has_tunable(cfg.postprocess, registry):
        where = run.config_json if chain_from == "run" else chain_from
        raise DlsuiteInputError(f"{where}: no step of the post-processing chain "
                                f"({', '.join(c.name for c in cfg.postprocess)}) has tunable "
                                "parameters")
    if output is not None:
        from .tuned_chain_file import check_chain_output, write_tuned_chain

        target = check_chain_output(output, overwrite)
    else:
        target = run.root / POSTPROCESS_JSON
        if target.exists() and not overwrite:
            raise DlsuiteInputError(f"{target}: exists (the run was tuned before); pass "
                                    "--overwrite to tune again")
    checkpoint = choose_checkpoint(run, weights)
    ev = attrs.evolve(cfg.evaluation, tune_postprocess=True,
                      tune_metric=metric or cfg.evaluation.tune_metric,
                      tune_seconds=float(seconds or cfg.evaluation.tune_seconds))
    ctx = RunContext(attrs.evolve(loaded, config=attrs.evolve(cfg, evaluation=ev)), registry,
                     run, quiet=quiet)
    before = _steps(_read_json(run.root / "postprocess.json"))
    # writing postprocess.json: not while another process writes the run
    with folder_lock.held(run.root, "run") if output is None else nullcontext():
        result = tune_step(ctx, TrainOutput(checkpoint, [], {}, 0), write=output is None)
    if result is None:  # tune_step noted why
        raise DlsuiteInputError(f"{cfg.data.val}: " + "; ".join(ctx.notes))
    if output is None:
        _warn_of_stale_results(run.root, cfg.name, before)
    else:
        check_chain_output(target, overwrite)  # again: a file may have appeared meanwhile
        write_tuned_chain(target, result, run=run.root, checkpoint=Path(checkpoint),
                          chain_from=chain_from)
    return result


def stale_exports(run_root, name: str) -> list:
    """``(path, format)`` of the exports in the run's ``export/`` (``dlsuite run`` or
    ``dlsuite export`` at their default paths) whose embedded post-processing chain differs
    from that of the run's ``postprocess.json`` now: ``dlsuite predict`` from them would not use the
    values just tuned."""
    from pathlib import Path

    from .export import FORMATS, default_export_path
    from .export.embedded import embedded_metadata

    now = _read_json(Path(run_root) / "postprocess.json")
    stale = []
    for fmt in FORMATS:
        path = default_export_path(run_root, name, fmt)
        meta = embedded_metadata(path, fmt) if path.exists() else None
        if meta is not None and _steps(meta.get("postprocess_json")) != _steps(now):
            stale.append((path, fmt))
    return stale


def _steps(tuned: dict | None):
    """The chain a ``postprocess.json`` sets (its ``steps``), not how it was searched."""
    return tuned.get("steps") if isinstance(tuned, dict) else None


def _read_json(path) -> dict | None:
    """The JSON object in ``path``; None when it is missing or unreadable."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _warn_of_stale_results(root, name: str, before) -> None:
    """Warn, after ``postprocess.json`` changed from the chain ``before``, naming the test
    scores and the exports of the run in ``root`` made with the earlier values, and the
    commands that make them again."""
    if _steps(_read_json(root / "postprocess.json")) != before:
        scored = [p for p in [root / "metrics.json", *sorted(root.glob("test/*/metrics.json"))]
                  if (_read_json(p) or {}).get("test")]
        if scored:
            log.warning("%s: test scores computed with the earlier post-processing values; "
                        "dlsuite test %s scores the test set with the new ones",
                        ", ".join(str(p.relative_to(root)) for p in scored), root)
    stale = stale_exports(root, name)
    if stale:
        formats = [fmt for _, fmt in stale]
        how = (f"--format {formats[0]} --overwrite" if len(stale) == 1 else
               f"--format FORMAT --overwrite, for each FORMAT of {', '.join(formats)}")
        log.warning("%s: %s still carr%s the earlier post-processing values; export again: "
                    "dlsuite export %s %s", root / "export", ", ".join(p.name for p, _ in stale),
                    "ies" if len(stale) == 1 else "y", root, how)
