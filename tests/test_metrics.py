"""Built-in metrics (dlsuite_plugins.losses.metrics): foreground Jaccard / Dice and pixel
accuracy computed from logits, accumulated over batches, against a NumPy reference; the
cases the original suite got wrong; Keras naming and serialization."""

from __future__ import annotations

import numpy as np
import pytest

from dlsuite.registry import Registry
from dlsuite_plugins.losses import plugin
from dlsuite_plugins.losses.catalog import METRICS
from dlsuite_plugins.losses.errors import LossInputError

keras = pytest.importorskip("keras")
from dlsuite_plugins.losses import metrics as M  # noqa: E402  (imports TensorFlow)

FACTORIES = {"jaccard": M.build_jaccard, "dice": M.build_dice, "accuracy": M.build_accuracy}


def _metric(name, n_classes):
    return FACTORIES[name](METRICS[name].params(), n_classes=n_classes)


# ---- NumPy reference ---------------------------------------------------------------------
def _np_pred_class(y_pred):
    if y_pred.shape[-1] == 1:
        return (y_pred[..., 0] > 0).astype(int)
    return np.argmax(y_pred, axis=-1)


def ref_metric(name, batches):
    """``batches``: list of (y_true, y_pred); micro-averaged over all of them."""
    truth = np.concatenate([b[0][..., 0].ravel().astype(int) for b in batches])
    pred = np.concatenate([_np_pred_class(b[1]).ravel() for b in batches])
    if name == "accuracy":
        return float(np.mean(truth == pred))
    t, p = truth != 0, pred != 0
    tp, fp, fn = np.sum(t & p), np.sum(~t & p), np.sum(t & ~p)
    if tp + fp + fn == 0:
        return 1.0
    if name == "jaccard":
        return tp / (tp + fp + fn)
    return 2 * tp / (2 * tp + fp + fn)


def _batch(rng, n_classes, shape=(3, 12, 10)):
    y_pred = rng.normal(scale=1.5, size=shape + (n_classes,)).astype(np.float32)
    cls = rng.integers(0, max(n_classes, 2), size=shape)
    return cls[..., None].astype(np.float32), y_pred


def _two_class(bg, fg, truth_fg=True, shape=(1, 4, 4)):
    y_pred = np.zeros(shape + (2,), np.float32)
    y_pred[..., 0], y_pred[..., 1] = bg, fg
    y_true = np.full(shape + (1,), 1.0 if truth_fg else 0.0, np.float32)
    return y_true, y_pred


# ---- the original's bugs -----------------------------------------------------------------
@pytest.mark.parametrize("bg,fg", [(0.0, 0.9), (1.2, 1.9), (-3.0, -2.5)])
@pytest.mark.parametrize("name", ["jaccard", "dice"])
def test_small_foreground_margin_counts_as_foreground(name, bg, fg):
    """The original cast logits to int32 before argmax, so these gave J = 0."""
    m = _metric(name, 2)
    m.update_state(*_two_class(bg, fg))
    assert float(m.result()) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["jaccard", "dice"])
def test_background_winning_by_small_margin_is_background(name):
    m = _metric(name, 2)
    m.update_state(*_two_class(0.9, 0.0))   # truth foreground, predicted background
    assert float(m.result()) == pytest.approx(0.0)


def test_tie_goes_to_background():
    m = _metric("jaccard", 2)
    m.update_state(*_two_class(0.5, 0.5))
    assert float(m.result()) == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["jaccard", "dice"])
@pytest.mark.parametrize("n_classes", [1, 2, 3])
def test_empty_truth_and_prediction_scores_one(name, n_classes):
    """Nothing to find and nothing predicted is a perfect result (the original returned 0)."""
    m = _metric(name, n_classes)
    y_pred = np.full((2, 8, 8, n_classes), -1.0, np.float32)
    if n_classes > 1:
        y_pred[..., 0] = 2.0
    m.update_state(np.zeros((2, 8, 8, 1), np.float32), y_pred)
    assert float(m.result()) == 1.0


# ---- 1-, 2-, 3-class against the reference, over several batches -------------------------
@pytest.mark.parametrize("name", sorted(METRICS))
@pytest.mark.parametrize("n_classes", [1, 2, 3])
def test_metric_accumulates_over_batches_like_numpy(name, n_classes):
    rng = np.random.default_rng(10 * n_classes + len(name))
    m = _metric(name, n_classes)
    batches = [_batch(rng, n_classes) for _ in range(4)]
    for i, (y_true, y_pred) in enumerate(batches):
        m.update_state(y_true, y_pred)
        assert float(m.result()) == pytest.approx(ref_metric(name, batches[:i + 1]), abs=1e-6)
    # micro-average, not the mean of per-batch scores
    per_batch = np.mean([ref_metric(name, [b]) for b in batches])
    if name != "accuracy":
        assert abs(ref_metric(name, batches) - per_batch) > 1e-9
    m.reset_state()
    y_true, y_pred = batches[-1]
    m.update_state(y_true, y_pred)
    assert float(m.result()) == pytest.approx(ref_metric(name, [batches[-1]]), abs=1e-6)


def test_three_class_foreground_is_cell_or_contour():
    """Predicting 'contour' on a 'cell' pixel is still a foreground hit for jaccard/dice, but
    a wrong class for accuracy."""
    y_true = np.array([1, 2, 1, 0], np.float32).reshape(1, 1, 4, 1)
    y_pred = np.zeros((1, 1, 4, 3), np.float32)
    y_pred[0, 0, 0, 2] = 1.0  # cell pixel predicted contour
    y_pred[0, 0, 1, 2] = 1.0  # contour predicted contour
    y_pred[0, 0, 2, 0] = 1.0  # cell predicted background -> FN
    y_pred[0, 0, 3, 1] = 1.0  # background predicted cell -> FP
    results = {}
    for name in METRICS:
        m = _metric(name, 3)
        m.update_state(y_true, y_pred)
        results[name] = float(m.result())
    assert results["jaccard"] == pytest.approx(2 / 4)
    assert results["dice"] == pytest.approx(4 / 6)
    assert results["accuracy"] == pytest.approx(1 / 4)


def test_one_channel_threshold_is_logit_zero():
    y_true = np.ones((1, 1, 3, 1), np.float32)
    y_pred = np.array([0.01, -0.01, 5.0], np.float32).reshape(1, 1, 3, 1)
    m = _metric("jaccard", 1)
    m.update_state(y_true, y_pred)
    assert float(m.result()) == pytest.approx(2 / 3)


def test_counts_are_exact_beyond_float32_range():
    """Counters are float64: 2**25 pixels plus one more still change the result."""
    m = _metric("accuracy", 2)
    m._counters["correct"].assign(2.0 ** 25)
    m._counters["total"].assign(2.0 ** 25)
    y_true, y_pred = _two_class(0.0, 1.0, truth_fg=False, shape=(1, 1, 1))
    m.update_state(y_true, y_pred)
    assert float(m._counters["total"].numpy()) == 2.0 ** 25 + 1


@pytest.mark.parametrize("name", sorted(METRICS))
def test_sample_weight_weighs_pixels(name):
    """Per-image weight 0 drops an image; per-pixel weight 2 counts a pixel twice."""
    rng = np.random.default_rng(5)
    y_true, y_pred = _batch(rng, 3)
    m = _metric(name, 3)
    m.update_state(y_true, y_pred, sample_weight=np.array([1.0, 0.0, 1.0], np.float32))
    assert float(m.result()) == pytest.approx(
        ref_metric(name, [(y_true[[0, 2]], y_pred[[0, 2]])]), abs=1e-6)
    pixel_w = np.ones(y_true.shape, np.float32)
    pixel_w[0] = 2.0
    m.reset_state()
    m.update_state(y_true, y_pred, sample_weight=pixel_w)
    doubled = [(y_true, y_pred), (y_true[:1], y_pred[:1])]
    assert float(m.result()) == pytest.approx(ref_metric(name, doubled), abs=1e-6)


def test_metric_shape_error_names_metric():
    m = _metric("jaccard", 2)
    with pytest.raises(LossInputError, match="metric 'jaccard' was built for n_classes=2"):
        m.update_state(np.zeros((1, 4, 4, 1), np.float32), np.zeros((1, 4, 4, 3), np.float32))


# ---- Keras integration -------------------------------------------------------------------
def test_keras_logs_spec_names_and_reloads_metrics(tmp_path):
    from dlsuite_plugins.losses.losses import make_loss

    rng = np.random.default_rng(0)
    inp = keras.Input((16, 16, 1))
    model = keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same")(inp))
    model.compile(optimizer="adam", loss=make_loss("sparse_cce", n_classes=3),
                  metrics=[_metric(name, 3) for name in sorted(METRICS)])
    x = rng.normal(size=(4, 16, 16, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=(4, 16, 16, 1)).astype(np.float32)
    hist = model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=2, verbose=0)
    for name in METRICS:
        assert name in hist.history and f"val_{name}" in hist.history
    # the validation value is the micro-average over both validation batches
    pred = model.predict(x, verbose=0)
    for name in METRICS:
        want = ref_metric(name, [(y, pred)])
        assert hist.history[f"val_{name}"][0] == pytest.approx(want, abs=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    got = loaded.evaluate(x, y, return_dict=True, verbose=0)
    for name in METRICS:
        assert got[name] == pytest.approx(ref_metric(name, [(y, pred)]), abs=1e-5)


def test_metric_config_round_trip():
    for name in METRICS:
        m = _metric(name, 3)
        clone = type(m).from_config(m.get_config())
        assert clone.name == name and clone.n_classes == 3
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
        assert type(restored) is type(m) and restored.name == name


def test_plugin_declares_metrics_with_modes():
    reg = Registry.from_plugins([plugin])
    entries = {e.name: e for e in reg.entries("metrics")}
    assert set(entries) == {"jaccard", "dice", "accuracy"}
    for name, entry in entries.items():
        assert entry.spec.mode == "max"
        built = entry.load()(entry.spec.params(), n_classes=2)
        assert isinstance(built, keras.metrics.Metric) and built.name == name


# The dlsuite.testing contract runs on every built-in metric in tests/test_contracts_builtin.py.
