"""Training: run directory rules, checkpoints, history, monitor fallback, seeds, NaN guard,
signals, mixed precision."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from dlsuite import hookimpl
from dlsuite.config import config_hash, parse_config
from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry, get_registry
from dlsuite.rundir import RunDir, load_run_config, prepare_run_dir
from dlsuite.fileio import atomic_write


def tiny_config(data: Path, out: Path, **overrides) -> dict:
    """A config training a base-4, 2-pool U-Net on 32x32 patches for 2 epochs of 2 steps."""
    cfg = {
        "name": "tiny", "output_dir": str(out), "seed": 3,
        "data": {"train": str(data), "val": str(data), "test": str(data)},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
        "train": {"epochs": 2, "checkpoint": {"every_n_epochs": 1}},
        "inference": {"tile_size": None},
        "wandb": {"mode": "disabled"},
    }
    for key, value in overrides.items():
        section, _, leaf = key.partition("__")
        if leaf:
            cfg.setdefault(section, {})[leaf] = value
        else:
            cfg[section] = value
    return cfg


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    from dlsuite.data.example import write_example_videos

    root = tmp_path_factory.mktemp("data")
    return write_example_videos(root, n_videos=2, frames=4, size=32, seed=0)["videos"]


@pytest.fixture(scope="module")
def trained(videos, tmp_path_factory):
    from dlsuite import pipeline

    out = tmp_path_factory.mktemp("runs") / "a"
    loaded = parse_config(tiny_config(videos, out))
    return loaded, pipeline.train(loaded, quiet=True)


# ---- run directory -----------------------------------------------------------------------------


def test_existing_run_is_refused_unless_resume_or_overwrite(tmp_path):
    run = prepare_run_dir(tmp_path / "r")
    run.config_json.write_text("{}")
    run.last.write_text("x")
    with pytest.raises(DlsuiteInputError, match="stopped before its first epoch.*--overwrite"):
        prepare_run_dir(tmp_path / "r")
    with pytest.raises(DlsuiteInputError, match="nothing to resume"):
        prepare_run_dir(tmp_path / "r", resume=True)
    with pytest.raises(DlsuiteInputError, match="exclude"):
        prepare_run_dir(tmp_path / "r", resume=True, overwrite=True)
    again = prepare_run_dir(tmp_path / "r", overwrite=True)
    assert not again.config_json.exists() and not again.last.exists()
    assert again.checkpoints.is_dir() and again.report.is_dir()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "f.json"
    target.write_text("old")

    def boom(tmp: Path) -> None:
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


# ---- monitor -------------------------------------------------------------------------------


def test_monitor_falls_back_without_validation_and_takes_mode_from_plugin(videos, tmp_path):
    from dlsuite.training import resolve_monitor

    reg = get_registry()
    cfg = parse_config(tiny_config(videos, tmp_path)).config
    assert attrs_tuple(resolve_monitor(cfg, reg, has_validation=True)) == ("val_jaccard", "max")
    assert attrs_tuple(resolve_monitor(cfg, reg, has_validation=False)) == ("jaccard", "max")
    cfg = parse_config(tiny_config(videos, tmp_path, train__monitor="val_loss")).config
    assert attrs_tuple(resolve_monitor(cfg, reg, has_validation=False)) == ("loss", "min")
    cfg = parse_config(tiny_config(videos, tmp_path, train__monitor="val_loss",
                                   metrics=[])).config
    assert attrs_tuple(resolve_monitor(cfg, reg, has_validation=True)) == ("val_loss", "min")


def attrs_tuple(monitor) -> tuple:
    return (monitor.name, monitor.mode)


# ---- a real run ----------------------------------------------------------------------------


def test_train_writes_the_run_directory(trained):
    loaded, result = trained
    run = RunDir(result.run_dir)
    saved = json.loads(run.config_json.read_text())
    assert saved["config_hash"] == config_hash(loaded.config)
    assert saved["config"]["model"]["n_filters"] == 4
    assert {"dlsuite", "tensorflow", "keras", "numpy"} <= set(saved["versions"])
    assert saved["versions"]["keras"] and saved["versions"]["numpy"] == np.__version__
    with run.history_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "val_loss", "jaccard", "val_jaccard", "learning_rate"} <= set(rows[0])
    assert float(rows[0]["learning_rate"]) == pytest.approx(1e-3)
    for path in (run.best, run.last, run.periodic(1), run.periodic(2), run.metrics_json,
                 run.run_log, run.resume_state):
        assert path.is_file(), path
    leftovers = [p for p in run.root.rglob(".tmp-*")]
    assert leftovers == []
    # each periodic checkpoint is recorded by name (--overwrite removes it, not a user's
    # epoch_*.keras), and only the current resumable state is kept
    written = json.loads((run.root / ".dlsuite-run").read_text())["written"]
    assert {"checkpoints/epoch_0001.keras", "checkpoints/epoch_0002.keras"} <= set(written)
    assert [p.name for p in run.resume_dir.iterdir() if p.is_dir()] == ["epoch_0002"]
    # best.keras is the epoch with the highest val_jaccard
    best_epoch = max(rows, key=lambda r: float(r["val_jaccard"]))["epoch"]
    assert result.metrics["train"]["best_epoch"] == int(best_epoch)
    assert result.metrics["train"]["best"] == pytest.approx(float(
        max(float(r["val_jaccard"]) for r in rows)))
    assert "epoch 2/2" in run.run_log.read_text()
    assert config_hash(load_run_config(run.root).config) == saved["config_hash"]
    assert result.history[-1]["epoch"] == 2 and result.wandb_run_id is None


def test_checkpoints_reload_and_resume_state_holds_optimizer_steps(trained):
    import keras

    _, result = trained
    run = RunDir(result.run_dir)
    model = keras.models.load_model(run.last, compile=False)
    x = np.zeros((1, 32, 32, 1), np.float32)
    assert model.predict(x, verbose=0).shape == (1, 32, 32, 2)
    compiled = keras.models.load_model(run.last)
    assert int(compiled.optimizer.iterations.numpy()) == 4  # 2 epochs x 2 steps
    state = json.loads(run.resume_state.read_text())
    assert state["epoch"] == 2 and state["iterations"] == 4 and state["seed"] == 3
    assert (run.resume_dir / state["folder"] / "optimizer.npz").is_file()
    assert [p.name for p in run.resume_dir.iterdir() if p.is_dir()] == [state["folder"]]


def test_pretrained_weights_initialise_the_model(trained, videos, tmp_path):
    import keras

    from dlsuite.training import build_model

    _, result = trained
    last = RunDir(result.run_dir).last
    cfg = parse_config(tiny_config(videos, tmp_path, train__pretrained_weights=str(last),
                                   seed=99)).config
    model, _ = build_model(cfg, get_registry(), n_classes=2)
    expected = keras.models.load_model(last, compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), expected))
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    cfg = parse_config(tiny_config(videos, tmp_path, train__pretrained_weights=str(bad))).config
    with pytest.raises(DlsuiteInputError, match=r"pretrained_weights: cannot load .*bad"):
        build_model(cfg, get_registry(), n_classes=2)


@pytest.mark.slow
def test_same_seed_gives_identical_weights(trained, videos, tmp_path):
    import keras

    from dlsuite import pipeline

    loaded, first = trained
    second = pipeline.train(parse_config(tiny_config(videos, tmp_path / "b")), quiet=True)
    w1 = keras.models.load_model(RunDir(first.run_dir).last, compile=False).get_weights()
    w2 = keras.models.load_model(RunDir(second.run_dir).last, compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    assert not all(np.array_equal(a, b) for a, b in
                   zip(w1, keras.models.load_model(RunDir(first.run_dir).periodic(1),
                                                   compile=False).get_weights()))


# ---- NaN: training stops, last good checkpoint kept; dlsuite_callbacks hook --------------------


class _Poison:
    """A plugin whose extra callback turns the weights into NaN during epoch 2."""

    @hookimpl
    def dlsuite_callbacks(self, config):
        import keras

        class PoisonWeights(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if self.params.get("epochs") and self._epoch == 1 and batch == 0:
                    for w in self.model.trainable_weights:
                        w.assign(np.full(w.shape, np.nan, np.float32))

            def on_epoch_begin(self, epoch, logs=None):
                self._epoch = epoch

        return [PoisonWeights()]


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(videos, tmp_path):
    import keras

    from dlsuite import pipeline
    from dlsuite.pipeline import TrainingDiverged

    reg = Registry.from_entry_points()
    reg.add_plugin(_Poison(), "poison", None, None)
    loaded = parse_config(tiny_config(videos, tmp_path / "nan", train__epochs=3), reg)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2.*from epoch 1"):
        pipeline.train(loaded, quiet=True, registry=reg)
    run = RunDir(tmp_path / "nan")
    weights = keras.models.load_model(run.last, compile=False).get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    assert json.loads(run.resume_state.read_text())["epoch"] == 1
    assert not run.periodic(2).exists()


# ---- signals, seeds, precision ---------------------------------------------------------------


def test_graceful_stop_turns_sigterm_into_a_flag():
    from dlsuite.training import GracefulStop

    before = signal.getsignal(signal.SIGTERM)
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_graceful_stop_leaves_a_signal_inherited_as_ignored_ignored():
    """A background job of a non-interactive shell starts with SIGINT ignored: training
    does not start catching it (a Ctrl-C meant for the foreground would stop it)."""
    from dlsuite.training import GracefulStop

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with GracefulStop() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.signum is None
            assert signal.getsignal(signal.SIGTERM) == stop._handle  # still handled
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_seed_everything_seeds_numpy_python_and_tensorflow():
    import random

    import tensorflow as tf

    from dlsuite.training import seed_everything

    draws = []
    for _ in range(2):
        assert seed_everything(7) == 7
        draws.append((random.random(), np.random.rand(), float(tf.random.uniform(()))))
    assert draws[0] == draws[1]
    assert isinstance(seed_everything(None), int)


def test_mixed_precision_trains_in_bfloat16(videos, tmp_path):
    import keras

    from dlsuite.training import build_model, compile_model, set_precision

    reg = get_registry()
    cfg = parse_config(tiny_config(videos, tmp_path)).config
    try:
        assert set_precision(True) == "mixed_bfloat16"
        model, _ = build_model(cfg, reg, n_classes=2)
        compile_model(model, cfg, reg, n_classes=2)
        assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
        x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
        y = (x > 0.5).astype(np.float32)
        logs = model.train_on_batch(x, y, return_dict=True)
        assert np.isfinite(logs["loss"])
    finally:
        assert set_precision(False) == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


DETERMINISTIC_SCRIPT = """
import json, sys
import keras, numpy as np
from dlsuite import pipeline
from dlsuite.config import parse_config
weights = []
for out in sys.argv[2:]:
    cfg = json.loads(sys.argv[1])
    cfg["output_dir"] = out
    pipeline.train(parse_config(cfg), quiet=True)
    weights.append(keras.models.load_model(out + "/checkpoints/last.keras",
                                           compile=False).get_weights())
print("IDENTICAL" if all(np.array_equal(a, b) for a, b in zip(*weights)) else "DIFFERENT")
"""


@pytest.mark.slow
def test_deterministic_option_runs_and_repeats(videos, tmp_path):
    """``train.deterministic`` turns on op determinism for the whole process, so it runs in
    a subprocess: two runs there give identical weights."""
    import subprocess
    import sys

    cfg = tiny_config(videos, tmp_path, train__deterministic=True, train__checkpoint={})
    proc = subprocess.run(
        [sys.executable, "-c", DETERMINISTIC_SCRIPT, json.dumps(cfg),
         str(tmp_path / "d1"), str(tmp_path / "d2")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("IDENTICAL")
    assert "op determinism enabled" in (tmp_path / "d1" / "run.log").read_text()
