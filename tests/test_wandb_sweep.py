"""``dlsuite sweep --wandb`` (issue 15, item 2): W&B's sweep controller. Here W&B is never
online (offline by default, no account, nothing reaches the internet), so what is tested is
the refusal: at once, exit 2, one line saying W&B must be online with an API key, nothing
written; and the sweep configuration registered with W&B (dotted parameter names equal to
the runs' flattened config keys, the metric as a stable summary key). The online path
(``wandb.sweep`` + ``wandb.agent``) cannot run here."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from conftest import run_cli
from dlsuite.sweep import load_sweep
from dlsuite.wandb_sweep import NEEDS_ONLINE, summary_metric, wandb_sweep_config

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 characters, never sent anywhere

BAYES = """
name: bo
method: bayes
metric: {name: SEG, goal: maximize}
run_cap: 3
base: base.json
parameters:
  model:
    parameters:
      n_filters: {values: [2, 3]}
  optimizer.learning_rate: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
"""


def _sweep(folder: Path, mode: str = "offline", text: str = BAYES) -> Path:
    (folder / "base.json").write_text(json.dumps({
        "name": "base", "model": {"name": "unet", "n_filters": 2, "pools": 1},
        "wandb": {"mode": mode, "project": "sweep-test"}}))
    path = folder / "sweep.yaml"
    path.write_text(text)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict:
    """No API key anywhere (an empty home and netrc), no proxy, W&B's server a closed
    local port."""
    env = {"HOME": str(tmp_path / "home"), "NETRC": str(tmp_path / "home" / ".netrc"),
           "WANDB_API_KEY": "", "WANDB_BASE_URL": f"http://127.0.0.1:{_closed_port()}",
           "HTTPS_PROXY": "", "https_proxy": "", "HTTP_PROXY": "", "http_proxy": "",
           "ALL_PROXY": "", "all_proxy": "", "WANDB_MODE": ""}
    return {**env, **extra}


@pytest.mark.parametrize("mode, extra, reason", [
    ("offline", {}, "W&B is offline here"),
    ("online", {}, "no API key for http://127.0.0.1:"),
    ("offline", {"WANDB_MODE": "disabled"}, "W&B is disabled here"),
    ("online", {"WANDB_API_KEY": FAKE_KEY}, "the W&B server http://127.0.0.1:"),
])
def test_wandb_sweep_needs_wandb_online_and_fails_at_once(tmp_path, mode, extra, reason):
    sweep = _sweep(tmp_path, mode)
    out = tmp_path / "out"
    start = time.monotonic()
    proc = run_cli("sweep", str(sweep), "--wandb", "-o", str(out),
                   env=_env(tmp_path, **extra), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - start < 60
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {NEEDS_ONLINE}; {reason}"), lines[0]
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert not (tmp_path / "wandb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.json", "sweep.yaml"]


def test_bayes_needs_the_wandb_controller_and_parallel_is_refused_with_it(tmp_path):
    sweep = _sweep(tmp_path)
    proc = run_cli("sweep", str(sweep), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {sweep}: method: 'bayes' is not supported here; choose grid or random "
        "(bayes needs the W&B sweep controller: dlsuite sweep --wandb)")
    proc = run_cli("sweep", str(sweep), "--wandb", "--parallel", "2", cwd=tmp_path)
    assert proc.returncode == 2 and "--parallel and --resume are for local sweeps" in \
        proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_sweep_registered_with_wandb_uses_the_runs_config_and_summary_names(tmp_path):
    sweep = load_sweep(_sweep(tmp_path), methods=("grid", "random", "bayes"))
    config = wandb_sweep_config(sweep)
    assert config == {
        "name": "bo", "method": "bayes", "run_cap": 3,
        "metric": {"name": "test/SEG", "goal": "maximize"},
        "parameters": {"model.n_filters": {"values": [2, 3]},
                       "optimizer.learning_rate": {"distribution": "log_uniform_values",
                                                   "min": 1.0e-4, "max": 1.0e-2}}}
    assert [summary_metric(m) for m in ("SEG", "val_loss", "val_jaccard/best", "f1")] == [
        "test/SEG", "val_loss/best", "val_jaccard/best", "test/f1"]


@pytest.mark.slow
def test_a_trial_started_by_the_wandb_agent_is_an_ordinary_run_in_the_agents_wandb_run(
        tmp_path, monkeypatch):
    """What ``wandb.agent`` does before calling our function (run id, sweep id and the
    controller's parameters written with W&B's own writer, in the environment), then one
    trial: a real tiny ``dlsuite run`` with the parameters as overrides whose W&B run is the
    agent's run id (here logged offline: the W&B server is a closed local port)."""
    from wandb.sdk.lib import config_util

    from dlsuite.config import load_config
    from dlsuite.data.example import write_example_videos
    from dlsuite.wandb_sweep import run_agent_trial
    from wandb_records import offline_runs

    videos = write_example_videos(tmp_path / "data", n_videos=1, frames=2, size=32)["videos"]
    (tmp_path / "base.json").write_text(json.dumps({
        "name": "base", "output_dir": "unused", "seed": 1,
        "data": {"train": str(videos), "val": str(videos), "test": str(videos)},
        "model": {"name": "unet", "n_filters": 2, "pools": 1},
        "datagen": {"patch_size": [32, 32], "batch_size": 1, "steps_per_epoch": 1},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "evaluation": {"tune_postprocess": False},
        "wandb": {"mode": "online", "project": "sweep-test", "log_model": False,
                  "n_images": 0}}))
    (tmp_path / "sweep.yaml").write_text(BAYES)
    sweep = load_sweep(tmp_path / "sweep.yaml", methods=("grid", "random", "bayes"))
    base = load_config(sweep.base)
    params = tmp_path / "agent" / "config-abc123xy.yaml"
    config_util.save_config_file_from_dict(str(params), {
        "model.n_filters": {"value": 3}, "optimizer.learning_rate": {"value": 0.002}})
    for key, value in {**_env(tmp_path, WANDB_API_KEY=FAKE_KEY), "WANDB_RUN_ID": "abc123xy",
                       "WANDB_SWEEP_ID": "sweep42", "WANDB_SWEEP_PARAM_PATH": str(params),
                       "TF_CPP_MIN_LOG_LEVEL": "2"}.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "out"
    state = {"trials": []}
    entry = run_agent_trial(sweep, base, out, state, quiet=True)
    assert entry["status"] == "finished" and entry["name"] == "trial-abc123xy"
    assert entry["overrides"] == {"model.n_filters": 3, "optimizer.learning_rate": 0.002}
    assert json.loads((out / "sweep.json").read_text())["trials"] == [entry]
    run = out / "trial-abc123xy"
    written = json.loads((run / "config.json").read_text())
    assert written["config"]["model"]["n_filters"] == 3
    assert written["config"]["wandb"]["job_type"] == "sweep-trial"
    (wb,) = offline_runs(run).values()
    assert wb["run"]["id"] == "abc123xy"  # the agent's run: W&B's sweep shows it
    assert wb["run"]["job_type"] == "sweep-trial" and wb["run"]["group"] == "bo"
    assert wb["config"]["model.n_filters"] == 3
    assert "model.n_filters=3" in wb["run"]["tags"]
    assert "test/SEG" in wb["summary"]  # the sweep metric, under its summary name
