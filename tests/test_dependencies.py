"""Every third-party package imported by dlsuite (core/ and plugins/) is declared in
pyproject.toml, as a dependency or in an extra."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from conftest import REPO

OWN = {"dlsuite", "dlsuite_plugins", "__future__"}
# import name -> distribution names that provide it (alternatives, e.g. the GPU build)
ALTERNATIVES = {"tensorflow": {"tensorflow", "tensorflow-cpu"},
                # a namespace package: the export extra's bioimageio.spec (and .core)
                "bioimageio": {"bioimageio.spec", "bioimageio.core"}}


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _imported_top_level() -> dict[str, str]:
    """Top-level module name -> one file importing it, for every absolute import."""
    found: dict[str, str] = {}
    for root in ("core", "plugins"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return {m: f for m, f in found.items()
            if m not in OWN and m not in sys.stdlib_module_names}


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_normalize(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in reqs}


def test_every_imported_package_is_declared():
    provided = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_imported_top_level().items()):
        dists = ALTERNATIVES.get(module) or set(provided.get(module, [module]))
        if not {_normalize(d) for d in dists} & declared:
            missing.append(f"{module} (imported by {where}; distribution {sorted(dists)})")
    assert not missing, "undeclared in pyproject.toml: " + "; ".join(missing)
