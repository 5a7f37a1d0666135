"""How a legacy rule turns one key into rows: the :class:`MigrationRow` a rule returns,
the :class:`Rule` itself, the value converters and the row builder of each rule kind.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

import attrs

from .legacy_context import _Context, _join, _none


@attrs.frozen
class MigrationRow:
    """One migration decision. ``new_key`` is a JSON path (``$.model.n_filters``) or ``None``
    when the old key is obsolete; ``note`` says why (never empty for obsolete keys).
    ``error`` is set when the old value is invalid (the original would have crashed on it):
    the value is carried over unchanged, so validating the migrated config fails at
    ``new_key``, and :func:`name_legacy_keys` reports this message there."""

    old_key: str
    old_value: Any
    new_key: Optional[str]
    new_value: Any
    note: str = ""
    error: str = ""


Converter = Callable[[Any, _Context], Any]


def _same(value: Any, ctx: _Context) -> Any:
    return value


def _to_bool(value: Any, ctx: _Context) -> Any:
    """0/1 (and true/false, "0"/"1", "True"/"False") -> bool; anything else unchanged so the
    schema reports it at the new path."""
    table = {0: False, 1: True, "0": False, "1": True, "False": False, "True": True,
             "false": False, "true": True}
    try:
        return table.get(value, value)
    except TypeError:  # unhashable (list, dict)
        return value


def _square(value: Any, ctx: _Context) -> Any:
    """``[k, k]`` -> ``k``; a non-square kernel -> its larger side."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return max(value)
    return value


def _pair(value: Any, ctx: _Context) -> Any:
    """``[h, w]`` -> ``[h, w]``; a single int -> ``[v, v]``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    return list(value) if isinstance(value, tuple) else value


def _halo(value: Any, ctx: _Context) -> Any:
    """``[h, w]`` per side -> one int halo (the larger)."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return max(value)
    return value


def _weights_path(value: Any, ctx: _Context) -> Any:
    """As the original: ``os.path.join(OUTPUTPATH, 'checkpoints', value)`` (absolute kept)."""
    if not isinstance(value, str):
        return value
    out = ctx.get("OUTPUTPATH")
    base = os.path.join(out, "checkpoints") if isinstance(out, str) else "checkpoints"
    return os.path.join(base, value)


RowFn = Callable[[str, Any, "Rule", _Context], list[MigrationRow]]


@attrs.frozen
class Rule:
    """How one legacy key migrates.

    ``kind`` picks the row builder (:data:`_KINDS`): ``"set"`` writes ``convert(value)`` at
    ``target``; ``"model"`` writes the architecture parameter ``target`` only if the chosen
    architecture accepts it (and the original did not ignore the key for that family, see
    ``ignored_by_mobilenets``); ``"obsolete"`` writes nothing and reports ``note`` as the
    reason; ``"custom"`` calls ``custom(key, value, rule, ctx)`` for keys that depend on
    others. ``note`` is appended to the row."""

    kind: str
    target: Optional[str] = None
    convert: Converter = _same
    note: str = ""
    ignored_by_mobilenets: bool = False
    custom: Optional[RowFn] = None


def _row_set(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = rule.convert(_none(raw), ctx)
    return [MigrationRow(key, raw, rule.target, value, rule.note)]


def _row_obsolete(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    return [MigrationRow(key, raw, None, None, rule.note)]


def _row_model(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    field = rule.target
    if rule.ignored_by_mobilenets and ctx.mobilenet:
        note = "ignored by the original's MobileNet models; dropped (dlsuite's default kept)"
        return [MigrationRow(key, raw, None, None, note)]
    if field not in ctx.arch_fields:
        return [MigrationRow(key, raw, None, None, f"not used by {ctx.arch}; dropped")]
    value = rule.convert(_none(raw), ctx)
    note = rule.note if ctx.arch_registered else _join(
        rule.note, f"assumed parameter of {ctx.arch} (not registered)")
    return [MigrationRow(key, raw, f"$.model.{field}", value, note)]


def _row_custom(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    assert rule.custom is not None
    return rule.custom(key, raw, rule, ctx)


_KINDS: dict[str, RowFn] = {"set": _row_set, "obsolete": _row_obsolete, "model": _row_model,
                            "custom": _row_custom}



def _set(path: str, convert: Converter = _same, note: str = "") -> Rule:
    return Rule("set", path, convert, note)


def _model(field: str, convert: Converter = _same, note: str = "",
           ignored_by_mobilenets: bool = False) -> Rule:
    return Rule("model", field, convert, note, ignored_by_mobilenets)


def _obsolete(reason: str) -> Rule:
    return Rule("obsolete", note=reason)


def _custom(fn: RowFn, note: str = "") -> Rule:
    return Rule("custom", note=note, custom=fn)
