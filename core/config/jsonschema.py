"""JSON Schema of the config, generated from the attrs classes and the installed plugins.

Value checks declared on the fields (:mod:`dlsuite.checks`) appear as ``minimum``,
``exclusiveMinimum``, ``maximum``, ``exclusiveMaximum``, ``enum``, ``minLength``/``minItems``
(under ``items`` for per-item checks); cross-field and cross-section rules cannot be
expressed and are enforced by validation only."""

from __future__ import annotations

import typing
from typing import Any

import attrs

from ..registry import Registry
from ..checks import json_schema_of
from .schema import Choice, Config

__all__ = ["config_json_schema"]

_PRIMITIVES = {int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"},
               str: {"type": "string"}, type(None): {"type": "null"}, Any: {}}


def _default(value: Any) -> Any:
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        value = value.factory()
    if isinstance(value, Choice):
        return {"name": value.name}
    if isinstance(value, list):  # items that are plain objects (not plugin choices) as dicts
        return [attrs.asdict(v) if attrs.has(type(v)) and not isinstance(v, Choice)
                else _default(v) for v in value]
    if isinstance(value, tuple):
        return list(value)
    if attrs.has(type(value)):
        return None
    return value


def _type_schema(tp: Any, registry: Registry) -> dict:
    if tp in _PRIMITIVES:
        return dict(_PRIMITIVES[tp])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        return {"anyOf": [_type_schema(a, registry) for a in args]}
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return {"type": "array", "prefixItems": [_type_schema(a, registry) for a in args],
                    "minItems": len(args), "maxItems": len(args)}
        return {"type": "array", "items": _type_schema(args[0], registry) if args else {}}
    if isinstance(tp, type) and issubclass(tp, Choice):
        return _choice_schema(tp, registry)
    if attrs.has(tp):
        return _class_schema(tp, registry)
    return {}


def _class_schema(cl: type, registry: Registry) -> dict:
    attrs.resolve_types(cl)
    props = {}
    required = []
    for field in attrs.fields(cl):
        schema = json_schema_of(field, _type_schema(field.type, registry))
        if field.metadata.get("help"):
            schema["description"] = field.metadata["help"]
        if field.default is attrs.NOTHING:
            required.append(field.name)
        else:
            default = _default(field.default)
            if default is not None or field.default is None:
                schema["default"] = default
        props[field.name] = schema
    out: dict = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _choice_schema(tp: type[Choice], registry: Registry) -> dict:
    variants = []
    for name in registry.names(tp.kind):
        try:
            entry = registry.resolve(tp.kind, name)
        except Exception:  # noqa: BLE001 - ambiguous plain names are listed qualified only
            continue
        schema = _class_schema(entry.spec.params, registry)
        schema["properties"] = {"name": {"const": name}, **schema["properties"]}
        schema["required"] = ["name"] + schema.get("required", [])
        if entry.spec.description:
            schema["description"] = entry.spec.description
        variants.append(schema)
    names = {"type": "string", "enum": [v["properties"]["name"]["const"] for v in variants]}
    return {"anyOf": [names, *variants]}


#: The ``title`` of the config's JSON Schema (how ``dlsuite config schema`` recognises a file
#: it wrote).
SCHEMA_TITLE = "dlsuite config"


def config_json_schema(registry: Registry) -> dict:
    """A JSON Schema (draft 2020-12) of the whole config, plugin parameters included."""
    schema = _class_schema(Config, registry)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = SCHEMA_TITLE
    return schema
