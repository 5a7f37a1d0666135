"""Quiet means quiet; messages are one line. ``--quiet`` shows warnings and errors only, each
one line formatted by dlsuite: no TensorFlow C++ log lines (written to file descriptor 2 past
Python), no Python warning source lines; the default mode shows the same warnings once. A
legacy config is one summary line unless ``--verbose`` (``config migrate`` shows the table).
Real subprocesses; TensorFlow's own output where it matters."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from dlsuite.logging.console import console, is_native_log_line

ABSL = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
CPU = ("I0000 00:00:1796029397.301916    6037 cpu_feature_guard.cc:227] This TensorFlow binary "
       "is optimized to use available CPU instructions in performance-critical operations.")


def _python(code: str, env: dict | None = None, timeout: float = 120):
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=full, timeout=timeout)


def test_native_log_lines_are_recognised():
    assert is_native_log_line(ABSL) and is_native_log_line(CPU)
    assert is_native_log_line("W0000 00:00:1.5  12 x.cc:9] oneDNN custom operations are on.")
    assert is_native_log_line("E0000 00:00:1.5  12 cuda_dnn.cc:8310] Unable to register cuDNN")
    assert not is_native_log_line("F0000 00:00:1.5  12 x.cc:9] Check failed: fatal")
    assert not is_native_log_line("warning: data.train: constant image")
    assert not is_native_log_line("Segmentation fault")


def test_fd_filter_drops_native_log_lines_and_passes_everything_else():
    proc = _python(f"""
        import os, sys
        from dlsuite.logging.console import native_stderr_filtered
        with native_stderr_filtered():
            os.write(2, b"{ABSL}\\n{CPU}\\nTo enable the following instructions: AVX2 FMA.\\n")
            os.write(2, b"a native message that is not a log record\\n")
            os.write(2, b"F0000 00:00:1.5  12 x.cc:9] Check failed: fatal\\n")
            print("from python", file=sys.stderr)
            print("to stdout")
        os.write(2, b"after the block\\n")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "to stdout\n"
    lines = proc.stderr.splitlines()
    assert sorted(lines) == sorted([
        "a native message that is not a log record",
        "F0000 00:00:1.5  12 x.cc:9] Check failed: fatal", "from python", "after the block"])


@pytest.mark.slow
def test_tensorflow_prints_nothing_in_quiet_mode_even_at_log_level_0():
    code = """
        import contextlib, sys
        from dlsuite.logging.console import console
        with (console(quiet=True) if sys.argv[-1] == "quiet" else contextlib.nullcontext()):
            import tensorflow as tf
            tf.constant([1.0]) + 1.0
    """
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    noisy = subprocess.run([sys.executable, "-c", textwrap.dedent(code), "loud"],
                           capture_output=True, text=True, env={**os.environ, **env},
                           timeout=300)
    if not any(is_native_log_line(line) for line in noisy.stderr.splitlines()):
        pytest.skip("TensorFlow writes no native log line on this machine")
    quiet = subprocess.run([sys.executable, "-c", textwrap.dedent(code), "quiet"],
                           capture_output=True, text=True, env={**os.environ, **env},
                           timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == "", quiet.stderr


def _emit():
    log = logging.getLogger("dlsuite.test")
    log.info("an info line")
    log.warning("a warning\nover two lines")
    for _ in range(2):  # the same text twice, from two places
        warnings.warn("beware of the cat", UserWarning)
    warnings.warn("beware of the cat", UserWarning)


def test_quiet_console_shows_warnings_only_one_line_each(capfd):
    with console(quiet=True):
        _emit()
    out, err = capfd.readouterr()
    assert out == ""
    assert err.splitlines() == ["warning: a warning; over two lines",
                                "warning: UserWarning: beware of the cat"]


def test_default_console_shows_info_and_the_same_warnings_once(capfd):
    with console(quiet=False):
        _emit()
    _, err = capfd.readouterr()
    assert err.splitlines() == ["an info line", "warning: a warning; over two lines",
                                "warning: UserWarning: beware of the cat"]


def test_a_warning_of_an_installed_library_names_it(capfd, tmp_path):
    """'warning: RuntimeWarning: invalid value encountered in cast' said nothing of where it
    came from; a library installed in site-packages is named, dlsuite's own and the user's
    code are not."""
    lib = str(tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "numpy" / "x.py")
    ours = str(tmp_path / "venv" / "lib" / "site-packages" / "dlsuite" / "predict.py")
    with console(quiet=True):
        warnings.warn_explicit("invalid value encountered in cast", RuntimeWarning, lib, 3)
        warnings.warn_explicit("ours", UserWarning, ours, 3)
        warnings.warn_explicit("mine", UserWarning, str(tmp_path / "my_plugin.py"), 3)
    _, err = capfd.readouterr()
    assert err.splitlines() == [
        "warning: RuntimeWarning (from numpy): invalid value encountered in cast",
        "warning: UserWarning: ours", "warning: UserWarning: mine"]


def test_library_warnings_are_lines_and_absl_cannot_make_dlsuite_print_twice():
    """absl logs through logging.basicConfig() when the root logger has no handler (TF's
    SavedModel writer does, in every export), and that root handler printed each dlsuite
    record again as WARNING:dlsuite...: the console gives the root logger a handler of its own
    that prints, once, what no other handler shows."""
    code = """
        import logging
        from absl import logging as absl_logging
        from dlsuite.logging.console import console

        with console(quiet=False):
            absl_logging.warning("absl says %s", "careful")
            logging.getLogger("somelib").warning("a library without handlers")
            logging.getLogger("dlsuite.export").warning("dlsuite says hello")
            absl_logging.info("an absl info line")
        assert not logging.getLogger().handlers, logging.getLogger().handlers
    """
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["warning: absl says careful",
                                        "warning: a library without handlers",
                                        "warning: dlsuite says hello"]


def test_file_writing_commands_take_quiet_and_print_nothing_on_success(tmp_path):
    """example-data, prepare, track and new-plugin have --quiet/-q like run and predict:
    the files are written, nothing is printed; without it each prints its summary."""
    cases = [("example-data", "videos", str(tmp_path / "ex"), "--n-videos", "2", "--frames", "3"),
             ("prepare", "frames", str(tmp_path / "ex" / "videos"), str(tmp_path / "frames")),
             ("track", str(tmp_path / "ex" / "videos" / "labels"), str(tmp_path / "tracked")),
             ("new-plugin", "quietplug", "-d", str(tmp_path / "plug"))]
    for args in cases:
        proc = run_cli(*args, "-q")
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), (args, proc.stderr)
    assert {"01_RES", "02_RES"} <= {p.name for p in (tmp_path / "tracked").iterdir()}
    assert (tmp_path / "frames" / "videos2im_relation.csv").is_file()
    assert any((tmp_path / "plug").iterdir())
    proc = run_cli("example-data", "frames", str(tmp_path / "ex2"), "--n", "2")
    assert proc.returncode == 0 and "frames layout" in proc.stdout


# --------------------------------------------------------------------------------------------
# dlsuite run --quiet end to end

DRIVER = """
import sys, warnings
from dlsuite import hookimpl
from dlsuite.registry import get_registry

class Warns:
    @hookimpl
    def dlsuite_callbacks(self, config):
        import keras

        class Hello(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                warnings.warn("the plugin says hello", UserWarning)

        return [Hello()]

get_registry().add_plugin(Warns(), "warns", None, None)
from dlsuite.cli import main
main(sys.argv[1:])
"""


def _tiny_run(tmp_path: Path) -> Path:
    from dlsuite.data.example import write_example_videos
    from dlsuite.data.io import write_tiff

    videos = write_example_videos(tmp_path / "data", n_videos=3, frames=3, size=32)["videos"]
    write_tiff(videos / "inputs" / "cells_02.tif", np.full((3, 32, 32), 7, np.uint16))
    cfg = {"name": "quiet", "output_dir": str(tmp_path / "run"), "seed": 1,
           "data": {"train": str(videos), "val": str(videos), "test": str(videos)},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
           "train": {"epochs": 2, "tensorboard": {"enabled": False}},
           "wandb": {"mode": "offline", "project": "quiet"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--quiet", None])
def test_run_shows_warnings_once_and_quiet_shows_nothing_else(tmp_path, mode):
    config = _tiny_run(tmp_path)
    # quiet: even a TF_CPP_MIN_LOG_LEVEL of 0 (TensorFlow's every info line) shows nothing
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "COLUMNS": "300"}
    if mode is None:
        env.pop("TF_CPP_MIN_LOG_LEVEL")
    env.pop("WANDB_MODE", None)
    args = [sys.executable, "-c", DRIVER, "run", str(config)] + ([mode] if mode else [])
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    hello = [line for line in lines if "the plugin says hello" in line]
    assert hello == ["warning: UserWarning: the plugin says hello"], proc.stderr
    constant = [line for line in lines if "constant image" in line]
    # one folder named by train, val and test is checked (and reported) once
    assert constant == [f"warning: data.train, data.val, data.test: {config.parent}/data/"
                        "videos/inputs/cells_02.tif: constant image (every pixel 7): it "
                        "carries no signal"]
    assert not any(".py:" in line or "warnings.warn" in line for line in lines), proc.stderr
    assert not any(is_native_log_line(line) for line in lines), proc.stderr
    if mode == "--quiet":
        assert proc.stdout == ""
        assert all(line.startswith("warning: ") for line in lines), proc.stderr
    else:
        assert any(line.startswith("epoch 2/2: ") for line in lines), proc.stderr


def test_config_validate_and_evaluate_take_quiet(tmp_path):
    """config validate -q: the exit status and the warnings only; evaluate -q: no table, the
    results in the -o file (or the --json asked for)."""
    config = _tiny_run(tmp_path)
    loud = run_cli("config", "validate", str(config))
    assert loud.returncode == 0 and "valid" in loud.stdout, loud.stderr
    quiet = run_cli("config", "validate", str(config), "-q")
    assert (quiet.returncode, quiet.stdout) == (0, ""), quiet.stderr
    assert [line.split(": ")[0] for line in quiet.stderr.splitlines()] == ["warning"]
    assert "constant image" in quiet.stderr
    labels = tmp_path / "data" / "videos" / "labels"
    proc = run_cli("evaluate", str(labels), str(labels), "--metrics", "SEG", "-q",
                   "-o", str(tmp_path / "seg.json"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert json.loads((tmp_path / "seg.json").read_text())["metrics"]["SEG"] == 1.0
    proc = run_cli("evaluate", str(labels), str(labels), "--metrics", "SEG", "-q", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["metrics"]["SEG"] == 1.0
    assert "evaluation" in run_cli("evaluate", str(labels), str(labels), "--metrics",
                                   "SEG").stdout


# --------------------------------------------------------------------------------------------
# legacy configs: one line, the table on request

LEGACY = {"cnn_name": "categorical_unet", "OUTPUTPATH": "out", "model_n_filters": 4,
          "datagen_sigma": 1, "normalization": "PERCENTILE"}


def test_legacy_config_is_one_summary_line_and_the_table_on_request(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(LEGACY))
    plain = run_cli("config", "validate", str(path), "--no-paths", env={"COLUMNS": "200"})
    assert plain.returncode == 0, plain.stderr
    (line,) = plain.stderr.splitlines()
    assert line.startswith(f"{path}: legacy config of the original suite, migrated in memory (")
    assert "--verbose shows the mapping" in line and f"dlsuite config migrate {path}" in line
    verbose = run_cli("config", "validate", str(path), "--no-paths", "--verbose",
                      env={"COLUMNS": "200"})
    assert verbose.returncode == 0 and "$.model.n_filters" in verbose.stderr
    assert "datagen_sigma" in verbose.stderr and len(verbose.stderr.splitlines()) > 5
    migrate = run_cli("config", "migrate", str(path), env={"COLUMNS": "200"})
    assert migrate.returncode == 0 and "$.model.n_filters" in migrate.stderr


def test_model_summary_shows_no_tensorflow_log_lines(tmp_path):
    """``model summary`` builds a Keras model: TensorFlow's native lines (absl preamble,
    oneDNN notice) are dropped as in every other command importing TensorFlow."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"name": "unet", "n_filters": 4, "pools": 2}}))
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "model", "summary", str(config),
                           "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total"] > 0
    assert not any(is_native_log_line(line) for line in proc.stderr.splitlines()), proc.stderr
