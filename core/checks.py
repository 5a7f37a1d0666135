"""Declarative value checks for config sections and plugin parameters.

Each check is an attrs validator, declared next to the field it constrains::

    from dlsuite import param
    from dlsuite.checks import in_range, positive

    @attrs.frozen
    class MyParams:
        n_filters: int = param(16, help="...", validator=positive())
        dropout: float = param(0.0, help="...", validator=in_range(0, 1, hi_open=True))

The config converter runs every field's validators (these and any other attrs validator,
e.g. ``attrs.validators.ge(0)``) and reports each failure at the field's JSON path, together
with the type and key errors of the whole config (``$.model.dropout: must be in [0, 1), got
1.7``). A check also describes itself as JSON Schema keywords (:meth:`Check.json_schema`),
which ``dlsuite config schema`` shows. ``None`` passes every check: whether ``null`` is
allowed is decided by the field's type. Numeric checks ignore non-numbers, so they can sit on
a ``Union[Literal[...], int]`` field.

Cross-field checks (:func:`greater_than`, :func:`not_both_enabled`, :func:`not_both_set`) read the other field
from the instance: attrs sets every field before it runs any validator, and the converter
skips a cross-field check whose other field has a type error. Constructing an object with a
bad value in Python raises :class:`CheckError` (a ValueError and a
:class:`~dlsuite.errors.DlsuiteInputError`).
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, ClassVar, Iterable

import attrs

from .errors import DlsuiteInputError

__all__ = ["Check", "CheckError", "in_range", "positive", "non_negative", "finite", "one_of",
           "non_empty", "max_length", "excludes", "relative_path", "each", "greater_than",
           "not_both_enabled",
           "not_both_set", "checks_of", "json_schema_of"]


class CheckError(DlsuiteInputError, ValueError):
    """A value failed a check. ``problem`` is the message without the field name (the config
    converter shows it after the JSON path); ``subpath`` locates an item inside the value
    (``[1]`` for the second item of a list), ``""`` for the value itself."""

    def __init__(self, field: str, problem: str, subpath: str = ""):
        self.field = field
        self.problem = problem
        self.subpath = subpath
        super().__init__(f"{field}{subpath} {problem}")


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if not isinstance(value, bool) else repr(value)
    return repr(value) if isinstance(value, str) else str(value)


@attrs.frozen
class Check:
    """Base of the checks: ``problem(value, instance)`` returns a message (``must be > 0,
    got -1``) or None; calling the check as an attrs validator raises :class:`CheckError`."""

    def problem(self, value: Any, instance: Any) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def json_schema(self) -> dict:
        """JSON Schema keywords expressing this check (``{}`` when it cannot be expressed)."""
        return {}

    #: JSON types the keywords of :meth:`json_schema` constrain.
    json_types: ClassVar[tuple[str, ...]] = ()

    def __call__(self, instance: Any, attribute: Any, value: Any) -> None:
        if value is None:
            return
        message = self.problem(value, instance)
        if message is not None:
            raise CheckError(attribute.name, message)


@attrs.frozen
class _Range(Check):
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    json_types = ("integer", "number")

    def text(self) -> str:
        if self.lo is not None and self.hi is not None:
            return (f"in {'(' if self.lo_open else '['}{_fmt(self.lo)}, "
                    f"{_fmt(self.hi)}{')' if self.hi_open else ']'}")
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        return f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}"

    def problem(self, value: Any, instance: Any) -> str | None:
        if not _number(value):
            return None
        if isinstance(value, float) and math.isnan(value):
            return f"must be {self.text()}, got NaN"
        low_bad = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        high_bad = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        return f"must be {self.text()}, got {_fmt(value)}" if low_bad or high_bad else None

    def json_schema(self) -> dict:
        out: dict = {}
        if self.lo is not None:
            out["exclusiveMinimum" if self.lo_open else "minimum"] = self.lo
        if self.hi is not None:
            out["exclusiveMaximum" if self.hi_open else "maximum"] = self.hi
        return out


def in_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             hi_open: bool = False) -> Check:
    """A number in ``[lo, hi]`` (``lo_open``/``hi_open`` exclude the bound; ``None``: no
    bound). JSON Schema: ``minimum``/``exclusiveMinimum``, ``maximum``/``exclusiveMaximum``."""
    if lo is None and hi is None:
        raise ValueError("in_range needs lo or hi")
    return _Range(lo, hi, lo_open, hi_open)


def positive() -> Check:
    """A number > 0 (``exclusiveMinimum: 0``)."""
    return _Range(0, None, lo_open=True)


def non_negative() -> Check:
    """A number >= 0 (``minimum: 0``)."""
    return _Range(0, None)


@attrs.frozen
class _Finite(Check):
    json_types = ("number",)

    def problem(self, value: Any, instance: Any) -> str | None:
        if _number(value) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        return None


def finite() -> Check:
    """A finite number (no NaN, no infinity). Every float field of a config is refused
    NaN/Infinity anyway; this is for fields typed ``Any``."""
    return _Finite()


@attrs.frozen
class _OneOf(Check):
    values: tuple = ()
    json_types = ("integer", "number", "string", "boolean")

    def problem(self, value: Any, instance: Any) -> str | None:
        if any(value == v and isinstance(value, bool) == isinstance(v, bool)
               for v in self.values):
            return None
        allowed = ", ".join(_fmt(v) for v in self.values)
        hint = ""
        strings = [v for v in self.values if isinstance(v, str)]
        if isinstance(value, str) and strings:
            close = difflib.get_close_matches(value, strings, n=1)
            close = close or [s for s in strings if s.lower() == value.lower()]
            hint = f"; did you mean {close[0]!r}?" if close else ""
        elif _number(value):
            numbers_ = [v for v in self.values if _number(v)]
            if numbers_:
                hint = f"; closest: {_fmt(min(numbers_, key=lambda v: abs(v - value)))}"
        return f"must be one of {allowed}, got {_fmt(value)}{hint}"

    def json_schema(self) -> dict:
        return {"enum": list(self.values)}


def one_of(*values: Any) -> Check:
    """One of ``values`` (``enum``); a near miss gets a did-you-mean (strings) or the
    closest allowed value (numbers). Prefer ``Literal[...]`` types for strings."""
    if not values:
        raise ValueError("one_of needs at least one value")
    return _OneOf(tuple(values))


@attrs.frozen
class _NonEmpty(Check):
    json_types = ("string", "array")

    def problem(self, value: Any, instance: Any) -> str | None:
        if isinstance(value, str) and not value.strip():
            return "must not be empty"
        if isinstance(value, (list, tuple)) and not value:
            return "must not be empty"
        return None

    def json_schema(self) -> dict:
        return {"minLength": 1, "minItems": 1}


def non_empty() -> Check:
    """A non-blank string or a non-empty list (``minLength``/``minItems`` 1)."""
    return _NonEmpty()


@attrs.frozen
class _MaxLength(Check):
    limit: int
    json_types = ("string",)

    def problem(self, value: Any, instance: Any) -> str | None:
        if isinstance(value, str) and len(value) > self.limit:
            return f"must be at most {self.limit} characters long, got {len(value)}"
        return None

    def json_schema(self) -> dict:
        return {"maxLength": self.limit}


def max_length(limit: int) -> Check:
    """A string of at most ``limit`` characters (``maxLength``)."""
    return _MaxLength(limit)


@attrs.frozen
class _Excludes(Check):
    chars: str
    why: str = ""
    json_types = ("string",)

    def problem(self, value: Any, instance: Any) -> str | None:
        if not isinstance(value, str):
            return None
        found = sorted({c for c in value if c in self.chars}, key=self.chars.index)
        if found:
            listed = " ".join(self.chars)
            return (f"must not contain {' '.join(found)} (any of {listed}){self.why}, "
                    f"got {value!r}")
        return None

    def json_schema(self) -> dict:
        import re

        return {"pattern": f"^[^{re.escape(self.chars)}]*$"}


def excludes(chars: str, why: str = "") -> Check:
    """A string without any of the characters ``chars`` (a JSON Schema ``pattern``);
    ``why`` is added to the message (e.g. ``"; put the team in wandb.entity"``)."""
    return _Excludes(chars, why)


def _control(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


@attrs.frozen
class _RelativePath(Check):
    json_types = ("string",)

    def problem(self, value: Any, instance: Any) -> str | None:
        if not isinstance(value, str):
            return None
        parts = value.split("/")
        if value.startswith("/") or "\\" in value or (len(value) > 1 and value[1] == ":"):
            return f"must be a relative path with / separators, got {_fmt(value)}"
        if ".." in parts:
            return f"must stay inside its folder (no '..'), got {_fmt(value)}"
        if all(part in ("", ".") for part in parts):
            return f"must name a subfolder, got {_fmt(value)}"
        if _control(value):
            return f"must not hold control characters, got {_fmt(value)}"
        return None

    def json_schema(self) -> dict:
        return {"pattern": r"^(?![/\\])(?!.:)(?!(.*/)?\.\.(/|$))(?![./]*$)"
                           r"[^\\\x00-\x1f\x7f]*$"}


def relative_path() -> Check:
    """A relative path (``/`` separators) that stays inside the folder it is joined to: not
    absolute, no ``..`` part, not only ``.``, no control characters (JSON Schema
    ``pattern``)."""
    return _RelativePath()


@attrs.frozen
class _Each(Check):
    checks: tuple = ()
    json_types = ("array",)

    def problem(self, value: Any, instance: Any) -> str | None:  # pragma: no cover - unused
        return None

    def __call__(self, instance: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, (list, tuple)):
            return
        for i, item in enumerate(value):
            for check in self.checks:
                message = None if item is None else check.problem(item, instance)
                if message is not None:
                    raise CheckError(attribute.name, message, f"[{i}]")

    def json_schema(self) -> dict:
        items: dict = {}
        for check in self.checks:
            items.update(check.json_schema())
        return {"items": items} if items else {}


def each(*checks: Check) -> Check:
    """Every item of a list or tuple passes ``checks``; a failure is reported at the item's
    path (``$.datagen.patch_size[1]``). JSON Schema: the checks' keywords under ``items``."""
    return _Each(tuple(checks))


@attrs.frozen
class _CrossField(Check):
    """A check reading field ``other`` of the same object (not expressible in JSON Schema)."""

    other: str = ""
    json_types = ()

    def other_value(self, instance: Any) -> Any:
        return getattr(instance, self.other)  # AttributeError: the converter skips the check


@attrs.frozen
class _Greater(_CrossField):
    def problem(self, value: Any, instance: Any) -> str | None:
        other = self.other_value(instance)
        if _number(value) and _number(other) and not value > other:
            return f"must be greater than {self.other} ({_fmt(other)}), got {_fmt(value)}"
        return None


def greater_than(other: str) -> Check:
    """A number greater than the value of field ``other`` of the same object (a cross-field
    check, reported at this field's path; not expressible in JSON Schema)."""
    return _Greater(other)


@attrs.frozen
class _NotBothEnabled(_CrossField):
    why: str = ""

    def problem(self, value: Any, instance: Any) -> str | None:
        other = self.other_value(instance)
        if getattr(value, "enabled", False) and getattr(other, "enabled", False):
            return (f"cannot be enabled together with {self.other}{self.why}: set "
                    f"{self.other}.enabled to false")
        return None


def not_both_enabled(other: str, why: str = "") -> Check:
    """A section whose ``enabled`` is true only while section ``other`` of the same object is
    not enabled (a cross-field check, reported at this field's path; ``why`` is added to the
    message, e.g. `` (both set the learning rate)``)."""
    return _NotBothEnabled(other, why)


@attrs.frozen
class _NotBothSet(_CrossField):
    def problem(self, value: Any, instance: Any) -> str | None:
        other = self.other_value(instance)
        if other is not None:
            return f"cannot be set together with {self.other} ({_fmt(other)}): set one of them"
        return None


def not_both_set(other: str) -> Check:
    """A value that may be set (not null) only while field ``other`` of the same object is
    null (a cross-field check, reported at this field's path)."""
    return _NotBothSet(other)


# ---- introspection (JSON Schema, docs) --------------------------------------------------------
def _flatten(validator: Any) -> Iterable[Any]:
    if validator is None:
        return
    inner = getattr(validator, "_validators", None)  # attrs.validators.and_ (and lists)
    if inner is not None:
        for v in inner:
            yield from _flatten(v)
        return
    optional = getattr(validator, "validator", None)  # attrs.validators.optional
    if optional is not None and not isinstance(validator, Check):
        yield from _flatten(optional)
        return
    yield validator


def checks_of(field: attrs.Attribute) -> list[Check]:
    """The :class:`Check` validators of an attrs field (other validators left out)."""
    return [v for v in _flatten(field.validator) if isinstance(v, Check)]


def _apply(schema: dict, check: Check) -> None:
    keywords = check.json_schema()
    if not keywords:
        return
    if isinstance(check, _Each):
        targets = ([schema["items"]] if isinstance(schema.get("items"), dict) else []) + \
                  list(schema.get("prefixItems", []))
        for target in targets:
            target.update(keywords["items"])
        for branch in schema.get("anyOf", []):
            if branch.get("type") == "array":
                _apply(branch, check)
        return
    if "anyOf" in schema:
        for branch in schema["anyOf"]:
            _apply(branch, check)
        return
    kind = schema.get("type")
    if kind in check.json_types or (kind == "number" and "integer" in check.json_types):
        if kind == "string":
            keywords = {k: v for k, v in keywords.items() if k != "minItems"}
        elif kind == "array":
            keywords = {k: v for k, v in keywords.items() if k != "minLength"}
        schema.update(keywords)


def json_schema_of(field: attrs.Attribute, schema: dict) -> dict:
    """``schema`` (the JSON Schema of ``field``'s type) with the keywords of the field's
    checks added where they apply (numeric bounds on the numeric branches of a union, item
    checks under ``items``, ``enum`` on the non-null branches)."""
    for check in checks_of(field):
        _apply(schema, check)
    return schema
