"""Another post-processing chain for a trained run: ``dlsuite predict --postprocess CHAIN.json``
and ``--set`` overrides, checked like a config before anything is written (no TensorFlow).

:func:`load_predict_config` reads a run's ``config.json``, replaces its ``postprocess`` chain
by the chain of a file or list (:func:`read_chain`) and applies ``--set`` overrides limited
to what prediction may change (:data:`PREDICT_SECTIONS`), then validates the result exactly
as ``dlsuite config validate`` does, the typed-chain rule included
(:mod:`dlsuite.chains`): a chain that cannot work on the run's model outputs is a
ConfigError naming the step, its JSON path (``$.postprocess[1]``) and the chain's file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from ..config import parse_config
from ..config.overrides import describe_override, normalize_overrides, path_steps
from ..errors import ConfigError, DlsuiteInputError
from ..rundir import RunDir, read_json

__all__ = ["PREDICT_SECTIONS", "PREDICT_KEYS", "PredictConfig", "read_chain", "predict_overrides",
           "load_predict_config", "chain_record",
           "chain_steps_record"]

#: Config sections ``dlsuite predict --set`` may change (the model, its data pipeline and
#: training are the run's own).
PREDICT_SECTIONS = ("postprocess", "inference", "tracking")
#: Single keys outside those sections it may change: how the inputs are checked.
PREDICT_KEYS = ("data.nonfinite_pixels",)


@attrs.frozen
class PredictConfig:
    """A run's config for prediction: ``loaded`` (a LoadedConfig), ``chain_from`` (where
    its chain comes from: ``"run"``, the chain file, or ``"--set"``) and ``chain_changed``
    (the run's chain was replaced or changed: its tuned ``postprocess.json`` does not
    apply)."""

    loaded: Any
    chain_from: str = "run"
    chain_changed: bool = False


def read_chain(chain: Any) -> tuple[list, str]:
    """``(items, source)`` of a post-processing chain in the config's own format: a list of
    steps (``"argmax"`` or ``{"name": "threshold", "threshold": 0.6}``), an object holding
    that list under ``"postprocess"`` (and, in a file ``dlsuite tune --output`` wrote, how
    its values were chosen under ``"tuning"``), a run's ``postprocess.json`` (its tuned
    steps), or the path of a JSON file holding any of them.
    DlsuiteInputError naming the file when it is missing, not JSON or holds something else."""
    source = "the given chain"
    if isinstance(chain, (str, os.PathLike)):
        path = Path(chain).expanduser()
        source = str(path)
        if not path.is_file():
            raise DlsuiteInputError(f"{path}: post-processing chain file not found")
        try:
            chain = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise DlsuiteInputError(f"{path}: cannot read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise DlsuiteInputError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} "
                                    f"column {exc.colno}") from None
    # "tuning": how dlsuite tune chose the values (dlsuite.tuned_chain_file)
    if isinstance(chain, dict) and "postprocess" in chain and set(chain) <= {"postprocess",
                                                                            "tuning"}:
        chain = chain["postprocess"]
    if _is_tuned_record(chain):
        chain = [{"name": step["name"], **step["params"]} for step in chain["steps"]]
    if not isinstance(chain, (list, tuple)):
        raise DlsuiteInputError(
            f"{source}: expected a post-processing chain: a JSON list of steps as the "
            "config's \"postprocess\" (e.g. [\"argmax\", \"label\"]), an object with only "
            "that key (and \"tuning\") or a run's postprocess.json, got "
            f"{type(chain).__name__}")
    return list(chain), source


def _is_tuned_record(data: Any) -> bool:
    """Whether ``data`` is a run's ``postprocess.json`` (:mod:`dlsuite.tuning`): the tuned
    ``steps`` as ``{"name", "params"}`` beside the ``tuned`` values."""
    return isinstance(data, dict) and isinstance(data.get("tuned"), dict) and \
        isinstance(data.get("steps"), list) and \
        all(isinstance(s, dict) and isinstance(s.get("name"), str) and
            isinstance(s.get("params"), dict) for s in data["steps"])


def predict_overrides(overrides: Any) -> dict:
    """``{path: value}`` of ``--set`` overrides for prediction; DlsuiteInputError naming an
    override outside :data:`PREDICT_SECTIONS` and :data:`PREDICT_KEYS`."""
    overrides = normalize_overrides(overrides)
    for key, value in overrides.items():
        steps = path_steps(key, value)
        if steps[0] not in PREDICT_SECTIONS and ".".join(map(str, steps)) not in PREDICT_KEYS:
            raise DlsuiteInputError(
                f"{describe_override(key, value)}: dlsuite predict can change only "
                f"{', '.join(PREDICT_SECTIONS)} keys and {', '.join(PREDICT_KEYS)} (the model "
                "and its data pipeline are the run's own)")
    return overrides


def load_predict_config(run_dir: str | os.PathLike, registry, *, chain: Any = None,
                        overrides: Any = None) -> PredictConfig:
    """The validated config of the run in ``run_dir`` with the post-processing ``chain``
    (see :func:`read_chain`; None keeps the run's) and the ``--set`` ``overrides``
    (:func:`predict_overrides`) applied. A chain that cannot work on the run's model
    outputs (or any other problem it or an override causes) is a ConfigError with every
    problem at its JSON path, the chain's file as its source. DlsuiteInputError when the
    folder holds no run."""
    overrides = predict_overrides(overrides)
    run = RunDir(Path(run_dir))
    if not run.is_run():
        raise DlsuiteInputError(f"{run.root}: not a dlsuite run directory (no config.json)")
    saved = read_json(run.config_json)
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise DlsuiteInputError(f"{run.config_json}: no \"config\" key; not written by dlsuite")
    data = dict(saved["config"])
    source, chain_from = str(run.config_json), "run"
    if chain is not None:
        data["postprocess"], chain_from = read_chain(chain)
    try:
        loaded = parse_config(data, registry, source=source, check_paths=False,
                              overrides=overrides)
    except ConfigError as exc:
        if chain is None:
            raise
        raise ConfigError(exc.problems, f"{chain_from} (as the postprocess of run "
                                        f"{run.root})") from None
    set_chain = any(path_steps(k, v)[0] == "postprocess" for k, v in overrides.items())
    if set_chain and chain is None:
        chain_from = "--set"
    return PredictConfig(loaded, chain_from, chain is not None or set_chain)


def chain_record(ctx, chain: Any = None) -> dict:
    """What ``predict.json`` records of the chain a prediction used: ``steps`` (the chain as
    the config writes it, parameters filled in) and ``file`` (the chain file given, else
    None)."""
    return chain_steps_record(ctx.config, ctx.registry, chain)


def chain_steps_record(config, registry, chain: Any = None) -> dict:
    """:func:`chain_record` of a ``config`` and ``registry`` (no run context)."""
    from ..config.converter import unstructure_config

    path = chain if isinstance(chain, (str, os.PathLike)) else None
    return {"steps": unstructure_config(config, registry)["postprocess"],
            "file": None if path is None else str(Path(path).expanduser().resolve())}
