"""``train.collapse_recovery`` (dlsuite.collapse_recovery): a fit whose training metric
collapses goes back to the weights of its last healthy epoch at a lower learning rate.

The end-to-end tests make a real U-Net collapse as the instance recipe's did at a high
learning rate: its ReLUs stop firing (a plugin's callback drives every hidden bias far
negative when epoch ``KILLED_EPOCH`` begins), so it predicts background and no gradient
brings it back. Without the recovery the model stays collapsed; with it, it trains on."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from _dead_relus import EPOCHS, KILLED_EPOCH, LR, DeadRelus, collapse_config
from conftest import load_with_plugins
from dlsuite import hookimpl
from test_lr_warmup import epoch_rates
from test_resume import _rows


def _train(tmp_path, name: str, epochs: int = EPOCHS, resume: bool = False, **train):
    """Train the tiny U-Net (8 filters, 8 steps of 2 example frames per epoch, Adam at
    ``LR``) with the :class:`~_dead_relus.DeadRelus` plugin; the run folder."""
    from dlsuite import pipeline

    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    cfg = collapse_config(folder, name, epochs, **train)
    loaded, registry = load_with_plugins(folder / "config.json", cfg,
                                         dead_relus=DeadRelus(KILLED_EPOCH))
    pipeline.train(loaded, quiet=True, registry=registry, resume=resume)
    return folder / "run"


def _jaccard(run) -> list[float]:
    return [float(r["jaccard"]) for r in _rows(run / "history.csv")]


@pytest.mark.slow
def test_a_collapsed_fit_goes_back_to_its_healthy_weights_at_half_the_rate(tmp_path, caplog):
    # without the recovery the model predicts background from the killed epoch on
    off = _jaccard(_train(tmp_path, "off", collapse_recovery={"enabled": False}))
    peak = max(off[:KILLED_EPOCH - 1])
    assert peak >= 0.3, off  # it had learned ...
    assert max(off[KILLED_EPOCH:]) < 0.05, off  # ... and never recovers

    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        run = _train(tmp_path, "on")
    on = _jaccard(run)
    assert on[:KILLED_EPOCH - 1] == pytest.approx(off[:KILLED_EPOCH - 1], abs=0.05)
    assert on[KILLED_EPOCH - 1] < 0.25 * max(on[:KILLED_EPOCH - 1])  # it collapsed too
    assert min(on[KILLED_EPOCH:]) >= 0.8 * max(on[:KILLED_EPOCH - 1]), on  # and trains on
    # reduce_lr (patience 10) did not act: the rate after the spike is half the rate before
    assert epoch_rates(run)[KILLED_EPOCH:] == pytest.approx([LR / 2] * (EPOCHS - KILLED_EPOCH))
    said = [r.getMessage() for r in caplog.records if "collapsed" in r.getMessage()]
    assert len(said) == 1 and f"epoch {KILLED_EPOCH}: jaccard fell to" in said[0]
    assert "restored the weights of epoch" in said[0] and "recovery 1 of 3" in said[0]
    state = json.loads((run / "checkpoints/resume/state.json").read_text())
    assert state["callbacks"]["CollapseRecovery"] == {"recoveries": 1}


@pytest.mark.slow
def test_a_recovery_lowers_the_cosine_decay_and_a_resumed_fit_keeps_it(tmp_path):
    from dlsuite.lr_cosine import cosine_rate

    decay = {"cosine_decay": {"enabled": True, "min_lr": 0.0}, "reduce_lr": {"enabled": False}}
    run = _train(tmp_path, "cos", **decay)
    state = json.loads((run / "checkpoints/resume/state.json").read_text())
    assert state["callbacks"]["CosineDecay"] == {"rate_scale": 0.5}
    # the rate of each epoch's last step (step 8 * epoch - 1) follows the curve, halved after
    # the collapse; the resumed fit (2 more epochs, a new, longer curve) keeps the half
    rates = epoch_rates(run)
    expect = [cosine_rate(8 * e - 1, 8 * EPOCHS, LR, 0.0) for e in range(1, EPOCHS + 1)]
    assert rates[:KILLED_EPOCH - 1] == pytest.approx(expect[:KILLED_EPOCH - 1], rel=1e-5)
    assert rates[KILLED_EPOCH:] == pytest.approx(
        [r / 2 for r in expect[KILLED_EPOCH:]], rel=1e-5)
    more = EPOCHS + 2
    run = _train(tmp_path, "cos", epochs=more, resume=True, **decay)
    assert epoch_rates(run)[EPOCHS:] == pytest.approx(
        [cosine_rate(8 * e - 1, 8 * more, LR, 0.0) / 2 for e in (more - 1, more)], rel=1e-5)


def _recovery(**kwargs):
    """A CollapseRecovery watching jaccard and dice on a real one-weight Keras model."""
    import keras

    from dlsuite.collapse_recovery import CollapseRecovery

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    callback = CollapseRecovery(["jaccard", "dice"], **kwargs)
    callback.set_model(model)
    return callback, model


def _weight(model) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(model.weights[0])[0, 0])


def test_the_rule_what_counts_as_healthy_and_as_a_collapse(caplog):
    callback, model = _recovery(max_times=1, drop=0.25)
    epochs = [  # (weight at the epoch end, logs)
        (1.0, {"jaccard": 0.05, "dice": 0.09, "loss": 0.9}),  # peaks under 0.1: nothing to lose
        (2.0, {"jaccard": 0.01, "dice": 0.02, "loss": 2.0}),
        (3.0, {"jaccard": 0.6, "dice": 0.7, "val_jaccard": 0.0, "loss": 0.4}),  # healthy
        # (val_jaccard's peak so far is 0: it does not stand in the way)
        (4.0, {"jaccard": 0.45, "dice": 0.7, "loss": 0.45}),  # 0.45 < 0.8 * 0.6: not healthy
        (5.0, {"jaccard": 0.2, "dice": 0.7, "loss": 9.0}),  # 0.2 >= 0.25 * 0.6: no collapse
        (6.0, {"jaccard": 0.1, "dice": 0.1, "loss": 0.55}),  # loss <= 1.5 * 0.4: no collapse
    ]
    for epoch, (weight, logs) in enumerate(epochs):
        model.weights[0].assign([[weight]])
        callback.on_epoch_end(epoch, logs)
        assert _weight(model) == weight and callback.recoveries == 0
    model.weights[0].assign([[7.0]])
    model.optimizer.learning_rate = 0.3  # the rate does not come back: it is halved
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        callback.on_epoch_end(6, {"jaccard": 0.6, "dice": 0.1, "loss": 0.65})
        assert _weight(model) == 3.0 and callback.recoveries == 1
        assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(0.05)
        model.weights[0].assign([[8.0]])
        for epoch in (7, 8):  # max_times used up
            callback.on_epoch_end(epoch, {"jaccard": 0.0, "dice": 0.0, "loss": 0.9})
    assert _weight(model) == 8.0 and callback.recoveries == 1
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said  # one recovery, one "not recovered" (once)
    assert said[0].startswith("epoch 7: dice fell to 0.1 from its peak 0.7 (epoch 3) and the "
                              "loss rose to 0.65 (epoch 3: 0.4): the model collapsed; restored "
                              "the weights of epoch 3 and lowered the learning rate from 0.1 "
                              "to 0.05")
    assert "not recovered" in said[1] and "max_times (1) used up" in said[1]


def test_a_from_scratch_model_learning_the_background_first_is_no_collapse(caplog):
    """The quickstart's first 6 epochs (jaccard, dice, loss): Dice 0.14 in epoch 1, then 0
    while the loss falls, then it finds the cells on its own."""
    callback, model = _recovery()
    rows = [(0.076, 0.14, 0.7249), (0.0, 0.0, 0.6666), (0.0, 0.0, 0.6442),
            (0.053, 0.101, 0.6223), (0.347, 0.515, 0.5498), (0.487, 0.655, 0.4837)]
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        for epoch, (jaccard, dice, loss) in enumerate(rows):
            model.weights[0].assign([[float(epoch)]])
            callback.on_epoch_end(epoch, {"jaccard": jaccard, "dice": dice, "loss": loss})
    assert callback.recoveries == 0 and _weight(model) == 5.0 and not caplog.records


def test_a_model_that_has_not_learned_yet_has_nothing_to_go_back_to(caplog):
    """The legacy example (3 steps per epoch at 3e-3): training Jaccard 0.16 at chance loss
    in epoch 1, then a loss spike. Going back to epoch 1 three times left the rate at an
    eighth for the rest of the run; epoch 1 is no healthy copy, nor is an epoch whose loss
    is not under epoch 1's. Once the loss is under it, a fall is a collapse again."""
    callback, model = _recovery()
    rows = [(0.164, 0.282, 0.6932), (0.0002, 0.0004, 5.68), (0.0001, 0.0001, 3.49),
            (0.12, 0.21, 0.70), (0.3, 0.46, 0.5), (0.01, 0.02, 2.0)]
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        for epoch, (jaccard, dice, loss) in enumerate(rows[:4]):
            model.weights[0].assign([[float(epoch)]])
            callback.on_epoch_end(epoch, {"jaccard": jaccard, "dice": dice, "loss": loss})
        assert callback.recoveries == 0 and _weight(model) == 3.0 and not caplog.records
        for epoch, (jaccard, dice, loss) in enumerate(rows[4:], start=4):
            model.weights[0].assign([[float(epoch)]])
            callback.on_epoch_end(epoch, {"jaccard": jaccard, "dice": dice, "loss": loss})
    assert callback.recoveries == 1 and _weight(model) == 4.0  # back to epoch 5 (loss 0.5)


@pytest.mark.parametrize("drop, first, said_first", [
    (None, 72, "epoch 72: jaccard fell to 0.591 from its peak 0.865 (epoch 69) and the loss "
               "rose to 0.416 (epoch 71: 0.116)"),
    (0.25, 73, "epoch 73: jaccard fell to 0.0485 from its peak 0.865 (epoch 69) and the loss "
               "rose to 0.69 (epoch 71: 0.116)")])
def test_the_recipes_collapse_on_the_time_lapse_would_have_gone_back_to_epoch_71(
        caplog, drop, first, said_first):
    """The training metrics of the 16-filter recipe's 2D model on the video frames (lr 3e-3,
    epochs 64-74 of the run whose last checkpoint then scored SEG 0). The default ``drop``
    (0.7) acts on the first epoch of the fall, 0.25 one epoch later."""
    callback, model = _recovery() if drop is None else _recovery(drop=drop)
    callback.metrics = ["jaccard", "dice", "accuracy"]
    rows = [(0.8587, 0.924, 0.9523, 0.1224), (0.8602, 0.9249, 0.952, 0.1223),
            (0.8607, 0.9251, 0.9518, 0.1223), (0.86, 0.9247, 0.9525, 0.1205),
            (0.8596, 0.9245, 0.9512, 0.1238), (0.8646, 0.9274, 0.9545, 0.115),
            (0.8589, 0.9241, 0.9524, 0.1217), (0.863, 0.9265, 0.9542, 0.1163),
            (0.5906, 0.7426, 0.8377, 0.4162), (0.0485, 0.0926, 0.6897, 0.69),
            (0.0, 0.0, 0.6867, 0.678)]
    model.optimizer.learning_rate = 3e-3
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        for epoch, (jaccard, dice, accuracy, loss) in enumerate(rows, start=64):
            model.weights[0].assign([[float(epoch)]])
            callback.on_epoch_end(epoch - 1, {"jaccard": jaccard, "dice": dice,
                                              "accuracy": accuracy, "loss": loss})
            if epoch == first:
                assert _weight(model) == 71.0 and callback.recoveries == 1
            elif epoch < first:
                assert callback.recoveries == 0
    said = [r.getMessage() for r in caplog.records]
    assert said[0].startswith(said_first + ": the model collapsed; restored the weights of "
                              "epoch 71 and lowered the learning rate from 0.003 to 0.0015")
    # the next epoch starts from epoch 71's weights; here the replay goes on with its
    # collapsed numbers: a second collapse, back to epoch 71 again at a rate halved again
    assert callback.recoveries == 74 - first + 1 and _weight(model) == 71.0
    assert "restored the weights of epoch 71 and lowered the learning rate from 0.0015 to " \
        "0.00075 (recovery 2 of 3" in said[1]


@pytest.mark.parametrize("with_val, kept", [(True, 27), (False, 28)])
def test_the_quickstarts_fall_goes_back_before_its_validation_fell(caplog, with_val, kept):
    """The quickstart's seed-1 run, epochs 23-29 (jaccard, dice, loss, val_jaccard, val_dice):
    at epoch 28 training Jaccard is at 0.93 of its peak but validation Jaccard fell from 0.749
    to 0.418; the collapse comes at epoch 29. Asking the validation metrics too, the recovery
    goes back to epoch 27; on the training metrics alone (no validation logged) to epoch 28,
    from which that run fell again the next epoch."""
    callback, model = _recovery()
    rows = [(0.7169, 0.8351, 0.2650, 0.7183, 0.8360), (0.7124, 0.8321, 0.2595, 0.7324, 0.8455),
            (0.7349, 0.8472, 0.2450, 0.7373, 0.8488), (0.7432, 0.8527, 0.2305, 0.7310, 0.8446),
            (0.7457, 0.8543, 0.2254, 0.7486, 0.8562), (0.6973, 0.8217, 0.2979, 0.4184, 0.5900),
            (0.3476, 0.5159, 0.5607, 0.5528, 0.7120)]
    model.optimizer.learning_rate = 3e-3
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        for epoch, (jaccard, dice, loss, val_jaccard, val_dice) in enumerate(rows, start=23):
            model.weights[0].assign([[float(epoch)]])
            logs = {"jaccard": jaccard, "dice": dice, "loss": loss}
            if with_val:
                logs.update(val_jaccard=val_jaccard, val_dice=val_dice)
            callback.on_epoch_end(epoch - 1, logs)
    assert callback.recoveries == 1 and _weight(model) == kept
    said = caplog.records[0].getMessage()
    assert said.startswith("epoch 29: jaccard fell to 0.348 from its peak 0.746 (epoch 27) and "
                           f"the loss rose to 0.561 (epoch {kept}: ")
    assert f"restored the weights of epoch {kept} and" in said


def test_schedules_are_lowered_with_the_optimizer():
    from dlsuite.lr_cosine import CosineDecay
    from dlsuite.lr_warmup import LinearWarmup

    cosine, warmup = CosineDecay(0.1, 0.0), LinearWarmup(0.1, 10)
    callback, model = _recovery(factor=0.25, schedules=[cosine, warmup])
    callback.on_epoch_end(0, {"jaccard": 0.1, "dice": 0.2, "loss": 0.6})
    callback.on_epoch_end(1, {"jaccard": 0.5, "dice": 0.5, "loss": 0.2})
    callback.on_epoch_end(2, {"jaccard": 0.0, "dice": 0.5, "loss": 0.9})
    assert (cosine.rate_scale, warmup.rate_scale) == (0.25, 0.25)


class _Error:
    """A plugin metric that shrinks as the model improves (``mode`` min)."""

    @hookimpl
    def dlsuite_metrics(self):
        from dlsuite.specs import MetricSpec

        return [MetricSpec(name="pixel_error", factory="keras.metrics:MeanAbsoluteError",
                           mode="min")]


def test_metrics_that_shrink_as_the_model_improves_are_not_watched():
    from dlsuite.collapse_recovery import watched_metrics
    from dlsuite.config import parse_config
    from dlsuite.registry import Registry

    registry = Registry.from_entry_points()
    registry.add_plugin(_Error(), "error-metric", None, None)
    cfg = parse_config({"metrics": ["jaccard", "pixel_error", "dice"]}, registry,
                       check_paths=False).config
    assert watched_metrics(cfg, registry) == ["jaccard", "dice"]


@pytest.mark.parametrize("key, value", [("drop", 1.0), ("healthy", 0.0), ("factor", 1.5),
                                        ("max_times", 0)])
def test_bad_values_are_refused_at_their_path(key, value):
    from dlsuite.config import parse_config
    from dlsuite.errors import ConfigError
    from dlsuite.registry import Registry

    with pytest.raises(ConfigError) as info:
        parse_config({"train": {"collapse_recovery": {key: value}}}, Registry.from_entry_points(),
                     check_paths=False)
    assert f"$.train.collapse_recovery.{key}" in str(info.value)


def test_a_healthy_fraction_not_above_the_drop_is_refused():
    """An epoch end cannot be both healthy and collapsed: with the default drop 0.7, healthy
    0.6 is refused at its path, naming drop."""
    from dlsuite.config import parse_config
    from dlsuite.errors import ConfigError
    from dlsuite.registry import Registry

    with pytest.raises(ConfigError) as info:
        parse_config({"train": {"collapse_recovery": {"healthy": 0.6}}},
                     Registry.from_entry_points(), check_paths=False)
    assert "$.train.collapse_recovery.healthy: must be greater than drop (0.7), got 0.6" in \
        str(info.value)
    parse_config({"train": {"collapse_recovery": {"healthy": 0.6, "drop": 0.5}}},
                 Registry.from_entry_points(), check_paths=False)
