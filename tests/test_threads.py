"""``DLSUITE_THREADS``: the TensorFlow thread pools of a training process (what ``dlsuite
sweep --parallel N`` gives each trial so they share the cores). Real CLI subprocesses."""

from __future__ import annotations

import json
import os

import pytest

from conftest import run_cli
from dlsuite.data.example import write_example_frames
from dlsuite.errors import DlsuiteInputError
from dlsuite.threads import THREADS_ENV, share_of_cores, threads_from_env


@pytest.mark.parametrize("raw, wanted", [("", None), (" ", None), ("1", 1), (" 3 ", 3)])
def test_the_variable_is_read_as_a_thread_count(monkeypatch, raw, wanted):
    monkeypatch.setenv(THREADS_ENV, raw)
    assert threads_from_env() == wanted


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_anything_else_is_refused_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(THREADS_ENV, raw)
    with pytest.raises(DlsuiteInputError, match=f"{THREADS_ENV}='{raw}': expected a positive"):
        threads_from_env()


def test_cores_are_shared_and_every_process_gets_one():
    cores = len(os.sched_getaffinity(0))
    assert share_of_cores(1) == cores
    assert share_of_cores(2) == max(1, cores // 2)
    assert share_of_cores(10 * cores) == 1


def _config(tmp_path):
    frames = write_example_frames(tmp_path / "data", n=2, size=32, seed=1)["frames"]
    cfg = {"name": "threads", "output_dir": str(tmp_path / "run"), "seed": 1,
           "data": {"train": str(frames), "val": str(frames)},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 1},
           "train": {"epochs": 1}, "wandb": {"mode": "disabled"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_training_uses_the_pools_it_is_given_and_says_so(tmp_path):
    config = _config(tmp_path)
    proc = run_cli("train", str(config), "--quiet", env={THREADS_ENV: "1"})
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "run" / "run.log").read_text()
    assert "threads: 1 intra-op, 1 inter-op (DLSUITE_THREADS)" in log


def test_a_bad_value_stops_training_before_anything_is_written(tmp_path):
    config = _config(tmp_path)
    proc = run_cli("train", str(config), "--quiet", env={THREADS_ENV: "all"})
    assert proc.returncode == 2
    assert (f"environment variable {THREADS_ENV}: 'all': expected a positive whole number"
            in proc.stderr)
    assert not (tmp_path / "run").exists()
