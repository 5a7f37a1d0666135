"""Ctrl-C saves a resumable state; ``--resume`` continues epochs, optimizer steps and the W&B
run. The CLI command runs in a subprocess and gets a real SIGINT."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import load_with_plugins, sigint_default
from dlsuite import hookimpl

EPOCHS, STEPS = 6, 4
DRIVER = "import sys; from dlsuite.cli.run import run; run(sys.argv[1:], prog_name='dlsuite run')"


def _config(tmp_path: Path) -> Path:
    from dlsuite.data.example import write_example_videos

    data = write_example_videos(tmp_path / "data", n_videos=2, frames=4, size=32)["videos"]
    cfg = {
        "name": "resume", "output_dir": "run", "seed": 5,
        "data": {"train": str(data), "val": str(data)},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": STEPS},
        "train": {"epochs": EPOCHS, "tensorboard": {"enabled": False}},
        "wandb": {"mode": "offline", "project": "resume-test"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _rows(history: Path) -> list[dict]:
    if not history.is_file():
        return []
    with history.open() as fh:
        return list(csv.DictReader(fh))


def _start(config: Path, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("WANDB_MODE", None)
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(config), "--quiet", *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=sigint_default)


@pytest.mark.slow
def test_sigint_saves_state_and_resume_continues(tmp_path):
    config = _config(tmp_path)
    run = tmp_path / "run"
    proc = _start(config)
    deadline = time.monotonic() + 240
    while not _rows(run / "history.csv"):
        assert proc.poll() is None, f"finished before the signal: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and "SIGINT" in err
    state = json.loads((run / "checkpoints" / "resume" / "state.json").read_text())
    assert state["interrupted"] == "SIGINT"
    stopped_at = state["epoch"]
    assert 1 <= stopped_at < EPOCHS
    assert state["iterations"] >= stopped_at * STEPS
    # an epoch cut short is neither recorded nor counted: it is redone on resume
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == list(range(1, stopped_at + 1))
    first_id = state["wandb_run_id"]
    assert first_id

    # starting again without --resume is refused, with the hint
    again = _start(config)
    _, err2 = again.communicate(timeout=120)
    assert again.returncode != 0 and "--resume" in err2

    proc = _start(config, "--resume")
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    rows = _rows(run / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, EPOCHS + 1))
    final = json.loads((run / "checkpoints" / "resume" / "state.json").read_text())
    assert final["epoch"] == EPOCHS and final["interrupted"] is None
    # the optimizer step count continued from the interrupted state
    assert final["iterations"] == state["iterations"] + (EPOCHS - stopped_at) * STEPS
    assert final["wandb_run_id"] == first_id
    runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(p.name.endswith(first_id) for p in runs)
    saved = json.loads((run / "config.json").read_text())
    assert len(saved["resumed"]) == 1


class _SigtermInEpoch2:
    """A plugin whose callback sends SIGTERM to this process after epoch 2's first step
    (once per plugin object, so the resumed run is not interrupted again)."""

    def __init__(self):
        self.sent = False

    @hookimpl
    def dlsuite_callbacks(self, config):
        import keras

        plugin = self

        class Kill(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                if self._epoch == 1 and batch == 0 and not plugin.sent:
                    plugin.sent = True
                    os.kill(os.getpid(), signal.SIGTERM)

        return [Kill()]


@pytest.mark.slow
def test_sigterm_in_process_cuts_the_epoch_and_resume_redoes_it(tmp_path):
    from dlsuite import pipeline

    config = _config(tmp_path)
    data = json.loads(config.read_text())
    data.update(wandb={"mode": "disabled"}, train={"epochs": 3, "tensorboard": {"enabled": False}})
    loaded, reg = load_with_plugins(config, data, sigterm=_SigtermInEpoch2())
    with pytest.raises(pipeline.TrainingInterrupted) as info:
        pipeline.train(loaded, quiet=True, registry=reg)
    assert info.value.exit_code == 143 and "--resume" in str(info.value)
    run = tmp_path / "run"
    state = json.loads((run / "checkpoints/resume/state.json").read_text())
    assert state["epoch"] == 1 and state["interrupted"] == "SIGTERM"
    # epoch 1, then epoch 2 up to the end of the step after the signal (the plugin's callback
    # runs after the stop check of step 1, so training stops at the end of step 2)
    assert state["iterations"] == STEPS + 2
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == [1]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    result = pipeline.train(loaded, quiet=True, registry=reg, resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    final = json.loads((run / "checkpoints/resume/state.json").read_text())
    assert final["iterations"] == STEPS + 2 + 2 * STEPS


@pytest.mark.slow
def test_the_resume_command_of_a_run_with_overrides_names_that_run(tmp_path):
    """``dlsuite run c.json --set output_dir=b`` interrupted: the printed command resumes b
    (its config.json records the overrides), not c.json's own output_dir, which it rewrote."""
    from dlsuite import pipeline
    from dlsuite.config import load_config
    from dlsuite.registry import Registry

    config = _config(tmp_path)
    data = json.loads(config.read_text())
    data.update(wandb={"mode": "disabled"}, train={"epochs": 2, "tensorboard": {"enabled": False}})
    config.write_text(json.dumps(data))
    registry = Registry.from_entry_points()
    registry.add_plugin(_SigtermInEpoch2(), "sigterm", None, None)
    other = tmp_path / "other"
    loaded = load_config(config, registry, overrides={"output_dir": str(other)})
    with pytest.raises(pipeline.TrainingInterrupted) as info:
        pipeline.train(loaded, quiet=True, registry=registry)
    assert f"Continue with: dlsuite run {other / 'config.json'} --resume" in str(info.value)
    resumed = load_config(other / "config.json", registry)
    result = pipeline.train(resumed, quiet=True, registry=registry, resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert not (tmp_path / "run").exists()  # c.json's own output_dir: never written


# --------------------------------------------------------------------------------------------
# resume with a changed config, broken resumable files


def _small(tmp_path: Path, **train) -> Path:
    """The resume config with W&B disabled, 1 epoch of 2 steps (or ``train`` overrides)."""
    config = _config(tmp_path)
    data = json.loads(config.read_text())
    data["wandb"] = {"mode": "disabled"}
    data["datagen"]["steps_per_epoch"] = 2
    data["train"] = {"epochs": 1, "tensorboard": {"enabled": False}, **train}
    config.write_text(json.dumps(data))
    return config


def _edit(config: Path, **sections) -> None:
    data = json.loads(config.read_text())
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    config.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A run trained for 1 epoch (its resumable state saved), copied by each test."""
    from dlsuite import api

    root = tmp_path_factory.mktemp("resumable")
    config = _small(root)
    api.train(config, quiet=True)
    return root


def _copy(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained folder (config, data, run: ``output_dir`` is relative)."""
    import shutil

    shutil.copytree(trained, tmp_path / "copy")
    return tmp_path / "copy" / "config.json"


def test_changed_learning_rate_and_epochs_are_applied_and_recorded(trained_once, tmp_path):
    from dlsuite import api

    config = _copy(trained_once, tmp_path)
    _edit(config, optimizer={"learning_rate": 0.01}, train={"epochs": 2})
    result = api.train(config, quiet=True, resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2]
    rows = _rows(tmp_path / "copy" / "run" / "history.csv")
    assert float(rows[0]["learning_rate"]) == pytest.approx(0.001, rel=1e-5)
    assert float(rows[1]["learning_rate"]) == pytest.approx(0.01, rel=1e-5)
    saved = json.loads((tmp_path / "copy" / "run" / "config.json").read_text())
    [change] = saved["resume_changes"]
    assert change["after_epoch"] == 1
    assert change["changes"] == {"optimizer.learning_rate": [0.001, 0.01],
                                 "train.epochs": [1, 2]}
    assert change["not_applied"] == []
    assert saved["config"]["optimizer"]["learning_rate"] == 0.01


def test_changed_model_is_refused_in_one_line_without_keras_warnings(trained_once, tmp_path):
    from conftest import run_cli

    config = _copy(trained_once, tmp_path)
    _edit(config, model={"n_filters": 8})
    before = (tmp_path / "copy" / "run" / "config.json").read_bytes()
    proc = run_cli("train", str(config), "--resume", "--quiet", timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) <= 3, proc.stderr  # one message (rich may wrap it), nothing else
    text = " ".join(proc.stderr.split())
    assert "cannot resume with a changed model.n_filters 4 -> 8" in text
    assert (tmp_path / "copy" / "run" / "config.json").read_bytes() == before


@pytest.mark.parametrize("damage", ["missing weights", "truncated weights", "broken optimizer",
                                    "broken state"])
def test_missing_or_corrupt_resumable_file_is_named(trained_once, tmp_path, damage):
    from dlsuite import api
    from dlsuite.errors import DlsuiteInputError

    config = _copy(trained_once, tmp_path)
    _edit(config, train={"epochs": 2})
    resume = tmp_path / "copy" / "run" / "checkpoints" / "resume"
    weights = resume / "epoch_0001" / "model.weights.h5"
    target = {"missing weights": weights, "truncated weights": weights,
              "broken optimizer": resume / "epoch_0001" / "optimizer.npz",
              "broken state": resume / "state.json"}[damage]
    if damage == "missing weights":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[: 200])
    with pytest.raises(DlsuiteInputError) as info:
        api.train(config, quiet=True, resume=True)
    message = str(info.value)
    assert str(target) in message and "config" not in message.split(":", 1)[1][:60]
    assert ("missing" if damage == "missing weights" else "cannot read") in message
