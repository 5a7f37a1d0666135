"""``train.warmup_steps`` (dlsuite.lr_warmup): the learning rate of a real Keras fit rises
linearly over the first optimizer steps, then stays the optimizer's; a resumed fit continues
the ramp from the optimizer's step count; ``dlsuite train`` applies it from the config."""

from __future__ import annotations

import csv

import numpy as np
import pytest


def fit_rates(callbacks, epochs: int = 3, initial_epoch: int = 0, start_step: int = 0):
    """Rates seen by each batch of a tiny dense model's SGD fit (4 batches per epoch) with
    ``callbacks``, its optimizer's step count starting at ``start_step``."""
    import keras

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
    model.fit(x, y, batch_size=4, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
              shuffle=False, callbacks=[*callbacks, Record()])
    return np.array(seen)


def _fit(epochs: int, warmup, start_step: int = 0):
    return fit_rates([warmup] if warmup else [], epochs, start_step=start_step)


def tiny_config(tmp_path, name: str, optimizer: dict, train: dict) -> dict:
    """A config training a 4-filter U-Net on two 32x32 example frames (2 steps per epoch,
    W&B off) with these ``optimizer`` and ``train`` sections."""
    from dlsuite.data.example import write_example_frames

    frames = write_example_frames(tmp_path / "data", n=2, size=32, seed=0)["frames"]
    return {"name": name, "output_dir": str(tmp_path / "run"), "seed": 0,
            "data": {"train": str(frames), "val": str(frames), "test": None},
            "model": {"name": "unet", "n_filters": 4, "pools": 2}, "optimizer": optimizer,
            "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
            "train": train, "wandb": {"mode": "disabled"}}


def epoch_rates(run_dir) -> list[float]:
    """The learning rate of each epoch's last step, from the run's history.csv."""
    with open(run_dir / "history.csv") as f:
        return [float(r["learning_rate"]) for r in csv.DictReader(f)]


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
    from dlsuite.errors import ConfigError

    cfg = tiny_config(tmp_path, "warm", {"learning_rate": 0.01},
                      {"epochs": 3, "warmup_steps": 4})
    rates = epoch_rates(api.train(cfg, quiet=True).run_dir)
    # the rate each epoch ends with: steps 2 and 4 of the ramp, then the configured one
    np.testing.assert_allclose(rates, [0.005, 0.01, 0.01], rtol=1e-5)
    with pytest.raises(ConfigError, match="warmup_steps"):
        api.train({**cfg, "train": {"epochs": 1, "warmup_steps": -1}}, quiet=True)
