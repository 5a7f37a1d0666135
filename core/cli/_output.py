"""What the commands print: consoles, key/value tables, the legacy-migration table, JSON.

The only module of the CLI that imports dlsuite modules other than :mod:`dlsuite.api` and
:mod:`dlsuite.errors`, and only display helpers (no TensorFlow): the migration table, the
metric descriptions, strict JSON of metrics, the log-handler context.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterable, Iterator

from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def key_values(title: str, rows: Iterable[tuple[str, str]], console: Console | None = None
               ) -> None:
    """A two-column table (bold key, value) without header."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    (console or Console()).print(table)


def print_migration(rows: list, *, header: bool = True) -> None:
    """The legacy-config migration table on stderr (nothing for a current config)."""
    if rows:
        from dlsuite.config.legacy import format_migration

        if header:
            err.print("[yellow]legacy config of the original suite: migrated as follows"
                      "[/yellow]")
        err.print(format_migration(rows))


def metric_description(name: str) -> str:
    """One line saying what metric ``name`` measures."""
    from dlsuite.config.metric_names import METRICS

    return METRICS[name].description


def metrics_json(data) -> str:
    """Strict JSON text (indent 2) of evaluation results (numpy values converted)."""
    from dlsuite.evaluation.writers import dumps_metrics

    return dumps_metrics(data)


@contextmanager
def console_logging(quiet: bool) -> Iterator[None]:
    """Show the ``dlsuite`` logger on stderr through rich (warnings only when quiet)."""
    from rich.logging import RichHandler

    from dlsuite.logging.handlers import attached

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False,
                          markup=False, rich_tracebacks=False)
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    with attached(handler):
        yield
