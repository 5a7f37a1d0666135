"""Built-in losses (dlsuite_plugins.losses): formulas against independent NumPy references,
input checks, Keras serialization, plugin registration and the TensorFlow-free plugin
module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zlib

import attrs
import numpy as np
import pytest
from scipy import ndimage

from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry
from dlsuite_plugins.losses import plugin
from dlsuite_plugins.losses.catalog import HEAD_LOSSES, LOSSES
from dlsuite_plugins.losses.errors import LossInputError

keras = pytest.importorskip("keras")
from dlsuite_plugins.losses import losses as L  # noqa: E402  (imports TensorFlow)


# ---- NumPy references (float64, written from the formulas, not from our code) -------------
def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _fg_prob(y_pred):
    """Foreground probability: sigmoid (1 channel) or 1 - softmax background."""
    if y_pred.shape[-1] == 1:
        return _sigmoid(y_pred[..., 0])
    return 1.0 - np.exp(_log_softmax(y_pred))[..., 0]


def _bce(y, p):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _true_class_logp(y_pred, cls):
    if y_pred.shape[-1] == 1:
        p = _sigmoid(y_pred[..., 0])
        return np.where(cls == 1, np.log(p), np.log(1 - p))
    return np.take_along_axis(_log_softmax(y_pred), cls[..., None], -1)[..., 0]


def _class_w(cls, weights):
    return 1.0 if weights is None else np.asarray(weights)[cls]


def ref_sparse_cce(yt, yp, prm):
    cls = yt[..., 0].astype(int)
    return np.mean(-_true_class_logp(yp, cls) * _class_w(cls, prm["class_weights"]))


def ref_categorical_cce(yt, yp, prm):
    cls = yt[..., 0].astype(int)
    n = yp.shape[-1]
    s = prm["label_smoothing"]
    t = np.eye(n)[cls] * (1 - s) + s / n
    ce = -(t * _log_softmax(yp)).sum(-1)
    return np.mean(ce * _class_w(cls, prm["class_weights"]))


def ref_binary_cce(yt, yp, prm):
    y = (yt[..., 0] != 0).astype(float)
    ce = _bce(y, _fg_prob(yp))
    if prm["class_weights"] is not None:
        ce = ce * np.where(y == 1, prm["class_weights"][1], prm["class_weights"][0])
    return np.mean(ce)


def ref_weighted_bce(yt, yp, prm):
    cls = yt[..., 0].astype(int)
    return np.mean(yt[..., 1] * -_true_class_logp(yp, cls))


def _avgpool_same(y, k):
    """Mean over a k x k window of the valid pixels only (TF 'SAME' average pooling)."""
    out = np.zeros_like(y)
    r = k // 2
    b, h, w = y.shape
    for i in range(h):
        for j in range(w):
            win = y[:, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            out[:, i, j] = win.mean(axis=(1, 2))
    return out


def ref_weighted_bce_dice(yt, yp, prm):
    y = (yt[..., 0] != 0).astype(float)
    if yt.shape[-1] >= 2:
        w = yt[..., 1].astype(float)
    else:
        a = _avgpool_same(y, prm["pool_size"])
        border = ((a > 0.005) & (a < 0.995)).astype(float)
        w = np.ones_like(y)
        w0 = w.sum()
        w = w + prm["border_weight"] * border
        w = w * (w0 / w.sum())
    p = _fg_prob(yp)
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    lg = np.log(pc / (1 - pc))
    per_pixel = lg * (1 - y) + np.log(1 + np.exp(-np.abs(lg))) + np.maximum(-lg, 0)
    bce = (w * per_pixel).sum() / w.sum()
    s = prm["smooth"]
    w2 = w * w
    dice = 1 - (2 * (w2 * y * p).sum() + s) / ((w2 * y).sum() + (w2 * p).sum() + s)
    return bce + dice


def ref_multiple_output(yt, yp, prm):
    cls = yt[..., 0].astype(int)
    n = yp.shape[-1]
    t = np.eye(n)[cls]
    per_channel = _bce(t, _sigmoid(yp)).mean(axis=(0, 1, 2))
    cw = prm["category_weights"] or [1.0] * n
    return float((per_channel * np.asarray(cw)).sum())


def _gauss(size, sigma, total):
    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size] - c
    g = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
    return g / g.sum() * total


def ref_l1l2(yt, yp, prm):
    g = _gauss(prm["kernel_size"], prm["sigma"], prm["kernel_sum"])
    blur = lambda a: np.stack([ndimage.convolve(x, g, mode="constant") for x in a])  # noqa: E731
    spikes = yp[..., 0].astype(float)
    heat_true = yt[..., 0].astype(float)
    if prm["blur_target"]:
        heat_true = blur(heat_true)
    return np.mean((heat_true - blur(spikes)) ** 2) + prm["l1_weight"] * np.mean(np.abs(spikes))


def ref_dice(yt, yp, prm):
    y = (yt[..., 0] != 0).astype(float)
    p = _fg_prob(yp)
    s = prm["smooth"]
    return 1 - (2 * (y * p).sum() + s) / (y.sum() + p.sum() + s)


def ref_focal(yt, yp, prm):
    cls = yt[..., 0].astype(int)
    logp = _true_class_logp(yp, cls)
    loss = -((1 - np.exp(logp)) ** prm["gamma"]) * logp
    if prm["alpha"] is not None:
        loss = loss * np.where(cls != 0, prm["alpha"], 1 - prm["alpha"])
    return np.mean(loss)


REFERENCES = {
    "sparse_cce": ref_sparse_cce,
    "categorical_cce": ref_categorical_cce,
    "binary_cce": ref_binary_cce,
    "weighted_bce": ref_weighted_bce,
    "weighted_bce_dice": ref_weighted_bce_dice,
    "multiple_output": ref_multiple_output,
    "l1l2": ref_l1l2,
    "dice": ref_dice,
    "focal": ref_focal,
}

# (loss, n_classes, params overrides, y_true channels)
CASES = [
    ("sparse_cce", 2, {}, 1),
    ("sparse_cce", 3, {"class_weights": [0.5, 1.0, 3.0]}, 1),
    ("categorical_cce", 2, {}, 1),
    ("categorical_cce", 3, {"label_smoothing": 0.1, "class_weights": [1.0, 2.0, 0.5]}, 1),
    ("binary_cce", 1, {}, 1),
    ("binary_cce", 2, {"class_weights": [0.3, 2.0]}, 1),
    ("weighted_bce", 1, {}, 2),
    ("weighted_bce", 2, {}, 2),
    ("weighted_bce", 3, {}, 2),
    ("weighted_bce_dice", 1, {}, 1),
    ("weighted_bce_dice", 2, {}, 1),
    ("weighted_bce_dice", 3, {"pool_size": 5, "border_weight": 4.0, "smooth": 0.5}, 1),
    ("weighted_bce_dice", 2, {}, 2),
    ("multiple_output", 2, {"category_weights": [0.25, 1.5]}, 1),
    ("multiple_output", 3, {}, 1),
    ("l1l2", 1, {}, 1),
    ("l1l2", 1, {"blur_target": False, "kernel_size": 7, "sigma": 1.5, "l1_weight": 0.1}, 1),
    ("dice", 1, {}, 1),
    ("dice", 2, {"smooth": 0.0}, 1),
    ("dice", 3, {}, 1),
    ("focal", 1, {"alpha": 0.25}, 1),
    ("focal", 2, {}, 1),
    ("focal", 3, {"gamma": 1.0, "alpha": 0.75}, 1),
]


def _random_batch(rng, loss, n_classes, channels, shape=(2, 24, 20)):
    """Random logits and a target: blob-like class maps (so borders exist) + weights."""
    y_pred = rng.normal(scale=2.0, size=shape + (n_classes,)).astype(np.float32)
    n_target_classes = max(n_classes, 2)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(0, 2, 2))
    cls = np.digitize(smooth, np.quantile(smooth, np.linspace(0, 1, n_target_classes + 1)[1:-1]))
    if loss == "l1l2":
        cls = (rng.uniform(size=shape) > 0.97).astype(float)  # sparse keypoint spikes
    target = [cls.astype(np.float32)]
    if channels == 2:
        target.append(rng.uniform(0.2, 3.0, size=shape).astype(np.float32))
    return np.stack(target, -1), y_pred


@pytest.mark.parametrize("name,n_classes,overrides,channels", CASES,
                         ids=[f"{c[0]}-{c[1]}cls-{i}" for i, c in enumerate(CASES)])
def test_loss_matches_numpy_reference(name, n_classes, overrides, channels):
    rng = np.random.default_rng(zlib.crc32(f"{name}-{n_classes}-{channels}".encode()))
    params = LOSSES[name].params(**overrides)
    loss = L.make_loss(name, params, n_classes=n_classes)
    for _ in range(2):
        y_true, y_pred = _random_batch(rng, name, n_classes, channels)
        got = float(loss(y_true, y_pred))
        want = REFERENCES[name](y_true.astype(np.float64), y_pred.astype(np.float64),
                                attrs.asdict(params))
        assert np.isfinite(got)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,n_classes,overrides,channels", CASES,
                         ids=[f"{c[0]}-{c[1]}cls-{i}" for i, c in enumerate(CASES)])
def test_loss_and_gradient_finite_for_extreme_logits(name, n_classes, overrides, channels):
    import tensorflow as tf

    rng = np.random.default_rng(1)
    y_true, y_pred = _random_batch(rng, name, n_classes, channels)
    logits = tf.Variable(np.sign(y_pred) * 80.0)
    loss = L.make_loss(name, LOSSES[name].params(**overrides), n_classes=n_classes)
    with tf.GradientTape() as tape:
        value = loss(y_true, logits)
    grad = tape.gradient(value, logits)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(grad.numpy()))


def test_every_loss_has_a_reference_and_a_case():
    assert set(REFERENCES) == set(LOSSES) == set(L.LOSS_FUNCTIONS)
    assert {c[0] for c in CASES} == set(LOSSES)


@pytest.mark.parametrize("border_pixel,far_pixel", [
    ((8, 15), (15, 15)),   # foreground pixels: on the object border / inside the object
    ((6, 15), (1, 30)),    # background pixels: just outside the object / far from it
])
def test_weighted_bce_dice_border_weights_emphasise_borders(border_pixel, far_pixel):
    """Without a weight channel, a wrong prediction on a border pixel costs more than the same
    error far from any border (weights 3x before rescaling), on both sides of the border
    (the original suite weighted only foreground pixels)."""
    loss = L.make_loss("weighted_bce_dice", n_classes=1)
    y = np.zeros((1, 32, 32, 1), np.float32)
    y[0, 8:24, 8:24, 0] = 1
    good = np.where(y > 0, 6.0, -6.0).astype(np.float32)
    border_err, far_err = good.copy(), good.copy()
    border_err[(0, *border_pixel, 0)] *= -1
    far_err[(0, *far_pixel, 0)] *= -1
    base = float(loss(y, good))
    assert float(loss(y, border_err)) - base > 2.5 * (float(loss(y, far_err)) - base)


def test_binary_cce_two_channel_equals_sparse_cce():
    rng = np.random.default_rng(3)
    y_true, y_pred = _random_batch(rng, "binary_cce", 2, 1)
    a = float(L.make_loss("binary_cce", n_classes=2)(y_true, y_pred))
    b = float(L.make_loss("sparse_cce", n_classes=2)(y_true, y_pred))
    assert a == pytest.approx(b, rel=1e-5)


def test_l1l2_accepts_any_patch_size():
    """The original fixed the zeros tensor at 512x512; ours works for any size."""
    rng = np.random.default_rng(4)
    loss = L.make_loss("l1l2", n_classes=1)
    for shape in [(1, 33, 47), (3, 64, 64)]:
        y_true, y_pred = _random_batch(rng, "l1l2", 1, 1, shape=shape)
        assert np.isfinite(float(loss(y_true, y_pred)))


# ---- input checks ------------------------------------------------------------------------
def test_weighted_bce_without_weight_channel_names_loss_and_shape():
    loss = L.make_loss("weighted_bce", n_classes=2)
    with pytest.raises(LossInputError) as info:
        loss(np.zeros((2, 8, 8, 1), np.float32), np.zeros((2, 8, 8, 2), np.float32))
    msg = str(info.value)
    assert "loss 'weighted_bce' needs y_true with 2 channels (class, weight)" in msg
    assert "(2, 8, 8, 1)" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, DlsuiteInputError)


@pytest.mark.parametrize("y_true_shape,y_pred_shape,fragment", [
    ((2, 8, 8, 1), (2, 8, 8, 3), "built for n_classes=2 but y_pred has 3 channels"),
    ((2, 8, 8), (2, 8, 8, 2), "needs y_true of shape (batch, height, width, channels)"),
    ((2, 8, 8, 1), (2, 8, 2), "needs y_pred logits of shape (batch, height, width, 2)"),
    ((2, 8, 8, 1), (2, 8, 16, 2), "differ in width"),
    ((1, 8, 8, 1), (2, 8, 8, 2), "differ in batch"),
])
def test_shape_errors_are_clear(y_true_shape, y_pred_shape, fragment):
    loss = L.make_loss("sparse_cce", n_classes=2)
    with pytest.raises(LossInputError, match="loss 'sparse_cce'") as info:
        loss(np.zeros(y_true_shape, np.float32), np.zeros(y_pred_shape, np.float32))
    assert fragment in str(info.value)


def test_shape_error_surfaces_from_keras_fit():
    """Inside model.fit (graph tracing) the same clear error reaches the caller."""
    model = _tiny_model(2)
    model.compile(optimizer="adam", loss=L.make_loss("weighted_bce", n_classes=2))
    x = np.zeros((2, 16, 16, 1), np.float32)
    with pytest.raises(LossInputError, match="needs y_true with 2 channels"):
        model.fit(x, np.zeros((2, 16, 16, 1), np.float32), epochs=1, verbose=0)


@pytest.mark.parametrize("name,n_classes,overrides,fragment", [
    ("sparse_cce", 1, {}, "needs a model with n_classes >= 2; got n_classes=1"),
    ("binary_cce", 3, {}, "needs a model with n_classes 1..2"),
    ("l1l2", 2, {}, "needs a model with n_classes 1;"),
    ("sparse_cce", 3, {"class_weights": [1.0, 2.0]}, "class_weights must have 3 values"),
    ("binary_cce", 1, {"class_weights": [1.0, 2.0, 3.0]}, "class_weights must have 2 values"),
    ("multiple_output", 2, {"category_weights": [1.0]}, "category_weights must have 2 values"),
    ("categorical_cce", 2, {"label_smoothing": 1.5}, "invalid label_smoothing=1.5"),
    ("focal", 2, {"alpha": 2.0}, "invalid alpha=2.0"),
    ("l1l2", 1, {"kernel_size": 14}, "invalid kernel_size=14"),
])
def test_bad_parameters_fail_at_build_time(name, n_classes, overrides, fragment):
    with attrs.validators.disabled():  # the builder checks again what the params refuse
        params = LOSSES[name].params(**overrides)
    with pytest.raises(LossInputError, match=f"loss '{name}'") as info:
        L.make_loss(name, params, n_classes=n_classes)
    assert fragment in str(info.value)


@pytest.mark.parametrize("name,overrides,fragment", [
    ("categorical_cce", {"label_smoothing": 1.5}, r"label_smoothing must be in \[0, 1\), got 1.5"),
    ("focal", {"alpha": 2.0}, r"alpha must be in \[0, 1\], got 2"),
    ("l1l2", {"kernel_size": 14}, "kernel_size must be odd, got 14"),
    ("sparse_cce", {"class_weights": [1.0, -2.0]}, r"class_weights\[1\] must be >= 0, got -2"),
])
def test_bad_parameters_are_refused_when_the_params_are_made(name, overrides, fragment):
    with pytest.raises(DlsuiteInputError, match=fragment):
        LOSSES[name].params(**overrides)
    with pytest.raises(DlsuiteInputError, match=f"loss '{name}'"):  # also from a dict
        L.make_loss(name, overrides, n_classes=1 if name == "l1l2" else 2)


def test_unknown_loss_and_unknown_parameter():
    with pytest.raises(LossInputError, match="unknown loss 'nope'"):
        L.make_loss("nope", n_classes=2)
    with pytest.raises(LossInputError, match="loss 'dice': bad parameters"):
        L.make_loss("dice", {"smoth": 1.0}, n_classes=2)


# ---- Keras integration -------------------------------------------------------------------
def _tiny_model(n_classes):
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    out = keras.layers.Conv2D(n_classes, 1)(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_trains_saves_and_reloads_without_custom_objects(name, tmp_path):
    """Compile a tiny model with the loss, fit one step (graph mode), save .keras, reload with
    safe_mode=True and no custom_objects: the reloaded loss has the same config and value."""
    info = LOSSES[name]
    n_classes = {"l1l2": 1, "binary_cce": 2}.get(name, 3 if info.accepts(3) else 2)
    channels = len(info.target_channels)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 16, 16, 1)).astype(np.float32)
    y_true, _ = _random_batch(rng, name, n_classes, channels, shape=(2, 16, 16))
    params = info.params()
    model = _tiny_model(n_classes)
    model.compile(optimizer="adam", loss=L.make_loss(name, params, n_classes=n_classes))
    hist = model.fit(x, y_true, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.loss, L.SegmentationLoss)
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.loss.params == params
    pred = model.predict(x, verbose=0)
    want = float(model.loss(y_true, pred))
    assert float(loaded.loss(y_true, pred)) == pytest.approx(want, rel=1e-6)
    assert loaded.evaluate(x, y_true, verbose=0) == pytest.approx(
        model.evaluate(x, y_true, verbose=0), rel=1e-5)


# ---- plugin registration -----------------------------------------------------------------
def test_plugin_declares_every_loss_with_params_and_channels():
    reg = Registry.from_plugins([plugin])
    assert not reg.broken
    names = {e.name for e in reg.entries("losses")}
    assert names == set(LOSSES) | set(HEAD_LOSSES)
    for entry in reg.entries("losses"):
        spec = entry.spec
        assert attrs.has(spec.params) and spec.params.__attrs_attrs__ is not None
        for field in attrs.fields(spec.params):
            assert field.metadata.get("help"), f"{spec.name}.{field.name} has no help"
        assert spec.target_channels[0] == "class"
        assert spec.description
        factory = entry.load()
        n = 1 if spec.name == "l1l2" else 2
        if spec.multi_head:
            from dlsuite import HeadSpec

            heads = (HeadSpec("class", 2), HeadSpec("distance", 1, "sigmoid", "regression"))
            built = factory(spec.params(), n_classes=3, heads=heads,
                            target_channels=("class", "distance"))
        else:
            assert spec.name in LOSSES
            built = factory(spec.params(), n_classes=n)
        assert isinstance(built, keras.losses.Loss)
    assert reg.resolve("losses", "weighted_bce").spec.target_channels == ("class", "weight")


def test_builtin_losses_found_through_entry_points():
    reg = Registry.from_entry_points()
    assert set(LOSSES) <= {e.name for e in reg.entries("losses")}


def test_plugin_module_does_not_import_tensorflow():
    code = textwrap.dedent("""
        import sys
        import dlsuite_plugins.losses.plugin as plugin
        from dlsuite_plugins.losses import params, catalog, errors
        specs = plugin.dlsuite_losses() + plugin.dlsuite_metrics()
        for s in specs:
            s.params()
        bad = [m for m in ("tensorflow", "keras") if m in sys.modules]
        assert not bad, bad
        print(len(specs))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == len(LOSSES) + len(HEAD_LOSSES) + 3


@pytest.mark.slow  # ~12 s: a second Python process importing TensorFlow
def test_fresh_process_reloads_after_loading_registry_factories(tmp_path):
    """The recipe for loaders: in a new process, importing the factories of the registered
    losses/metrics (entry.load()) registers the Keras classes, then the .keras file compiled
    with our loss and metrics reloads with safe_mode=True and no custom_objects."""
    from dlsuite_plugins.losses.metrics import build_jaccard

    model = _tiny_model(2)
    model.compile(optimizer="adam", loss=L.make_loss("weighted_bce_dice", n_classes=2),
                  metrics=[build_jaccard(None, n_classes=2)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16, 16, 1)).astype(np.float32)
    y_true, _ = _random_batch(rng, "weighted_bce_dice", 2, 1, shape=(2, 16, 16))
    model.fit(x, y_true, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y_true)
    want = model.evaluate(x, y_true, return_dict=True, verbose=0)
    code = textwrap.dedent(f"""
        import json, numpy as np
        from dlsuite.registry import Registry
        reg = Registry.from_entry_points()
        for kind in ("losses", "metrics"):
            for entry in reg.entries(kind):
                if entry.plugin == "dlsuite.losses":
                    entry.load()
        import keras
        m = keras.saving.load_model({str(path)!r}, safe_mode=True)
        x, y = np.load({str(tmp_path / 'x.npy')!r}), np.load({str(tmp_path / 'y.npy')!r})
        print(json.dumps(m.evaluate(x, y, return_dict=True, verbose=0)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert got["jaccard"] == pytest.approx(want["jaccard"], abs=1e-6)


# The dlsuite.testing contract runs on every built-in loss in tests/test_contracts_builtin.py.
