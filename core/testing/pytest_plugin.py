"""pytest plugin of dlsuite (entry point ``pytest11``): fixtures for plugin authors.

``isolated_registry(*plugins)`` gives a registry holding only the plugins under test.
"""

from __future__ import annotations

import pytest

from ..registry import Registry


@pytest.fixture
def isolated_registry():
    """Factory fixture: ``isolated_registry(plugin_module_or_object, ...)`` returns a
    :class:`~dlsuite.registry.Registry` holding only those plugins (no entry points)."""

    def make(*plugins, names=None) -> Registry:
        return Registry.from_plugins(plugins, names)

    return make
