"""API: how a failure is reported when it came from a plugin."""

from __future__ import annotations

__all__ = ["plugin_failure"]


def plugin_failure(exc: BaseException):
    """The :class:`dlsuite.registry.PluginFailure` to report instead of ``exc`` when ``exc``
    was raised in a third-party plugin's code (it names the plugin, its distribution and
    version, the error and where to report it; exit code 1), else None. Uses the process
    registry if one was built; never builds it."""
    from ..registry import blame_plugin

    return blame_plugin(exc)
