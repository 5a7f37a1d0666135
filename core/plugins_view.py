"""What ``dlsuite plugins`` prints: a table of plugins, or JSON, or one kind in detail."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from .registry import KINDS, Registry, get_registry

__all__ = ["plugins_report", "validate_factories"]


def validate_factories(registry: Registry, kind: str | None = None) -> list[dict]:
    """Import every factory (of ``kind``, or all); return one row per failure."""
    failures = []
    for k in [kind] if kind else list(KINDS):
        for entry in registry.entries(k):
            try:
                entry.load()
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                failures.append({"kind": k, "name": entry.name, "plugin": entry.plugin,
                                 "error": str(exc)})
    return failures


def plugins_report(*, as_json: bool, validate: bool, kind: str | None, out: Console) -> int:
    """Print the plugin listing; returns the exit code (1 if validation or a plugin failed
    to load and ``validate`` was asked, else 0)."""
    registry = get_registry()
    description = registry.describe()
    failures = validate_factories(registry, kind) if validate else []
    if kind:
        description["kinds"] = {kind: description["kinds"][kind]}
    if as_json:
        if validate:
            description["validation_failures"] = failures
        print(json.dumps(description, indent=2, default=str))
    elif kind:
        _print_kind(out, kind, description["kinds"][kind])
    else:
        _print_plugins(out, description)
    if description["broken"] and not as_json:
        table = Table(title="broken plugins (not loaded)", title_style="bold red")
        for col in ("plugin", "distribution", "error"):
            table.add_column(col)
        for b in description["broken"]:
            table.add_row(b["plugin"], f"{b['dist'] or '-'} {b['version'] or ''}", b["error"])
        out.print(table)
    if validate and not as_json:
        if failures:
            for f in failures:
                out.print(f"[red]FAIL[/red] {f['kind']} {f['name']} ({f['plugin']}): {f['error']}")
        else:
            out.print("[green]all factories import[/green]")
    return 1 if validate and (failures or description["broken"]) else 0


def _print_plugins(out: Console, description: dict) -> None:
    table = Table(title="dlsuite plugins")
    for col in ("plugin", "distribution", "version", "contributes"):
        table.add_column(col)
    for p in description["plugins"]:
        contrib = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["contributes"].items() if v)
        table.add_row(p["plugin"], p["dist"] or "-", p["version"] or "-", contrib or "(nothing)")
    out.print(table)


def _print_kind(out: Console, kind: str, entries: list[dict]) -> None:
    if not entries:
        out.print(f"no {kind} installed")
    for e in entries:
        table = Table(title=f"{e['name']}  [dim]({e['plugin']}, {e['distribution']} "
                            f"{e['version'] or ''})[/dim]", caption=e["description"] or None,
                      title_justify="left")
        for col in ("parameter", "type", "default", "help"):
            table.add_column(col)
        for p in e["parameters"]:
            table.add_row(p["name"], p["type"], json.dumps(p["default"], default=str), p["help"])
        if not e["parameters"]:
            table.add_row("(none)", "", "", "")
        out.print(table)
