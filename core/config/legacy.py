"""Legacy flat configs of the original suite: detection and migration to the typed schema.

The original suite read a flat JSON (``cnn_name``,
``OUTPUTPATH``, ``model_n_filters``, ...) with no defaults, the string ``"None"`` as the
"absent" sentinel and ``0``/``1`` as booleans. :func:`migrate` turns such a dict into the
nested form of :mod:`dlsuite.config.schema` and returns one :class:`MigrationRow` per
decision (old key -> JSON path of the new key, or the reason the key is obsolete).

Everything is driven by the declarative table :data:`RULES` (one :class:`Rule` per legacy
key) plus a few lookup tables (architecture substrings, losses, normalizations, the
original's augmentation). Plugin parameters are resolved against the registry *at migration
time*: a model parameter is written only when the chosen architecture's params class has
that field, so the result validates. No TensorFlow is imported.

The work is split by job: :mod:`~dlsuite.config.legacy_tables` (lookup tables),
:mod:`~dlsuite.config.legacy_context` (cross-key decisions),
:mod:`~dlsuite.config.legacy_rule_kinds` (rows, rules, value converters),
:mod:`~dlsuite.config.legacy_custom_rows` (rows that depend on other keys),
:mod:`~dlsuite.config.legacy_rules` (the rule table) and :mod:`~dlsuite.config.legacy_output`
(table, text, file); this module holds the public API and re-exports their public names.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Optional

import attrs

from ..errors import DlsuiteInputError
# the public names imported below lived in this module: re-exported here
from .legacy_context import _build_context, _Context, _join, select_architecture
from .legacy_custom_rows import _implicit_rows
from .legacy_output import format_migration, migration_to_text, write_migrated
from .legacy_rule_kinds import (_KINDS, Converter, MigrationRow, Rule, RowFn, _model,
                                _row_model, _same, _to_bool)
from .legacy_rules import RULES
from .legacy_tables import (_RELATIVE_NOTE, ARCH_NOTES, ARCH_SUBSTRINGS, DEFAULT_ARCH,
                            LEGACY_AUGMENTATION, LEGACY_PREFIXES, LOSS_MAP, MOBILENETS,
                            NORMALIZATION_MAP, PATH_KEYS, STATIC_ARCH_FIELDS, STATIC_TEMPORAL,
                            TARGET_CLASSES, TEMPORAL_COUNTERPART, AugmentationGroup,
                            LossMapping, PluginParam)
from .schema import SCHEMA_VERSION, Config

__all__ = ["MigrationRow", "Rule", "RULES", "LEGACY_PREFIXES", "is_legacy", "migrate",
           "migrate_file", "select_architecture", "format_migration", "migration_to_text",
           "write_migrated", "name_legacy_keys"]


_NEW_TOP_LEVEL = frozenset(f.name for f in attrs.fields(Config))


def _looks_legacy_key(key: Any) -> bool:
    return isinstance(key, str) and (key in RULES or key.startswith(LEGACY_PREFIXES))


def is_legacy(data: Any) -> bool:
    """True when ``data`` is a flat config of the original suite: a dict without
    ``schema_version`` and without any top-level key of the new schema, holding at least one
    key of the original (``cnn_name``, ``OUTPUTPATH``, ``model_*``, ``datagen_*``, ...)."""
    if not isinstance(data, dict) or "schema_version" in data:
        return False
    if any(key in _NEW_TOP_LEVEL for key in data):
        return False
    return any(_looks_legacy_key(key) for key in data)


def _unknown_rows(key: str, raw: Any, ctx: _Context) -> list[MigrationRow]:
    if isinstance(key, str) and key.startswith("model_"):
        field = key[len("model_"):]
        if field in ctx.arch_fields and field != "name":
            convert = _to_bool if field in _BOOL_FIELDS else _same
            return _row_model(key, raw, _model(field, convert,
                                               "undocumented model_<x> pass-through"), ctx)
        return [MigrationRow(key, raw, None, None,
                             f"unknown key, ignored (the original forwarded it to the U-Net "
                             f"builders as {field!r}; not a parameter of {ctx.arch})")]
    return [MigrationRow(str(key), raw, None, None, "unknown key, ignored")]


_BOOL_FIELDS = frozenset({"tips", "batch_norm", "train_decoder_only"})


def _path_note(row: MigrationRow) -> MigrationRow:
    value = row.new_value
    if row.new_key in PATH_KEYS and isinstance(value, str) and not os.path.isabs(
            os.path.expanduser(value)):
        return attrs.evolve(row, note=_join(row.note, _RELATIVE_NOTE))
    return row


def _set_path(tree: dict, path: str, value: Any) -> None:
    """Write ``value`` at JSON path ``$.a.b`` (dicts merged, intermediate dicts created)."""
    parts = path.removeprefix("$.").split(".")
    value = copy.deepcopy(value)
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node.get(last), dict) and isinstance(value, dict):
        node[last].update(value)
    else:
        node[last] = value


def migrate_file(path: str | os.PathLike, registry: Any = None
                 ) -> tuple[dict, list[MigrationRow]]:
    """Read the JSON file at ``path`` and :func:`migrate` it. Raises DlsuiteInputError naming
    the file when it is missing, not JSON, or not a legacy flat config."""
    from .loader import load_config_data  # local: loader imports this module lazily too

    data = load_config_data(path)
    if not is_legacy(data):
        raise DlsuiteInputError(
            f"{path}: not a legacy flat config of the original suite (it has schema_version, "
            "a key of the new schema, or no key of the original); nothing to migrate")
    return migrate(data, registry)


def migrate(data: dict, registry: Any = None) -> tuple[dict, list[MigrationRow]]:
    """Migrate a legacy flat config into the new nested form.

    Returns ``(new_config_dict, rows)``: the dict carries ``schema_version`` and validates
    with :func:`dlsuite.config.parse_config` when the plugins it names are registered; the
    rows hold one entry per decision, in the order of the legacy keys, then the original's
    implicit behaviour (augmentation, encoder weights, ...). Every key gets at least one row;
    keys without a rule are reported as ``unknown key, ignored``. Values of the wrong type
    are carried over unchanged, so validation reports them at their new JSON path. Plugin
    parameters are checked against ``registry`` (default: the installed plugins). The input
    is not modified and shares no mutable value with the result.
    Raises DlsuiteInputError when ``data`` is not a dict.
    """
    if not isinstance(data, dict):
        raise DlsuiteInputError(f"a legacy config must be a JSON object, got "
                                f"{type(data).__name__}")
    if registry is None:
        from ..registry import get_registry
        registry = get_registry()
    ctx = _build_context(data, registry)
    rows: list[MigrationRow] = []
    for key, raw in data.items():
        rule = RULES.get(key)
        rows += _KINDS[rule.kind](key, raw, rule, ctx) if rule else _unknown_rows(key, raw, ctx)
    rows += _implicit_rows(ctx)
    rows = [_path_note(row) for row in rows]

    tree: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "model": {"name": ctx.arch}}
    if ctx.mobilenet or "model_lossfunction" in data:
        tree["loss"] = {"name": ctx.loss.loss}
    for row in rows:
        if row.new_key is not None:
            _set_path(tree, row.new_key, row.new_value)
    rows = _fit_static_halo(tree, rows, ctx)
    order = [f.name for f in attrs.fields(Config)]
    return {k: tree[k] for k in order if k in tree}, rows


def _fit_static_halo(tree: dict, rows: list[MigrationRow], ctx: _Context) -> list[MigrationRow]:
    """The original predicted 960 px tiles whatever the model; dlsuite's static-size models
    (ConvLSTM) predict tiles of ``datagen.patch_size``. A ``newinfer_padding`` leaving no core
    in such a tile (the original examples: 115 px in 256 px tiles) becomes the largest halo
    that does, with a note; anything invalid is left to validation."""
    halo = tree.get("inference", {}).get("halo")
    if not isinstance(halo, int) or isinstance(halo, bool) or halo < 0:
        return rows
    try:
        spec = ctx.registry.resolve("architectures", ctx.arch).spec
        if spec.supports_dynamic_size or spec.size_multiple is None:
            return rows
        params = spec.params(**{k: v for k, v in tree["model"].items() if k != "name"})
        m = int(spec.size_multiple(params))
        patch = tree.get("datagen", {}).get("patch_size", Config().datagen.patch_size)
        size = min(int(v) for v in patch)
    except Exception:  # noqa: BLE001 - unregistered model or invalid values: validation says
        return rows
    if m < 1 or (size - 2 * (-(-halo // m) * m)) // m * m >= 1:
        return rows
    fit = max((size - m) // 2 // m * m, 0)
    tree["inference"]["halo"] = fit
    note = (f"{ctx.arch} has a static input size: dlsuite predicts tiles of "
            f"datagen.patch_size ({size} px; the original: 960 px), where a {halo} px halo "
            f"leaves no core; lowered to {fit} px, the largest that does")
    return [attrs.evolve(r, new_value=fit, note=_join(r.note, note))
            if r.new_key == "$.inference.halo" else r for r in rows]


def name_legacy_keys(problems: list[tuple[str, str]], rows: list[MigrationRow]
                     ) -> list[tuple[str, str]]:
    """Validation problems of a migrated config, each message followed by the legacy key its
    value came from (``$.optimizer.learning_rate: must be > 0, got -1 (legacy key
    model_lr)``): the row whose ``new_key`` is the problem's path or its closest parent (the
    last row writing it, as in the migrated config). A row's ``error`` replaces the message at
    its own path, and is added if validation did not report that path."""
    by_key: dict[str, MigrationRow] = {}
    for row in rows:
        if row.new_key is not None:
            by_key[row.new_key] = row
    keys = sorted(by_key, key=len, reverse=True)

    def row_for(path: str) -> Optional[MigrationRow]:
        return next((by_key[k] for k in keys if path == k or path.startswith((k + ".", k + "["))),
                    None)

    out: list[tuple[str, str]] = []
    for path, message in problems:
        row = row_for(path)
        if row is None:
            out.append((path, message))
            continue
        if row.error and row.new_key == path:
            message = row.error
        out.append((path, f"{message} (legacy key {row.old_key})"))
    reported = {path for path, _ in problems}
    out += [(row.new_key, f"{row.error} (legacy key {row.old_key})") for row in rows
            if row.error and row.new_key is not None and row.new_key not in reported]
    return out
