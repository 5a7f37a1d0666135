"""Failures of plugin code, reported as the plugin's own.

A third-party factory (or a spec callable such as ``receptive_field``) that raises is reported
as that plugin's error, naming the plugin, its distribution and version, the original message
and where to report it (the ``Issues``/``Bug Tracker`` URL of the distribution's metadata):

* :class:`PluginRejected` (a :class:`~dlsuite.errors.PluginError`, so a DlsuiteInputError:
  exit 2) for a ``ValueError``: the plugin refused the parameters or data it was given;
* :class:`PluginFailure` (exit 1) for anything else: a bug of the plugin, not of dlsuite.

:func:`dlsuite.registry.call_spec` calls an integer-valued spec callable under that rule.
Which plugin raised an exception later (in a callable a factory returned) is found by
:meth:`dlsuite.registry.Registry.blame`.
"""

from __future__ import annotations

from importlib import metadata
from .errors import PluginError

__all__ = ["PluginFailure", "PluginRejected", "report_to", "plugin_label", "dist_label",
           "failure", "bug"]


def dist_label(dist: str | None, version: str | None) -> str:
    """``distribution NAME VERSION`` (or ``not from a distribution``)."""
    if dist is None:
        return "not from a distribution"
    return f"distribution {dist} {version or ''}".rstrip()


def report_to(dist: str | None) -> str:
    """Where to report a bug of distribution ``dist``: its issue tracker or home page from
    the package metadata, else its authors."""
    if dist is None:
        return "the plugin's authors"
    try:
        meta = metadata.distribution(dist).metadata
    except metadata.PackageNotFoundError:
        return f"the authors of {dist}"
    urls = [u.split(",", 1) for u in (meta.get_all("Project-URL") or []) if "," in u]
    ranked = sorted(urls, key=lambda lu: not any(
        word in lu[0].lower() for word in ("issue", "bug", "tracker")))
    if ranked:
        return ranked[0][1].strip()
    for key in ("Home-page", "Author-email", "Author"):
        if meta.get(key) and meta.get(key) != "UNKNOWN":
            return str(meta.get(key))
    return f"the authors of {dist}"


class PluginFailure(Exception):
    """An exception escaped third-party plugin code (a bug of the plugin, not of dlsuite).
    The message names the plugin, its distribution and version, the original exception and
    where to report it; ``plugin``, ``dist``, ``version`` and ``report_to`` hold them. The
    CLI prints the message and exits with :attr:`exit_code` 1."""

    exit_code = 1

    def __init__(self, message: str, *, plugin: str, dist: str | None = None,
                 version: str | None = None, report_to: str = ""):
        super().__init__(message)
        self.plugin, self.dist, self.version, self.report_to = plugin, dist, version, report_to


class PluginRejected(PluginError):
    """A plugin's factory or spec callable raised ``ValueError`` for the parameters or data it
    was given: bad input (exit 2); the message names the plugin and its distribution."""


def plugin_label(plugin: str, dist: str | None, version: str | None) -> str:
    """``plugin 'NAME' (distribution ...)``."""
    return f"plugin {plugin!r} ({dist_label(dist, version)})"


def failure(what: str, plugin: str, dist: str | None, version: str | None,
            exc: BaseException) -> Exception:
    """The plugin error for ``exc`` raised by ``what`` of a plugin (see the module doc)."""
    if isinstance(exc, ValueError):
        return PluginRejected(f"{what} of {plugin_label(plugin, dist, version)} rejected "
                              f"its input: {type(exc).__name__}: {exc}")
    return bug(what, plugin, dist, version, exc)


def bug(what: str, plugin: str, dist: str | None, version: str | None,
        exc: BaseException) -> PluginFailure:
    """The :class:`PluginFailure` for ``exc`` raised by ``what`` of a plugin."""
    report = report_to(dist)
    return PluginFailure(
        f"error in {plugin_label(plugin, dist, version)}: {what} raised "
        f"{type(exc).__name__}: {exc}\nThis is a bug of the plugin, not of dlsuite: report "
        f"it to {report} (run with --debug for the traceback).",
        plugin=plugin, dist=dist, version=version, report_to=report)
