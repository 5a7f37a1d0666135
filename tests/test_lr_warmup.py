"""``train.warmup_steps`` (dlsuite.lr_warmup): the learning rate of a real Keras fit rises
linearly over the first optimizer steps, then stays the optimizer's; a resumed fit continues
the ramp from the optimizer's step count; ``dlsuite train`` applies it from the config."""

from __future__ import annotations

import csv

import numpy as np
import pytest


def _fit(epochs: int, warmup, start_step: int = 0):
    """Rates seen by each batch of a tiny dense model's fit (4 batches per epoch)."""
    import keras

    from dlsuite.lr_warmup import LinearWarmup

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(start_step)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    x, y = np.ones((16, 3), np.float32), np.zeros((16, 1), np.float32)
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, shuffle=False,
              callbacks=[warmup, Record()] if warmup else [Record()])
    return np.array(seen)


def test_rate_rises_linearly_then_stays():
    from dlsuite.lr_warmup import LinearWarmup

    seen = _fit(2, LinearWarmup(0.1, 5))
    np.testing.assert_allclose(seen, [0.02, 0.04, 0.06, 0.08, 0.1, 0.1, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(_fit(1, None), [0.1] * 4, rtol=1e-6)  # without: constant


def test_resumed_fit_continues_the_ramp_and_leaves_a_finished_one_alone():
    from dlsuite.lr_warmup import LinearWarmup

    np.testing.assert_allclose(_fit(1, LinearWarmup(0.1, 5), start_step=3),
                               [0.08, 0.1, 0.1, 0.1], rtol=1e-6)
    # past the ramp the optimizer's (e.g. reduced and restored) rate is not touched
    np.testing.assert_allclose(_fit(1, LinearWarmup(0.5, 5), start_step=9), [0.1] * 4,
                               rtol=1e-6)


def test_train_applies_warmup_steps_and_refuses_a_negative_count(tmp_path):
    from dlsuite import api
    from dlsuite.data.example import write_example_frames
    from dlsuite.errors import ConfigError

    frames = write_example_frames(tmp_path / "data", n=2, size=32, seed=0)["frames"]
    cfg = {"name": "warm", "output_dir": str(tmp_path / "run"), "seed": 0,
           "data": {"train": str(frames), "val": str(frames), "test": None},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "optimizer": {"learning_rate": 0.01},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
           "train": {"epochs": 3, "warmup_steps": 4}, "wandb": {"mode": "disabled"}}
    run = api.train(cfg, quiet=True).run_dir
    with open(run / "history.csv") as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    # the rate each epoch ends with: steps 2 and 4 of the ramp, then the configured one
    np.testing.assert_allclose(rates, [0.005, 0.01, 0.01], rtol=1e-5)
    with pytest.raises(ConfigError, match="warmup_steps"):
        api.train({**cfg, "train": {"epochs": 1, "warmup_steps": -1}}, quiet=True)
