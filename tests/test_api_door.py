"""``dlsuite.api`` is the one door: every built-in ``dlsuite`` command parses its arguments,
calls exactly one ``dlsuite.api`` function and prints the result (issue 11).

Checked on the source (AST): the CLI modules import no dlsuite module but the API, the
exception classes, the process's signal handling (``dlsuite.signal_handlers``) and, in
``dlsuite.cli._output`` only, named display helpers; each leaf command's callback calls
exactly one ``api.<function>``. The linking defaults of ``dlsuite track`` are the config
schema's (the values ``dlsuite run`` uses), shown on real data in a subprocess.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from pathlib import Path

import click
import numpy as np
import pytest
import tifffile

import dlsuite.cli
from dlsuite import api
from conftest import run_cli

# every built-in leaf command (the public command names of the CLI)
LEAF_COMMANDS = {
    "config validate", "config show", "config migrate", "config schema", "plugins",
    "model summary", "new-plugin", "example-data videos", "example-data frames",
    "prepare frames", "prepare videos", "prepare clips", "prepare ctc", "prepare ome-zarr",
    "prepare tiff", "evaluate", "train",
    "run", "track", "predict", "tune", "test", "compare", "sweep", "export",
}
# dlsuite modules a CLI module may import besides dlsuite.api and dlsuite.errors
DISPLAY_HELPERS = {  # module -> names, for dlsuite.cli._output only
    "dlsuite.config.legacy": {"format_migration"},
    "dlsuite.config.metric_names": {"METRICS"},
    "dlsuite.evaluation.writers": {"dumps_metrics"},
    "dlsuite.logging.console": {"console"},
}
THIRD_PARTY = {"click", "rich"}


def leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """``{"config validate": command, ...}`` for every command without sub-commands."""
    leaves = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            leaves.update(leaf_commands(command, path + " "))
        else:
            leaves[path] = command
    return leaves


def builtin_leaves() -> dict[str, click.Command]:
    dlsuite.cli.load_commands()
    return {path: cmd for path, cmd in leaf_commands(dlsuite.cli.cli).items()
            if cmd.callback.__module__.startswith("dlsuite.cli")}


def api_calls(function) -> list[str]:
    """Names ``X`` of the calls ``api.X(...)`` in the source of ``function``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return [node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "api"]


def dlsuite_imports(path: Path) -> list[tuple[str, set[str]]]:
    """``(module, names)`` of every import in the file, at any depth (relative imports
    resolved against ``dlsuite.cli``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, set()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = "dlsuite.cli" if node.level == 1 else "dlsuite"
                module = f"{base}.{module}" if module else base
            found.append((module, {alias.name for alias in node.names}))
    return found


def cli_modules() -> list[Path]:
    root = Path(dlsuite.cli.__file__).parent
    return sorted(root.glob("*.py"))


def import_problems(path: Path) -> list[str]:
    problems = []
    for module, names in dlsuite_imports(path):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in THIRD_PARTY:
            continue
        if module.startswith("dlsuite.cli") or module in ("dlsuite.api", "dlsuite.errors",
                                                         "dlsuite.signal_handlers"):
            continue
        if module == "dlsuite" and names <= {"api", "__version__"}:
            continue
        if path.stem == "_output" and names <= DISPLAY_HELPERS.get(module, set()) and names:
            continue
        problems.append(f"{path.name}: {module} {sorted(names)}")
    return problems


def test_cli_modules_import_only_the_api_click_rich_and_display_helpers():
    modules = cli_modules()
    assert {p.stem for p in modules} >= {"__init__", "config", "plugins", "model", "scaffold",
                                         "data", "evaluate", "run", "track", "predict",
                                         "compare", "export"}
    problems = [p for path in modules for p in import_problems(path)]
    assert problems == []


def test_the_import_check_catches_a_core_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import click\nfrom dlsuite.pipeline import train\n"
                   "def f():\n    from ..registry import get_registry\n")
    assert import_problems(bad) == ["bad.py: dlsuite.pipeline ['train']",
                                    "bad.py: dlsuite.registry ['get_registry']"]


def test_every_leaf_command_calls_exactly_one_api_function():
    leaves = builtin_leaves()
    assert set(leaves) == LEAF_COMMANDS  # names unchanged
    through_api = {path: api_calls(cmd.callback) for path, cmd in leaves.items()}
    not_one = {path: calls for path, calls in through_api.items() if len(calls) != 1}
    assert not_one == {}
    for path, (name,) in through_api.items():
        assert name in api.__all__ and callable(getattr(api, name)), path
        assert inspect.getdoc(getattr(api, name)), f"api.{name} has no docstring"
    assert len(through_api) == len(LEAF_COMMANDS) == 25


def test_every_public_api_function_says_what_it_promises():
    for name in api.__all__:
        obj = getattr(api, name)
        assert inspect.getdoc(obj) and len(inspect.getdoc(obj)) > 30, name


def test_importing_the_cli_and_api_imports_no_tensorflow():
    import subprocess

    code = ("import sys, dlsuite.api, dlsuite.cli; dlsuite.cli.load_commands(); "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _jumping_disc(path: Path, jump: int) -> None:
    """Two frames of one small disc whose centre moves ``jump`` pixels to the right."""
    yy, xx = np.mgrid[:64, :128]
    video = np.zeros((2, 64, 128), np.uint16)
    for t, cx in enumerate((20, 20 + jump)):
        video[t][(yy - 32) ** 2 + (xx - cx) ** 2 <= 16] = 1
    tifffile.imwrite(path / "disc.tif", video)


@pytest.mark.slow
def test_track_default_is_the_schema_tracking_default(tmp_path):
    from dlsuite.config.schema import TrackingConfig

    defaults = api.tracking_defaults()
    assert defaults["max_distance"] == TrackingConfig().max_distance == 30.0
    help_text = run_cli("track", "--help", env={"COLUMNS": "200"}).stdout
    assert "[default: 30.0]" in help_text
    # a 40 px jump: beyond the default (two tracks), linked when allowed (one track)
    (tmp_path / "in").mkdir()
    _jumping_disc(tmp_path / "in", 40)
    proc = run_cli("track", str(tmp_path / "in"), str(tmp_path / "a"), "--min-overlap", "0")
    assert proc.returncode == 0, proc.stderr
    assert "2 tracks" in proc.stdout
    assert api.track(tmp_path / "in", tmp_path / "b", min_overlap=0.0)[0]["tracks"] == 2
    wider = api.track(tmp_path / "in", tmp_path / "c", min_overlap=0.0, max_distance=50)
    assert wider[0]["tracks"] == 1


@pytest.mark.parametrize("kind", [None, "losses"])
def test_describe_plugins_is_what_plugins_json_prints(kind):
    import json

    args = ["plugins", "--json", *(["--kind", kind] if kind else [])]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    api.plugins(refresh=True)  # the subprocess saw the installed plugins, not an earlier test's
    assert json.loads(proc.stdout) == json.loads(json.dumps(api.describe_plugins(kind=kind),
                                                            default=str))
