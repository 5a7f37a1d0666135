"""``dlsuite sweep SWEEP.yaml --wandb``: the sweep run by W&B's own sweep controller.

The sweep file is the same as for a local sweep (:mod:`dlsuite.sweep`); ``method`` may also
be ``bayes`` (W&B's controller picks each trial's parameters from the finished ones). The
sweep is registered with ``wandb.sweep`` (parameter names are the dotted ``--set`` paths, a
nested ``parameters`` block flattened to them, so they equal the keys of the runs' flattened
config) and run by ``wandb.agent`` with a function that runs one trial: an ordinary ``dlsuite
run`` subprocess of ``base`` with the controller's parameters as overrides, in
``OUTPUT/trial-<W&B run id>``, job type ``sweep-trial``, in the W&B group named after the
sweep. The agent passes the trial's W&B run and sweep ids to that process in the environment
(``WANDB_RUN_ID``, ``WANDB_SWEEP_ID``), so the trial's ``wandb.init`` is the sweep's run and
the W&B sweep dashboard shows it.

The sweep ``metric`` is read by W&B from each trial's summary: a name with ``/`` is used as
it is; ``val_*`` (the validation monitor) becomes ``<name>/best``; any other name
``test/<name>`` (``SEG`` -> ``test/SEG``): the stable summary names of
:mod:`dlsuite.wandb_results`.

W&B must be online (``wandb.mode: online`` in the base config or ``WANDB_MODE=online``)
with an API key (``wandb login`` or ``WANDB_API_KEY``) and its server must answer: otherwise
:func:`run_wandb_sweep` stops at once with one line (exit 2), before anything is written.
No TensorFlow in this process.
"""

from __future__ import annotations

import json
import logging
import netrc
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from .config import load_config
from .errors import DlsuiteInputError
from .fileio import write_json_atomic
from .logging.wandb_run import resolve_mode, server_unreachable
from .ownership import OwnedFolder
from .registry import Registry, get_registry
from .sweep import (SWEEP_FILE, Sweep, SweepResult, Trial, _command, _validate, load_sweep,
                    plan_trials, trial_overrides)

__all__ = ["run_wandb_sweep", "run_agent_trial", "wandb_offline_reason", "wandb_sweep_config", "summary_metric",
           "NEEDS_ONLINE"]

log = logging.getLogger("dlsuite")

#: The start of the one line ``--wandb`` stops with when W&B cannot run the sweep.
NEEDS_ONLINE = ("dlsuite sweep --wandb needs W&B online (wandb.mode online or "
                "WANDB_MODE=online, and an API key: wandb login or WANDB_API_KEY)")


def _base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"


def _has_api_key(url: str) -> bool:
    """An API key in ``WANDB_API_KEY`` or, as ``wandb login`` stores it, in the netrc file
    for the server's host. Reads local files only."""
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    host = urlsplit(url).hostname or ""
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def wandb_offline_reason(config_mode: str, *, probe: bool = True) -> str | None:
    """Why W&B cannot run a sweep here (one clause), or None: the effective mode
    (:func:`dlsuite.logging.resolve_mode` of the base config's ``wandb.mode``) is not online,
    there is no API key, or (``probe``) the server does not accept a connection."""
    mode = resolve_mode(config_mode)
    if mode != "online":
        return f"W&B is {mode} here"
    url = _base_url()
    if not _has_api_key(url):
        return f"no API key for {url}"
    if probe:
        why = server_unreachable(url)
        if why is not None:
            return f"the W&B server {url} does not answer ({why})"
    return None


def summary_metric(name: str) -> str:
    """The W&B summary key of the sweep metric ``name`` (module docstring)."""
    if "/" in name:
        return name
    return f"{name}/best" if name.startswith("val_") else f"test/{name}"


def wandb_sweep_config(sweep: Sweep) -> dict:
    """The sweep configuration registered with ``wandb.sweep``: name, method, the metric as a
    summary key, the parameters under their dotted names, and ``run_cap``."""
    config: dict = {"name": sweep.name, "method": sweep.method,
                    "parameters": json.loads(json.dumps(sweep.parameters, default=str))}
    if sweep.metric:
        config["metric"] = {"name": summary_metric(sweep.metric["name"]),
                            "goal": sweep.metric["goal"]}
    if sweep.run_cap is not None:
        config["run_cap"] = sweep.run_cap
    return config


def _trial_count(sweep: Sweep, trials: list[Trial]) -> int:
    return len(trials) if sweep.method == "grid" else int(sweep.run_cap or len(trials))


def _parameters() -> dict:
    """The parameters W&B's controller chose for the agent's current run: the YAML file
    ``WANDB_SWEEP_PARAM_PATH`` the agent writes (``{name: {"value": v}}``)."""
    import yaml

    path = os.environ.get("WANDB_SWEEP_PARAM_PATH")
    if not path:
        raise RuntimeError("no WANDB_SWEEP_PARAM_PATH: not called by wandb.agent")
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in data.items()
            if k != "wandb_version"}


def run_agent_trial(sweep: Sweep, base, out: Path, state: dict, *, quiet: bool = False
                    ) -> dict:
    """Run the trial ``wandb.agent`` started: the parameters W&B's controller chose
    (:func:`_parameters`) as overrides of an ordinary ``dlsuite run`` subprocess in
    ``out/trial-<W&B run id>`` (online W&B; the environment's ``WANDB_RUN_ID`` and
    ``WANDB_SWEEP_ID`` make its W&B run the sweep's). Appends the trial's entry to
    ``state["trials"]``, writes ``out/sweep.json`` before and after, returns the entry;
    RuntimeError (W&B marks the run failed) when the trial fails."""
    run_id = os.environ.get("WANDB_RUN_ID") or f"{len(state['trials']):03d}"
    trial = Trial(f"trial-{run_id}", _parameters())
    overrides = {**trial_overrides(sweep, trial, out, base), "wandb.mode": "online"}
    entry = {"name": trial.name, "overrides": trial.overrides, "status": "running",
             "exit_code": None, "run_dir": str(out / trial.name), "wandb_run_id": run_id}
    state["trials"].append(entry)
    write_json_atomic(out / SWEEP_FILE, state)
    proc = subprocess.run(_command(sweep, overrides, []),
                          env={**os.environ, "WANDB_MODE": "online"},
                          stdout=subprocess.DEVNULL if quiet else None)
    entry.update(exit_code=proc.returncode,
                 status="finished" if proc.returncode == 0 else "failed")
    write_json_atomic(out / SWEEP_FILE, state)
    if proc.returncode != 0:
        raise RuntimeError(f"{trial.name} exited with {proc.returncode}")
    return entry


def run_wandb_sweep(path: str | os.PathLike, *, output: str | os.PathLike | None = None,
                    quiet: bool = False, registry: Registry | None = None) -> SweepResult:
    """Run the sweep file at ``path`` with W&B's sweep controller (module docstring) into
    ``output`` (default ``runs/<sweep name>``). DlsuiteInputError before anything is written
    when W&B is not online with an API key and an answering server (:data:`NEEDS_ONLINE`),
    for a bad sweep file or parameter, or an output folder holding anything else."""
    registry = registry or get_registry()
    sweep = load_sweep(path, methods=("grid", "random", "bayes"))
    base_cfg = load_config(sweep.base, registry, check_paths=False).config
    reason = wandb_offline_reason(base_cfg.wandb.mode)
    if reason is not None:
        raise DlsuiteInputError(f"{NEEDS_ONLINE}; {reason}")
    out = Path(output if output is not None else Path("runs") / sweep.name).expanduser().resolve()
    trials = plan_trials(sweep, seed=base_cfg.seed or 0)  # validated; W&B picks the real ones
    if not trials:
        raise DlsuiteInputError(f"{sweep.path}: parameters: the sweep has no trial")
    base = _validate(sweep, trials, out, registry)
    OwnedFolder(out, "sweep").claim(overwrite=False, written=[SWEEP_FILE, "trial-*"],
                                    holds="a sweep", hint="choose another --output")
    import wandb

    project, entity = base_cfg.wandb.project, base_cfg.wandb.entity
    sweep_id = wandb.sweep(sweep=wandb_sweep_config(sweep), project=project, entity=entity)
    state = {"sweep": json.loads(json.dumps(sweep.data, default=str)), "name": sweep.name,
             "base": str(sweep.base), "method": sweep.method, "metric": sweep.metric,
             "controller": "wandb", "wandb_sweep_id": sweep_id, "project": project,
             "entity": entity, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "trials": []}
    write_json_atomic(out / SWEEP_FILE, state)
    log.info("W&B sweep %s registered in project %s", sweep_id, project)

    def one_trial() -> None:  # called by wandb.agent once per trial
        run_agent_trial(sweep, base, out, state, quiet=quiet)

    wandb.agent(sweep_id, function=one_trial, project=project, entity=entity,
                count=_trial_count(sweep, trials))
    return SweepResult(out, sweep.name, state["trials"], sweep.metric)
