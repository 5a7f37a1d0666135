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
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


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
    from dlsuite.config import load_config
    from dlsuite.registry import Registry

    config = _config(tmp_path)
    data = json.loads(config.read_text())
    data.update(wandb={"mode": "disabled"}, train={"epochs": 3, "tensorboard": {"enabled": False}})
    config.write_text(json.dumps(data))
    reg = Registry.from_entry_points()
    reg.add_plugin(_SigtermInEpoch2(), "sigterm", None, None)
    loaded = load_config(config, reg)
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
