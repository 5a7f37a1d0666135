"""``dlsuite train CONFIG`` and ``dlsuite run CONFIG``: the training and end-to-end commands.

Importing this module imports no TensorFlow. Bad input raises DlsuiteInputError (exit 2 via
the top-level CLI); an interrupted run (SIGINT/SIGTERM) exits 130/143 after saving a
resumable state and saying how to resume.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import click
from rich.table import Table

from dlsuite import api
from dlsuite.errors import DlsuiteInputError

from ._output import announce_migration, console_logging, table_console, test_metric_rows

__all__ = ["train", "run"]


@contextmanager
def _session(quiet: bool) -> Iterator[None]:
    """Console logging for the block; an interrupted training (its resumable state saved)
    ends the command with exit status 130/143 and the message saying how to resume."""
    with console_logging(quiet):
        try:
            yield
        except DlsuiteInputError:
            raise  # bad input: reported by main() without resolving the training exceptions
        except api.TrainingInterrupted as exc:
            click.echo(str(exc), err=True)
            raise click.exceptions.Exit(exc.exit_code) from None


def _announce(quiet: bool, verbose: bool):
    """The ``on_loaded`` callback: a legacy config's migration as one line (the table with
    ``verbose``, nothing when quiet)."""
    return lambda loaded: announce_migration(loaded.migration, loaded.source, verbose=verbose,
                                             quiet=quiet)


def _summary(result, quiet: bool) -> None:
    if quiet:
        return
    console = table_console(stderr=True)
    table = Table(title=f"run {result.run_dir}", title_justify="left", show_header=False)
    train = result.metrics.get("train", {})
    table.add_row("epochs", str(train.get("epochs")))
    if train.get("best") is not None:
        table.add_row(f"best {train.get('monitor')}",
                      f"{train['best']:.4f} (epoch {train.get('best_epoch')})")
    for row in test_metric_rows(result.metrics.get("test") or {}, prefix="test "):
        table.add_row(*row)
    if result.wandb_run_id:
        table.add_row("W&B run", f"{result.wandb_run_id} (offline runs: wandb sync "
                                 f"{result.run_dir / 'wandb'}/offline-run-*)")
    for note in result.metrics.get("notes", []):
        table.add_row("note", note)
    console.print(table)


_RESUME = click.option("--resume", is_flag=True,
                       help="Continue the run in output_dir from its last resumable state "
                            "(epoch, optimizer state, W&B run).")
_OVERWRITE = click.option("--overwrite", is_flag=True,
                          help="Delete the run already in output_dir and start again.")
_QUIET = click.option("--quiet", "-q", is_flag=True,
                      help="Warnings and errors only, one line each (batch jobs): no "
                           "progress bars, info lines or TensorFlow log lines.")
_VERBOSE = click.option("--verbose", "-v", is_flag=True,
                        help="Also show the full mapping of a legacy config.")
_CONFIG = click.argument("config", type=click.Path(dir_okay=False))
_SET = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                    help="Override a config value (repeatable): a dotted JSON path and a JSON "
                         "value, else a string, e.g. --set model.n_filters=32 --set loss=dice.")


@click.command("train")
@_CONFIG
@_RESUME
@_OVERWRITE
@_QUIET
@_VERBOSE
@_SET
def train(config: str, resume: bool, overwrite: bool, quiet: bool, verbose: bool,
          overrides: tuple[str, ...]) -> None:
    """Train the model of CONFIG into its output_dir (checkpoints, history, TensorBoard,
    W&B). Ctrl-C saves a resumable state; continue with --resume."""
    with _session(quiet):
        result = api.train(config, resume=resume, overwrite=overwrite, quiet=quiet,
                           on_loaded=_announce(quiet, verbose), overrides=list(overrides))
    _summary(result, quiet)


@click.command("run")
@_CONFIG
@_RESUME
@_OVERWRITE
@_QUIET
@_VERBOSE
@_SET
def run(config: str, resume: bool, overwrite: bool, quiet: bool, verbose: bool,
        overrides: tuple[str, ...]) -> None:
    """Train, predict the test set, post-process, export (CTC), evaluate and write a report
    with pictures; everything in CONFIG's output_dir and logged to W&B."""
    with _session(quiet):
        result = api.run(config, resume=resume, overwrite=overwrite, quiet=quiet,
                         on_loaded=_announce(quiet, verbose), overrides=list(overrides))
    _summary(result, quiet)
