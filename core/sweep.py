"""``dlsuite sweep SWEEP.yaml``: a hyper-parameter sweep of ordinary runs, no server needed.

The sweep file uses the W&B sweep configuration format -- ``method`` (``grid`` | ``random``),
``metric`` (``{name, goal: minimize | maximize}``), ``parameters`` (each with ``value``,
``values`` (+ ``probabilities``), or ``distribution`` with ``min``/``max``; nested
``parameters`` blocks join their names with dots), ``run_cap``, ``name`` -- plus ``base``: the
config every trial starts from (relative to the sweep file). A parameter name is a dotted
config path, as in ``--set`` (``model.n_filters``, ``datagen.augmentation[0].rotation``).

Every trial is an ordinary ``dlsuite run`` of ``base`` with the trial's parameters as
overrides, in its own run directory ``OUTPUT/trial-NNN`` and in the W&B group named after
the sweep, its overrides as tags. All trials are planned and validated before the first
starts (a bad parameter stops the sweep naming it, exit 2, before anything is written); the
plan and each trial's status live in ``OUTPUT/sweep.json``, so ``resume`` skips finished
trials and resumes an interrupted one from its saved state. Trials run as ``dlsuite run``
subprocesses, one after another or ``parallel`` at a time (sharing the cores:
``DLSUITE_THREADS``, :mod:`dlsuite.threads`); SIGINT/SIGTERM are passed on to
them (they save a resumable state) and no new trial starts. No TensorFlow in this process.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import attrs

from .config import LoadedConfig, load_config
from .errors import DlsuiteInputError
from .fileio import write_json_atomic
from .logging.wandb_run import JOB_SWEEP_TRIAL
from . import folder_lock
from .ownership import OwnedFolder
from .registry import Registry, get_registry
from .rundir import RunDir
from .signal_handlers import install
from .sweep_file import Sweep, Trial, _bad, load_sweep, plan_trials
from .threads import threads_from_env

__all__ = ["Sweep", "Trial", "SweepResult", "load_sweep", "plan_trials", "run_sweep",
           "SWEEP_FILE"]

log = logging.getLogger("dlsuite")

#: The plan and trial statuses of a sweep, in its output folder.
SWEEP_FILE = "sweep.json"
_TAG_LENGTH = 64  # W&B refuses longer tags


@attrs.frozen
class SweepResult:
    """What :func:`run_sweep` returns."""

    output: Path
    name: str
    trials: list   # {"name", "overrides", "status", "exit_code", "run_dir"} per trial
    metric: dict | None
    best: dict | None = None  # {"trial", "metric", "value"}: the best finished trial


def _tags(overrides: dict) -> list[str]:
    tags = []
    for key, value in overrides.items():
        tag = f"{key}={value if isinstance(value, str) else json.dumps(value)}"
        tags.append(tag[:_TAG_LENGTH])
    return tags


def trial_overrides(sweep: Sweep, trial: Trial, output: Path, base: LoadedConfig) -> dict:
    """The overrides of one trial run: its parameters, its own run directory, its name, the
    sweep's W&B group, the parameters as tags (after the base config's own tags) and the
    W&B job type ``sweep-trial``."""
    return {**trial.overrides, "output_dir": str(output / trial.name),
            "name": f"{sweep.name}-{trial.name}", "wandb.group": sweep.name,
            "wandb.tags": list(base.config.wandb.tags) + _tags(trial.overrides),
            "wandb.job_type": JOB_SWEEP_TRIAL}


#: Failing trials named one by one in the error (the count says how many there are).
_TRIALS_LISTED = 10


def _validate(sweep: Sweep, trials: list[Trial], output: Path, registry: Registry
              ) -> LoadedConfig:
    """Every trial's config validated (data paths too) before anything is written, with the
    rules that read the data (:data:`dlsuite.config.rules.DATA_RULES`: enough training
    samples for the batch, a patch the frames can fill; the base's data paths are checked
    once). All the failing trials are reported at once, each line naming the trial, its
    parameters and each problem's path (at most :data:`_TRIALS_LISTED` lines; the count
    says how many)."""
    from .config.rules import data_problems
    from .errors import ConfigError

    from .compare import metrics_a_run_records, named_metric

    base = load_config(sweep.base, registry)
    failing, recorded = [], []
    for trial in trials:
        try:
            loaded = load_config(sweep.base, registry, check_paths=False,
                                 overrides=trial_overrides(sweep, trial, output, base))
            found = data_problems(loaded.config, registry)
            recorded.append(metrics_a_run_records(loaded.config))
        except ConfigError as exc:
            found = exc.problems
        if found:
            problems = "; ".join(f"{path}: {msg}" for path, msg in found)
            failing.append(f"{trial.name} ({', '.join(_tags(trial.overrides))}): {problems}")
    if failing:
        lines = [f"{sweep.path}: {len(failing)} of {len(trials)} trial(s) have config errors "
                 f"(base {sweep.base}):", *(f"  {line}" for line in failing[:_TRIALS_LISTED])]
        if len(failing) > _TRIALS_LISTED:
            lines.append(f"  ... and {len(failing) - _TRIALS_LISTED} more")
        raise DlsuiteInputError("\n".join(lines))
    wanted = sweep.metric["name"] if sweep.metric else None
    if wanted and not any(named_metric(wanted, names) for names in recorded):
        # every trial would run, then the best could not be named
        raise DlsuiteInputError(f"{sweep.path}: metric: {wanted!r} is not a value the trials "
                                f"record; choose one of {', '.join(recorded[0])}")
    return base


def _load_state(output: Path, sweep: Sweep, trials: list[Trial]) -> dict:
    path = output / SWEEP_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DlsuiteInputError(f"{path}: cannot read the sweep state ({exc}); nothing to "
                                "resume") from None
    if state.get("sweep") != json.loads(json.dumps(sweep.data, default=str)):
        raise DlsuiteInputError(f"{output}: the sweep file changed since this sweep started; "
                                "resume it with the same file, or choose another --output")
    return state


def _command(sweep: Sweep, overrides: dict, flags: list[str]) -> list[str]:
    sets = [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    return [sys.executable, "-m", "dlsuite.cli", "run", str(sweep.base), "--quiet", *flags,
            *itertools.chain.from_iterable(("--set", s) for s in sets)]


def _flags(run_dir: Path) -> list[str]:
    """How a trial's run directory is (re)started: fresh, ``--resume`` from its saved
    state, or ``--overwrite`` of what an earlier start left without a state."""
    run = RunDir(run_dir)
    if run.resume_state.is_file():
        return ["--resume"]
    if OwnedFolder(run_dir, "run").read() is not None:
        return ["--overwrite"]
    return []


def _trial_env(parallel: int) -> dict[str, str]:
    """What the trials' environment adds: trials side by side share the cores
    (``DLSUITE_THREADS``, :mod:`dlsuite.threads`) unless the user set it."""
    from .threads import THREADS_ENV, share_of_cores

    if parallel < 2 or threads_from_env() is not None:
        return {}
    threads = share_of_cores(parallel)
    log.info("%d trials side by side: %d thread(s) each (%s)", parallel, threads, THREADS_ENV)
    return {THREADS_ENV: str(threads)}


_STATUS = {0: "finished", 130: "interrupted", 143: "interrupted", 2: "bad input"}


def run_sweep(path: str | os.PathLike, *, output: str | os.PathLike | None = None,
              parallel: int = 1, resume: bool = False, quiet: bool = False,
              on_trial: Callable[[dict], None] | None = None,
              registry: Registry | None = None) -> SweepResult:
    """Run the sweep of the file at ``path`` (see the module docstring) into ``output``
    (default ``runs/<sweep name>``). Returns the trials with their status (``finished``,
    ``failed``, ``bad input``, ``interrupted``, ``pending``; ``skipped: True`` on trials a
    resume found finished) and the best trial by the sweep's metric. ``on_trial`` is called with each
    trial's entry when it starts and ends. DlsuiteInputError (before any trial) for a bad
    sweep file or parameter, an output folder holding another sweep (or anything not
    written by dlsuite) without ``resume``, or ``resume`` of a changed sweep."""
    if parallel < 1:
        raise DlsuiteInputError(f"--parallel {parallel}: must be at least 1")
    threads_from_env()  # a bad DLSUITE_THREADS stops the sweep, not each trial
    registry = registry or get_registry()
    sweep = load_sweep(path)
    out = Path(output if output is not None else Path("runs") / sweep.name).expanduser().resolve()
    base_seed = load_config(sweep.base, registry, check_paths=False).config.seed
    trials = plan_trials(sweep, seed=base_seed or 0)
    if not trials:
        raise _bad(sweep.path, "parameters", "the sweep has no trial")
    base = _validate(sweep, trials, out, registry)
    folder = OwnedFolder(out, "sweep")
    lock = folder_lock.LazyLock(out, "--output")  # not while another process runs it
    try:
        if resume:
            if folder.read() is None:
                raise DlsuiteInputError(f"{out}: no sweep to resume here; run without --resume")
            lock.acquire()
            state = _load_state(out, sweep, trials)
            trials = [Trial(t["name"], t["overrides"]) for t in state["trials"]]
        else:
            folder.claim(overwrite=False, written=[SWEEP_FILE, "trial-*"], holds="a sweep",
                         hint="pass --resume to continue it, or choose another --output",
                         before_write=lock.acquire)
            state = {"sweep": json.loads(json.dumps(sweep.data, default=str)),
                     "name": sweep.name, "base": str(sweep.base), "method": sweep.method, "metric": sweep.metric,
                     "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "trials": [{"name": t.name, "overrides": t.overrides, "status": "pending",
                                 "exit_code": None, "run_dir": str(out / t.name)}
                                for t in trials]}
            write_json_atomic(out / SWEEP_FILE, state)
        entries = state["trials"]
        todo = [e for e in entries if e["status"] != "finished"]
        for e in entries:
            if e["status"] == "finished":
                e["skipped"] = True
        running: list[tuple[dict, subprocess.Popen]] = []
        stop: list[int] = []
        trial_env = _trial_env(parallel)

        def forward(signum, frame):  # the trials save a resumable state; no new trial starts
            if not stop:
                log.warning("%s: stopping the sweep after the running trial(s) saved their state",
                            signal.Signals(signum).name)
            stop.append(signum)
            for _, proc in running:
                if proc.poll() is None:
                    proc.send_signal(signum)

        def save() -> None:
            write_json_atomic(out / SWEEP_FILE, state)

        handlers = {}
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = install(signum, forward)
        except ValueError:  # not the main thread: no signal handling
            handlers = {}
        try:
            queue = list(todo)
            while queue or running:
                while queue and len(running) < parallel and not stop:
                    entry = queue.pop(0)
                    trial = Trial(entry["name"], entry["overrides"])
                    cmd = _command(sweep, trial_overrides(sweep, trial, out, base),
                                   _flags(out / trial.name))
                    entry.update(status="running", exit_code=None)
                    save()
                    if on_trial:
                        on_trial(dict(entry))
                    # quiet or side by side: the trial's own lines are kept, not shown (a file,
                    # not a pipe, so a talkative trial never blocks on a full pipe)
                    hidden = quiet or parallel > 1
                    errors = tempfile.TemporaryFile("w+", encoding="utf-8") if hidden else None
                    proc = subprocess.Popen(cmd, env={**os.environ, **trial_env},
                                            stdout=subprocess.DEVNULL if hidden else None,
                                            stderr=errors, text=True, start_new_session=True)
                    proc.errors = errors  # type: ignore[attr-defined]
                    running.append((entry, proc))
                if stop and queue:
                    queue.clear()
                time.sleep(0.2)
                for item in list(running):
                    entry, proc = item
                    if proc.poll() is None:
                        continue
                    running.remove(item)
                    err = ""
                    if proc.errors is not None:  # type: ignore[attr-defined]
                        proc.errors.seek(0)  # type: ignore[attr-defined]
                        err = proc.errors.read()  # type: ignore[attr-defined]
                        proc.errors.close()  # type: ignore[attr-defined]
                    entry.update(exit_code=proc.returncode,
                                 status=_STATUS.get(proc.returncode, "failed"))
                    if proc.returncode not in (0, 130, 143) and err:
                        entry["error"] = err.strip().splitlines()[-1][:500]
                    save()
                    if on_trial:
                        on_trial(dict(entry))
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            for entry, proc in running:  # an unexpected error here: stop the trials cleanly
                proc.send_signal(signal.SIGTERM)
                proc.wait()
                entry.update(status="interrupted", exit_code=proc.returncode)
            if running:
                save()
        result = SweepResult(out, sweep.name, entries, sweep.metric, _best(out, entries, sweep))
        if stop:
            raise SweepInterrupted(stop[0], result, sweep.path)
        return result
    finally:
        lock.release()


def _best(out: Path, entries: list, sweep: Sweep) -> dict | None:
    """The best finished trial by the sweep's metric (None without a metric or finished
    trial, or when no trial has the metric)."""
    from .compare import compare_runs

    done = [out / e["name"] for e in entries if e["status"] == "finished"]
    if not sweep.metric or not done:
        return None
    try:
        comparison = compare_runs(done, sweep.metric["name"], goal=sweep.metric["goal"])
    except DlsuiteInputError as exc:
        log.warning("sweep metric: %s", exc)
        return None
    top = comparison.runs[0]
    value = top.metrics.get(comparison.sort_by)
    if value is None:
        return None
    return {"trial": top.name, "metric": comparison.sort_by, "value": value,
            "overrides": next(e["overrides"] for e in entries if e["name"] == top.name)}


class SweepInterrupted(Exception):
    """The sweep stopped on SIGINT/SIGTERM; ``exit_code`` 130/143, ``result`` the trials."""

    def __init__(self, signum: int, result: SweepResult, path: Path):
        self.exit_code = 128 + int(signum)
        self.result = result
        super().__init__(f"sweep interrupted by {signal.Signals(signum).name}; continue with: "
                         f"dlsuite sweep {path} -o {result.output} --resume")
