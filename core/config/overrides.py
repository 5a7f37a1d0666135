"""Config overrides: ``--set KEY=VALUE`` on the command line, ``overrides={...}`` in the API.

A key is a dotted JSON path into the config (``model.n_filters``, ``loss``,
``datagen.augmentation[0].rotation``); a value is JSON data (``32``, ``[64, 64]``, ``true``),
or a string when it is not JSON (``loss=dice``). Overrides are applied to the config data
after a legacy config is migrated and before validation, so an overridden config is checked
exactly like a file; every problem an override causes is reported naming that override
(``override model.n_filtres=32: unknown key; did you mean n_filters?``).

Rules of the path walk:

* a key the config data does not hold is taken from the defaults (``model.n_filters`` works
  when the file has no ``model`` section), then set;
* a plugin section given by name only (``"loss": "dice"``) becomes ``{"name": "dice"}``;
* setting a plugin's ``name`` to another plugin (``model.name=X``, or ``model=X``) drops the
  old plugin's parameters: the new one starts from its defaults;
* overrides apply shorter paths first (``model=X`` before ``model.n_filters=8``), in the
  given order otherwise;
* a list index must exist; the index one past the end appends
  (``datagen.augmentation[0]=flip`` on an empty list).
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError, DlsuiteInputError

__all__ = ["parse_override", "normalize_overrides", "path_steps", "apply_overrides",
           "name_overrides", "describe_override"]

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_PATH = re.compile(rf"^{_NAME}(\[\d+\])*(\.{_NAME}(\[\d+\])*)*$")
_STEP = re.compile(rf"({_NAME})|\[(\d+)\]")


def describe_override(key: str, value: Any) -> str:
    """``override KEY=VALUE`` as the user wrote it (non-strings as JSON)."""
    shown = value if isinstance(value, str) else json.dumps(value)
    return f"override {key}={shown}"


def parse_override(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> ``(KEY, value)``: the value parsed as JSON, else kept as the string.
    DlsuiteInputError naming the override when there is no ``=`` or KEY is not a path."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise DlsuiteInputError(f"--set {text}: expected KEY=VALUE (e.g. model.n_filters=32)")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, float) and not math.isfinite(value):  # 1e999, NaN, Infinity
        raise DlsuiteInputError(f"--set {text}: {raw.strip()} is not a finite number")
    path_steps(key, value)
    return key, value


def path_steps(key: str, value: Any = None) -> list[str | int]:
    """``"a.b[0].c"`` -> ``["a", "b", 0, "c"]``; DlsuiteInputError naming the override for a
    malformed path."""
    if not isinstance(key, str) or not _PATH.match(key):
        raise DlsuiteInputError(
            f"{describe_override(str(key), value)}: not a config path (dotted keys with "
            "optional [index], e.g. datagen.augmentation[0].rotation)")
    return [name if name else int(index) for name, index in _STEP.findall(key)]


def normalize_overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict:
    """A dict ``{path: value}`` from a mapping, or from ``KEY=VALUE`` strings (as ``--set``;
    a repeated key keeps the last value). Paths are checked (DlsuiteInputError)."""
    if not overrides:
        return {}
    if isinstance(overrides, Mapping):
        for key, value in overrides.items():
            path_steps(key, value)
        return dict(overrides)
    if isinstance(overrides, str):
        overrides = [overrides]
    return dict(parse_override(text) for text in overrides)


def _as_container(node: Any) -> Any:
    # a plugin section written as its name only
    return {"name": node} if isinstance(node, str) else node


def _child(node: Any, step: str | int) -> Any:
    if isinstance(step, str):
        return node.get(step) if isinstance(node, dict) else None
    return node[step] if isinstance(node, list) and step < len(node) else None


def _set(root: dict, steps: list, value: Any, defaults: Any, label: str) -> None:
    parent: Any = None
    node: Any = root
    for i, step in enumerate(steps):
        here = ".".join(str(s) for s in steps[:i]) or "the config"
        if isinstance(step, str):
            if isinstance(node, str) and parent is not None:  # "loss": "dice" -> object
                node = _as_container(node)
                parent[0][parent[1]] = node
            if not isinstance(node, dict):
                raise DlsuiteInputError(f"{label}: {here} is not an object")
            last = i == len(steps) - 1
            if last:
                old = node.get(step)
                if i > 0 and step == "name" and "name" in node and old != value:
                    node.clear()  # another plugin: the old one's parameters do not apply
                node[step] = copy.deepcopy(value)
                return
            if step not in node:
                default = _child(defaults, step)
                node[step] = copy.deepcopy(default) if isinstance(default, (dict, list, str)) \
                    else {}
        else:
            if not isinstance(node, list):
                raise DlsuiteInputError(f"{label}: {here} is not a list")
            if step > len(node) or (step == len(node) and i < len(steps) - 1):
                raise DlsuiteInputError(f"{label}: {here} has {len(node)} item(s); index "
                                        f"{step} is out of range")
            if i == len(steps) - 1:
                if step == len(node):
                    node.append(copy.deepcopy(value))
                else:
                    node[step] = copy.deepcopy(value)
                return
        parent = (node, step)
        defaults = _child(defaults, step)
        node = node[step]


def apply_overrides(data: Any, overrides: Mapping[str, Any], defaults: Any = None) -> Any:
    """A copy of the config ``data`` with ``overrides`` (``{path: value}``) applied; missing
    keys on the way are taken from ``defaults`` (the unstructured default config). Shorter
    paths first. DlsuiteInputError naming the override for a path that cannot be followed
    (a value that is not an object or list, an index out of range)."""
    if not isinstance(data, dict):
        return data  # the loader reports a config that is not an object
    out = copy.deepcopy(data)
    ordered = sorted(overrides.items(), key=lambda kv: len(path_steps(kv[0], kv[1])))
    for key, value in ordered:
        _set(out, path_steps(key, value), value, defaults, describe_override(key, value))
    return out


def _json_path(steps: Iterable[str | int]) -> str:
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


def _under(path: str, prefix: str) -> bool:
    return path.startswith(prefix + ".") or path.startswith(prefix + "[")


def _owner(problem: str, paths: dict[str, str]) -> str | None:
    """The override a problem belongs to: the one at its path, else the deepest one above
    it (it set the object holding the problem), else the first one below it (a problem of
    an object the override went into, e.g. an unknown section name)."""
    exact = [k for k, p in paths.items() if p == problem]
    if exact:
        return exact[-1]
    above = sorted((k for k, p in paths.items() if _under(problem, p)),
                   key=lambda k: len(paths[k]))
    if above:
        return above[-1]
    return next((k for k, p in paths.items() if _under(p, problem)), None)


def name_overrides(exc: ConfigError, overrides: Mapping[str, Any]) -> ConfigError:
    """``exc`` with each problem caused by an override named after it: its path replaced by
    ``override KEY=VALUE`` (the JSON path kept in the message when it lies deeper or
    higher). Problems of the file itself are kept as they are."""
    paths = {key: _json_path(path_steps(key, value)) for key, value in overrides.items()}
    problems = []
    for path, message in exc.problems:
        owner = _owner(path, paths)
        if owner is None:
            problems.append((path, message))
            continue
        detail = message if path == paths[owner] else f"{path}: {message}"
        problems.append((describe_override(owner, overrides[owner]), detail))
    return ConfigError(problems, exc.source)
