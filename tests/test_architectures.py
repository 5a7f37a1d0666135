"""Built-in architectures: plugin specs, shapes, receptive fields, .keras round trips, errors."""

from __future__ import annotations

import subprocess
import sys

import attrs
import numpy as np
import pytest

from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry
from dlsuite_plugins.architectures import plugin

NAMES_2D = [
    "unet",
    "categorical_unet",
    "categorical_unet_transpose",
    "categorical_unet_fc",
    "categorical_unet_fc_dil",
    "mobilenet_mobileunet",
]
NAMES_TEMPORAL = ["mobilenet_mobileunet_lstm", "unet_lstm"]
ALL_NAMES = NAMES_2D + NAMES_TEMPORAL
T = 3  # tiny time window for tests
TINY = {name: {"n_filters": 4, "pools": 2} for name in ALL_NAMES}
for _name in NAMES_TEMPORAL:
    TINY[_name]["time_windows"] = T


def _spec(name):
    return Registry.from_plugins([plugin]).resolve("architectures", name).spec


def _build(name, n_classes=2, size=32, **overrides):
    spec = _spec(name)
    params = spec.params(**{**TINY[name], **overrides})
    shape = (T, size, size, 1) if spec.temporal else (size, size, 1)
    return spec.load()(params, n_classes=n_classes, input_shape=shape), params, spec


def _input(spec, size=32, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch, T, size, size, 1) if spec.temporal else (batch, size, size, 1)
    return rng.random(shape, dtype=np.float32)


def test_plugin_declares_every_architecture_with_defaults():
    specs = {s.name: s for s in plugin.dlsuite_architectures()}
    assert sorted(specs) == sorted(ALL_NAMES)
    for name, spec in specs.items():
        params = spec.params()  # defaults are complete
        assert attrs.has(spec.params)
        assert all(f.metadata.get("help") for f in attrs.fields(spec.params)), name
        assert spec.temporal == (name in NAMES_TEMPORAL)
        assert spec.supports_dynamic_size == (name not in NAMES_TEMPORAL)
        assert spec.size_multiple(params) == 2**params.pools
        assert spec.receptive_field(params) > 2**params.pools
        assert callable(spec.load())
        if spec.temporal:
            assert params.time_windows == 5
    mob = specs["mobilenet_mobileunet"].params()
    assert (mob.n_filters, mob.pools, mob.alpha, mob.encoder_weights) == (32, 5, 0.35, None)


def test_plugin_modules_do_not_import_tensorflow():
    code = (
        "import sys, dlsuite_plugins.architectures.plugin as p, dlsuite.keras_helpers\n"
        "specs = p.dlsuite_architectures()\n"
        "[s.receptive_field(s.params()) for s in specs]\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# the generic contract (dlsuite.testing.ArchitectureContract) runs on every architecture in
# tests/test_architecture_contract_all.py


def test_outputs_are_raw_logits():
    import keras

    keras.utils.set_random_seed(0)  # unseeded, a rare draw gave no negative logit (CI, once)
    model, _, spec = _build("categorical_unet_fc")
    y = model.predict(_input(spec), verbose=0)
    assert y.min() < 0 and np.ptp(y) > 0  # no softmax/sigmoid head, not a constant map


@pytest.mark.parametrize("name", NAMES_2D)
def test_2d_models_accept_any_multiple_size_when_dynamic(name):
    spec = _spec(name)
    model = spec.load()(spec.params(**TINY[name]), n_classes=2, input_shape=None)
    assert model.input_shape == (None, None, None, 1)
    for h, w in [(32, 32), (16, 48)]:
        assert model.predict(np.zeros((1, h, w, 1), np.float32), verbose=0).shape == (1, h, w, 2)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_keras_file_round_trip_in_safe_mode(name, tmp_path):
    import keras

    model, _, spec = _build(name, n_classes=3)
    x = _input(spec, seed=1)
    before = model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)
    assert loaded.count_params() == model.count_params()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_receptive_field_bounds_the_measured_gradient_support(name):
    """The declared receptive field is an upper bound of, and close to, the input region that
    influences one output pixel (linear activations so no gradient is cut by ReLU)."""
    import tensorflow as tf

    size = 96
    model, params, spec = _build(name, size=size, activation="linear")
    x = tf.Variable(_input(spec, size=size, batch=1))
    with tf.GradientTape() as tape:
        out = model(x, training=False)
        target = tf.reduce_sum(out[0, size // 2, size // 2, :])
    grad = np.abs(tape.gradient(target, x).numpy()).reshape(-1, size, size).max(axis=0)
    rows = np.flatnonzero(grad.max(axis=1) > 0)
    cols = np.flatnonzero(grad.max(axis=0) > 0)
    c = size // 2  # centred: twice the farthest influencing pixel on either side, plus one
    measured = 2 * max(c - rows.min(), rows.max() - c, c - cols.min(), cols.max() - c) + 1
    declared = spec.receptive_field(params)
    assert declared < size
    assert 0.9 * declared <= measured <= declared


def test_receptive_field_grows_with_depth_dilation_and_window():
    specs = {s.name: s for s in plugin.dlsuite_architectures()}
    unet = specs["unet"]
    # 3x3 x2, pool, 3x3 x2, up, 3x3 x2: up to 9 px on either side, by alignment to the pool grid
    assert unet.receptive_field(unet.params(pools=1, n_filters=4)) == 19
    assert unet.receptive_field(unet.params(pools=3)) > unet.receptive_field(unet.params(pools=2))
    assert unet.receptive_field(unet.params(dilation_rate=2)) > unet.receptive_field(unet.params())
    lstm = specs["mobilenet_mobileunet_lstm"]
    assert lstm.receptive_field(lstm.params(time_windows=7)) >= lstm.receptive_field(lstm.params()) + 4


@pytest.mark.parametrize("name", ALL_NAMES)
def test_size_not_multiple_of_2_pow_pools_is_rejected(name):
    spec = _spec(name)
    params = spec.params(**TINY[name])
    shape = (T, 30, 32, 1) if spec.temporal else (30, 32, 1)
    with pytest.raises(DlsuiteInputError, match=r"height 30 .*multiple of 4"):
        spec.load()(params, n_classes=2, input_shape=shape)


@pytest.mark.parametrize("name", NAMES_TEMPORAL)
def test_convlstm_models_need_static_size_and_matching_window(name):
    spec = _spec(name)
    build, params = spec.load(), spec.params(**TINY[name])
    with pytest.raises(DlsuiteInputError, match="static"):
        build(params, n_classes=2, input_shape=None)
    with pytest.raises(DlsuiteInputError, match="static H and W"):
        build(params, n_classes=2, input_shape=(T, None, None, 1))
    with pytest.raises(DlsuiteInputError, match=f"T=4 frames but time_windows={T}"):
        build(params, n_classes=2, input_shape=(4, 32, 32, 1))
    model = build(params, n_classes=2, input_shape=(None, 32, 32, 1))  # T defaults to the window
    assert model.input_shape == (None, T, 32, 32, 1)


@pytest.mark.parametrize(
    "name, overrides, refused, built",
    [
        ("unet", {"pools": 0}, r"pools must be in \[1, 8\], got 0", "pools must be an integer in"),
        ("categorical_unet_fc", {"dropout": 1.5}, r"dropout must be in \[0, 1\), got 1.5",
         "dropout must be a number in"),
        ("mobilenet_mobileunet", {"pools": 6}, r"pools must be in \[1, 5\], got 6",
         r"pools must be an integer in \[1, 5\]"),
        ("mobilenet_mobileunet", {"alpha": 0.6}, "alpha must be one of .*got 0.6; closest: 0.5",
         "alpha must be one of"),
        ("unet_lstm", {"n_filters": 0}, "n_filters must be > 0, got 0",
         "n_filters must be an integer"),
    ],
)
def test_bad_parameters_raise_a_message_naming_the_key(name, overrides, refused, built):
    spec = _spec(name)
    with pytest.raises(DlsuiteInputError, match=refused):
        spec.params(**{**TINY[name], **overrides})
    # the builders check again (parameters made with validators off)
    with attrs.validators.disabled():
        params = spec.params(**{**TINY[name], **overrides})
    shape = (T, 32, 32, 1) if spec.temporal else None
    with pytest.raises(DlsuiteInputError, match=built) as info:
        spec.load()(params, n_classes=2, input_shape=shape)
    assert name in str(info.value)


def test_mobilenet_feeds_the_encoder_symmetric_rgb():
    """x in [0, 1] reaches the encoder as 3 identical channels of 2x-1 (MobileNetV2's range)."""
    import keras

    model, _, _ = _build("mobilenet_mobileunet")
    encoder = model.get_layer("encoder")
    assert isinstance(encoder, keras.Model) and encoder.input_shape == (None, None, None, 3)
    probe = keras.Model(model.input, model.get_layer("grey_to_rgb").output)
    x = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(1, 32, 32, 1)
    rgb = probe.predict(x, verbose=0)
    np.testing.assert_allclose(rgb, np.repeat(2 * x - 1, 3, axis=-1), atol=1e-6)


def test_decoder_dropout_is_only_in_up_blocks():
    model, _, _ = _build("mobilenet_mobileunet", pools=3, dropout=0.2)
    drops = [layer.name for layer in model.layers if layer.__class__.__name__ == "Dropout"]
    assert drops and all(name.startswith("up") for name in drops)


@pytest.mark.parametrize("name", NAMES_2D + ["mobilenet_mobileunet_lstm"])
def test_tips_head_adds_a_named_heatmap_output(name, tmp_path):
    import keras

    model, _, spec = _build(name, tips=True)
    assert list(model.output_names) == ["segmentation", "tips"]
    seg, tips = model.predict(_input(spec), verbose=0)
    assert seg.shape == (2, 32, 32, 2) and tips.shape == (2, 32, 32, 1)
    plain, _, _ = _build(name)
    assert model.count_params() > plain.count_params()
    if name == "unet":
        path = tmp_path / "tips.keras"
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        assert list(loaded.output_names) == ["segmentation", "tips"]


@pytest.mark.parametrize("mode", ["mean", "last"])
def test_temporal_reduce(mode):
    from dlsuite_plugins.architectures.layers import TemporalReduce

    x = np.arange(2 * 3 * 2 * 2 * 1, dtype=np.float32).reshape(2, 3, 2, 2, 1)
    y = np.asarray(TemporalReduce(mode)(x))
    expected = x.mean(axis=1) if mode == "mean" else x[:, -1]
    np.testing.assert_allclose(y, expected)


def test_unet_lstm_last_frame_mode_depends_on_past_frames():
    """With time_reduction='last' the output still depends on earlier frames (recurrence)."""
    model, _, spec = _build("unet_lstm", time_reduction="last")
    x = _input(spec, batch=1)
    changed = x.copy()
    changed[:, 0] += 1.0
    assert not np.allclose(model.predict(x, verbose=0), model.predict(changed, verbose=0))


def test_mobilenet_lstm_predicts_last_frame_from_past_frames():
    model, _, spec = _build("mobilenet_mobileunet_lstm")
    x = _input(spec, batch=1)
    changed = x.copy()
    changed[:, 0] += 0.5
    assert not np.allclose(model.predict(x, verbose=0), model.predict(changed, verbose=0))


def test_summarize_counts_and_shapes():
    from dlsuite.keras_helpers import summarize

    model, _, _ = _build("mobilenet_mobileunet_lstm", train_decoder_only=True)
    info = summarize(model)
    assert info["total"] == model.count_params()
    assert info["trainable"] + info["non_trainable"] == info["total"]
    encoder = model.get_layer("frames").layer.get_layer("encoder")
    assert info["non_trainable"] >= encoder.count_params() > 0
    assert info["input_shape"] == [None, T, 32, 32, 1]
    assert info["output_shape"] == [None, 32, 32, 2]
    tips_model, _, _ = _build("unet", tips=True)
    assert summarize(tips_model)["output_shape"] == [[None, 32, 32, 2], [None, 32, 32, 1]]


@pytest.mark.parametrize("name", ["unet", "categorical_unet_fc", "mobilenet_mobileunet_lstm"])
def test_infer_size_multiple_matches_the_declared_one(name):
    """The stride walk of a built model (pooling, strided convs, a TimeDistributed encoder)
    agrees with the spec's ``size_multiple``; transposed convs and up-sampling count 1."""
    from dlsuite.keras_helpers import infer_size_multiple

    model, params, spec = _build(name)
    assert infer_size_multiple(model) == spec.size_multiple(params) == 4


@pytest.mark.parametrize("name", NAMES_TEMPORAL)
def test_temporal_weights_transfer_to_another_input_size(name):
    """ConvLSTM models are built per size: weights trained at one size fit a rebuild at the
    inference size (set_weights), and the rebuilt model then computes what the original does."""
    small, _, spec = _build(name, size=32)
    large, _, _ = _build(name, size=64)
    other, _, _ = _build(name, size=64)
    x = _input(spec, size=64, batch=1)
    assert not np.allclose(large.predict(x, verbose=0), other.predict(x, verbose=0))
    large.set_weights(small.get_weights())
    other.set_weights(small.get_weights())
    np.testing.assert_allclose(large.predict(x, verbose=0), other.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_keras_file_loads_in_a_fresh_process_after_importing_the_layers(tmp_path):
    """A saved unet_lstm (custom TemporalReduce layer) loads in safe mode in a new process that
    only imports ``dlsuite_plugins.architectures.layers`` (no custom_objects)."""
    model, _, spec = _build("unet_lstm")
    x = _input(spec, batch=1)
    path = tmp_path / "m.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    code = (
        "import numpy as np, keras, dlsuite_plugins.architectures.layers, sys\n"
        f"m = keras.models.load_model({str(path)!r}, safe_mode=True)\n"
        f"y = m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)\n"
        f"np.testing.assert_allclose(y, np.load({str(tmp_path / 'y.npy')!r}), rtol=1e-5, atol=1e-6)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize(
    "name, expected",
    [
        # the original categorical_unet: d,d,2d,2d | 3d | 2d,2d,d,d after each block's first conv
        ("categorical_unet", {"enc0": 1, "enc1": 1, "enc2": 2, "enc3": 2, "bottleneck": 3,
                              "dec3": 2, "dec2": 2, "dec1": 1, "dec0": 1}),
        # the original transpose/fc variants: d*(p+1), bottleneck d*pools
        ("categorical_unet_transpose", {"enc0": 1, "enc1": 2, "enc2": 3, "enc3": 4,
                                        "bottleneck": 4, "dec3": 4, "dec2": 3, "dec1": 2, "dec0": 1}),
        ("unet", {f"{b}{p}": 1 for b in ("enc", "dec") for p in range(4)} | {"bottleneck": 1}),
    ],
)
def test_dropout_schedules(name, expected):
    spec = _spec(name)
    model = spec.load()(spec.params(n_filters=4, pools=4, dropout=0.1), n_classes=2)
    rates = {layer.name[: -len("_drop")]: layer.rate for layer in model.layers
             if layer.name.endswith("_drop")}
    assert rates == pytest.approx({k: 0.1 * v for k, v in expected.items()})
    if name == "categorical_unet":  # dropout sits between the two convolutions of a block
        names = [layer.name for layer in model.layers]
        assert names.index("enc0_1_act") < names.index("enc0_drop") < names.index("enc0_2_conv")


def test_dropout_rates_are_capped():
    spec = _spec("categorical_unet_transpose")
    model = spec.load()(spec.params(n_filters=4, pools=4, dropout=0.3), n_classes=2)
    assert max(layer.rate for layer in model.layers if layer.name.endswith("_drop")) == 0.5
