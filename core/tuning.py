"""Post-processing parameters tuned on the validation set (no TensorFlow).

Each post-processor spec declares its tunable parameters (:class:`~dlsuite.specs.Tunable`:
a parameter name and candidate values). :func:`tune_postprocess` searches them for a chain on
validation predictions by coordinate ascent: starting from the configured values, it tries every
candidate of one parameter with the others fixed, keeps the best (only a strict improvement
moves a value, so ties keep the configured one), goes on to the next parameter, and repeats the
rounds until a round changes nothing or the time budget is spent (the best values found so far
are returned). The outputs of the steps before the tuned one are computed once per parameter.

Score (``metric``): ``"SEG"`` (CTC SEG over every reference object of every frame) or ``"f1"``
(instance F1 at IoU >= 0.5, counts summed over frames, :mod:`dlsuite.evaluation.matching`).
The chain's result is completed as ``dlsuite run`` does (:func:`finish_labels`): probabilities
left at the end are argmax-ed and a mask is labelled by connected components.

:func:`write_postprocess_json` records the outcome in the run directory (``postprocess.json``);
:func:`tuned_chain` reads it back and returns the config's chain with the chosen values, as
``dlsuite predict`` and the test set use it.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .errors import DlsuiteInputError

__all__ = ["TuningResult", "tune_postprocess", "finish_labels", "score_labels",
           "write_postprocess_json", "read_postprocess_json", "tuned_chain", "POSTPROCESS_JSON",
           "METRICS"]

POSTPROCESS_JSON = "postprocess.json"
METRICS = ("SEG", "f1")


@attrs.frozen
class TuningResult:
    """Outcome of :func:`tune_postprocess`.

    ``steps``: the chain as ``[{"name", "params": {all parameters}}]`` with the chosen values;
    ``tuned``: ``{"<index>.<step>.<param>": value}`` for every tunable parameter searched;
    ``score`` / ``default_score``: the metric with the chosen / the configured values;
    ``evaluations``: chains scored; ``seconds``: time spent; ``timed_out``: the budget ran out
    before the search converged.
    """

    metric: str
    score: float
    default_score: float
    steps: list
    tuned: dict
    evaluations: int
    seconds: float
    timed_out: bool

    def as_dict(self) -> dict:
        """JSON-ready dict (the content of ``postprocess.json``)."""
        return attrs.asdict(self)


def finish_labels(result: np.ndarray) -> np.ndarray:
    """Instance labels (int64) from the end of a chain: probabilities are argmax-ed, a mask
    (bool/uint8) is labelled by connected components, labels pass through (as ``dlsuite run``'s
    post-processing step completes a chain)."""
    from scipy import ndimage

    res = np.asarray(result)
    if res.dtype.kind == "f":
        res = np.argmax(res, axis=-1).astype(np.uint8)
    if res.dtype.kind == "b" or res.dtype == np.uint8:
        res = ndimage.label(res > 0)[0]
    return res.astype(np.int64)


def score_labels(truths: Sequence[np.ndarray], labels: Sequence[np.ndarray], metric: str) -> float:
    """``metric`` (``"SEG"`` or ``"f1"``) of result ``labels`` against reference ``truths``
    (aligned lists of 2D label images); SEG is 0.0 when no frame holds a reference object."""
    if metric == "SEG":
        from .evaluation.seg import seg_score

        value = seg_score(dict(enumerate(truths)), dict(enumerate(labels)))
        return 0.0 if math.isnan(value) else float(value)
    if metric == "f1":
        from .evaluation.matching import MatchingAccumulator

        acc = MatchingAccumulator([0.5])
        for g, r in zip(truths, labels):
            acc.add(g, r)
        return float(acc.result()[0]["f1"])
    raise DlsuiteInputError(f"tuning metric must be one of {list(METRICS)}, got {metric!r}")


def _steps_of(chain, registry) -> list[tuple[str, Any, Any]]:
    """``[(name, params instance, spec)]`` from Choice-like objects (``.name``/``.params``)
    or dicts ``{"name": ..., "params": {...}}``."""
    out = []
    for item in chain:
        if isinstance(item, Mapping):
            name, params = item["name"], item.get("params")
        else:
            name, params = item.name, item.params
        entry = registry.resolve("postprocessors", name)
        if params is None:
            params = entry.spec.params()
        elif isinstance(params, Mapping):
            params = entry.spec.params(**params)
        out.append((name, params, entry))
    return out


def tune_postprocess(probs: Sequence[np.ndarray], truths: Sequence[np.ndarray], chain,
                     registry, *, metric: str = "SEG", time_budget: float = 120.0,
                     max_rounds: int = 3, clock: Callable[[], float] = time.monotonic
                     ) -> TuningResult:
    """Search the tunable parameters of the post-processing ``chain`` to maximise ``metric``.

    ``probs``: the model's activated outputs of the validation frames, each ``(H, W, C)``
    (what the chain starts with); ``truths``: their reference label images ``(H, W)``;
    ``chain``: the config's ``postprocess`` list (Choice objects or ``{"name", "params"}``
    dicts); ``registry``: resolves the post-processors. Raises DlsuiteInputError for an unknown
    metric, mismatched lists or no frame. See the module docstring for the search.
    """
    if metric not in METRICS:
        raise DlsuiteInputError(f"tuning metric must be one of {list(METRICS)}, got {metric!r}")
    if len(probs) != len(truths) or not len(probs):
        raise DlsuiteInputError(f"tuning needs matching validation predictions and labels "
                                f"(got {len(probs)} and {len(truths)})")
    start = clock()
    steps = _steps_of(chain, registry)
    values = [attrs.asdict(p) for _, p, _ in steps]
    built: dict = {}

    def step_fn(i: int, params: dict):
        key = (i, tuple(sorted(params.items(), key=lambda kv: kv[0])).__repr__())
        if key not in built:
            name, _, entry = steps[i]
            built[key] = entry.load()(attrs.evolve(steps[i][1], **params))
        return built[key]

    def run_from(i: int, inputs: list, current: list[dict]) -> list[np.ndarray]:
        outs = []
        for x in inputs:
            for j in range(i, len(steps)):
                x = step_fn(j, current[j])(x)
            outs.append(finish_labels(x))
        return outs

    evaluations = 0

    def score(i: int, inputs: list, current: list[dict]) -> float:
        nonlocal evaluations
        evaluations += 1
        return score_labels(truths, run_from(i, inputs, current), metric)

    default = score(0, list(probs), values)
    best = default
    knobs = [(i, t) for i, (_, _, entry) in enumerate(steps)
             for t in getattr(entry.spec, "tunable", ())]
    timed_out = False
    for _ in range(max_rounds if knobs else 0):
        changed = False
        for i, tunable in knobs:
            if clock() - start > time_budget:
                timed_out = True
                break
            prefix = list(probs)
            for j in range(i):  # outputs of the steps before i, once per parameter
                prefix = [step_fn(j, values[j])(x) for x in prefix]
            for candidate in tunable.candidates():
                if candidate == values[i][tunable.name]:
                    continue
                if clock() - start > time_budget:
                    timed_out = True
                    break
                trial = [dict(v) for v in values]
                trial[i][tunable.name] = candidate
                s = score(i, prefix, trial)
                if s > best + 1e-12:
                    best, values, changed = s, trial, True
            if timed_out:
                break
        if timed_out or not changed:
            break
    tuned = {f"{i}.{steps[i][0]}.{t.name}": values[i][t.name] for i, t in knobs}
    return TuningResult(metric=metric, score=float(best), default_score=float(default),
                        steps=[{"name": n, "params": values[i]} for i, (n, _, _) in enumerate(steps)],
                        tuned=tuned, evaluations=evaluations, seconds=float(clock() - start),
                        timed_out=timed_out)


def write_postprocess_json(run_dir: str | os.PathLike, result: TuningResult) -> Path:
    """Write ``result`` to ``<run_dir>/postprocess.json`` atomically; returns the path."""
    from .fileio import to_jsonable, write_text_atomic

    path = Path(run_dir) / POSTPROCESS_JSON
    text = json.dumps(to_jsonable(result.as_dict()), indent=2, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def read_postprocess_json(run_dir: str | os.PathLike) -> dict | None:
    """The content of ``<run_dir>/postprocess.json``, or None when the run has none. Raises
    DlsuiteInputError naming the file when it is not valid JSON with a ``steps`` list."""
    path = Path(run_dir) / POSTPROCESS_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DlsuiteInputError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise DlsuiteInputError(f"{path}: no 'steps' list of post-processing steps")
    return data


def tuned_chain(chain, run_dir: str | os.PathLike, registry, *,
                data: dict | None = None) -> tuple[list, str | None]:
    """The config's post-processing ``chain`` (list of Choice objects) with the parameters
    recorded in ``<run_dir>/postprocess.json`` (or given as its content ``data``, e.g. from
    an exported model), and a note: None when they were applied or there are none (the
    chain is returned unchanged then too), else why they were not (the recorded steps differ
    from the chain's, e.g. after editing the config)."""
    if data is None:
        data = read_postprocess_json(run_dir)
    if data is None:
        return list(chain), None
    names = [c.name for c in chain]
    recorded = [s.get("name") for s in data["steps"]]
    if names != recorded:
        return list(chain), (f"{Path(run_dir) / POSTPROCESS_JSON} was tuned for steps "
                             f"{recorded}, the config has {names}: using the config's values")
    out = []
    for choice, step in zip(chain, data["steps"]):
        entry = registry.resolve("postprocessors", choice.name)
        base = choice.params if choice.params is not None else entry.spec.params()
        fields = {f.name for f in attrs.fields(type(base))}
        params = {k: v for k, v in (step.get("params") or {}).items() if k in fields}
        out.append(attrs.evolve(choice, params=attrs.evolve(base, **params)))
    return out, None
