"""The plugin registry: pluggy plugin manager fed from the ``dlsuite`` entry-point group.

Built-in plugins are found exactly like third-party ones, through the entry points declared
in a distribution's metadata. Loading is defensive: an entry point whose import fails, whose
hook implementations do not match the specs, or whose hook raises is recorded in
``Registry.broken`` and skipped; it only becomes fatal when a config names something that
could have come from it.

Environment switches:

* ``DLSUITE_DISABLE_PLUGIN_AUTOLOAD=1``: load only the entry points of the ``dlsuite``
  distribution itself (the built-ins).
* ``DLSUITE_BLOCK_PLUGINS=a,b``: skip the entry points or distributions named (a name that
  matches no installed plugin is warned about).

Names. A config writes a contribution's plain name, or ``plugin:name`` (``plugin`` is the
entry-point name or the distribution). When a third-party plugin contributes a name a
built-in (a contribution of the ``dlsuite`` distribution) already has, the plain name keeps
meaning the built-in, so installing a package never breaks existing configs; a warning names
the other provider, which is reached as ``plugin:name``. Two third-party plugins providing
the same name (and no built-in) must be told apart with ``plugin:name``.

Failures of plugin code. A third-party factory that raises is reported as that plugin's error
(plugin, distribution and version, the message, where to report it): a ``ValueError`` as
:class:`PluginRejected` (the plugin refused the parameters or data it was given; a
DlsuiteInputError, exit 2), anything else as :class:`PluginFailure` (a bug of the plugin; exit
1). :func:`call_spec` does the same for a spec's callables (``size_multiple``,
``receptive_field``); :meth:`Registry.blame` finds the plugin in the traceback of an
exception raised later by a callable a factory returned.
"""

from __future__ import annotations

import difflib
import functools
import logging
import operator
import os
import sys
from importlib import metadata
from typing import Any, Callable, Iterable

import attrs
import pluggy

from . import hookspecs
from .errors import DlsuiteInputError, PluginError
from .plugin_failures import (PluginFailure, PluginRejected, bug, dist_label, failure,
                              plugin_label)
from .specs import PROJECT, PluginSpec

__all__ = ["Entry", "BrokenPlugin", "Registry", "get_registry", "KINDS", "singular",
           "PluginFailure", "PluginRejected", "call_spec", "blame_plugin"]

KINDS = hookspecs.KINDS
ENTRY_POINT_GROUP = PROJECT
OWN_DISTRIBUTION = "dlsuite"

log = logging.getLogger("dlsuite")

#: The singular of each kind, for messages ("unknown loss 'x'").
SINGULAR = {"architectures": "architecture", "losses": "loss", "metrics": "metric",
            "normalizers": "normalizer", "samplers": "sampler", "targets": "target",
            "augmentations": "augmentation", "postprocessors": "postprocessor"}


def singular(kind: str) -> str:
    """``"losses"`` -> ``"loss"``: the kind's name for one contribution (messages)."""
    return SINGULAR.get(kind, kind[:-1] if kind.endswith("s") else kind)


@attrs.frozen
class Entry:
    """One contribution: its spec and where it came from."""

    kind: str
    spec: PluginSpec
    plugin: str
    dist: str | None = None
    version: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.spec.name}"

    @property
    def builtin(self) -> bool:
        """True for a contribution of dlsuite's own distribution."""
        return self.dist == OWN_DISTRIBUTION

    def load(self):
        """Import the factory; an import failure becomes a PluginError naming the plugin.

        The factory of a third-party plugin comes guarded: an exception it raises (other
        than a DlsuiteInputError, which passes unchanged) becomes :class:`PluginRejected`
        (``ValueError``) or :class:`PluginFailure` naming the plugin."""
        try:
            factory = self.spec.load()
        except Exception as exc:  # noqa: BLE001 - any import-time failure of a plugin
            raise PluginError(
                f"{singular(self.kind)} {self.name!r} of plugin {self.plugin!r} "
                f"({dist_label(self.dist, self.version)}): cannot load factory "
                f"{self.spec.factory!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return factory if self.builtin else self._guard(factory, "the factory")

    def _guard(self, function: Callable, role: str) -> Callable:
        what = f"{role} of {singular(self.kind)} {self.name!r}"
        contract = _RETURNS.get(self.kind)

        @functools.wraps(function)
        def guarded(*args, **kwargs):
            try:
                made = function(*args, **kwargs)
            except DlsuiteInputError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported as the plugin's error
                raise failure(what, self.plugin, self.dist, self.version, exc) from exc
            if contract is not None and not contract[0](made):
                raise bug(what, self.plugin, self.dist, self.version, TypeError(
                    f"returned {type(made).__name__} {made!r:.80}, not {contract[1]}"))
            return made

        return guarded


def _is_keras_model(value: Any) -> bool:
    keras = sys.modules.get("keras")  # imported by whoever builds models
    return keras is not None and isinstance(value, keras.Model)


#: What the factory of a plugin kind must return (checked for third-party plugins, whose
#: result would otherwise fail later, in dlsuite's code, as dlsuite's error).
_RETURNS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "architectures": (_is_keras_model, "a keras.Model"),
    "losses": (callable, "a callable loss (y_true, y_pred)"),
    "postprocessors": (callable, "a callable step"),
}


def call_spec(entry: Entry, attribute: str, params: Any) -> int | None:
    """``entry.spec.<attribute>(params)`` for an integer-valued spec callable
    (``size_multiple``, ``receptive_field``): None when the spec declares none. An exception
    it raises, or a value that is not an integer >= 1, is reported as the plugin's error
    (:class:`PluginRejected` for ValueError, else :class:`PluginFailure`)."""
    function = getattr(entry.spec, attribute, None)
    if function is None:
        return None
    what = f"{attribute}(params) of {singular(entry.kind)} {entry.name!r}"
    try:
        value = function(params)
    except DlsuiteInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as the plugin's error
        raise failure(what, entry.plugin, entry.dist, entry.version, exc) from exc
    try:
        number = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        number = None
    if number is None or number < 1:
        raise failure(what, entry.plugin, entry.dist, entry.version,
                      TypeError(f"returned {value!r}, not an integer >= 1"))
    return int(number)


@attrs.frozen
class BrokenPlugin:
    """A plugin that could not be loaded, and why."""

    plugin: str
    dist: str | None
    version: str | None
    error: str


@attrs.frozen
class PluginInfo:
    """A loaded plugin: name, distribution and what it contributes per kind."""

    plugin: str
    dist: str | None
    version: str | None
    contributes: dict[str, list[str]]


def _env_list(name: str) -> set[str]:
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


class Registry:
    """Tables of plugin contributions, one per kind, keyed by name.

    Build with :meth:`from_entry_points` (the normal case) or :meth:`from_plugins` (an
    isolated registry for tests). Look things up with :meth:`resolve`.
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.tables: dict[str, dict[str, list[Entry]]] = {kind: {} for kind in KINDS}
        self.broken: list[BrokenPlugin] = []
        self.plugins: list[PluginInfo] = []
        self.warnings: list[str] = []
        self._origin: dict[str, tuple[str | None, str | None]] = {}
        self._packages: dict[str, set[str]] = {}  # plugin -> top-level packages of its code

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> "Registry":
        """Load every entry point of ``group`` (subject to the environment switches)."""
        reg = cls()
        only_own = os.environ.get("DLSUITE_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")
        blocked = _env_list("DLSUITE_BLOCK_PLUGINS")
        seen: set[tuple[str, str]] = set()
        installed: set[str] = set()
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            installed |= {ep.name} | ({dist} if dist else set())
            if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add((ep.name, ep.value))
            if only_own and dist != OWN_DISTRIBUTION:
                continue
            if ep.name in blocked or (dist and dist in blocked):
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break others
                reg.broken.append(
                    BrokenPlugin(ep.name, dist, version, f"import of {ep.value!r} failed: "
                                 f"{type(exc).__name__}: {exc}")
                )
                continue
            reg.add_plugin(obj, ep.name, dist, version)
            reg._packages.setdefault(ep.name, set()).add(ep.value.split(".")[0].split(":")[0])
        unknown = sorted(blocked - installed)
        if unknown:
            reg.warn(f"DLSUITE_BLOCK_PLUGINS names {', '.join(map(repr, unknown))}, which "
                     f"{'is' if len(unknown) == 1 else 'are'} no installed plugin or "
                     f"distribution (installed: {', '.join(sorted(installed)) or 'none'})")
        return reg

    @classmethod
    def from_plugins(cls, plugins: Iterable[Any], names: Iterable[str] | None = None) -> "Registry":
        """An isolated registry holding only ``plugins`` (modules or objects with hooks)."""
        reg = cls()
        plugins = list(plugins)
        names = list(names) if names is not None else [
            getattr(p, "__name__", type(p).__name__) for p in plugins
        ]
        for obj, name in zip(plugins, names):
            reg.add_plugin(obj, name, None, None)
        return reg

    def add_plugin(self, obj: Any, name: str, dist: str | None, version: str | None) -> None:
        """Register one plugin object and collect its specs; failures go to ``broken``."""
        try:
            self.pm.register(obj, name=name)
        except Exception as exc:  # noqa: BLE001
            self.broken.append(BrokenPlugin(name, dist, version, f"{type(exc).__name__}: {exc}"))
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(obj)
            self.broken.append(BrokenPlugin(name, dist, version, f"unknown hook: {exc}"))
            return
        self._origin[name] = (dist, version)
        module = getattr(obj, "__name__", None) if isinstance(obj, type(sys)) else None
        module = module or getattr(type(obj), "__module__", None)
        if module:
            self._packages.setdefault(name, set()).add(module.split(".")[0])
        collected: dict[str, list[Entry]] = {}
        for kind, hook_name in KINDS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                try:
                    specs = list(impl.function() or [])
                    for spec in specs:
                        if not isinstance(spec, PluginSpec):
                            raise TypeError(f"{hook_name} returned {spec!r}, not a spec")
                except Exception as exc:  # noqa: BLE001
                    self.pm.unregister(obj)
                    self.broken.append(BrokenPlugin(
                        name, dist, version, f"hook {hook_name} failed: {type(exc).__name__}: {exc}"))
                    return
                collected.setdefault(kind, []).extend(
                    Entry(kind, spec, name, dist, version) for spec in specs)
                self._packages.setdefault(name, set()).update(
                    s.factory.split(".")[0].split(":")[0] for s in specs
                    if isinstance(s.factory, str))
        for kind, entries in collected.items():
            for entry in entries:
                self.tables[kind].setdefault(entry.name, []).append(entry)
        self.plugins.append(PluginInfo(
            name, dist, version, {k: [e.name for e in v] for k, v in collected.items()}))

    # ---- lookup -------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        """All names of ``kind`` a config may write: plain names, and ``plugin:name`` for
        every entry."""
        table = self.tables[kind]
        plain = sorted(table)
        qualified = sorted(e.qualified_name for entries in table.values() for e in entries)
        return plain + qualified

    def entries(self, kind: str) -> list[Entry]:
        """Every entry of ``kind``, duplicates included, sorted by name then plugin."""
        return sorted((e for v in self.tables[kind].values() for e in v),
                      key=lambda e: (e.name, e.plugin))

    def resolve(self, kind: str, name: str) -> Entry:
        """Return the entry that ``name`` (or ``plugin:name``) selects.

        A plain name provided by a built-in and by third-party plugins selects the built-in
        (with a warning naming the others, once). Raises PluginError when the name is unknown
        (with the closest names and any broken plugins that might have provided it) or when
        two third-party plugins provide it and no built-in does.
        """
        if kind not in self.tables:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        table = self.tables[kind]
        plugin, sep, plain = name.rpartition(":")
        if sep:
            for entry in table.get(plain, []):
                if plugin in (entry.plugin, entry.dist):
                    return entry
        elif name in table:
            entries = table[name]
            if len(entries) == 1:
                return entries[0]
            builtin = [e for e in entries if e.builtin]
            if len(builtin) == 1:
                others = ", ".join(
                    f"{plugin_label(e.plugin, e.dist, e.version)} as {e.qualified_name!r}"
                    for e in entries if not e.builtin)
                self.warn(f"{singular(kind)} {name!r} is also provided by {others}; "
                          f"{name!r} means dlsuite's built-in (write the qualified name for "
                          "the other)")
                return builtin[0]
            who = " and ".join(plugin_label(e.plugin, e.dist, e.version) for e in entries)
            choices = ", ".join(repr(e.qualified_name) for e in entries)
            raise PluginError(f"{singular(kind)} {name!r} is provided by {who}; "
                              f"write one of {choices} to choose")
        raise PluginError(self.unknown_message(kind, name))

    def warn(self, message: str) -> None:
        """Log ``message`` as a warning of the ``dlsuite`` logger, once per registry; kept
        in :attr:`warnings`."""
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("warning: %s", message)

    def unknown_message(self, kind: str, name: str) -> str:
        """The message for an unknown ``name`` of ``kind``: closest names, broken plugins."""
        msg = f"unknown {singular(kind)} {name!r}"
        close = difflib.get_close_matches(name, self.names(kind), n=1)
        if close:
            msg += f"; did you mean {close[0]!r}?"
        elif self.tables[kind]:
            msg += f"; available: {', '.join(sorted(self.tables[kind]))}"
        for broken in self.broken:
            msg += (f" (note: plugin {broken.plugin!r} ({dist_label(broken.dist, broken.version)})"
                    f" failed to load and may provide it: {broken.error})")
        return msg

    def blame(self, exc: BaseException) -> PluginFailure | None:
        """The :class:`PluginFailure` to report for ``exc`` when it was raised in the code of
        a third-party plugin, else None. The frames of its traceback (and of the exceptions
        it was raised from) are read from the innermost out, skipping other libraries: the
        first one in a loaded plugin's packages decides (a third-party plugin: blamed; dlsuite
        or its built-ins: not)."""
        if isinstance(exc, PluginFailure):
            return exc
        owners: dict[str, str | None] = {"dlsuite": None}
        for plugin, packages in self._packages.items():
            own = self._origin.get(plugin, (None,))[0] == OWN_DISTRIBUTION
            owners.update({pkg: None if own else plugin for pkg in packages})
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            frames = []
            tb = exc.__traceback__
            while tb is not None:
                frames.append(tb)
                tb = tb.tb_next
            for tb in reversed(frames):
                top = str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0]
                if top not in owners:
                    continue  # a library (numpy, keras, ...) or the standard library
                plugin = owners[top]
                if plugin is None:
                    return None  # raised in dlsuite's own code
                dist, version = self._origin.get(plugin, (None, None))
                where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
                return bug(f"code at {where}", plugin, dist, version, exc)
            exc = exc.__cause__ or exc.__context__
        return None

    def call_event(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call an event hook (e.g. ``dlsuite_callbacks``) and flatten the returned lists."""
        results = getattr(self.pm.hook, hook_name)(**kwargs)
        out: list[Any] = []
        for item in results:
            out.extend(item if isinstance(item, (list, tuple)) else [item])
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-able description: plugins, their distributions and contributions, broken."""
        kinds = {}
        for kind in KINDS:
            kinds[kind] = [
                {"name": e.name, "plugin": e.plugin, "distribution": e.dist,
                 "version": e.version, "description": e.spec.description,
                 "factory": e.spec.factory if isinstance(e.spec.factory, str) else repr(e.spec.factory),
                 "parameters": describe_params(e.spec.params), **_chain_kinds(e.spec)}
                for e in self.entries(kind)
            ]
        return {
            "plugins": [attrs.asdict(p) for p in self.plugins],
            "kinds": kinds,
            "broken": [attrs.asdict(b) for b in self.broken],
            "warnings": self.warnings + self.shadowed(),
        }

    def shadowed(self) -> list[str]:
        """One line per built-in name that a third-party plugin also provides (the plain name
        keeps meaning the built-in)."""
        lines = []
        for kind in KINDS:
            for name, entries in sorted(self.tables[kind].items()):
                if len(entries) > 1 and sum(e.builtin for e in entries) == 1:
                    others = ", ".join(repr(e.qualified_name) for e in entries if not e.builtin)
                    lines.append(f"{singular(kind)} {name!r} means dlsuite's built-in; "
                                 f"also provided as {others}")
        return lines


def _chain_kinds(spec: PluginSpec) -> dict[str, Any]:
    """A post-processor's typed-chain declarations (``accepts``, ``gives``; None when
    undeclared), for :meth:`Registry.describe`; nothing for other kinds."""
    if not hasattr(spec, "gives"):
        return {}
    accepts = getattr(spec, "accepts", None)
    return {"accepts": None if accepts is None else list(accepts), "gives": spec.gives}


def describe_params(params_cls: type) -> list[dict[str, Any]]:
    """Name, type, default and help of each field of an attrs parameter class."""
    out = []
    for field in attrs.fields(params_cls):
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory() if not default.takes_self else None
        elif default is attrs.NOTHING:
            default = "<required>"
        out.append({
            "name": field.name,
            "type": _type_name(field.type),
            "default": default,
            "help": field.metadata.get("help", ""),
        })
    return out


def _type_name(tp: Any) -> str:
    # the same text whether or not attrs.resolve_types has turned the annotation string into
    # a typing object (``Literal[1, 2]``, not ``Literal``)
    if isinstance(tp, str):
        return tp
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


_REGISTRY: Registry | None = None


def blame_plugin(exc: BaseException) -> PluginFailure | None:
    """:meth:`Registry.blame` with the process-wide registry, if one was built (never builds
    it: for error reporting)."""
    if isinstance(exc, PluginFailure):
        return exc
    return _REGISTRY.blame(exc) if _REGISTRY is not None else None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry built from installed entry points (cached)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = Registry.from_entry_points()
    return _REGISTRY
