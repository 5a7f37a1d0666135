"""The plugin registry: pluggy plugin manager fed from the ``dlsuite`` entry-point group.

Built-in plugins are found exactly like third-party ones, through the entry points declared
in a distribution's metadata. Loading is defensive: an entry point whose import fails, whose
hook implementations do not match the specs, or whose hook raises is recorded in
``Registry.broken`` and skipped; it only becomes fatal when a config names something that
could have come from it.

Environment switches:

* ``DLSUITE_DISABLE_PLUGIN_AUTOLOAD=1``: load only the entry points of the ``dlsuite``
  distribution itself (the built-ins).
* ``DLSUITE_BLOCK_PLUGINS=a,b``: skip the entry points or distributions named.
"""

from __future__ import annotations

import difflib
import os
from importlib import metadata
from typing import Any, Iterable

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError
from .specs import PROJECT, PluginSpec

__all__ = ["Entry", "BrokenPlugin", "Registry", "get_registry", "KINDS"]

KINDS = hookspecs.KINDS
ENTRY_POINT_GROUP = PROJECT
OWN_DISTRIBUTION = "dlsuite"


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

    def load(self):
        """Import the factory; an import failure becomes a PluginError naming the plugin."""
        try:
            return self.spec.load()
        except Exception as exc:  # noqa: BLE001 - any import-time failure of a plugin
            raise PluginError(
                f"{self.kind[:-1]} {self.name!r} of plugin {self.plugin!r} "
                f"({_dist_label(self.dist, self.version)}): cannot load factory "
                f"{self.spec.factory!r}: {type(exc).__name__}: {exc}"
            ) from exc


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


def _dist_label(dist: str | None, version: str | None) -> str:
    if dist is None:
        return "not from a distribution"
    return f"distribution {dist} {version or ''}".rstrip()


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
        self._origin: dict[str, tuple[str | None, str | None]] = {}

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> "Registry":
        """Load every entry point of ``group`` (subject to the environment switches)."""
        reg = cls()
        only_own = os.environ.get("DLSUITE_DISABLE_PLUGIN_AUTOLOAD", "") not in ("", "0")
        blocked = _env_list("DLSUITE_BLOCK_PLUGINS")
        seen: set[tuple[str, str]] = set()
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
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

        Raises PluginError when the name is unknown (with the closest names and any broken
        plugins that might have provided it) or when two plugins provide it unqualified.
        """
        if kind not in self.tables:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        singular = kind[:-1]
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
            who = " and ".join(
                f"plugin {e.plugin!r} ({_dist_label(e.dist, e.version)})" for e in entries)
            choices = ", ".join(repr(e.qualified_name) for e in entries)
            raise PluginError(f"{singular} {name!r} is provided by {who}; "
                              f"write one of {choices} to choose")
        raise PluginError(self.unknown_message(kind, name))

    def unknown_message(self, kind: str, name: str) -> str:
        """The message for an unknown ``name`` of ``kind``: closest names, broken plugins."""
        singular = kind[:-1]
        msg = f"unknown {singular} {name!r}"
        close = difflib.get_close_matches(name, self.names(kind), n=1)
        if close:
            msg += f"; did you mean {close[0]!r}?"
        elif self.tables[kind]:
            msg += f"; available: {', '.join(sorted(self.tables[kind]))}"
        for broken in self.broken:
            msg += (f" (note: plugin {broken.plugin!r} ({_dist_label(broken.dist, broken.version)})"
                    f" failed to load and may provide it: {broken.error})")
        return msg

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
                 "parameters": describe_params(e.spec.params)}
                for e in self.entries(kind)
            ]
        return {
            "plugins": [attrs.asdict(p) for p in self.plugins],
            "kinds": kinds,
            "broken": [attrs.asdict(b) for b in self.broken],
        }


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
    if isinstance(tp, str):
        return tp
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


_REGISTRY: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry built from installed entry points (cached)."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = Registry.from_entry_points()
    return _REGISTRY
