"""``dlsuite plugins``: a table of plugins, or JSON, or one kind in detail (no TensorFlow)."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dlsuite import api

from ._output import out, say

__all__ = ["plugins_command"]

_KINDS = ["architectures", "losses", "metrics", "normalizers", "samplers", "targets",
          "augmentations", "postprocessors"]


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--validate", is_flag=True, help="Import every factory; exit 1 if one fails.")
@click.option("--kind", type=click.Choice(_KINDS),
              help="Show only this kind, with each entry's parameters.")
def plugins_command(as_json: bool, validate: bool, kind: str | None) -> None:
    """List installed plugins, their distributions and what each contributes."""
    description = api.describe_plugins(kind=kind, validate=validate)
    failures = description.get("validation_failures", [])
    if as_json:
        click.echo(json.dumps(description, indent=2, default=str))
    else:
        if kind:
            _print_kind(out, kind, description["kinds"][kind])
        else:
            _print_plugins(out, description)
        _print_problems(out, description["broken"], failures if validate else None)
    if validate and (failures or description["broken"]):
        raise click.exceptions.Exit(1)


def _print_problems(out: Console, broken: list[dict], failures: list[dict] | None) -> None:
    if broken:
        table = Table(title="broken plugins (not loaded)", title_style="bold red")
        for col in ("plugin", "distribution", "error"):
            table.add_column(col)
        for b in broken:
            table.add_row(b["plugin"], f"{b['dist'] or '-'} {b['version'] or ''}", b["error"])
        out.print(table)
    if failures is None:
        return
    for f in failures:
        say(out, ("FAIL", "red"), f" {f['kind']} {f['name']} ({f['plugin']}): {f['error']}")
    if not failures:
        say(out, ("all factories import", "green"))


#: Narrower consoles get one block per plugin: in a table, names such as
#: categorical_unet_transpose would be cut over two lines of the contributes column.
TABLE_MIN_WIDTH = 100


def _print_plugins(out: Console, description: dict) -> None:
    from rich.console import Group
    from rich.padding import Padding

    rows = []
    for p in description["plugins"]:
        contrib = [f"{k}: {', '.join(v)}" for k, v in p["contributes"].items() if v]
        rows.append((p["plugin"], p["dist"] or "-", p["version"] or "-",
                     contrib or ["(nothing)"]))
    if out.width < TABLE_MIN_WIDTH:
        parts: list = [Text("dlsuite plugins", style="italic")]
        for plugin, dist, version, contrib in rows:
            parts.append(Text.assemble((plugin, "bold"), f"  {dist} {version}"))
            parts += [Padding(Text(line), (0, 0, 0, 4)) for line in contrib]
        out.print(Group(*parts), soft_wrap=False)
        return
    table = Table(title="dlsuite plugins")
    for col in ("plugin", "distribution", "version", "contributes"):
        table.add_column(col)
    for plugin, dist, version, contrib in rows:
        table.add_row(plugin, dist, version, "; ".join(contrib))
    out.print(table)


def _print_kind(out: Console, kind: str, entries: list[dict]) -> None:
    if not entries:
        out.print(f"no {kind} installed")
    for e in entries:
        caption = e["description"] or ""
        if "gives" in e:  # a post-processor: what it takes and gives (typed chains)
            takes = " or ".join(e["accepts"]) if e["accepts"] else "any (undeclared)"
            caption += f" (takes {takes}; gives {e['gives'] or 'undeclared'})"
        table = Table(title=Text.assemble(f"{e['name']}  ", (
                          f"({e['plugin']}, {e['distribution']} {e['version'] or ''})", "dim")),
                      caption=caption or None,
                      title_justify="left")
        for col in ("parameter", "type", "default", "help"):
            table.add_column(col)
        for p in e["parameters"]:
            table.add_row(p["name"], p["type"], json.dumps(p["default"], default=str), p["help"])
        if not e["parameters"]:
            table.add_row("(none)", "", "", "")
        out.print(table)
