"""The sweep file of ``dlsuite sweep`` (:mod:`dlsuite.sweep`): reading it, checking every
key and parameter spec (errors name the file and key), and planning its trials. The format is
W&B's sweep configuration plus ``base`` (see :mod:`dlsuite.sweep`). No TensorFlow here."""

from __future__ import annotations

import itertools
import math
import os
import random
from pathlib import Path
from typing import Any

import attrs

from .config.overrides import path_steps
from .errors import DlsuiteInputError

__all__ = ["Sweep", "Trial", "load_sweep", "plan_trials"]

_KEYS = {"method", "metric", "parameters", "run_cap", "name", "base", "description",
         "program", "command", "early_terminate", "project", "entity"}
#: Config keys the sweep sets for every trial: a parameter of them would be ignored.
_SET_PER_TRIAL = ("output_dir", "name")
_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "uniform", "log_uniform_values",
                  "q_uniform", "q_log_uniform_values", "normal")


@attrs.frozen
class Sweep:
    """A parsed sweep file."""

    path: Path
    name: str
    method: str
    metric: dict | None        # {"name", "goal"}
    parameters: dict           # {dotted path: W&B parameter spec}
    run_cap: int | None
    base: Path
    data: dict                 # the file's content, as read


@attrs.frozen
class Trial:
    """One planned trial: its folder name and parameter overrides."""

    name: str
    overrides: dict


def _bad(path: Path, where: str, message: str) -> DlsuiteInputError:
    return DlsuiteInputError(f"{path}: {where}: {message}")


def _read(path: Path) -> dict:
    if not path.is_file():
        raise DlsuiteInputError(f"{path}: sweep file not found")
    import yaml  # JSON is YAML too

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DlsuiteInputError(f"{path}: not a YAML/JSON sweep file: "
                                f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DlsuiteInputError(f"{path}: a sweep file holds an object (method, parameters, "
                                "base, ...)")
    return data


def _is_spec(value: Any) -> bool:
    return isinstance(value, dict) and bool(
        {"value", "values", "distribution", "min", "max"} & set(value))


def _flatten_parameters(path: Path, parameters: Any, prefix: str = "") -> dict:
    if not isinstance(parameters, dict) or not parameters:
        raise _bad(path, f"parameters{'.' + prefix if prefix else ''}",
                   "expected a non-empty object of parameters")
    out: dict[str, dict] = {}
    for key, spec in parameters.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(spec, dict) and "parameters" in spec and not _is_spec(spec):
            out.update(_flatten_parameters(path, spec["parameters"], name))  # nested block
        elif _is_spec(spec):
            out[name] = spec
        else:
            raise _bad(path, f"parameters.{name}", "expected value, values or distribution "
                       "with min/max (or a nested parameters block)")
        try:
            path_steps(name)
        except DlsuiteInputError:
            raise _bad(path, f"parameters.{name}", "not a config path (dotted keys with "
                       "optional [index], as in --set)") from None
    return out


def _number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _check_spec(path: Path, name: str, spec: dict, method: str) -> None:
    where = f"parameters.{name}"
    if "values" in spec:
        if not isinstance(spec["values"], list) or not spec["values"]:
            raise _bad(path, where, "values must be a non-empty list")
        probs = spec.get("probabilities")
        if probs is not None and (
                not isinstance(probs, list) or len(probs) != len(spec["values"])
                or not all(_number(p) and 0 <= p for p in probs)
                or abs(sum(probs) - 1) > 1e-6):
            raise _bad(path, where, "probabilities must be a list of numbers >= 0 as long as "
                       "values, summing to 1")
        return
    if "value" in spec:
        return
    dist = spec.get("distribution") or ("int_uniform" if isinstance(spec.get("min"), int) and
                                        isinstance(spec.get("max"), int) else "uniform")
    if dist not in _DISTRIBUTIONS:
        raise _bad(path, where, f"unknown distribution {dist!r}; choose one of "
                   f"{', '.join(_DISTRIBUTIONS)}")
    if method == "grid":
        raise _bad(path, where, "a grid sweep needs value or values (a distribution is "
                   "sampled: use method random)")
    if dist == "normal":
        if not all(_number(spec.get(k, 0)) for k in ("mu", "sigma")):
            raise _bad(path, where, "mu and sigma must be numbers")
        return
    lo, hi = spec.get("min"), spec.get("max")
    if not _number(lo) or not _number(hi) or lo > hi:
        raise _bad(path, where, f"{dist} needs numbers min <= max")
    if "q" in spec and not (_number(spec["q"]) and spec["q"] > 0):
        raise _bad(path, where, f"q must be a number > 0, got {spec['q']!r}")
    if dist.startswith(("log", "q_log")) and lo <= 0:
        raise _bad(path, where, f"{dist} needs min > 0")


def load_sweep(path: str | os.PathLike, methods: tuple = ("grid", "random")) -> Sweep:
    """Read and check the sweep file at ``path`` (YAML or JSON). DlsuiteInputError naming
    the file and key for anything unknown or out of place (an unknown top-level key, a
    method not in ``methods`` (``bayes`` only with the W&B controller), a grid over a
    distribution, a random or bayes sweep without ``run_cap``, bayes without ``metric``, no
    ``base``)."""
    path = Path(path).expanduser()
    data = _read(path)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _bad(path, unknown[0], f"unknown key; a sweep file has {', '.join(sorted(_KEYS))}")
    method = data.get("method", "grid")
    if method not in methods:
        raise _bad(path, "method", f"{method!r} is not supported here; choose "
                   f"{' or '.join(methods)}" + ("" if "bayes" in methods else
                                               " (bayes needs the W&B sweep controller: "
                                               "dlsuite sweep --wandb)"))
    if method == "bayes" and not isinstance(data.get("metric"), dict):
        raise _bad(path, "metric", "a bayes sweep needs a metric {name, goal}")
    metric = data.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str) or \
                metric.get("goal", "minimize") not in ("minimize", "maximize"):
            raise _bad(path, "metric", "expected {name: ..., goal: minimize | maximize}")
        metric = {"name": metric["name"], "goal": metric.get("goal", "minimize")}
    run_cap = data.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool)
                                or run_cap < 1):
        raise _bad(path, "run_cap", f"must be a positive integer, got {run_cap!r}")
    if method in ("random", "bayes") and run_cap is None:
        raise _bad(path, "run_cap", f"a {method} sweep needs run_cap (how many trials)")
    base = data.get("base")
    if not isinstance(base, str) or not base:
        raise _bad(path, "base", "missing: the config file every trial starts from "
                   "(relative to the sweep file)")
    parameters = _flatten_parameters(path, data.get("parameters"))
    for name, spec in parameters.items():
        if name in _SET_PER_TRIAL:
            raise _bad(path, f"parameters.{name}", "set by the sweep for each trial (its "
                       "folder OUTPUT/trial-NNN and name): not a parameter")
        _check_spec(path, name, spec, method)
    name = data.get("name") or path.stem
    if not isinstance(name, str) or not name.strip() or "/" in name or name.strip() in (
            ".", ".."):
        raise _bad(path, "name", f"expected a name without '/' (not . or ..), got {name!r}")
    return Sweep(path, name, method, metric, parameters, run_cap,
                 (path.parent / base).resolve(), data)


def _sample(spec: dict, rng: random.Random) -> Any:
    if "values" in spec:
        return rng.choices(spec["values"], weights=spec.get("probabilities"))[0]
    if "value" in spec:
        return spec["value"]
    lo, hi = spec.get("min"), spec.get("max")
    dist = spec.get("distribution") or ("int_uniform" if isinstance(lo, int) and
                                        isinstance(hi, int) else "uniform")
    q = spec.get("q", 1)
    if dist == "int_uniform":
        return rng.randint(int(lo), int(hi))
    if dist == "uniform":
        return rng.uniform(lo, hi)
    if dist == "q_uniform":
        return round(rng.uniform(lo, hi) / q) * q
    if dist == "log_uniform_values":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if dist == "q_log_uniform_values":
        return round(math.exp(rng.uniform(math.log(lo), math.log(hi))) / q) * q
    if dist == "normal":
        return rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0))
    return spec.get("value")  # constant


def plan_trials(sweep: Sweep, seed: int = 0) -> list[Trial]:
    """The trials of ``sweep``: every combination of the ``values`` in parameter order
    (grid), or ``run_cap`` samples (random, from ``seed``); ``run_cap`` caps a grid too."""
    names = list(sweep.parameters)
    if sweep.method == "grid":
        choices = [spec["values"] if "values" in spec else [spec["value"]]
                   for spec in sweep.parameters.values()]
        combos = [dict(zip(names, combo)) for combo in itertools.product(*choices)]
    else:
        rng = random.Random(seed)
        combos = [{n: _sample(sweep.parameters[n], rng) for n in names}
                  for _ in range(sweep.run_cap or 0)]
    if sweep.run_cap is not None:
        combos = combos[: sweep.run_cap]
    return [Trial(f"trial-{k:03d}", combo) for k, combo in enumerate(combos)]
