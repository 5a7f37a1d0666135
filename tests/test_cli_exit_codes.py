"""The ``dlsuite`` console entry (``dlsuite.cli.main``) exits with the documented code on every
path: 0 ok, 1 unexpected, 2 bad input, 130 SIGINT, 143 SIGTERM (issue 13). Real subprocesses
receive real signals: a plugin command waiting (no training) and ``dlsuite train``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli
from test_resume import _config, _rows

WAITING_PLUGIN = """
import time

from dlsuite import hookimpl


@hookimpl
def dlsuite_add_commands(cli):
    @cli.command("wait")
    def wait():
        '''Wait (at most a minute) for a signal.'''
        print("ready", flush=True)
        time.sleep(60)

    @cli.command("crash")
    def crash():
        '''Fail with an unexpected error.'''
        raise RuntimeError("boom")
"""


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    full_env.pop("WANDB_MODE", None)
    return subprocess.Popen([sys.executable, "-m", "dlsuite.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)


@pytest.fixture
def waiting_plugin(fake_site):
    fake_site("dlsuite-waiting", "0.1", {"waiting": "waiting_mod"},
              {"waiting_mod": WAITING_PLUGIN})
    return {"PYTHONPATH": str(fake_site.site)}


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_outside_training_exits_with_its_code(waiting_plugin, sig, code):
    proc = _start("wait", env=waiting_plugin)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err


def test_unexpected_error_exits_1_with_one_line(waiting_plugin):
    proc = run_cli("crash", env=waiting_plugin)
    assert proc.returncode == 1
    assert "unexpected error: RuntimeError: boom" in proc.stderr and "Traceback" not in proc.stderr


def test_failed_plugin_validation_exits_1(fake_site):
    fake_site("broken-dist", "0.1", {"broken_factory": "broken_factory"},
              {"broken_factory": "from dlsuite import hookimpl\n"
                                 "from dlsuite.specs import NormalizerSpec\n"
                                 "@hookimpl\n"
                                 "def dlsuite_normalizers():\n"
                                 "    return [NormalizerSpec(name='broken', "
                                 "factory='no_such_mod:f')]\n"})
    env = {"PYTHONPATH": str(fake_site.site)}
    assert run_cli("plugins", "--kind", "normalizers", env=env).returncode == 0
    proc = run_cli("plugins", "--validate", "--kind", "normalizers", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout and "broken" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_train_interrupted_by_a_signal_exits_with_its_code(tmp_path, sig, code):
    config = _config(tmp_path)
    data = json.loads(config.read_text())
    data["wandb"] = {"mode": "disabled"}
    data["train"]["epochs"] = 50  # far more than run before the signal
    config.write_text(json.dumps(data))
    history = tmp_path / "run" / "history.csv"
    proc = _start("train", str(config), "--quiet")
    try:
        deadline = time.monotonic() + 300
        while not _rows(history):  # training started: an epoch was recorded
            assert proc.poll() is None, f"ended before the signal: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no epoch finished in time"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert "--resume" in err and signal.Signals(sig).name in err
    state = json.loads((tmp_path / "run" / "checkpoints" / "resume" / "state.json").read_text())
    assert state["interrupted"] == signal.Signals(sig).name
