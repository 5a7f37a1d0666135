"""Smoke run of the architecture benchmark: ``benchmarks/models.py --quick`` prints its table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_models_benchmark_quick_prints_the_table():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "models.py"), "--quick"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("architecture"))
    rows = {line.split()[0]: line.split() for line in lines[header + 2:]
            if line and not line.startswith(("Q3", " "))}
    assert set(rows) == {"unet", "unet_lstm"}
    assert rows["unet_lstm"][1] == "window(T=5)"
    for cells in rows.values():
        assert float(cells[2]) > 0 and float(cells[3]) > 0  # train units/s, infer s/unit
    assert rows["unet"][4].endswith("%")
    q3 = [line for line in lines if line.startswith("Q3 unet training step")]
    assert q3 and "GFLOP" in q3[0]
