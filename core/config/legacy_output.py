"""The legacy migration shown and written: a rich table, plain text, the migrated JSON file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import DlsuiteInputError
from ..fileio import write_json_atomic
from .legacy_rule_kinds import MigrationRow


def _show(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) and not value == "" else json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _value_cell(row: MigrationRow) -> str:
    old = _show(row.old_value)
    same = type(row.new_value) is type(row.old_value) and row.new_value == row.old_value
    if row.new_key is None or same:
        return old
    return f"{old} -> {_show(row.new_value)}"


def _cells(row: MigrationRow) -> tuple[str, str, str, str]:
    """old key, value, new key (``obsolete`` for a dropped key, ``-`` for a note about the
    original's implicit behaviour), note."""
    new_key = row.new_key or ("-" if row.old_key.startswith("(") else "obsolete")
    return row.old_key, _value_cell(row), new_key, row.note


#: Narrower consoles get one block per row instead of the table, whose note column would
#: fold every note over a dozen lines of a dozen characters.
TABLE_MIN_WIDTH = 120


def format_migration(rows: list[MigrationRow], width: int | None = None):
    """A rich Table with columns old key, value (``old -> new`` when converted), new key
    (``obsolete`` when dropped) and note, one line per row; for a console ``width`` under
    :data:`TABLE_MIN_WIDTH`, a rich Group instead: per row ``old key: value -> new key``
    and its note indented below."""
    from rich.table import Table
    from rich.text import Text

    if width is not None and width < TABLE_MIN_WIDTH:
        return _blocks(rows)

    table = Table(title="legacy config migration", show_lines=False)
    table.add_column("old key", no_wrap=True)
    table.add_column("value", overflow="fold", max_width=28)
    table.add_column("new key", overflow="fold")
    table.add_column("note", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(*(Text(cell) for cell in _cells(row)))  # never read as markup
    return table


def _blocks(rows: list[MigrationRow]):
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts: list[Any] = [Text("legacy config migration", style="italic")]
    for row in rows:
        old_key, value, new_key, note = _cells(row)
        head = Text(old_key, style="bold")
        head.append(f": {value} -> {new_key}")  # Text: never read as markup
        parts.append(head)
        if note:
            parts.append(Padding(Text(note), (0, 0, 0, 4)))
    return Group(*parts)


def migration_to_text(rows: list[MigrationRow]) -> str:
    """The migration as plain text: a header and one tab-free aligned line per row
    (``old key | value | new key | note``)."""
    cells = [("old key", "value", "new key", "note")] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = [" | ".join([c[0].ljust(widths[0]), c[1].ljust(widths[1]), c[2].ljust(widths[2]),
                         c[3]]).rstrip() for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths) + "-+-" + "-" * 4)
    return "\n".join(lines) + "\n"


def write_migrated(data_new: dict, path: str | os.PathLike) -> Path:
    """Write the migrated config as indented JSON at ``path`` atomically (temp file in the
    same folder, then ``os.replace``); returns the path. Raises DlsuiteInputError naming the
    file when it cannot be written."""
    try:
        return write_json_atomic(path, data_new)
    except OSError as exc:
        raise DlsuiteInputError(f"{path}: cannot write migrated config: {exc}") from None
