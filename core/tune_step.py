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

__all__ = ["tune_step", "validation_predictions"]

log = logging.getLogger("dlsuite")


def validation_predictions(ctx, model_path) -> tuple[list, list]:
    """``(probs, truths)``: the activated model outputs ``(H, W, C)`` and reference labels
    ``(H, W)`` of every annotated frame of ``data.val`` (same normalization, tiling, temporal
    windows and heads as the test set's prediction). When ``data.test`` is the same folder,
    the probabilities are kept in ``ctx`` for the test set's prediction step, which then
    does not predict these samples again."""
    from pathlib import Path

    from .data.layouts import list_samples, load_sample
    from .steps import open_predictor, sample_probabilities

    cfg = ctx.config
    predictor = open_predictor(ctx, model_path)
    keep = cfg.data.test is not None and Path(cfg.data.test).resolve() == Path(
        cfg.data.val).resolve()
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


def tune_step(ctx, trained):
    """Tune the post-processing on ``data.val`` (module docstring); returns the
    :class:`~dlsuite.tuning.TuningResult`, or None (with a note) when tuning is disabled, there
    is no validation data or checkpoint, or no step of the chain has a tunable parameter."""
    from .tuning import tune_postprocess, write_postprocess_json

    cfg = ctx.config
    ev = cfg.evaluation
    if not getattr(ev, "tune_postprocess", False):
        return None
    if cfg.data.val is None or trained.model_path is None:
        ctx.note("post-processing not tuned: no validation data (data.val) or no checkpoint")
        return None
    if not any(ctx.registry.resolve("postprocessors", c.name).spec.tunable
               for c in cfg.postprocess):
        log.info("post-processing not tuned: no step of the chain has tunable parameters")
        return None
    probs, truths = validation_predictions(ctx, trained.model_path)
    if not probs:
        ctx.note("post-processing not tuned: data.val has no annotated frame")
        return None
    result = tune_postprocess(probs, truths, cfg.postprocess, ctx.registry,
                              metric=ev.tune_metric, time_budget=ev.tune_seconds)
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
