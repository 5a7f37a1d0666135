"""Training that notices: a non-finite or exploding loss, NaN weights or a NaN learning rate stop
training (no checkpoint of that epoch) with a message saying why; a loss stuck at its first
value while metrics stay 0 warns once. Real tiny Keras models fitted for a few steps."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from dlsuite.training import DivergenceGuard, StuckLossWarning  # noqa: E402


def _model(learning_rate: float) -> keras.Model:
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(1)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


def _data(n: int = 8, scale: float = 1.0):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 4)) * scale).astype("float32"), np.ones((n, 1), "float32")


def test_nan_learning_rate_is_caught_in_the_first_epoch_even_with_one_step():
    """The step that applies a NaN learning rate still reports a finite loss; the weights it
    leaves are NaN. With one step per epoch the loss never shows it: the epoch end does."""
    keras.utils.set_random_seed(0)
    model = _model(float("nan"))
    guard = DivergenceGuard()
    x, y = _data(4)
    history = model.fit(x, y, batch_size=4, epochs=3, callbacks=[guard], verbose=0)
    assert np.isfinite(history.history["loss"][0])  # the loss alone would not tell
    assert guard.where == (1, 1)
    assert guard.reason == "the learning rate is nan"
    assert len(history.history["loss"]) == 1  # stopped after the first epoch


def test_nan_weights_are_caught_at_the_epoch_end():
    keras.utils.set_random_seed(0)
    model = _model(0.01)
    guard = DivergenceGuard()

    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                w = self.model.layers[-1].kernel
                w.assign(np.full(w.shape, np.nan, "float32"))

    x, y = _data(8)
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[guard, Poison()], verbose=0)
    assert guard.where == (1, 2) and guard.reason == "the weights became NaN/inf"


def test_exploding_loss_stops_training():
    keras.utils.set_random_seed(0)
    model = _model(5.0)  # far too large for inputs of this scale: the loss grows each step
    guard = DivergenceGuard()
    x, y = _data(64, scale=10.0)
    model.fit(x, y, batch_size=4, epochs=5, callbacks=[guard], verbose=0)
    assert guard.where is not None and guard.where[0] == 1
    assert guard.reason.startswith(("the loss exploded to", "the loss became"))


def test_a_healthy_fit_is_left_alone():
    keras.utils.set_random_seed(0)
    model = _model(0.01)
    guard = DivergenceGuard()
    x, y = _data(16)
    history = model.fit(x, y, batch_size=4, epochs=3, validation_data=(x, y),
                        callbacks=[guard], verbose=0)
    assert guard.where is None and len(history.history["loss"]) == 3


def test_stuck_loss_with_zero_metrics_warns_once(caplog):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid",
                                                                    bias_initializer="zeros",
                                                                    kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-12),
                  loss="binary_crossentropy", metrics=[keras.metrics.Precision(name="dice")])
    x, y = _data(8)
    notice = StuckLossWarning(epochs=3)
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        model.fit(x, y, batch_size=4, epochs=5, callbacks=[notice], verbose=0)
    records = [r for r in caplog.records if "not learning" in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    message = records[0].getMessage()
    assert "the training loss has stayed at 0.6931 (its epoch-1 value) for 3 epochs" in message
    assert "dice stay 0" in message and "\n" not in message


def test_a_model_collapsed_after_its_first_epoch_warns_naming_the_warm_up():
    """As a from-scratch U-Net at lr 3e-3 did: Jaccard > 0 in epoch 1, then exactly 0 with a
    flat loss (1.570 +- 0.1%) from epoch 2 on."""
    notice = StuckLossWarning(epochs=3)
    for epoch, (loss, jaccard) in enumerate([(1.678, 0.036), (1.5817, 0.0), (1.5700, 0.0),
                                             (1.5701, 0.0)]):
        notice.on_epoch_end(epoch, {"loss": loss, "jaccard": jaccard})
        assert (notice.warned is None) == (epoch < 3)
    assert "has stayed at 1.582 (since epoch 2) for 3 epochs while jaccard stay 0" in \
        notice.warned and "train.warmup_steps" in notice.warned


@pytest.mark.parametrize("recovery, advice", [
    (None, None), (False, "or enable train.collapse_recovery"),
    (True, "train.collapse_recovery did not bring it back: its max_times are used up, or the "
           "training loss did not rise above 1.5x")])
def test_a_model_that_collapsed_after_learning_warns_naming_the_peak_and_the_rate(recovery,
                                                                                   advice):
    """As the 16-filter recipe did on the time-lapse at lr 3e-3: training Jaccard 0.86 in
    epoch 71 (after resuming at epoch 69), then 0 with a flat loss from epoch 74 on. The
    advice names the collapse recovery as it was configured."""
    notice = StuckLossWarning(epochs=3, recovery=recovery)
    rows = [(0.1217, 0.859), (0.1163, 0.863), (0.4162, 0.591), (0.69, 0.0485),
            (0.6780, 0.0), (0.6778, 0.0), (0.6779, 0.0)]
    for epoch, (loss, jaccard) in enumerate(rows, start=69):
        notice.on_epoch_end(epoch, {"loss": loss, "jaccard": jaccard})
    message = notice.warned
    assert message.startswith("the training loss has stayed at 0.678 (since epoch 74) for "
                              "3 epochs while jaccard stay 0, after jaccard reached 0.863 in "
                              "epoch 71: the model collapsed")
    assert "optimizer.learning_rate" in message and "warmup" not in message
    assert ("collapse_recovery" not in message) if advice is None else (advice in message)


def test_a_loss_that_moves_or_training_metrics_above_zero_do_not_warn():
    for rows in ([{"loss": 0.69, "dice": 0.0}, {"loss": 0.5, "dice": 0.0},
                  {"loss": 0.4, "dice": 0.0}],
                 [{"loss": 0.69, "dice": 0.1}, {"loss": 0.69, "dice": 0.1},
                  {"loss": 0.69, "dice": 0.1}],
                 # converged (loss within 1%), but the validation set holds no objects
                 [{"loss": 0.4675, "dice": 0.86, "val_dice": 0.0, "val_loss": 0.02},
                  {"loss": 0.4660, "dice": 0.86, "val_dice": 0.0, "val_loss": 0.02},
                  {"loss": 0.4628, "dice": 0.87, "val_dice": 0.0, "val_loss": 0.02}]):
        notice = StuckLossWarning(epochs=3)
        for epoch, logs in enumerate(rows):
            notice.on_epoch_end(epoch, logs)
        assert notice.warned is None


@pytest.mark.slow
def test_diverging_run_stops_with_a_message_and_writes_no_predictions(tmp_path):
    """End to end: a learning rate so large the loss leaves every bound; the run stops in the
    first epoch with exit-2 error TrainingDiverged, no checkpoint and no predictions."""
    from dlsuite import api
    from dlsuite.data.example import write_example_videos
    from dlsuite.steps import TrainingDiverged

    videos = write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32)["videos"]
    cfg = {"name": "diverge", "output_dir": str(tmp_path / "run"), "seed": 1,
           "data": {"train": str(videos), "val": str(videos), "test": str(videos)},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "optimizer": {"name": "sgd", "learning_rate": 1e12},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 3},
           "train": {"epochs": 3, "tensorboard": {"enabled": False}},
           "wandb": {"mode": "disabled"}}
    with pytest.raises(TrainingDiverged) as info:
        api.run(cfg, quiet=True)
    message = str(info.value)
    assert message.startswith("training stopped at epoch 1, step ")
    assert "no checkpoint was written" in message and "learning_rate" in message
    run = Path(cfg["output_dir"])
    assert not (run / "predictions").exists() and not list(run.glob("checkpoints/*.keras"))
    assert not (run / "metrics.json").is_file() or "test" not in json.loads(
        (run / "metrics.json").read_text())
