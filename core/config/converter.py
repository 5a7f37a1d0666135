"""cattrs converter for configs: strict JSON types, no unknown keys, plugin unions on ``name``.

``structure_config(data, registry)`` returns a :class:`~dlsuite.config.schema.Config` or
raises :class:`~dlsuite.errors.ConfigError` listing *every* problem with its JSON path:
unknown keys (with the closest valid name), missing keys, wrong types, NaN/Infinity, and
every failed attrs validator of dlsuite's sections and of plugin parameters (ranges, choices,
cross-field checks, see :mod:`dlsuite.checks`), all in one pass. No TensorFlow is
imported.

Error paths have one format: ``$`` is the whole config, ``.key`` an object key, ``[i]`` a
list item, then ``: `` and the message, e.g. ``$.model.n_filtres: unknown key; did you mean
n_filters?``, ``$.datagen.augmentation[0].zoom: must be in [0, 1), got 1.5``,
``$.datagen.patch_size[1]: must be > 0, got 0``. For a legacy config the message ends with
``(legacy key model_lr)``.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from ..errors import ConfigError, PluginError
from ..registry import Registry, singular
from ..checks import CheckError
from .schema import Choice, Config

__all__ = ["make_converter", "structure_config", "unstructure_config", "ConfigValueError"]


class ConfigValueError(ValueError):
    """A value error whose message is shown to the user as is."""


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _got(value: Any) -> str:
    """What a wrong value is, for "expected ..., got ...": its JSON type and the value
    (``null`` alone: "got null None" said it twice)."""
    return "null" if value is None else f"{_json_type(value)} {value!r}"


def _strict_int(value: Any, _t: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigValueError(f"expected an integer, got {_got(value)}")
    return value


def _strict_float(value: Any, _t: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigValueError(f"expected a number, got {_got(value)}")
    if not math.isfinite(value):  # Python's json reads NaN and Infinity; no setting wants them
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        raise ConfigValueError(f"expected a finite number, got {text}")
    return float(value)


def _strict_bool(value: Any, _t: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigValueError(f"expected true or false, got {_got(value)}")
    return value


def _strict_str(value: Any, _t: Any) -> str:
    if not isinstance(value, str):
        raise ConfigValueError(f"expected a string, got {_got(value)}")
    return value


def _is_literal(t: Any) -> bool:
    return typing.get_origin(t) is typing.Literal


def _structure_literal(value: Any, t: Any) -> Any:
    allowed = typing.get_args(t)
    if isinstance(value, bool) or value not in allowed:
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigValueError(
            f"expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}{hint}")
    return value


def _is_union(t: Any) -> bool:
    origin = typing.get_origin(t)
    return origin is typing.Union or (origin is not None and origin.__name__ == "UnionType")


def _with_note(exc: BaseException, field: attrs.Attribute) -> BaseException:
    exc.__notes__ = getattr(exc, "__notes__", []) + [cattrs.errors.AttributeValidationNote(
        f"Structuring {field.name}", field.name, field.type)]
    return exc


def _validator_problem(exc: Exception) -> ConfigValueError:
    """The message of a failed attrs validator, without the field name our checks prepend
    (the JSON path names the field) and without attrs' tuple of arguments."""
    if isinstance(exc, CheckError):
        return ConfigValueError(exc.problem)
    if exc.args and isinstance(exc.args[0], str):
        return ConfigValueError(exc.args[0])
    return ConfigValueError(str(exc))


def _default_of(field: attrs.Attribute) -> Any:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return attrs.NOTHING if default.takes_self else default.factory()
    return default


def structure_attrs(conv: cattrs.Converter, value: Any, cl: type) -> Any:
    """Build attrs class ``cl`` from the dict ``value`` reporting *every* problem at once.

    Each key is structured with ``conv``; unknown keys, missing required keys and type errors
    are collected; then the validators of every field that structured cleanly run (a field
    absent from ``value`` is checked at its default), so range errors are reported together
    with the type errors of the other fields. A validator that reads another field which
    failed to structure (AttributeError) is skipped. Raises cattrs' ClassValidationError whose
    sub-exceptions carry AttributeValidationNotes (turned into JSON paths by
    :func:`collect_problems`)."""
    if not isinstance(value, dict):
        raise ConfigValueError(f"expected an object, got {_got(value)}")
    fields = [f for f in attrs.fields(cl) if f.init]
    names = {f.name for f in fields}
    by_field: dict[str, Exception] = {}  # reported in field order, unknown keys last
    structured: dict[str, Any] = {}
    failed: set[str] = set()
    for field in fields:
        if field.name not in value:
            if field.default is attrs.NOTHING:
                by_field[field.name] = _with_note(KeyError(field.name), field)
                failed.add(field.name)
            continue
        try:
            structured[field.name] = conv.structure(value[field.name], field.type)
        except Exception as exc:  # noqa: BLE001 - reported with the field's path
            by_field[field.name] = _with_note(exc, field)
            failed.add(field.name)
    # What the validators see: the structured values, defaults for absent keys, nothing for
    # fields that failed (a cross-field check reading one raises AttributeError: skipped).
    view = types.SimpleNamespace()
    for field in fields:
        if field.name in structured:
            setattr(view, field.name, structured[field.name])
        elif field.name not in failed:
            default = _default_of(field)
            if default is not attrs.NOTHING:
                setattr(view, field.name, default)
    for field in fields:
        if field.validator is None or not hasattr(view, field.name):
            continue
        try:
            field.validator(view, field, getattr(view, field.name))
        except AttributeError:
            continue
        except Exception as exc:  # noqa: BLE001 - any validator failure, at the field's path
            problem = _validator_problem(exc)
            sub = exc.subpath if isinstance(exc, CheckError) else ""
            if sub:  # an item of a list: one more path step
                index = int(sub.strip("[]"))
                problem.__notes__ = [cattrs.errors.IterableValidationNote(
                    f"Structuring item {index}", index, Any)]
                problem = IterableValidationError("item", [problem], list)
            by_field[field.name] = _with_note(problem, field)
    errors = [by_field[f.name] for f in fields if f.name in by_field]
    extra = {k for k in value if k not in names}
    if extra:
        errors.append(ForbiddenExtraKeysError("", cl, extra))
    if errors:
        raise ClassValidationError(f"While structuring {cl.__name__}", errors, cl)
    kwargs = {f.alias: structured[f.name] for f in fields if f.name in structured}
    try:
        return cl(**kwargs)
    except (ValueError, TypeError) as exc:  # __attrs_post_init__ or a check needing `self`
        raise _validator_problem(exc) from exc


def make_converter(registry: Registry) -> cattrs.Converter:
    """A converter whose plugin sections are validated against ``registry``'s schemas."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook_func(_is_literal, _structure_literal)

    def structure_union(value: Any, t: Any) -> Any:
        members = typing.get_args(t)
        if value is None:
            if type(None) in members:
                return None
            raise ConfigValueError("expected a value, got null")
        errors = []
        for member in members:
            if member is type(None):
                continue
            try:
                return conv.structure(value, member)
            except Exception as exc:  # noqa: BLE001 - try the next member
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        names = [getattr(m, "__name__", str(m)) for m in members if m is not type(None)]
        raise ConfigValueError(f"{value!r} matches none of: {', '.join(names)}")

    conv.register_structure_hook_func(_is_union, structure_union)

    def tuple_hook(value: Any, t: Any) -> tuple:
        args = typing.get_args(t)
        if not isinstance(value, (list, tuple)):
            raise ConfigValueError(f"expected an array, got {_got(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(conv.structure(v, args[0]) for v in value)
        if args and len(value) != len(args):
            raise ConfigValueError(f"expected an array of {len(args)} items, got {len(value)}")
        return tuple(conv.structure(v, a) for v, a in zip(value, args)) if args else tuple(value)

    conv.register_structure_hook_func(
        lambda t: typing.get_origin(t) is tuple or t is tuple, tuple_hook)

    def list_guard(value: Any, t: Any) -> list:
        if not isinstance(value, list):
            raise ConfigValueError(f"expected an array, got {_got(value)}")
        (item_type,) = typing.get_args(t) or (Any,)
        out, errors = [], []
        for i, item in enumerate(value):
            try:
                out.append(conv.structure(item, item_type))
            except Exception as exc:  # noqa: BLE001
                exc.__notes__ = getattr(exc, "__notes__", []) + [cattrs.errors.IterableValidationNote(
                    f"Structuring {t} @ index {i}", i, item_type)]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {t}", errors, t)
        return out

    conv.register_structure_hook_func(lambda t: typing.get_origin(t) is list, list_guard)

    def attrs_factory(cl: type) -> Any:
        attrs.resolve_types(cl)
        return lambda value, t: structure_attrs(conv, value, cl)

    conv.register_structure_hook_factory(
        lambda t: attrs.has(t) and not (isinstance(t, type) and issubclass(t, Choice)),
        attrs_factory)

    def choice_hook(value: Any, t: type[Choice]) -> Choice:
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise ConfigValueError(
                f"expected a plugin name or an object with 'name', got {_json_type(value)}")
        if "name" not in value:
            raise ConfigValueError(f"missing 'name' of the {singular(t.kind)} plugin")
        name = value["name"]
        if not isinstance(name, str):
            raise ConfigValueError(f"'name' must be a string, got {_json_type(name)}")
        try:
            entry = registry.resolve(t.kind, name)
        except PluginError as exc:
            raise ConfigValueError(str(exc)) from exc
        rest = {k: v for k, v in value.items() if k != "name"}
        return t(name=name, params=conv.structure(rest, entry.spec.params))

    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Choice), choice_hook)

    def unstructure_choice(choice: Choice) -> dict:
        params = {} if choice.params is None else conv.unstructure(choice.params)
        return {"name": choice.name, **params}

    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Choice), unstructure_choice)
    conv.register_unstructure_hook(tuple, list)
    return conv


# ---- error reporting ----------------------------------------------------------------------
def _note_step(note: Any) -> str:
    if isinstance(note, cattrs.errors.AttributeValidationNote):
        return f".{note.name}"
    if isinstance(note, cattrs.errors.IterableValidationNote):
        return f"[{note.index}]"
    return ""


def _fields_of(cl: Any) -> list[str]:
    return [f.name for f in attrs.fields(cl)] if attrs.has(cl) else []


def collect_problems(exc: BaseException, path: str = "$") -> list[tuple[str, str]]:
    """Flatten a cattrs exception tree into ``(json_path, message)`` pairs."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        out: list[tuple[str, str]] = []
        for sub in exc.exceptions:
            steps = "".join(_note_step(n) for n in getattr(sub, "__notes__", []))
            out += collect_problems(sub, path + steps)
        return out
    if isinstance(exc, ForbiddenExtraKeysError):
        valid = _fields_of(exc.cl)
        out = []
        for key in sorted(exc.extra_fields):
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else (
                f"; valid keys: {', '.join(valid)}" if valid else "")
            out.append((f"{path}.{key}", f"unknown key{hint}"))
        return out
    if isinstance(exc, KeyError):
        return [(path, "required key missing")]
    if isinstance(exc, ConfigValueError):
        return [(path, str(exc))]
    return [(path, f"invalid value ({type(exc).__name__}: {exc})")]


#: The converters of the last few registries (a process has one; tests make several).
_RECENT: list[tuple[Registry, cattrs.Converter]] = []


def converter_for(registry: Registry) -> cattrs.Converter:
    """:func:`make_converter`'s converter for ``registry``, made once: cattrs keeps the hooks
    it generates in its converter, so reusing one loads a config several times faster (a
    sweep validates every trial's config). Plugins are resolved in ``registry`` at each
    structuring, so plugins added to it later are seen."""
    for known, conv in _RECENT:
        if known is registry:
            return conv
    conv = make_converter(registry)
    _RECENT.insert(0, (registry, conv))
    del _RECENT[4:]
    return conv


def structure_config(data: Any, registry: Registry, source: str | None = None) -> Config:
    """Build the typed config from JSON data, plugin parameters included and defaults filled.

    Raises ConfigError with all problems (never another exception for any JSON input).
    """
    conv = converter_for(registry)
    try:
        config = conv.structure(data, Config)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes a ConfigError
        problems = collect_problems(exc)
        raise ConfigError(problems or [("$", str(exc))], source) from None
    return fill_plugin_defaults(config, registry, conv, source)


def fill_plugin_defaults(config: Config, registry: Registry, conv: cattrs.Converter,
                         source: str | None = None) -> Config:
    """Replace each default :class:`Choice` without params by its plugin's default params."""
    problems: list[tuple[str, str]] = []

    def fill(obj: Any, path: str) -> Any:
        if isinstance(obj, Choice):
            if obj.params is not None:
                return obj
            try:
                entry = registry.resolve(obj.kind, obj.name)
                return attrs.evolve(obj, params=conv.structure({}, entry.spec.params))
            except Exception as exc:  # noqa: BLE001
                problems.extend(collect_problems(exc, path) if not isinstance(exc, PluginError)
                                else [(path, str(exc))])
                return obj
        if isinstance(obj, list):
            return [fill(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if attrs.has(type(obj)):
            changes = {f.name: fill(getattr(obj, f.name), f"{path}.{f.name}")
                       for f in attrs.fields(type(obj))}
            return attrs.evolve(obj, **changes)
        return obj

    filled = fill(config, "$")
    if problems:
        raise ConfigError(problems, source)
    return filled


def unstructure_config(config: Config, registry: Registry) -> dict:
    """The config as plain JSON-able data (plugin sections flattened to ``{name, ...}``)."""
    return converter_for(registry).unstructure(config)
