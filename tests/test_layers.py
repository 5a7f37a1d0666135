"""The layer rule of docs/architecture.md, checked on the source (AST, nothing imported).

The table of layers is read from the document itself, so the page and the code cannot drift:
a unit of ``core/`` missing from the table, an import of the same or a higher layer, a core
import of ``dlsuite_plugins`` and a plugin import beyond the documented surface all fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
PLUGIN_SURFACE = {"dlsuite", "dlsuite.specs", "dlsuite.errors", "dlsuite.checks",
                  "dlsuite.keras_helpers"}
PLUGIN_TEST_SURFACE = PLUGIN_SURFACE | {"dlsuite.testing"}


def read_layers(text: str) -> dict[str, int]:
    """``{unit: layer}`` from the table after the ``<!-- layers`` marker of the document."""
    table = text.split("<!-- layers", 1)[1]
    layers = {}
    for line in table.splitlines()[1:]:
        if not line.startswith("|"):
            if layers:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0].isdigit():
            layers[cells[1]] = int(cells[0])
    return layers


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imported(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, function-level ones too."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # "from pkg import x": x may be a submodule; the checker decides which names are
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _target_unit(target: str, units: set[str]) -> str:
    """The unit ``target`` (``module.name`` of an import) reaches: ``dlsuite.X`` names a unit
    when X is one, otherwise the name came from the package itself (``dlsuite``)."""
    other = unit_of(target)
    return other if other in units else "dlsuite"


def core_violations(sources: dict[str, tuple[str, bool]], layers: dict[str, int]) -> list[str]:
    """Every breach of the rule in ``sources`` (``{module: (source, is_package)}`` of the
    ``dlsuite`` package), one line each: ``module:line imports target (why)``."""
    problems = []
    units = {unit_of(m) for m in sources}
    for module, (source, is_package) in sorted(sources.items()):
        unit = unit_of(module)
        if unit not in layers:
            problems.append(f"{module}: unit {unit!r} is not in the layer table of docs/architecture.md")
            continue
        for line, target in imported(source, module, is_package):
            if target.split(".")[0] == "dlsuite_plugins":
                problems.append(f"{module}:{line} imports {target} (the core reaches plugins only "
                                "through the registry)")
                continue
            if target.split(".")[0] != "dlsuite":
                continue
            other = _target_unit(target, units)
            if other == unit:
                continue
            if other not in layers:
                problems.append(f"{module}:{line} imports {target}: unit {other!r} is not in the "
                                "layer table")
            elif layers[other] >= layers[unit]:
                problems.append(f"{module}:{line} imports {target} (layer {layers[other]} is not "
                                f"below {unit}'s layer {layers[unit]})")
    return problems


def plugin_violations(sources: dict[str, str], units: set[str]) -> list[str]:
    """Imports of ``dlsuite`` beyond the plugin-facing surface in plugin files ``{path: source}``
    (test files may also import ``dlsuite.testing``); ``units`` are the core's units."""
    problems = []
    for path, source in sorted(sources.items()):
        name = Path(path).name
        allowed = PLUGIN_TEST_SURFACE if name.startswith("test_") or "tests" in Path(path).parts \
            else PLUGIN_SURFACE
        for line, target in imported(source, "plugin.module", False):
            if target.split(".")[0] != "dlsuite":
                continue
            unit = _target_unit(target, units)
            reached = "dlsuite" if unit == "dlsuite" else f"dlsuite.{unit}"
            if reached not in allowed:
                problems.append(f"{path}:{line} imports {reached} (not part of the documented "
                                "plugin surface)")
    return problems


def _core_sources() -> dict[str, tuple[str, bool]]:
    core = ROOT / "core"
    return {module_name(p, core, "dlsuite"): (p.read_text(encoding="utf-8"), p.name == "__init__.py")
            for p in core.rglob("*.py")}


def _plugin_sources() -> dict[str, str]:
    paths = list((ROOT / "plugins").rglob("*.py"))
    paths += list((ROOT / "examples" / "plugins").rglob("*.py"))
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in paths}


LAYERS = read_layers(DOC.read_text(encoding="utf-8"))


def test_layer_table_is_read_from_the_document():
    assert LAYERS["specs"] == 0 and LAYERS["cli"] > LAYERS["api"] > LAYERS["pipeline"]
    assert LAYERS["pipeline"] == LAYERS["predict"], "pipeline and predict share a layer"
    assert LAYERS["steps"] < LAYERS["predict"]


def test_core_follows_the_layer_rule():
    problems = core_violations(_core_sources(), LAYERS)
    assert not problems, "\n".join(problems)


def test_plugins_import_only_the_documented_surface():
    sources = _plugin_sources()
    assert len(sources) > 10
    problems = plugin_violations(sources, {unit_of(m) for m in _core_sources()})
    assert not problems, "\n".join(problems)


# The checker itself: each forbidden import added to a real module is caught.
@pytest.mark.parametrize("module, line, why", [
    ("dlsuite.data.io", "from dlsuite.training import fit", "layer"),          # upwards
    ("dlsuite.pipeline", "from .predict import predict", "layer"),            # same layer
    ("dlsuite.predict", "from dlsuite import pipeline", "layer"),             # same layer
    ("dlsuite.training", "from dlsuite_plugins.architectures import unet", "registry"),
    ("dlsuite.registry", "    from .cli import main", "layer"),              # function level
    ("dlsuite.newthing", "import os", "not in the layer table"),
])
def test_a_forbidden_import_is_caught(module, line, why):
    sources = _core_sources()
    source, is_package = sources.get(module, ("", False))
    if line.startswith("    "):
        line = "def _f():\n" + line
    sources[module] = (source + "\n" + line + "\n", is_package)
    problems = core_violations(sources, LAYERS)
    assert any(p.startswith(module) and why in p for p in problems), problems


def test_a_plugin_reaching_into_the_core_is_caught():
    sources = _plugin_sources()
    sources["plugins/losses/extra.py"] = "from dlsuite.pipeline import run\nfrom dlsuite import specs\n"
    sources["plugins/losses/tests/test_extra.py"] = "from dlsuite.testing import LossContract\n"
    problems = plugin_violations(sources, {unit_of(m) for m in _core_sources()})
    assert problems == ["plugins/losses/extra.py:1 imports dlsuite.pipeline (not part of the "
                        "documented plugin surface)"]


def test_units_in_the_table_exist():
    units = {unit_of(m) for m in _core_sources()}
    missing = sorted(set(LAYERS) - units)
    assert not missing, f"docs/architecture.md lists units that do not exist: {missing}"


def test_relative_imports_resolve_like_python():
    assert imported("from ..data import io", "dlsuite.api._data", False) == [(1, "dlsuite.data.io")]
    assert imported("from . import ctc", "dlsuite.data", True) == [(1, "dlsuite.data.ctc")]
    assert re.fullmatch(r"dlsuite(\.\w+)+", imported("from .steps import x", "dlsuite.predict",
                                                     False)[0][1])
