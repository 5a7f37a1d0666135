"""What the commands print: consoles, key/value tables, the legacy-migration table, JSON.

Every console here has rich markup off: messages, paths and table cells are printed as they
are (a path like ``data/[set1]`` or a message holding ``[/x]`` used to lose text or crash the
report of an error); colour comes from :func:`say`'s styled parts only.

The only module of the CLI that imports dlsuite modules other than :mod:`dlsuite.api` and
:mod:`dlsuite.errors`, and only display helpers (no TensorFlow): the migration table, the
metric descriptions, strict JSON of metrics, the console context (log lines, warnings, quiet).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

from rich.console import Console
from rich.table import Table
from rich.text import Text

class _Console(Console):
    """A console whose tables fold a word too long for its column onto the next line: a
    plugin, run or file name is shown whole, never cut to ``categorical_unet_transp…``."""

    def print(self, *objects, **options) -> None:
        for obj in objects:
            if isinstance(obj, Table):
                for column in obj.columns:
                    if column.overflow == "ellipsis":  # rich's default
                        column.overflow = "fold"
        super().print(*objects, **options)


out = _Console(soft_wrap=True, markup=False)
err = _Console(stderr=True, soft_wrap=True, markup=False)


def table_console(*, stderr: bool = False, **options) -> Console:
    """A console for tables (no soft wrap: long cells wrap, too long words fold) with markup
    off (module docstring)."""
    return _Console(stderr=stderr, markup=False, **options)


def say(to: Console, *parts: str | tuple[str, str], **options) -> None:
    """Print ``parts`` on ``to`` as one text: a string as it is, ``(text, style)`` styled
    (e.g. ``("error:", "red")``); nothing is read as markup."""
    to.print(Text.assemble(*parts), **options)


def key_values(title: str, rows: Iterable[tuple[str, str]], console: Console | None = None
               ) -> None:
    """A two-column table (bold key, value) without header."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    (console or table_console()).print(table)


def print_migration(rows: list, *, header: bool = True) -> None:
    """The legacy-config migration table on stderr (nothing for a current config)."""
    if rows:
        from dlsuite.config.legacy import format_migration

        if header:
            say(err, ("legacy config of the original suite: migrated as follows", "yellow"))
        err.print(format_migration(rows, width=err.width), soft_wrap=False)


def migration_summary(rows: list, source: str | None) -> str:
    """One line saying that the legacy config ``source`` was migrated in memory, how many
    keys moved or were dropped, and how to see the mapping or convert the file."""
    moved = sum(1 for r in rows if r.new_key is not None)
    name = source or "the config"
    return (f"{name}: legacy config of the original suite, migrated in memory ({moved} keys "
            f"mapped, {len(rows) - moved} obsolete); --verbose shows the mapping, "
            f"`dlsuite config migrate {name} -o NEW.json` converts the file")


def announce_migration(rows: list, source: str | None, *, verbose: bool = False,
                       quiet: bool = False) -> None:
    """What a command that loads a config shows about a legacy one on stderr: the table
    with ``verbose``, nothing with ``quiet``, otherwise :func:`migration_summary`'s line
    (nothing at all for a current config)."""
    if not rows or (quiet and not verbose):
        return
    if verbose:
        print_migration(rows)
    else:
        err.print(migration_summary(rows, source), highlight=False)


def test_metric_rows(test: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Table rows of a run's test metrics: each number (4 decimals), then each
    requested metric that could not be computed with the reason (``unavailable``)."""
    rows = [(f"{prefix}{name}", f"{value:.4f}") for name, value in test.items()
            if isinstance(value, float)]
    reasons: dict[str, list[str]] = {}
    for name, reason in (test.get("unavailable") or {}).items():
        reasons.setdefault(reason, []).append(name)
    rows += [(f"{prefix}{', '.join(names)}", f"not computed: {reason}")
             for reason, names in reasons.items()]
    return rows


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
    """The ``dlsuite`` logger and Python warnings on stderr, one line each; with ``quiet``
    warnings and errors only and no native TensorFlow log lines
    (:func:`dlsuite.logging.console.console`)."""
    from dlsuite.logging.console import console

    with console(quiet):
        yield


def quiet_option(command):
    """Give a file-writing command ``--quiet/-q`` (warnings and errors only, as the training
    and prediction commands have it): its body runs in :func:`console_logging` and gets
    ``quiet`` to leave out its summary."""
    import functools

    import click

    @functools.wraps(command)
    def wrapper(*args, quiet: bool, **kwargs):
        with console_logging(quiet):
            return command(*args, quiet=quiet, **kwargs)

    return click.option("--quiet", "-q", is_flag=True,
                        help="Warnings and errors only: no summary of what was written.")(wrapper)
