"""The config reference in Markdown, generated from the schema's field help texts.

README.md embeds its output between ``<!-- config-reference -->`` markers; a test keeps it in
sync (`python -m dlsuite.config.reference --write README.md` regenerates it).
"""

from __future__ import annotations

import json
import re
import sys
import typing
from pathlib import Path

import attrs

from ..registry import singular
from .jsonschema import _default
from .schema import Choice, Config

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def _type_text(tp) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(tp, type) and issubclass(tp, Choice):
        return f"{singular(tp.kind)} plugin"
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin is typing.Union:
        return " \\| ".join(_type_text(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_text(args[0])}" if args else "list"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _rows(cl: type, prefix: str) -> list[str]:
    attrs.resolve_types(cl)
    rows = []
    for field in attrs.fields(cl):
        key = f"{prefix}{field.name}"
        if attrs.has(field.type) and not issubclass(field.type, Choice):
            rows.append(f"| `{key}` | object | | {field.metadata.get('help', '')} |")
            rows += _rows(field.type, key + ".")
            continue
        default = json.dumps(_default(field.default))
        rows.append(f"| `{key}` | {_type_text(field.type)} | `{default}` | "
                    f"{field.metadata.get('help', '')} |")
    return rows


def markdown_reference() -> str:
    """The table of every core config key: type, default and meaning."""
    head = ["| key | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(head + _rows(Config, "")) + "\n"


def update_readme(path: Path) -> bool:
    """Rewrite the reference block of ``path``; returns True if the file changed."""
    text = path.read_text()
    new = re.sub(re.escape(START) + ".*?" + re.escape(END),
                 f"{START}\n{markdown_reference()}{END}", text, flags=re.S)
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    target = Path(sys.argv[sys.argv.index("--write") + 1]) if "--write" in sys.argv else None
    if target:
        update_readme(target)
    else:
        print(markdown_reference())
