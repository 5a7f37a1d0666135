"""``optimizer.ema_momentum`` (dlsuite.training_callbacks.AveragedWeights): a real Keras fit
keeps the moving average of its weights; validation and the epoch-end callbacks (checkpoints)
see the averaged weights, each epoch trains on from its own; a resumed fit gets its own
weights back; ``dlsuite train`` applies the option from the config and refuses a bad one."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_with_plugins
from dlsuite import hookimpl
from test_lr_warmup import tiny_config

MOMENTUM = 0.8


def _model():
    import keras

    from dlsuite.config.schema import OptimizerConfig
    from dlsuite.training_setup import make_optimizer

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    opt = make_optimizer(OptimizerConfig(name="sgd", learning_rate=0.05,
                                         ema_momentum=MOMENTUM))
    model.compile(optimizer=opt, loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]]) + 1).astype(np.float32)


class _Record:
    """Callbacks recording the weights each batch ends with, and those the model holds at
    each epoch end after AveragedWeights ran, with the logged validation loss."""

    def __init__(self):
        import keras

        rec = self
        self.batches, self.epoch_end, self.first_batch_start, self.val_loss = [], [], None, []

        class Batches(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if rec.first_batch_start is None:
                    rec.first_batch_start = [w.copy() for w in self.model.get_weights()]

            def on_train_batch_end(self, batch, logs=None):
                rec.batches.append([w.copy() for w in self.model.get_weights()])

            def on_epoch_end(self, epoch, logs=None):
                rec.epoch_end.append([w.copy() for w in self.model.get_weights()])
                rec.val_loss.append(float(logs["val_loss"]))

        self.callback = Batches()


def _average(batches):
    """Keras' moving average: the first step's weights, then m * average + (1 - m) * w."""
    avg = [w.copy() for w in batches[0]]
    for ws in batches[1:]:
        avg = [MOMENTUM * a + (1 - MOMENTUM) * w for a, w in zip(avg, ws)]
    return avg


def test_validation_and_epoch_end_see_the_average_and_training_goes_on_from_its_own():
    from dlsuite.training_callbacks import AveragedWeights

    model, (x, y), rec = _model(), _data(), _Record()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False, validation_data=(x, y),
              callbacks=[AveragedWeights(), rec.callback])
    assert len(rec.batches) == 8
    for epoch in (0, 1):
        expected = _average(rec.batches[: 4 * (epoch + 1)])
        for got, want in zip(rec.epoch_end[epoch], expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        # the averaged weights differ from the ones the epoch's last step left
        assert not np.allclose(rec.epoch_end[epoch][0], rec.batches[4 * epoch + 3][0])
        # validation scored the averaged weights
        kernel, bias = expected
        mse = float(np.mean((x @ kernel + bias - y) ** 2))
        assert rec.val_loss[epoch] == pytest.approx(mse, rel=1e-4)
    # the second epoch's first step started from the trained weights, not the averaged ones:
    # its result is one SGD step away from the first epoch's last weights
    step = rec.batches[4][0] - rec.batches[3][0]
    assert np.abs(step).max() < np.abs(rec.batches[4][0] - rec.epoch_end[0][0]).max()


def test_a_resumed_fit_trains_on_from_its_own_weights():
    import keras

    from dlsuite.training_callbacks import AveragedWeights

    (x, y), first, saved = _data(), _Record(), []

    class Save(keras.callbacks.Callback):
        """What a resumable state keeps at an epoch end: the model's weights (averaged) and
        the optimizer's variables (the trained weights in the average's place)."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                saved.extend([self.model.get_weights(),
                              [v.numpy() for v in self.model.optimizer.variables]])

    _model().fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False,
                 validation_data=(x, y), callbacks=[AveragedWeights(), first.callback, Save()])
    trained = first.batches[3]  # where the first epoch's training left the weights

    def resume(resumed: bool):
        again, rec = _model(), _Record()
        again.set_weights(saved[0])
        for var, value in zip(again.optimizer.variables, saved[1]):
            var.assign(value)
        again.fit(x, y, batch_size=4, epochs=2, initial_epoch=1, verbose=0, shuffle=False,
                  validation_data=(x, y), callbacks=[AveragedWeights(resumed=resumed),
                                                      rec.callback])
        return rec.first_batch_start

    for got, want in zip(resume(True), trained):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # without the flag the run would go on from the averaged weights
    assert not np.allclose(resume(False)[0], trained[0])


def test_train_uses_ema_momentum_and_refuses_a_value_outside_0_1(tmp_path):
    import keras

    from dlsuite import api
    from dlsuite.errors import ConfigError

    cfg = tiny_config(tmp_path, "ema", {"learning_rate": 0.01, "ema_momentum": 0.9},
                      {"epochs": 2})
    run = api.train(cfg, quiet=True).run_dir
    model = keras.models.load_model(run / "checkpoints" / "last.keras", compile=False)
    assert model.count_params() > 0
    for bad in (1.5, 0, 1):
        with pytest.raises(ConfigError, match="optimizer.ema_momentum"):
            api.train({**cfg, "optimizer": {"ema_momentum": bad}}, quiet=True)


class _WeightsThenSigterm:
    """A plugin whose callback keeps, for each fit, the weights its first step starts from
    and those its last step ended with; in the first fit it sends SIGTERM after step
    ``at`` = (epoch, batch), both 1-based."""

    def __init__(self, at: tuple[int, int]):
        self.at, self.fits = at, []

    @hookimpl
    def dlsuite_callbacks(self, config):
        import os
        import signal

        import keras

        plugin = self

        class Keep(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                plugin.fits.append({})

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch + 1

            def on_train_batch_begin(self, batch, logs=None):
                plugin.fits[-1].setdefault("start", [w.copy() for w in self.model.get_weights()])

            def on_train_batch_end(self, batch, logs=None):
                plugin.fits[-1]["end"] = [w.copy() for w in self.model.get_weights()]
                if len(plugin.fits) == 1 and (self.epoch, batch + 1) == plugin.at:
                    os.kill(os.getpid(), signal.SIGTERM)

        return [Keep()]


@pytest.mark.slow
@pytest.mark.parametrize("at, saved_epoch", [((2, 1), 1), ((1, 4), 1)],
                         ids=["within-an-epoch", "at-an-epoch-end"])
def test_dlsuite_train_resume_goes_on_from_the_trained_weights_not_the_average(
        tmp_path, at, saved_epoch):
    """Through the resumable state ``dlsuite train`` writes when a signal stops it (within
    an epoch, or after its last step), and that ``--resume`` reads: the checkpoint holds the
    average, the resumed fit starts from the weights the last step before the signal left."""
    import json

    import keras

    from dlsuite import pipeline

    cfg = tiny_config(tmp_path, "ema", {"learning_rate": 0.01, "ema_momentum": 0.9},
                      {"epochs": 3, "tensorboard": {"enabled": False}})
    cfg["datagen"]["steps_per_epoch"] = 4
    plugin = _WeightsThenSigterm(at)
    loaded, registry = load_with_plugins(tmp_path / "ema.json", cfg, weights=plugin)
    with pytest.raises(pipeline.TrainingInterrupted):
        pipeline.train(loaded, quiet=True, registry=registry)
    run = tmp_path / "run"
    state = json.loads((run / "checkpoints/resume/state.json").read_text())
    assert state["epoch"] == saved_epoch
    averaged = keras.models.load_model(run / "checkpoints" / "last.keras",
                                       compile=False).get_weights()
    trained = plugin.fits[0]["end"]
    assert not all(np.allclose(a, t, atol=1e-4) for a, t in zip(averaged, trained))

    pipeline.train(loaded, quiet=True, registry=registry, resume=True)
    for got, want in zip(plugin.fits[1]["start"], trained):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
