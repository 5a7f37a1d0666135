"""W&B online without a server: the run logs offline within a few seconds (to be synced later)
instead of stalling and then dropping W&B; an invalid WANDB_MODE is one clear line. The server
is always a local address: a closed port, or a socket that accepts and never answers. Never
any external address."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest

from dlsuite.config.schema import WandbConfig
from dlsuite.logging import WandbRun
from dlsuite.logging.wandb_run import server_unreachable

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, never sent anywhere


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable(monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                  "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    return url


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dlsuite.wandb"
            and r.levelno >= logging.WARNING]


def test_probe_of_a_closed_local_port_fails_fast():
    start = time.monotonic()
    why = server_unreachable(f"http://127.0.0.1:{_closed_port()}", timeout=3)
    assert why is not None and "refused" in why.lower()
    assert time.monotonic() - start < 3.5


def test_online_without_a_server_logs_offline_within_seconds(tmp_path, unreachable, caplog):
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="dlsuite.wandb"):
        run = WandbRun.start(wandb_config=WandbConfig(mode="offline"), run_dir=tmp_path,
                             name="x", config={"a": 1})
    elapsed = time.monotonic() - start
    run_id = run.id
    try:
        assert run.active and run_id
        run.log({"loss": 1.0}, step=1)
    finally:
        run.finish()
    assert elapsed < 20, elapsed  # the probe gives up after 3 s; offline start takes the rest
    (warning,) = _messages(caplog)
    assert warning.startswith(f"W&B server {unreachable} unreachable (")
    assert "logging offline instead" in warning and f"wandb sync {tmp_path / 'wandb'}" in warning
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and offline[0].name.endswith(run_id)


def test_invalid_wandb_mode_is_one_warning_line_and_the_config_mode_is_used(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WANDB_MODE", "onlin")
    with caplog.at_level(logging.INFO, logger="dlsuite.wandb"):
        run = WandbRun.start(wandb_config=WandbConfig(mode="offline"), run_dir=tmp_path,
                             name="x", config={})
    run.finish()
    (warning,) = _messages(caplog)
    assert warning == ("WANDB_MODE='onlin' is not a W&B mode (online, offline, disabled): "
                       "using the config's wandb.mode 'offline'")
    assert run.id is None and list((tmp_path / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_a_server_that_never_answers_falls_back_to_offline_in_bounded_time(
        tmp_path, unreachable, monkeypatch, caplog):
    from dlsuite.logging import wandb_run

    # the bound is W&B's init timeout: 15 s in a run, 4 s here (the same path, less waiting)
    monkeypatch.setattr(wandb_run, "ONLINE_INIT_SECONDS", 4)
    with socket.socket() as server:  # accepts connections (the probe passes), never answers
        server.bind(("127.0.0.1", 0))
        server.listen(50)
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        start = time.monotonic()
        with caplog.at_level(logging.INFO, logger="dlsuite.wandb"):
            run = WandbRun.start(wandb_config=WandbConfig(), run_dir=tmp_path, name="x",
                                 config={})
        elapsed = time.monotonic() - start
    run.finish()
    assert run.id is None  # finished
    assert elapsed < 30, elapsed
    (warning,) = _messages(caplog)
    assert warning.startswith("W&B could not start online (") and "wandb sync" in warning
    assert list((tmp_path / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_training_continues_when_wandb_is_unreachable_in_online_mode(tmp_path):
    """Fault suite: `dlsuite train --quiet` with W&B online and its server unreachable
    finishes, with a bounded delay, one warning line, and the W&B run saved offline."""
    from dlsuite.data.example import write_example_videos

    videos = write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32)["videos"]
    cfg = {"name": "wandb-down", "output_dir": str(tmp_path / "run"), "seed": 1,
           "data": {"train": str(videos), "val": str(videos)},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
           "train": {"epochs": 1, "tensorboard": {"enabled": False}},
           "wandb": {"mode": "online", "project": "wandb-down"}}
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cfg))
    env = {**os.environ, "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
           "WANDB_API_KEY": FAKE_KEY, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("WANDB_MODE", None)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "train", str(config),
                           "--quiet"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: W&B server http://127.0.0.1:"), \
        proc.stderr
    run = tmp_path / "run"
    assert (run / "history.csv").is_file() and (run / "checkpoints" / "best.keras").is_file()
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1
    assert time.monotonic() - start < 600
