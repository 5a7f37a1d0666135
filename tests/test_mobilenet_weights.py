"""MobileNetV2 encoder weights (imagenet offline, local files) and encoder freezing (A3, A6)."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from dlsuite.errors import DlsuiteInputError
from dlsuite.keras_helpers import find_encoders, set_encoder_trainable
from dlsuite_plugins.architectures.params import MobileUNetLSTMParams, MobileUNetParams

TINY = {"n_filters": 4, "pools": 2, "alpha": 0.35}


def _build2d(**overrides):
    from dlsuite_plugins.architectures.mobilenet import build_mobilenet_mobileunet

    return build_mobilenet_mobileunet(MobileUNetParams(**{**TINY, **overrides}), n_classes=2,
                                      input_shape=(32, 32, 1))


def _online(host="storage.googleapis.com", port=443, timeout=2.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _assert_same(a_list, b_list):
    assert len(a_list) == len(b_list) and a_list
    for a, b in zip(a_list, b_list):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_imagenet_offline_fails_fast_with_one_actionable_message():
    if _online():
        pytest.skip("online: Keras would download the ImageNet weights")
    start = time.monotonic()
    _build2d()
    build_seconds = time.monotonic() - start  # the machine's current speed (it may be loaded)
    start = time.monotonic()
    with pytest.raises(DlsuiteInputError) as info:
        _build2d(encoder_weights="imagenet")
    assert time.monotonic() - start < 2 * build_seconds + 10  # no hang on the network
    message = str(info.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5" in message
    assert "encoder_weights" in message and "local path" in message


def test_encoder_weights_file_saved_from_an_encoder_loads(tmp_path):
    """A .weights.h5 of a randomly initialised encoder (same alpha, pools) loads through the
    params; the fresh model's encoder then holds exactly the saved arrays."""
    source = _build2d().get_layer("encoder")
    path = tmp_path / "encoder.weights.h5"
    source.save_weights(path)
    model = _build2d(encoder_weights=str(path))
    _assert_same(model.get_layer("encoder").get_weights(), source.get_weights())
    fresh = _build2d()
    assert not np.array_equal(fresh.get_layer("encoder").get_weights()[0], source.get_weights()[0])


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_full_mobilenet_weights_file_loads(tmp_path, suffix):
    """A whole MobileNetV2 base (the layout of Keras' ImageNet ``..._no_top.h5`` file, here
    written by Keras as legacy .h5 or as .weights.h5) loads into an encoder cut at any pools."""
    import keras

    base = keras.applications.MobileNetV2(input_shape=(None, None, 3), include_top=False,
                                          weights=None, alpha=0.35)
    path = tmp_path / f"mobilenet{suffix}"
    if suffix == ".h5":
        base.save(path)  # legacy HDF5 (weights under model_weights/)
    else:
        base.save_weights(path)
    encoder = _build2d(encoder_weights=str(path), pools=3).get_layer("encoder")
    for layer in ("Conv1", "block_2_depthwise", "block_5_project_BN"):
        _assert_same(encoder.get_layer(layer).get_weights(), base.get_layer(layer).get_weights())


def test_bad_weights_files_raise_input_errors(tmp_path):
    with pytest.raises(DlsuiteInputError, match="does not exist"):
        _build2d(encoder_weights=str(tmp_path / "missing.weights.h5"))
    path = tmp_path / "pools2.weights.h5"
    _build2d().get_layer("encoder").save_weights(path)
    with pytest.raises(DlsuiteInputError, match=r"fits neither .*pools=3"):
        _build2d(encoder_weights=str(path), pools=3)


def _train_step(model, seed):
    import keras

    rng = np.random.default_rng(seed)
    x = rng.random((2, 32, 32, 1), dtype=np.float32)
    y = rng.integers(0, 2, (2, 32, 32, 1)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=True)  # one step: tracing would cost ~8 s
    model.train_on_batch(x, y)


def _arrays(layer):
    return [np.array(w.numpy()) for w in layer.weights]  # trainable and BN moving statistics


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_train_decoder_only_then_unfreeze_two_stage_protocol():
    model = _build2d(train_decoder_only=True)
    encoder = model.get_layer("encoder")
    decoder = [model.get_layer("last_1_sepconv"), model.get_layer("slog")]
    assert not encoder.trainable
    enc0, dec0 = _arrays(encoder), [_arrays(layer) for layer in decoder]
    _train_step(model, 0)
    _assert_same(_arrays(encoder), enc0)  # kernels and BN statistics frozen
    assert all(_changed(before, _arrays(layer)) for before, layer in zip(dec0, decoder))

    assert set_encoder_trainable(model, True) == 1
    assert encoder.trainable
    enc1 = _arrays(encoder)
    _train_step(model, 1)  # recompiled inside
    assert _changed(enc1, _arrays(encoder))


def test_set_encoder_trainable_reaches_inside_time_distributed():
    from dlsuite_plugins.architectures.mobilenet import build_mobilenet_mobileunet_lstm
    from dlsuite.keras_helpers import summarize

    params = MobileUNetLSTMParams(**TINY, time_windows=2)
    model = build_mobilenet_mobileunet_lstm(params, n_classes=2, input_shape=(2, 32, 32, 1))
    (encoder,) = find_encoders(model)
    assert encoder is model.get_layer("frames").layer.get_layer("encoder")
    trainable = summarize(model)["trainable"]
    encoder_trainable = sum(int(np.prod(w.shape)) for w in encoder.trainable_weights)
    assert encoder_trainable > 0
    assert set_encoder_trainable(model, False) == 1
    assert not encoder.trainable
    frozen = summarize(model)
    assert frozen["total"] == model.count_params()
    assert frozen["trainable"] == trainable - encoder_trainable
    assert set_encoder_trainable(model, True) == 1
    assert summarize(model)["trainable"] == trainable


def test_set_encoder_trainable_without_encoder_returns_zero():
    from dlsuite_plugins.architectures.params import UNetParams
    from dlsuite_plugins.architectures.unet import build_unet

    model = build_unet(UNetParams(n_filters=4, pools=2), n_classes=2)
    assert set_encoder_trainable(model, False) == 0
    assert all(layer.trainable for layer in model.layers)


def test_random_encoder_init_is_noted_in_the_log(caplog):
    with caplog.at_level("INFO", logger="dlsuite_plugins.architectures.mobilenet"):
        _build2d()
    assert any("randomly initialised" in r.getMessage() for r in caplog.records)
