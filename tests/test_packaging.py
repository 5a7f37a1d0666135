"""The built wheel works in a fresh virtual environment (not only the editable install)."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_fresh_venv_and_lists_plugins(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(REPO)], check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = wheels.glob("dlsuite-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the new venv sees the test environment's dependencies, but not its editable dlsuite
    (Path(site) / "testenv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    where = subprocess.run([str(py), "-c", "import dlsuite, dlsuite_plugins; "
                            "print(dlsuite.__file__); print(dlsuite_plugins.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert all(line.startswith(site) for line in where.split()), where
    proc = subprocess.run([str(venv / "bin" / "dlsuite"), "plugins", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {p["plugin"] for p in data["plugins"] if p["dist"] == "dlsuite"} >= {
        "dlsuite.architectures", "dlsuite.losses", "dlsuite.datagen", "dlsuite.postprocess"}
    assert data["broken"] == []
