"""``dlsuite train CONFIG`` and ``dlsuite run CONFIG``: the training and end-to-end commands.

The lead's ``dlsuite`` group adds them with ``cli.add_command(train)`` /
``cli.add_command(run)``. Importing this module imports no TensorFlow. Bad input raises
:class:`~dlsuite.errors.DlsuiteInputError` (exit 2 via the top-level CLI); an interrupted run
(SIGINT/SIGTERM) exits 130/143 after saving a resumable state and saying how to resume.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

import click

from .logging.handlers import attached

__all__ = ["train", "run"]


@contextmanager
def _console_logging(quiet: bool) -> Iterator[None]:
    """Show the ``dlsuite`` logger on stderr through rich (warnings only when quiet)."""
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False,
                          markup=False, rich_tracebacks=False)
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    with attached(handler):
        yield


def _summary(result, quiet: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    if quiet:
        return
    console = Console(stderr=True)
    table = Table(title=f"run {result.run_dir}", title_justify="left", show_header=False)
    train = result.metrics.get("train", {})
    table.add_row("epochs", str(train.get("epochs")))
    if train.get("best") is not None:
        table.add_row(f"best {train.get('monitor')}",
                      f"{train['best']:.4f} (epoch {train.get('best_epoch')})")
    for name, value in (result.metrics.get("test") or {}).items():
        if isinstance(value, float):
            table.add_row(f"test {name}", f"{value:.4f}")
    if result.wandb_run_id:
        table.add_row("W&B run", f"{result.wandb_run_id} (offline runs: wandb sync "
                                 f"{result.run_dir / 'wandb'}/offline-run-*)")
    for note in result.metrics.get("notes", []):
        table.add_row("note", note)
    console.print(table)


def _execute(config_path: str, *, resume: bool, overwrite: bool, quiet: bool,
             step: Callable) -> None:
    from .config import load_config
    from .registry import get_registry
    from .pipeline import TrainingInterrupted

    registry = get_registry()
    loaded = load_config(config_path, registry)
    if loaded.migration and not quiet:
        from rich.console import Console

        from .config.legacy import format_migration

        err = Console(stderr=True)
        err.print("[yellow]legacy config of the original suite: migrated as follows[/yellow]")
        err.print(format_migration(loaded.migration))
    with _console_logging(quiet):
        try:
            result = step(loaded, resume=resume, overwrite=overwrite, quiet=quiet,
                          registry=registry)
        except TrainingInterrupted as exc:
            click.echo(str(exc), err=True)
            raise click.exceptions.Exit(exc.exit_code) from None
    _summary(result, quiet)


_RESUME = click.option("--resume", is_flag=True,
                       help="Continue the run in output_dir from its last resumable state "
                            "(epoch, optimizer state, W&B run).")
_OVERWRITE = click.option("--overwrite", is_flag=True,
                          help="Delete the run already in output_dir and start again.")
_QUIET = click.option("--quiet", "-q", is_flag=True,
                      help="No progress bars or info messages (batch jobs); warnings only.")
_CONFIG = click.argument("config", type=click.Path(dir_okay=False))


@click.command("train")
@_CONFIG
@_RESUME
@_OVERWRITE
@_QUIET
def train(config: str, resume: bool, overwrite: bool, quiet: bool) -> None:
    """Train the model of CONFIG into its output_dir (checkpoints, history, TensorBoard,
    W&B). Ctrl-C saves a resumable state; continue with --resume."""
    from . import pipeline

    _execute(config, resume=resume, overwrite=overwrite, quiet=quiet, step=pipeline.train)


@click.command("run")
@_CONFIG
@_RESUME
@_OVERWRITE
@_QUIET
def run(config: str, resume: bool, overwrite: bool, quiet: bool) -> None:
    """Train, predict the test set, post-process, export (CTC), evaluate and write a report
    with pictures; everything in CONFIG's output_dir and logged to W&B."""
    from . import pipeline

    _execute(config, resume=resume, overwrite=overwrite, quiet=quiet, step=pipeline.run)
