"""``train.cosine_decay`` (dlsuite.lr_cosine): in a real Keras fit the learning rate falls
along half a cosine from the optimizer's rate to ``min_lr`` at the run's last step, after the
warm-up when there is one; a resumed fit continues the curve; ``dlsuite train`` applies it
and refuses it together with ``reduce_lr``."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest


def _fit(callbacks, epochs: int = 3, initial_epoch: int = 0, start_step: int = 0):
    """Rates seen by each batch of a tiny dense model's fit (4 batches per epoch)."""
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


def test_rate_falls_along_half_a_cosine_to_min_lr_at_the_last_step():
    from dlsuite.lr_cosine import CosineDecay

    seen = _fit([CosineDecay(0.1, 0.001)])
    want = [0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * i / 11)) for i in range(12)]
    np.testing.assert_allclose(seen, want, rtol=1e-5)
    assert seen[0] == pytest.approx(0.1) and seen[-1] == pytest.approx(0.001)
    assert np.all(np.diff(seen) < 0)


def test_decay_starts_after_the_warm_up_and_a_resumed_fit_continues_it():
    from dlsuite.lr_cosine import CosineDecay, cosine_rate
    from dlsuite.lr_warmup import LinearWarmup

    seen = _fit([LinearWarmup(0.1, 4), CosineDecay(0.1, 0.0, warmup=4)])
    np.testing.assert_allclose(seen[:4], [0.025, 0.05, 0.075, 0.1], rtol=1e-5)
    want = [0.1 * 0.5 * (1 + math.cos(math.pi * i / 7)) for i in range(8)]
    np.testing.assert_allclose(seen[4:], want, rtol=1e-5, atol=1e-9)
    # resumed at epoch 2 (8 steps done): the last 4 rates of the same curve
    resumed = _fit([LinearWarmup(0.1, 4), CosineDecay(0.1, 0.0, warmup=4)],
                   initial_epoch=2, start_step=8)
    np.testing.assert_allclose(resumed, seen[8:], rtol=1e-5, atol=1e-9)
    assert cosine_rate(50, 12, 0.1, 0.002) == pytest.approx(0.002)  # past the end: min_lr


def test_train_applies_cosine_decay_and_refuses_it_with_reduce_lr(tmp_path):
    from dlsuite import api
    from dlsuite.data.example import write_example_frames
    from dlsuite.errors import ConfigError
    from dlsuite.lr_cosine import cosine_rate

    frames = write_example_frames(tmp_path / "data", n=2, size=32, seed=0)["frames"]
    cfg = {"name": "cos", "output_dir": str(tmp_path / "run"), "seed": 0,
           "data": {"train": str(frames), "val": str(frames), "test": None},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "optimizer": {"learning_rate": 0.01},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
           "train": {"epochs": 3, "reduce_lr": {"enabled": False},
                     "cosine_decay": {"enabled": True, "min_lr": 0.001}},
           "wandb": {"mode": "disabled"}}
    run = api.train(cfg, quiet=True).run_dir
    with open(run / "history.csv") as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    # the rate each epoch's last step used: steps 1, 3 and 5 of 6
    np.testing.assert_allclose(rates, [cosine_rate(s, 6, 0.01, 0.001) for s in (1, 3, 5)],
                               rtol=1e-5)
    with pytest.raises(ConfigError, match=r"train\.cosine_decay.*reduce_lr"):
        api.train({**cfg, "train": {"epochs": 1, "cosine_decay": {"enabled": True}}},
                  quiet=True)
