"""``dlsuite test``, ``dlsuite compare`` and ``dlsuite sweep``: comparing runs.

``test`` evaluates a finished run without training; ``compare`` tabulates the config keys
that differ between runs and their metrics (``--json``: ``runs``, ``differing_keys``,
``metrics``; ``--plot``: validation curves and test bars); ``sweep`` runs a W&B-format sweep
of ordinary runs. Importing this module imports no TensorFlow.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from dlsuite import api
from dlsuite.errors import DlsuiteInputError

from ._output import console_logging, err, say, table_console, test_metric_rows

__all__ = ["test", "compare", "sweep"]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else json.dumps(value)


def _shared_folder(values: list[str], key: str) -> tuple[str, list[str]]:
    """``(header, values)`` of a column: paths that differ below a common folder are shown
    relative to it, the folder under the key (a long absolute prefix folded each path
    mid-word); other values as they are."""
    import os

    paths = [v for v in values if v != "-"]
    if len(paths) < 2 or not all(os.path.isabs(v) for v in paths):
        return key, values
    common = os.path.commonpath(paths)
    if len(common) < 8 or common in paths:
        return key, values
    return (f"{key} (in {common}{os.sep})",
            [v if v == "-" else os.path.relpath(v, common) for v in values])


@click.command("test")
@click.argument("target", type=click.Path(exists=True))
@click.option("--weights", type=click.Choice(["best", "last"]), default="best",
              show_default=True, help="The checkpoint of the run to test.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a value of CONFIG (repeatable), as with dlsuite run.")
@click.option("--quiet", "-q", is_flag=True,
              help="Warnings and errors only: no table (the metrics are in RUN/test/WEIGHTS/"
                   "metrics.json, or printed with --json).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def test(target: str, weights: str, overrides: tuple[str, ...], quiet: bool,
         as_json: bool) -> None:
    """Predict and evaluate the test set of a finished run (TARGET: its run directory, or
    the CONFIG whose output_dir holds it) without training. Results go into
    RUN/test/WEIGHTS/."""
    with console_logging(quiet):
        result = api.test_run(target, weights=weights, quiet=quiet, overrides=list(overrides))
    if as_json:
        click.echo(json.dumps(result.metrics, indent=2, default=str))
        return
    if quiet:
        return
    table = Table(title=f"test of {result.run_dir} ({result.checkpoint.name})",
                  title_justify="left", show_header=False)
    for row in test_metric_rows(result.metrics["test"]):
        table.add_row(*row)
    for note in result.metrics.get("notes", []):
        table.add_row("note", note)
    table.add_row("results", str(result.results))
    table_console().print(table)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--metric", help="Sort by this metric (e.g. SEG, test/TRA, val_loss); default: "
                               "the validation monitor at its best.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: runs, differing_keys, metrics (and sort_by).")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Write the validation curves and test metrics of the runs to this PNG.")
def compare(runs: tuple[str, ...], metric: str | None, as_json: bool, plot: str | None) -> None:
    """Compare runs: RUN_DIR... or a SWEEP_DIR (a folder of runs). Shows the config keys
    that differ between them and their final and best metrics, best run first (a run still
    training or interrupted: its monitor's best so far, from history.csv), and the status of
    runs not finished (running, resumable, stopped)."""
    comparison = api.compare(list(runs), metric=metric, plot=plot)
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=2, default=str))
        return
    title = f"{len(comparison.runs)} run(s), sorted by {comparison.sort_by}"
    if comparison.sort_by is None:  # a title wider than the table would wrap word by word
        say(err, f"{len(comparison.runs)} run(s); none has metrics yet (no history.csv or "
                 "metrics.json)")
    table = Table(title=title if comparison.sort_by else None, title_justify="left")
    table.add_column("run", style="bold")
    # a status column only when a run is not finished (running, resumable, stopped)
    shown = [r.status for r in comparison.runs] if comparison.unfinished() else []
    if shown:
        table.add_column("status")
    columns = []
    for key in comparison.differing_keys:
        header, values = _shared_folder([_fmt(r.config.get(key)) for r in comparison.runs], key)
        table.add_column(header)
        columns.append(values)
    metrics = comparison.headline_metrics()
    for name in metrics:
        table.add_column(name, justify="right")
    for i, r in enumerate(comparison.runs):
        table.add_row(r.name, *shown[i:i + 1], *(values[i] for values in columns),
                      *(_fmt(r.metrics.get(m)) for m in metrics))
    width = max(120, 18 * (1 + len(comparison.differing_keys) + len(metrics) + bool(shown)))
    table_console(width=width).print(table)
    for status, meaning in comparison.unfinished().items():
        say(err, f"{status}: {meaning}")
    if plot:
        say(err, (f"wrote {plot}", "green"))


def _trial_line(entry: dict) -> None:
    sets = " ".join(f"{k}={_fmt(v)}" for k, v in entry["overrides"].items())
    status = entry["status"]
    colour = {"finished": "green", "running": "cyan"}.get(status, "yellow")
    say(err, (f"{entry['name']} {status}", colour), f" {sets}")


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="Folder of the trials' run directories [default: runs/<sweep name>].")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials run at the same time.")
@click.option("--resume", is_flag=True,
              help="Continue the sweep in OUTPUT: skip finished trials, resume the "
                   "interrupted one.")
@click.option("--quiet", "-q", is_flag=True, help="No per-trial lines.")
@click.option("--wandb", "use_wandb", is_flag=True,
              help="Register the sweep with W&B and let W&B's sweep controller choose the "
                   "trials (method bayes too); needs W&B online and an API key.")
def sweep(sweep_file: str, output: str | None, parallel: int, resume: bool, quiet: bool,
          use_wandb: bool) -> None:
    """Run the sweep of SWEEP_FILE (YAML/JSON in the W&B sweep format, plus `base:` the
    config): every trial an ordinary run with overrides in its own run directory, in one
    W&B group. Compare the trials with: dlsuite compare OUTPUT."""
    try:
        result = api.sweep(sweep_file, output=output, parallel=parallel, resume=resume,
                           quiet=quiet, on_trial=None if quiet else _trial_line,
                           wandb=use_wandb)
    except DlsuiteInputError:
        raise  # bad input: reported by main()
    except api.SweepInterrupted as exc:  # its exit code, and how to resume
        click.echo(str(exc), err=True)
        raise click.exceptions.Exit(exc.exit_code) from None
    failed = [t for t in result.trials if t["status"] != "finished"]
    if not quiet:
        err.print(
            f"sweep {result.name}: {len(result.trials) - len(failed)} of {len(result.trials)} "
            f"trial(s) finished in {result.output}; compare them with: dlsuite compare "
            f"{result.output}")
    if result.best and not quiet:
        sets = " ".join(f"{k}={_fmt(v)}" for k, v in result.best["overrides"].items())
        err.print(f"best: {result.best['trial']} {result.best['metric']}="
                  f"{_fmt(result.best['value'])} ({sets})")
    for t in failed:
        click.echo(f"{t['name']}: {t['status']} (exit {t['exit_code']}) "
                   f"{t.get('error', '')}".rstrip(), err=True)
    if failed:
        raise click.exceptions.Exit(1)
