"""Config and plugin functions of :mod:`dlsuite.api` (none of them imports TensorFlow)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Sequence

import attrs

from ..config import LoadedConfig, load_config as _load_config, parse_config
from ..config.schema import TrackingConfig
from ..registry import KINDS, Registry, get_registry

__all__ = ["load_config", "check_config", "validate_config", "show_config", "migrate_config",
           "config_schema", "plugins", "describe_plugins", "new_plugin", "tracking_defaults",
           "ResolvedConfig", "Migration"]


def load_config(path: str | os.PathLike, *, check_paths: bool = True,
                overrides: Any = None) -> LoadedConfig:
    """Load and validate the config at ``path``, with ``overrides`` applied.

    A legacy flat config of the original suite is migrated first (``.migration`` holds the
    rows old key -> new key). Returns a :class:`~dlsuite.config.LoadedConfig` whose
    ``.config`` is the typed :class:`~dlsuite.config.Config` with every default filled in.
    Raises :class:`~dlsuite.errors.ConfigError` listing every problem with its JSON path,
    or :class:`~dlsuite.errors.DlsuiteInputError` for an unreadable file.

    ``overrides`` (what ``--set`` gives): ``{"model.n_filters": 32, "loss": "dice",
    "datagen.augmentation[0].rotation": 10}`` -- dotted JSON paths to values -- or a list of
    ``"KEY=VALUE"`` strings (VALUE parsed as JSON, else a string). They are applied after a
    legacy config is migrated, validated like the file, and every problem they cause names
    the override (``override model.n_filtres=32: unknown key; ...``); the result's
    ``.overrides`` holds them (a run records them in its ``config.json``).
    """
    return _load_config(path, get_registry(), check_paths=check_paths, overrides=overrides)


def check_config(path: str | os.PathLike, *, check_paths: bool = True, pixels: bool = True,
                 overrides: Any = None) -> LoadedConfig:
    """:func:`load_config`, then (with ``check_paths`` and ``pixels``) the pixel check
    ``dlsuite run`` makes before it starts (:func:`dlsuite.preflight.data_pixel_problems`:
    every file of train, val and test read once; truncated files, NaN/Inf pixels and
    negative label ids are problems), and the checks of ``export.formats`` ``dlsuite run``
    makes (optional packages installed, bioimage.io metadata a package can hold), so a
    config and data that pass are not refused for them by the run. Raises :class:`~dlsuite.errors.ConfigError` listing every
    problem with its JSON path; info lines and warnings go to the ``dlsuite`` logger.
    Imports no TensorFlow."""
    from ..errors import ConfigError

    from ..export_step import export_problems

    loaded = load_config(path, check_paths=check_paths, overrides=overrides)
    problems = export_problems(loaded.config, get_registry())  # as dlsuite run: first
    if check_paths and pixels:
        from ..preflight import data_pixel_problems

        problems += data_pixel_problems(loaded.config, get_registry())
    if problems:
        raise ConfigError(problems, loaded.source)
    return loaded


def validate_config(data: Any, *, check_paths: bool = True, overrides: Any = None
                    ) -> LoadedConfig:
    """Validate config data already in memory (a dict as in the JSON file), with
    ``overrides`` applied as in :func:`load_config`."""
    return parse_config(data, get_registry(), check_paths=check_paths, overrides=overrides)


def loaded(config: Any, *, check_paths: bool = True, overrides: Any = None) -> LoadedConfig:
    """``config`` (a path, a dict as in the JSON file, or a LoadedConfig) as a LoadedConfig,
    with ``overrides`` applied (see :func:`load_config`)."""
    if isinstance(config, LoadedConfig):
        if not overrides:
            return config
        from ..config.converter import unstructure_config

        base = Path(config.source).resolve().parent if config.source else None
        data = unstructure_config(config.config, get_registry())
        result = parse_config(data, get_registry(), source=config.source,
                              check_paths=check_paths, base_dir=base, overrides=overrides)
        return attrs.evolve(result, migration=config.migration,
                            overrides={**config.overrides, **result.overrides})
    if isinstance(config, dict):
        return validate_config(config, check_paths=check_paths, overrides=overrides)
    return load_config(config, check_paths=check_paths, overrides=overrides)


@attrs.frozen
class ResolvedConfig:
    """What :func:`show_config` returns."""

    data: dict        # the whole config as JSON data, every default filled in
    migration: list   # MigrationRow items when the input was a legacy config, else empty


def show_config(config: Any, *, check_paths: bool = True, overrides: Any = None
                ) -> ResolvedConfig:
    """The fully resolved ``config`` (a path, a dict or a LoadedConfig; ``overrides`` applied
    as in :func:`load_config`): ``.data`` is the JSON
    form with every default (plugin parameters included) filled in, as ``dlsuite config show``
    prints it; ``.migration`` the legacy-migration rows (empty for a current config). Raises
    ConfigError / DlsuiteInputError like :func:`load_config`."""
    from ..config.converter import unstructure_config

    result = loaded(config, check_paths=check_paths, overrides=overrides)
    return ResolvedConfig(unstructure_config(result.config, get_registry()), result.migration)


@attrs.frozen
class Migration:
    """What :func:`migrate_config` returns."""

    config: dict               # the new nested config (it validates)
    rows: list                 # one MigrationRow per decision, legacy key order
    written: Path | None       # the file written, if any
    #: (key, old, new) of relative paths rewritten for the written file's folder
    rebased: list = attrs.field(factory=list)
    #: printed, not written: the folder its relative paths are read against (the legacy
    #: file's), when that is not the current folder and a path would change; else None
    relative_to: Path | None = None


def migrate_config(path: str | os.PathLike, output: str | os.PathLike | None = None
                   ) -> Migration:
    """Migrate the legacy flat config of the original suite at ``path`` to the new form.

    The result is validated (without checking data paths) before anything is written; with
    ``output`` it is written there as indented JSON (atomically). Raises DlsuiteInputError
    naming the file when it is missing, not JSON or not a legacy config, when ``output``
    already exists (it is never replaced: it may be the legacy config itself or a config
    edited since), and ConfigError when the migrated config does not validate (nothing is
    written then). Relative paths are rewritten for ``output``'s folder (``.rebased``), so
    the written config names the data the legacy one named; without ``output``,
    ``.relative_to`` names the folder the printed relative paths are read against when it is
    not the current one.
    """
    from ..config.legacy import migrate_file, write_migrated
    from ..config.loader import rebase_paths
    from ..output_file import check_output_file

    if output is not None:
        check_output_file(output, f"--output {output}", writer="dlsuite config migrate")
    registry = get_registry()
    new, rows = migrate_file(path, registry)
    parse_config(new, registry, source=str(path), check_paths=False)
    rebased, relative_to = [], None
    if output is not None:  # relative paths are read against the folder of the file
        rebased = rebase_paths(new, Path(path).parent, Path(output).parent)
    elif rebase_paths(copy.deepcopy(new), Path(path).parent, Path.cwd()):
        relative_to = Path(path).parent
    written = write_migrated(new, output) if output is not None else None
    return Migration(new, rows, written, rebased, relative_to)


def config_schema(output: str | os.PathLike | None = None, *, overwrite: bool = False) -> dict:
    """The JSON Schema (draft 2020-12) of the config, the installed plugins' parameters
    included. With ``output`` it is also written there (indented JSON, atomically); an
    existing ``output`` is replaced only with ``overwrite`` and only when it is such a schema
    (DlsuiteInputError naming it otherwise, nothing written)."""
    from ..config.jsonschema import SCHEMA_TITLE, config_json_schema
    from ..fileio import write_text_atomic
    from ..output_file import check_output_file, json_object_with

    if output is not None:
        check_output_file(output, str(output), writer="dlsuite config schema",
                          overwrite=overwrite,
                          ours=lambda p: json_object_with(p, title=SCHEMA_TITLE))
    schema = config_json_schema(get_registry())
    if output is not None:
        write_text_atomic(output, json.dumps(schema, indent=2) + "\n")
    return schema


def tracking_defaults() -> dict:
    """The config schema's tracking defaults (``max_distance`` 30 px, ``min_overlap``,
    ``gap_closing``, ``splitting``): the values ``dlsuite run`` uses, and the defaults of
    :func:`track` and ``dlsuite track``."""
    defaults = TrackingConfig()
    return {name: getattr(defaults, name)
            for name in ("max_distance", "min_overlap", "gap_closing", "splitting")}


def plugins(refresh: bool = False) -> Registry:
    """The plugin registry built from the installed ``dlsuite`` entry points.

    ``registry.describe()`` gives a JSON-able listing; ``registry.resolve(kind, name)`` the
    entry a config name selects.
    """
    return get_registry(refresh=refresh)


def _factory_failures(registry: Registry, kind: str | None) -> list[dict]:
    failures = []
    for k in [kind] if kind else list(KINDS):
        for entry in registry.entries(k):
            try:
                entry.load()
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                failures.append({"kind": k, "name": entry.name, "plugin": entry.plugin,
                                 "error": str(exc)})
    return failures


def describe_plugins(*, kind: str | None = None, validate: bool = False) -> dict:
    """The installed plugins as JSON data (what ``dlsuite plugins --json`` prints):
    ``{"plugins": [...], "kinds": {kind: [entries with parameters]}, "broken": [...]}``.

    ``kind`` keeps only that kind under ``"kinds"``. ``validate`` imports every factory (of
    ``kind``, or all) and adds ``"validation_failures"``: one ``{kind, name, plugin, error}``
    per factory that fails to import. Raises DlsuiteInputError for an unknown ``kind``.
    """
    from ..errors import DlsuiteInputError

    if kind is not None and kind not in KINDS:
        raise DlsuiteInputError(f"unknown plugin kind {kind!r}; choose one of {', '.join(KINDS)}")
    registry = get_registry()
    description = registry.describe()
    if kind:
        description["kinds"] = {kind: description["kinds"][kind]}
    if validate:
        description["validation_failures"] = _factory_failures(registry, kind)
    return description


def new_plugin(name: str, kind: str | Sequence[str] = "architecture",
               directory: str | os.PathLike = ".") -> Path:
    """Write a ready-to-install plugin package for ``name`` contributing ``kind``
    (architecture, loss or postprocessor; a list, or a comma-separated string, for several:
    each contribution is then named ``<name>_<kind>``) into ``directory/dlsuite-<name>``:
    pyproject with the ``dlsuite`` entry point, a TF-free plugin module with the parameter
    classes and specs (the architecture declares its size multiple and receptive field), one
    factory module per kind and contract tests. Returns the package folder. Raises
    DlsuiteInputError for a bad name or kind, a contribution name an installed plugin (or
    dlsuite itself) already provides for that kind (a config naming it would select that
    one, and so would the new package's own tests), or an existing folder (nothing is
    written or overwritten)."""
    from ..errors import DlsuiteInputError
    from ..plugin_failures import plugin_label
    from ..registry import singular
    from ..scaffold import contributions, new_plugin as _new_plugin

    registry = get_registry()
    for registry_kind, contribution in contributions(name, kind).items():
        taken = registry.tables[registry_kind].get(contribution)
        if taken:
            who = " and ".join(plugin_label(e.plugin, e.dist, e.version) for e in taken)
            raise DlsuiteInputError(
                f"{singular(registry_kind)} {contribution!r} is already provided by {who}; "
                "choose another NAME (a config naming it, and the new plugin's own tests, "
                "would get that one)")
    return _new_plugin(name, kind, directory)
