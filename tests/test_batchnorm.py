"""BatchNorm momentum of the architectures, precise BN and the validation watch (issue 12).

Real tiny Keras models; the pretrained encoder is a real ``.weights.h5`` file saved from a
randomly initialised encoder.
"""

from __future__ import annotations

import logging

import attrs
import numpy as np
import pytest

from dlsuite.batchnorm import (
    BatchNormWatch,
    PreciseBN,
    batchnorm_callbacks,
    bn_layers_to_estimate,
    recompute_bn_statistics,
)
from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry
from dlsuite_plugins.architectures import plugin
from dlsuite_plugins.architectures.batchnorm import DEFAULT_BN_MOMENTUM, batchnorm_layers

T = 3
KERAS_MOBILENET_MOMENTUM = 0.999


def _spec(name):
    return Registry.from_plugins([plugin]).resolve("architectures", name).spec


def _build(name, **overrides):
    spec = _spec(name)
    fields = {f.name for f in attrs.fields(spec.params)}
    tiny = {"n_filters": 4, "pools": 2}
    if "batch_norm" in fields:
        tiny["batch_norm"] = True
    if spec.temporal:
        tiny["time_windows"] = T
    params = spec.params(**{**tiny, **overrides})
    shape = (T, 32, 32, 1) if spec.temporal else (32, 32, 1)
    return spec.load()(params, n_classes=2, input_shape=shape)


ALL = [s.name for s in plugin.dlsuite_architectures()]
WITH_BN = [name for name in ALL if name != "unet_lstm"]


@pytest.mark.parametrize("name", ALL)
def test_bn_momentum_reaches_every_batchnorm_layer(name):
    """Every architecture with BatchNorm declares bn_momentum and it reaches every layer."""
    declared = hasattr(_spec(name).params(), "bn_momentum")
    layers = batchnorm_layers(_build(name, **({"bn_momentum": 0.77} if declared else {})))
    assert bool(layers) == declared == (name in WITH_BN)
    assert all(layer.momentum == pytest.approx(0.77) for layer in layers)
    if name.startswith("mobilenet"):  # the Keras MobileNetV2 encoder's layers are included
        assert any(layer.name.startswith("block_1_") for layer in layers)


def test_default_momentum_reaches_a_from_scratch_encoder():
    model = _build("mobilenet_mobileunet")
    encoder = batchnorm_layers(model.get_layer("encoder"))
    assert len(encoder) >= 3
    assert {layer.momentum for layer in batchnorm_layers(model)} == {DEFAULT_BN_MOMENTUM}
    assert _spec("unet").params().bn_momentum == DEFAULT_BN_MOMENTUM


def test_unet_without_batch_norm_has_no_batchnorm_layers():
    assert batchnorm_layers(_build("unet", batch_norm=False)) == []


def test_momentum_is_saved_in_the_keras_file(tmp_path):
    import keras

    from dlsuite_plugins.architectures import layers  # noqa: F401 - registers custom layers

    path = tmp_path / "m.keras"
    _build("mobilenet_mobileunet", bn_momentum=0.8).save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert {layer.momentum for layer in batchnorm_layers(loaded)} == {0.8}


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("enc") / "encoder.weights.h5"
    _build("mobilenet_mobileunet").get_layer("encoder").save_weights(path)
    return str(path)


@pytest.fixture(scope="module")
def pretrained(encoder_file):
    """A mobilenet_mobileunet with a pretrained (file) encoder and bn_momentum 0.8."""
    return _build("mobilenet_mobileunet", encoder_weights=encoder_file, bn_momentum=0.8)


def test_pretrained_encoder_keeps_its_momentum_unless_asked(encoder_file, pretrained):
    encoder = {id(layer) for layer in batchnorm_layers(pretrained.get_layer("encoder"))}
    assert encoder
    for layer in batchnorm_layers(pretrained):
        assert layer.momentum == (KERAS_MOBILENET_MOMENTUM if id(layer) in encoder else 0.8)
    asked = _build("mobilenet_mobileunet", encoder_weights=encoder_file, bn_momentum=0.8,
                   encoder_bn_momentum=0.9)
    momenta = {layer.name: layer.momentum for layer in batchnorm_layers(asked)}
    assert momenta["bn_Conv1"] == 0.9 and momenta["up1_1_bn"] == 0.8


@pytest.mark.parametrize("name", ["unet", "categorical_unet_fc", "mobilenet_mobileunet"])
@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, True, "0.9"])
def test_bad_bn_momentum_is_rejected_naming_the_key(name, value):
    with pytest.raises(DlsuiteInputError, match=r"bn_momentum must be (a number )?in \(0, 1\)"):
        _build(name, bn_momentum=value)


def test_bad_encoder_bn_momentum_is_rejected():
    with pytest.raises(DlsuiteInputError,
                       match=r"encoder_bn_momentum must be (a number )?in \(0, 1\)"):
        _build("mobilenet_mobileunet", encoder_bn_momentum=1.0)


# ------------------------------------------------------------------------------ precise BN
def _bn_probe(momentum=0.999):
    import keras

    inputs = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization(momentum=momentum, name="bn")(inputs)
    x = keras.layers.Conv2D(2, 1, name="conv")(x)
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=momentum,
                                                                name="bn2")(x))
    return model


def test_recompute_bn_statistics_averages_the_batch_statistics():
    model = _bn_probe()
    rng = np.random.default_rng(0)
    batches = [(rng.normal(3 + k, 1 + k, (8, 4, 4, 2)).astype(np.float32), None)
               for k in range(3)]
    weights = [w.copy() for w in model.get_layer("conv").get_weights()]
    assert recompute_bn_statistics(model, batches) == 3
    bn = model.get_layer("bn")
    means = [x.mean(axis=(0, 1, 2)) for x, _ in batches]
    variances = [x.var(axis=(0, 1, 2)) for x, _ in batches]
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean(means, axis=0), rtol=1e-4)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean(variances, axis=0),
                               rtol=1e-4)
    assert bn.momentum == 0.999 and model.get_layer("bn2").momentum == 0.999  # restored
    for a, b in zip(weights, model.get_layer("conv").get_weights()):
        np.testing.assert_array_equal(a, b)
    # only the given layers change
    before = model.get_layer("bn2").moving_mean.numpy().copy()
    recompute_bn_statistics(model, [(np.zeros((2, 4, 4, 2), np.float32),)], [bn])
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0, atol=1e-6)
    np.testing.assert_array_equal(model.get_layer("bn2").moving_mean.numpy(), before)


def test_precise_bn_leaves_out_pretrained_and_frozen_encoders(encoder_file, pretrained):
    from dlsuite_plugins.architectures.params import MobileUNetParams

    every = batchnorm_layers(pretrained)
    decoder = {layer.name for layer in every if layer.name.endswith("_bn")}
    assert decoder and len(decoder) < len(every)
    params = MobileUNetParams(n_filters=4, pools=2, encoder_weights=encoder_file)
    assert {layer.name for layer in bn_layers_to_estimate(pretrained, params)} == decoder
    asked = attrs.evolve(params, encoder_bn_momentum=0.9)
    assert len(bn_layers_to_estimate(pretrained, asked)) == len(every)
    from_scratch = attrs.evolve(params, encoder_weights=None)
    assert len(bn_layers_to_estimate(pretrained, from_scratch)) == len(every)
    pretrained.get_layer("encoder").trainable = False  # frozen (train_decoder_only)
    try:
        assert {layer.name for layer in bn_layers_to_estimate(pretrained)} == decoder
    finally:
        pretrained.get_layer("encoder").trainable = True


def test_precise_bn_callback_sets_statistics_before_validation():
    """Momentum 0.999 and 3 steps: the moving mean stays near 0; with PreciseBN it is the
    data mean (5) when validation runs, so the validation loss is near 0 (the target is
    the normalised input)."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, (64, 4, 4, 1)).astype(np.float32)
    y = (x - 5.0) / 2.0
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat()

    def fit(callbacks):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4, 4, 1))
        model = keras.Model(inputs, keras.layers.BatchNormalization(
            momentum=0.999, center=False, scale=False)(inputs))
        model.compile(loss="mse")
        hist = model.fit(train, epochs=1, steps_per_epoch=3, validation_data=(x, y),
                         callbacks=callbacks, verbose=0)
        return model, hist.history["val_loss"][-1]

    plain, plain_loss = fit([])
    precise, precise_loss = fit([PreciseBN(train, 4)])
    assert abs(float(plain.layers[-1].moving_mean.numpy()[0])) < 0.1 and plain_loss > 1
    assert float(precise.layers[-1].moving_mean.numpy()[0]) == pytest.approx(5.0, abs=0.2)
    assert precise_loss < 0.02


# ------------------------------------------------------------------------------ the watch
def _rows(train, val):
    return [{"loss": 1.0, "jaccard": t, "val_jaccard": v} for t, v in zip(train, val)]


@pytest.mark.parametrize("train, val, fires", [
    ([0.1, 0.3, 0.5], [0.0, 0.0, 0.0], True),  # the legacy failure
    ([0.1, 0.3, 0.5, 0.6], [0.3, 0.0, 0.01, 0.0], True),  # only the last 3 epochs count
    ([0.1, 0.3, 0.5], [0.0, 0.1, 0.4], False),  # validation follows
    ([0.1, 0.3], [0.0, 0.0], False),  # too early
    ([0.02, 0.03, 0.05], [0.0, 0.0, 0.0], False),  # nothing learnt at all
    ([0.5, 0.5, 0.5], [0.0, 0.0, 0.0], False),  # training does not rise
])
def test_watch_check(train, val, fires):
    watch = BatchNormWatch(("jaccard",))
    assert (watch.check(_rows(train, val)) is not None) == fires


def test_watch_warns_once_naming_batchnorm(caplog):
    watch = BatchNormWatch(("jaccard", "dice"))
    watch.set_model(_build("unet", bn_momentum=0.99))
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        watch.on_train_begin()
        for epoch, row in enumerate(_rows([0.1, 0.3, 0.5, 0.6, 0.7], [0.0] * 5)):
            watch.on_epoch_end(epoch, row)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0] == watch.warned
    assert "val_jaccard stayed below" in warnings[0]
    assert "BatchNorm moving statistics" in warnings[0] and "momentum up to 0.99" in warnings[0]
    assert "model.bn_momentum" in warnings[0] and "train.precise_bn_batches" in warnings[0]
    precise = BatchNormWatch(("jaccard",), precise_bn_batches=8)
    precise.set_model(watch.model)
    message = precise.check(_rows([0.1, 0.3, 0.5], [0.0] * 3))
    assert "precise BN re-estimates them on 8 training batches" in message


def test_watch_without_batchnorm_blames_the_data(caplog):
    watch = BatchNormWatch(("jaccard",))
    watch.set_model(_build("unet", batch_norm=False))
    for epoch, row in enumerate(_rows([0.1, 0.3, 0.5], [0.0] * 3)):
        watch.on_epoch_end(epoch, row)
    assert "no BatchNorm layers" in watch.warned and "validation data" in watch.warned


def test_watch_is_silent_on_a_healthy_run(caplog):
    watch = BatchNormWatch(("jaccard",))
    watch.set_model(_build("unet"))
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        for epoch, row in enumerate(_rows([0.1, 0.3, 0.5, 0.6], [0.05, 0.2, 0.45, 0.5])):
            watch.on_epoch_end(epoch, row)
    assert watch.warned is None and not caplog.records


def test_batchnorm_callbacks_from_the_config():
    from types import SimpleNamespace

    from dlsuite.config import parse_config

    registry = Registry.from_entry_points()

    def config(**train):
        return parse_config({"metrics": ["jaccard", "dice", "accuracy"], "train": train},
                            registry, check_paths=False).config

    data = SimpleNamespace(train=object(), val=object())
    precise, watch = batchnorm_callbacks(config(), registry, data)
    assert isinstance(precise, PreciseBN) and precise.n_batches == 8  # the default
    assert precise.dataset is data.train
    assert isinstance(watch, BatchNormWatch) and watch.precise_bn_batches == 8
    assert watch.metrics == ("jaccard", "dice", "accuracy")
    no_val = SimpleNamespace(train=data.train, val=None)
    [precise] = batchnorm_callbacks(config(precise_bn_batches=4), registry, no_val)
    assert isinstance(precise, PreciseBN) and precise.n_batches == 4
    [watch] = batchnorm_callbacks(config(precise_bn_batches=0), registry, data)
    assert isinstance(watch, BatchNormWatch)
    with pytest.raises(DlsuiteInputError, match=r"\$\.train\.precise_bn_batches"):
        batchnorm_callbacks(config(precise_bn_batches=-1), registry, data)


def test_training_run_checkpoints_precise_statistics(tmp_path):
    """``train.precise_bn_batches`` in a real training run: the checkpoint's moving statistics
    are the average over the first training batches under the final weights (the estimator's
    stream replays the seeded training stream), not the slow momentum-0.99 average."""
    import keras
    from test_training import tiny_config

    from dlsuite import pipeline
    from dlsuite.config import parse_config
    from dlsuite.data.example import write_example_videos
    from dlsuite.data.pipeline import build_datasets

    data = write_example_videos(tmp_path / "data", n_videos=2, frames=4, size=32,
                                seed=0)["videos"]
    raw = tiny_config(data, tmp_path / "run", train__epochs=1, train__precise_bn_batches=2,
                      model={"name": "unet", "n_filters": 4, "pools": 2, "batch_norm": True,
                             "bn_momentum": 0.99})
    loaded = parse_config(raw)
    pipeline.train(loaded, quiet=True)
    model = keras.models.load_model(tmp_path / "run" / "checkpoints" / "last.keras",
                                    compile=False)
    layers = batchnorm_layers(model)
    saved = [(layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy())
             for layer in layers]
    registry = Registry.from_entry_points()
    batches = build_datasets(loaded.config, registry, temporal=False).train.take(2)
    assert recompute_bn_statistics(model, batches) == 2
    for layer, (mean, variance) in zip(layers, saved):
        np.testing.assert_allclose(mean, layer.moving_mean.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(variance, layer.moving_variance.numpy(), rtol=1e-4,
                                   atol=1e-5)
    assert np.abs(saved[0][1] - 1).max() > 0.05  # far from the momentum-0.99 estimate
