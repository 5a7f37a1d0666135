"""``dlsuite compare RUN_DIR... | SWEEP_DIR``: runs side by side, without a server (a run
without ``metrics.json`` yet, still training or interrupted, has its config's monitor at its
best so far in ``history.csv``).

Each run is read from its own files: ``config.json`` (the resolved config, the ``--set``
overrides and the plugin provenance, compared as keys ``provenance.<choice>.version`` etc., so
a plugin of another distribution or version shows among the differing keys), ``metrics.json`` (training: monitor, best, epochs; test metrics of ``dlsuite
run``), ``test/<weights>/metrics.json`` (``dlsuite test``) and ``history.csv`` (the curves).
:func:`compare_runs` returns the config keys whose values differ between the runs, and per
run the metrics: ``<monitor>/best`` and ``<monitor>/final`` (the validation monitor at its best
and at the last epoch) and ``test/<name>`` for every test metric (SEG, DET, TRA, f1, ...).
Runs are sorted by one metric, best first. :func:`plot_comparison` draws the validation curves
of all runs on shared axes and a bar chart of the test metrics (matplotlib, imported only
there). No TensorFlow.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import attrs

from .errors import DlsuiteInputError
from .rundir import flatten_keys
from .rundir import RunDir, read_json

__all__ = ["RunSummary", "Comparison", "find_runs", "read_run", "compare_runs",
           "plot_comparison", "run_status", "IGNORED_KEYS", "STATUSES"]

#: Config keys that name or place a run rather than change it: never listed as differing.
IGNORED_KEYS = ("output_dir", "schema_version", "name", "wandb.tags", "wandb.group")
_HEADLINE = ("test/SEG", "test/DET", "test/TRA", "test/f1")


@attrs.frozen
class RunSummary:
    """One run as the comparison sees it."""

    name: str
    path: Path
    config: dict      # flattened resolved config {dotted key: value} + provenance.* keys
    overrides: dict   # the --set overrides recorded in config.json
    metrics: dict     # {metric name: number or None}
    history: list     # history.csv rows (numbers)
    monitor: str | None
    mode: str | None  # "min" | "max" of the monitor
    status: str = "finished"  # a key of STATUSES


#: What a run's files say about it (:func:`run_status`), as ``compare`` shows it.
STATUSES = {
    "finished": "its training ended (metrics.json)",
    "running": "another dlsuite process is writing it now",
    "resumable": "stopped with a saved state: dlsuite run CONFIG --resume continues it",
    "stopped": "stopped before its first epoch ended (nothing to resume)",
}


def run_status(run: RunDir) -> str:
    """The status of the run directory ``run`` (a key of :data:`STATUSES`): ``running``
    while another process holds its lock, else ``finished`` once training wrote
    ``metrics.json``, else ``resumable`` with a saved state, else ``stopped`` (killed or
    failed before its first epoch ended)."""
    from .folder_lock import in_use

    if in_use(run.root):
        return "running"
    if run.metrics_json.is_file():
        return "finished"
    return "resumable" if run.resume_state.is_file() else "stopped"


@attrs.frozen
class Comparison:
    """What :func:`compare_runs` returns; :meth:`to_json` is what ``--json`` prints."""

    runs: list               # RunSummary, sorted by ``sort_by`` (best first; None last)
    differing_keys: list     # dotted config keys whose values differ between the runs
    metric_names: list       # every metric of any run, in a stable order
    sort_by: str | None

    def headline_metrics(self) -> list[str]:
        """The metrics a table shows: the validation monitor (best, final), test SEG, DET,
        TRA and f1, and the sort metric."""
        wanted = [m for m in self.metric_names
                  if m.endswith(("/best", "/final")) or m in _HEADLINE]
        if self.sort_by and self.sort_by not in wanted:
            wanted.append(self.sort_by)
        return wanted

    def unfinished(self) -> dict[str, str]:
        """``{status: what it means}`` (:data:`STATUSES`) of the runs not finished, in the
        runs' order; empty when every run finished."""
        return {r.status: STATUSES[r.status] for r in self.runs if r.status != "finished"}

    def to_json(self) -> dict:
        """``{"runs": [{name, path, status, config: {differing key: value}, overrides}],
        "differing_keys": [...], "metrics": {run name: {metric: value}}, "sort_by"}``."""
        return {
            "runs": [{"name": r.name, "path": str(r.path), "status": r.status,
                      "config": {k: r.config.get(k) for k in self.differing_keys},
                      "overrides": r.overrides} for r in self.runs],
            "differing_keys": list(self.differing_keys),
            "metrics": {r.name: {m: r.metrics.get(m) for m in self.metric_names}
                        for r in self.runs},
            "sort_by": self.sort_by,
        }


def find_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The run directories of ``paths``: a folder holding ``config.json`` is a run; any
    other folder (a sweep) stands for its sub-folders that are runs. DlsuiteInputError naming
    a path that is neither, and when fewer than one run is found."""
    runs: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_dir():
            raise DlsuiteInputError(f"{path}: run or sweep folder not found")
        if RunDir(path).is_run():
            runs.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.is_dir() and RunDir(p).is_run())
        if not found:
            raise DlsuiteInputError(f"{path}: neither a run directory (no config.json) nor a "
                                    "folder of runs")
        runs += found
    return list(dict.fromkeys(p.resolve() for p in runs))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _history(path: Path) -> list[dict]:
    """The rows of a run's ``history.csv`` (numbers; [] without it); DlsuiteInputError
    naming a damaged one."""
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return [{k: _number(v) for k, v in row.items() if isinstance(k, str)}
                    for row in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DlsuiteInputError(f"{path}: damaged history ({exc}); move the file aside to "
                                "compare the run without its curves") from None


def _test_metrics(run: RunDir, metrics: dict) -> dict:
    test = metrics.get("test") if isinstance(metrics.get("test"), dict) else {}
    if not test:  # no test of `dlsuite run`: the latest `dlsuite test` (best before last)
        for weights in ("best", "last"):
            path = run.root / "test" / weights / "metrics.json"
            if path.is_file():
                data = read_json(path)
                test = data.get("test") or {} if isinstance(data, dict) else {}
                break
    return {f"test/{k}": _number(v) for k, v in test.items() if _number(v) is not None}


def _monitor_of_history(config: dict, history: list[dict]) -> tuple[str | None, str | None]:
    """The monitor (and mode) of a run without ``metrics.json``, from its config and the
    columns of its ``history.csv``: ``train.monitor``, else its training twin (a run
    without validation), else ``loss``; mode ``auto`` is ``min`` for losses, else ``max``."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    wanted = str(train.get("monitor") or "val_jaccard")
    columns = set(history[0])
    candidates = (wanted, wanted[4:] if wanted.startswith("val_") else wanted, "loss")
    monitor = next((c for c in candidates if c in columns), None)
    if monitor is None:
        return None, None
    mode = train.get("monitor_mode") if monitor == wanted else "auto"
    if mode not in ("min", "max"):
        mode = "min" if "loss" in monitor else "max"
    return monitor, mode


def read_run(path: str | os.PathLike, name: str | None = None) -> RunSummary:
    """The :class:`RunSummary` of the run directory ``path`` (DlsuiteInputError when it
    holds no dlsuite ``config.json``)."""
    run = RunDir(Path(path))
    data = read_json(run.config_json) if run.is_run() else None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise DlsuiteInputError(f"{run.config_json}: not a dlsuite run's config.json")
    metrics = read_json(run.metrics_json) if run.metrics_json.is_file() else {}
    metrics = metrics if isinstance(metrics, dict) else {}
    train = metrics.get("train") if isinstance(metrics.get("train"), dict) else {}
    history = _history(run.history_csv)
    monitor, mode = train.get("monitor"), train.get("mode")
    values: dict[str, float | None] = {}
    if not monitor and history:  # still training or interrupted: no metrics.json yet
        monitor, mode = _monitor_of_history(data["config"], history)
        if monitor:
            column = [row[monitor] for row in history if row.get(monitor) is not None]
            train = {"best": (min if mode == "min" else max)(column, default=None)}
    if monitor:
        values[f"{monitor}/best"] = _number(train.get("best"))
        final = history[-1].get(monitor) if history else (train.get("last") or {}).get(monitor)
        values[f"{monitor}/final"] = _number(final)
    values.update(_test_metrics(run, metrics))
    config = flatten_keys(data["config"])
    if isinstance(data.get("provenance"), dict):  # which plugin version made the run
        # the choice's name is the config's own key (loss.name, ...): not repeated here
        config.update({k: v for k, v in flatten_keys({"provenance": data["provenance"]}).items()
                       if not k.endswith(".name")})
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise DlsuiteInputError(f"{run.config_json}: \"overrides\" is not an object of "
                                "config keys and values: not a config.json dlsuite wrote")
    return RunSummary(name or run.root.name, run.root, config, dict(overrides), values,
                      history, monitor, mode, run_status(run))


def _differing(runs: list[RunSummary]) -> list[str]:
    keys = sorted({k for r in runs for k in r.config})
    out = []
    for key in keys:
        if any(key == p or key.startswith(p + ".") for p in IGNORED_KEYS):
            continue
        values = {json.dumps(r.config.get(key), sort_keys=True) for r in runs}
        if len(values) > 1:
            out.append(key)
    # another plugin chosen (``X.name`` differs): its parameters are not listed beside it
    switched = [k[: -len(".name")] for k in out if k.endswith(".name")]
    return [k for k in out if k.endswith(".name")
            or not any(k.startswith(s + ".") for s in switched)]


def named_metric(metric: str, names: Iterable[str]) -> str | None:
    """The name among ``names`` (a run's metric names) that ``metric`` stands for: itself,
    ``test/<metric>`` or ``<metric>/best``, in any case; None when none is."""
    lowered = {n.lower(): n for n in names}
    for candidate in (metric, f"test/{metric}", f"{metric}/best"):
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    return None


def metrics_a_run_records(config) -> list[str]:
    """The metric names a finished run of the (structured) ``config`` has in a comparison:
    its monitor's best and final values and, with a test set, the test scores."""
    names = [f"{config.train.monitor}/best", f"{config.train.monitor}/final"]
    if config.data.test is not None:
        names += [f"test/{k}" for k in ("foreground_jaccard", "foreground_dice",
                                        *config.evaluation.metrics)]
    return names


def _resolve_metric(metric: str | None, names: list[str], runs: list[RunSummary]) -> str | None:
    if metric is None:  # the validation monitor at its best, else the first test metric
        monitors = [f"{r.monitor}/best" for r in runs if r.monitor]
        return monitors[0] if monitors else (names[0] if names else None)
    found = named_metric(metric, names)
    if found is not None:
        return found
    raise DlsuiteInputError(f"--metric {metric}: no run has it; choose one of "
                            f"{', '.join(names) or '(none: the runs have no metrics)'}")


def _lower_is_better(metric: str, runs: list[RunSummary]) -> bool:
    monitor = metric.rsplit("/", 1)[0]
    for r in runs:
        if r.monitor == monitor and r.mode in ("min", "max"):
            return r.mode == "min"
    return "loss" in metric.lower()


def compare_runs(paths: Iterable[str | os.PathLike], metric: str | None = None,
                 goal: str | None = None) -> Comparison:
    """Compare the runs of ``paths`` (run directories, or folders of runs such as a sweep's
    output): the differing config keys and every run's metrics, sorted by ``metric`` (a
    name of the table such as ``test/SEG``, or short: ``SEG``, ``val_loss``; default: the
    validation monitor at its best), best first, runs without it last. Two runs of the same
    folder name are named by their parent too. ``goal`` (``minimize`` / ``maximize``, as a
    sweep's metric) fixes the direction, otherwise the monitor's mode or, for other metrics,
    lower is better only for losses. DlsuiteInputError for a path that holds no run or an
    unknown ``metric``."""
    dirs = find_runs(paths)
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):
        names = [f"{d.parent.name}/{d.name}" for d in dirs]
    runs = [read_run(d, n) for d, n in zip(dirs, names)]
    metric_names = list(dict.fromkeys(m for r in runs for m in r.metrics))
    sort_by = _resolve_metric(metric, metric_names, runs)
    if sort_by is not None:
        lower = goal == "minimize" if goal else _lower_is_better(sort_by, runs)
        sign = 1.0 if lower else -1.0
        runs.sort(key=lambda r: (r.metrics.get(sort_by) is None,
                                 sign * (r.metrics.get(sort_by) or 0.0)))
    return Comparison(runs, _differing(runs), metric_names, sort_by)


def run_styles(n: int) -> list[tuple[tuple, str, str]]:
    """A ``(colour, marker, hatch)`` for each of ``n`` runs, no two alike: the colours of
    ``tab10`` (``tab20`` beyond 10 runs), then again with another marker and hatch for each
    further round of colours."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    markers, hatches = "osD^v<>ph*", ("", "//", "..", "xx", "\\\\", "--", "++", "oo", "||", "**")
    return [(cmap(k % cmap.N), markers[k // cmap.N % len(markers)],
             hatches[k // cmap.N % len(hatches)]) for k in range(n)]


def plot_comparison(comparison: Comparison, output: str | os.PathLike) -> Path:
    """A PNG at ``output``: left, every run's validation curves (the ``val_*`` columns of
    history.csv; the monitor when there are several) on shared axes; right, the test metrics
    of every run as grouped bars. Each run has its own colour, marker and hatch
    (:func:`run_styles`) and one legend beside both panels names them. Written atomically;
    returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    from .fileio import atomic_write

    runs = comparison.runs
    styles = run_styles(len(runs))
    monitors = list(dict.fromkeys(r.monitor for r in runs if r.monitor))
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(12, 4.5))
    dashes = ("-", "--", ":", "-.")
    for r, (colour, marker, _) in zip(runs, styles):
        columns = [c for c in monitors if any(row.get(c) is not None for row in r.history)]
        for k, column in enumerate(columns or [c for c in (r.history[0] if r.history else {})
                                               if c.startswith("val_")][:1]):
            epochs = [row.get("epoch") for row in r.history]
            curves.plot(epochs, [row.get(column) for row in r.history], marker=marker,
                        markersize=3, color=colour, linestyle=dashes[k % len(dashes)])
    curves.set_xlabel("epoch")
    curves.set_ylabel(", ".join(monitors) or "validation")
    curves.set_title("validation curves" + (" (" + ", ".join(
        f"{m}: {d}" for m, d in zip(monitors, ("solid", "dashed", "dotted", "dash-dot")))
        + ")" if len(monitors) > 1 else ""))
    tests = [m for m in comparison.metric_names if m.startswith("test/")]
    if tests:
        width = 0.8 / max(len(runs), 1)
        x = np.arange(len(tests))
        for k, (r, (colour, _, hatch)) in enumerate(zip(runs, styles)):
            values = [r.metrics.get(m) if r.metrics.get(m) is not None else np.nan for m in tests]
            bars.bar(x + k * width - 0.4 + width / 2, values, width, color=colour, hatch=hatch,
                     edgecolor="white" if hatch else None, linewidth=0)
        bars.set_xticks(x, [m[len("test/"):] for m in tests], rotation=30, ha="right")
        bars.set_title("test metrics")
    else:
        bars.text(0.5, 0.5, "no test metrics", ha="center", va="center")
        bars.set_axis_off()
    if runs:
        handles = [Line2D([], [], color=c, marker=m, markersize=5) for c, m, _ in styles]
        fig.legend(handles, [r.name for r in runs], loc="center left", fontsize="small",
                   bbox_to_anchor=(1.0, 0.5), ncols=1 + (len(runs) - 1) // 25)
    fig.tight_layout()
    try:
        return atomic_write(output, lambda tmp: fig.savefig(tmp, format="png", dpi=100,
                                                            bbox_inches="tight"))
    finally:
        plt.close(fig)
