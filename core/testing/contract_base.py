"""The base of every contract test class: a registry of one plugin and the checks shared
by every kind (spec declared, params documented, factory importable, no TensorFlow on import).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

import attrs
import pytest

from ..registry import Entry, Registry


def plugin_registry(plugin: Any, name: str | None = None) -> Registry:
    """A registry holding only ``plugin`` (a module or an object with hook implementations)."""
    return Registry.from_plugins([plugin], [name or getattr(plugin, "__name__", "plugin")])


class PluginContract:
    """Checks shared by every kind: spec present, params documented, factory importable,
    plugin module importable without TensorFlow."""

    kind: ClassVar[str] = ""
    plugin: ClassVar[Any] = None
    name: ClassVar[str] = ""
    params: ClassVar[dict] = {}

    @pytest.fixture
    def entry(self) -> Entry:
        return plugin_registry(self.plugin).resolve(self.kind, self.name)

    @pytest.fixture
    def built_params(self, entry):
        return entry.spec.params(**self.params)

    def test_spec_is_declared_with_description(self, entry):
        assert entry.name == self.name
        assert entry.spec.description, f"{self.name}: give the spec a description"

    def test_params_have_defaults_and_help(self, entry):
        assert attrs.has(entry.spec.params), "params must be an attrs class"
        for field in attrs.fields(entry.spec.params):
            assert field.metadata.get("help"), f"{self.name}.{field.name}: add help= text"
        entry.spec.params()  # every field has a default

    def test_factory_imports(self, entry):
        assert callable(entry.load())

    def test_plugin_module_imports_without_tensorflow(self):
        module = getattr(self.plugin, "__name__", None)
        if not isinstance(module, str) or module not in sys.modules:
            pytest.skip("plugin is not a module")
        code = (f"import sys, importlib; importlib.import_module({module!r}); "
                "print('tensorflow' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == "False", f"importing {module} imported TensorFlow: keep it lazy"
