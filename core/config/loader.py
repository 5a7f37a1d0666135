"""Loading a config file: JSON -> (legacy? migrate) -> typed config -> data paths checked."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError, DlsuiteInputError
from ..registry import Registry, get_registry
from .converter import structure_config, unstructure_config
from .rules import config_problems, data_problems
from .schema import Config

__all__ = ["LoadedConfig", "load_config", "load_config_data", "parse_config", "config_hash",
           "run_record_config"]


@attrs.frozen
class LoadedConfig:
    """A validated config with where it came from and, for legacy files, the migration."""

    config: Config
    source: str | None
    migration: list[Any] = attrs.field(factory=list)  # MigrationRow items, empty if not legacy
    overrides: dict = attrs.field(factory=dict)  # {dotted path: value} applied (--set)

    @property
    def is_legacy(self) -> bool:
        return bool(self.migration)


def load_config_data(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing file or invalid JSON raises DlsuiteInputError naming it."""
    path = Path(path)
    if not path.is_file():
        what = ("a folder, not a config file" if path.is_dir() else
                "not a regular file (a device or a pipe), not a config file" if path.exists()
                else "config file not found")
        raise DlsuiteInputError(f"{path}: {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM (Windows editors)
    except json.JSONDecodeError as exc:
        raise DlsuiteInputError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DlsuiteInputError(f"{path}: cannot read config: {exc}") from None
    except RecursionError:
        raise DlsuiteInputError(f"{path}: not a config: lists or objects nested too deeply "
                                "to read") from None


def parse_config(data: Any, registry: Registry | None = None, *, source: str | None = None,
                 check_paths: bool = True, base_dir: str | os.PathLike | None = None,
                 overrides: Any = None) -> LoadedConfig:
    """Validate JSON data (migrating a legacy flat config first) into a LoadedConfig.
    A run's ``config.json`` is read as the config it recorded (:func:`run_record_config`).

    Every value is checked (types, unknown keys, ranges and the rules of each section, then
    the cross-section rules of :mod:`dlsuite.config.rules`; with ``check_paths`` also the
    data folders and what needs the data). Relative data and output paths are resolved
    against ``base_dir`` (the config file's folder). Raises ConfigError listing every problem
    with its JSON path; for a legacy config each message also names the legacy key the value
    came from. ``overrides`` (``{dotted path: value}`` or ``KEY=VALUE`` strings,
    :mod:`dlsuite.config.overrides`) are applied after the migration, before validation;
    problems they cause are named after them. Imports no TensorFlow.
    """
    from .legacy import is_legacy, migrate  # local: keeps the import graph one-way
    from .overrides import apply_overrides, name_overrides, normalize_overrides

    registry = registry or get_registry()
    overrides = normalize_overrides(overrides)
    migration: list[Any] = []
    data = run_record_config(data)
    if is_legacy(data):
        data, migration = migrate(data, registry)
    if overrides:
        data = apply_overrides(data, overrides, default_config_data(registry))
    try:
        config = structure_config(data, registry, source)
        if base_dir is not None:
            config = resolve_paths(config, Path(base_dir))
        problems = config_problems(config, registry)
        if check_paths:
            problems += check_data_paths(config) + data_problems(config, registry)
        if problems:
            raise ConfigError(problems, source)
    except ConfigError as exc:
        if overrides:
            exc = name_overrides(exc, overrides)
        if migration:
            from .legacy import name_legacy_keys

            raise ConfigError(name_legacy_keys(exc.problems, migration), source) from None
        raise exc from None
    return LoadedConfig(config, source, migration, overrides)


def run_record_config(data: Any) -> Any:
    """The config a run's ``config.json`` records under ``"config"`` (beside
    ``"config_hash"``, written by dlsuite), so the record of a run is read as the config it
    ran; any other data unchanged."""
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "config_hash" in data:
        return data["config"]
    return data


def default_config_data(registry: Registry | None = None) -> dict:
    """The default config (every default filled in) as JSON data."""
    registry = registry or get_registry()
    return unstructure_config(structure_config({}, registry, None), registry)


def load_config(path: str | os.PathLike, registry: Registry | None = None, *,
                check_paths: bool = True, overrides: Any = None) -> LoadedConfig:
    """Load, migrate if legacy, apply ``overrides``, validate and path-check the config file
    at ``path``."""
    data = _run_where_it_is(Path(path), load_config_data(path))
    return parse_config(data, registry, source=str(path), check_paths=check_paths,
                        base_dir=Path(path).resolve().parent, overrides=overrides)


def _run_where_it_is(path: Path, data: Any) -> Any:
    """A run's own ``config.json`` (the record in a folder dlsuite marked as a run) names
    that folder as ``output_dir``, wherever the run was first written: a run copied or moved
    elsewhere is trained, resumed, overwritten and tested where the user points, never at
    the place it records (``--set output_dir=...`` still chooses another)."""
    import logging

    from ..ownership import MARKERS

    if run_record_config(data) is data or path.name != "config.json":
        return data
    folder = path.expanduser().resolve().parent
    if not (folder / MARKERS["run"]).is_file():
        return data
    recorded = data["config"].get("output_dir")
    if isinstance(recorded, str) and (folder / Path(recorded).expanduser()).resolve() == folder:
        return data
    logging.getLogger("dlsuite.config").info(
        "%s is the config.json of the run in %s (first written to %s): output_dir is that "
        "folder", path, folder, recorded)
    return {**data, "config": {**data["config"], "output_dir": str(folder)}}


def _resolve(base: Path, value: str | None) -> str | None:
    """``value`` (``~`` expanded) against ``base`` when relative, with ``..`` folded away
    when that names the same place (``sub/../d`` and ``d`` are one folder to ``compare``;
    not through a symbolic link, where they may differ)."""
    if value is None:
        return None
    p = Path(os.path.expanduser(value))
    joined = str(p if p.is_absolute() else (base / p))
    there = joined  # the part that exists (an output_dir may not yet)
    while not os.path.exists(there) and os.path.dirname(there) != there:
        there = os.path.dirname(there)
    missing = Path(joined).parts[len(Path(there).parts):]
    try:
        same = os.path.samefile(there, os.path.normpath(there)) and ".." not in missing
    except OSError:
        same = False
    return os.path.normpath(joined) if same else joined


#: The config keys holding paths, read against the config file's folder, each with the
#: values it takes that are not paths.
PATH_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("data", "train"): (), ("data", "val"): (), ("data", "test"): (), ("data", "videos_csv"): (),
    ("train", "pretrained_weights"): ("",), ("inference", "weights"): ("best", "last"),
    ("output_dir",): ()}


def _evolved(obj, keys: tuple[str, ...], change):
    """The attrs instance ``obj`` with the value at ``keys`` replaced by ``change(value)``."""
    head, *rest = keys
    value = getattr(obj, head)
    return attrs.evolve(obj, **{head: _evolved(value, tuple(rest), change) if rest
                                else change(value)})


def resolve_paths(config: Config, base: Path) -> Config:
    """Make the data, output and weight paths absolute, relative to ``base``."""
    for keys, words in PATH_KEYS.items():
        config = _evolved(config, keys, lambda v: v if v in words else _resolve(base, v))
    return config


def rebase_paths(data: dict, source_dir: Path, target_dir: Path) -> list[tuple[str, str, str]]:
    """Rewrite in place the relative paths of the config dict ``data`` (:data:`PATH_KEYS`)
    written for a file in ``source_dir`` so that a file in ``target_dir`` names the same
    places (still relative). Returns ``(dotted key, old, new)`` for each one changed."""
    changed = []
    for keys, words in PATH_KEYS.items():
        node = data
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        value = node.get(keys[-1]) if isinstance(node, dict) else None
        if (not isinstance(value, str) or value in words
                or Path(os.path.expanduser(value)).is_absolute()):
            continue
        new = os.path.relpath(Path(source_dir).resolve() / value, Path(target_dir).resolve())
        if new != value:
            node[keys[-1]] = new
            changed.append((".".join(keys), value, new))
    return changed


def check_data_paths(config: Config) -> list[tuple[str, str]]:
    """Problems with the data folders and weight files, as ``(json_path, message)`` pairs."""
    from ..data.layouts import check_dataset  # no TensorFlow there

    problems: list[tuple[str, str]] = []
    for key in ("train", "val", "test"):
        folder = getattr(config.data, key)
        if folder is None:
            continue
        for msg in check_dataset(folder, config.data.layout, require_labels=True):
            problems.append((f"$.data.{key}", msg))
    if config.data.videos_csv:
        from ..data.test_videos import relation_problems

        problems += [("$.data.videos_csv", msg) for msg in relation_problems(
            config.data.videos_csv, config.data.test, config.data.layout)]
    if config.train.pretrained_weights and not Path(config.train.pretrained_weights).is_file():
        problems.append(("$.train.pretrained_weights",
                         f"{config.train.pretrained_weights}: file not found"))
    weights = config.inference.weights
    if weights not in ("best", "last") and not Path(weights).is_file():
        out = Path(config.output_dir).expanduser().resolve()
        if out not in Path(weights).expanduser().resolve().parents:  # a run's own: later
            problems.append(("$.inference.weights", f"{weights}: file not found (a .keras "
                             "file, or best, last); it is needed once training ends"))
    return problems


def config_hash(config: Config, registry: Registry | None = None) -> str:
    """SHA-256 (first 16 hex digits) of the canonical JSON of the resolved config."""
    data = unstructure_config(config, registry or get_registry())
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
