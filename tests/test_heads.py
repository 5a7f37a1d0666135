"""Target-declared output heads: declaration checks, per-head activation, model building,
the multi-head loss, metrics on the class head, inference and the distance_watershed step."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dlsuite import HeadSpec, TargetSpec
from dlsuite.config import parse_config
from dlsuite.errors import ConfigError, DlsuiteInputError
from dlsuite.heads import activate, class_head, head_slices, heads_of, output_channels, softmax
from dlsuite.registry import Registry

DIST_HEADS = (HeadSpec("class", 2, "softmax", "class"),
              HeadSpec("distance", 1, "sigmoid", "regression"))


@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


def _target(**kw):
    return TargetSpec(name="t", factory="x:y", **kw)


def test_default_head_is_one_softmax_class_head():
    assert heads_of(_target(n_classes=3)) == (HeadSpec("class", 3, "softmax", "class"),)


def test_inconsistent_heads_are_rejected_naming_the_target():
    bad = [
        _target(n_classes=2, heads=(HeadSpec("a", 2), HeadSpec("b", 2))),  # two class heads
        _target(n_classes=3, heads=DIST_HEADS, channels=("class", "distance")),  # 2 != 3
        _target(n_classes=2, heads=DIST_HEADS, channels=("class",)),  # no 'distance' channel
    ]
    for spec in bad:
        with pytest.raises(DlsuiteInputError, match="target 't'"):
            heads_of(spec)
    with pytest.raises(ValueError):
        HeadSpec("x", 1, activation="relu")


def test_builtin_distance_target_declares_two_heads(registry):
    heads = heads_of(registry.resolve("targets", "distance").spec)
    assert heads == DIST_HEADS and output_channels(heads) == 3
    assert head_slices(heads) == {"class": slice(0, 2), "distance": slice(2, 3)}
    assert class_head(heads) == (DIST_HEADS[0], slice(0, 2))


def test_activate_per_head():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 6, 3)).astype(np.float32) * 4
    out = activate(logits, DIST_HEADS)
    assert out.dtype == np.float32 and out.shape == (5, 6, 3)
    e = np.exp(logits[..., :2] - logits[..., :2].max(-1, keepdims=True))
    np.testing.assert_allclose(out[..., :2], e / e.sum(-1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(out[..., 2], 1 / (1 + np.exp(-logits[..., 2])), rtol=1e-6)
    # no heads / one softmax head: softmax over every channel, as before heads existed
    np.testing.assert_array_equal(activate(logits), softmax(logits))
    np.testing.assert_array_equal(activate(logits, (HeadSpec("class", 3),)), softmax(logits))
    linear = (HeadSpec("class", 2), HeadSpec("distance", 1, "linear", "regression"))
    np.testing.assert_array_equal(activate(logits, linear)[..., 2], logits[..., 2])
    with pytest.raises(DlsuiteInputError, match="outputs 2 channels"):
        activate(logits[..., :2], DIST_HEADS)


# ---------------------------------------------------------------------------- the loss
def _loss(**params):
    from dlsuite_plugins.losses.heads_loss import build_class_distance
    from dlsuite_plugins.losses.params import ClassDistanceParams

    return build_class_distance(ClassDistanceParams(**params), n_classes=3, heads=DIST_HEADS,
                                target_channels=("class", "distance"))


def _reference(y_true, logits, regression="mse", weight=1.0, foreground_only=True,
               border_weight=0.0, border_pool=3):
    from scipy.ndimage import maximum_filter

    cls = y_true[..., 0].astype(int)
    z = logits[..., :2] - logits[..., :2].max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce_px = -np.take_along_axis(logp, cls[..., None], -1)[..., 0]
    fg_f = (cls != 0).astype(float)
    size = (1, border_pool, border_pool)
    band = (maximum_filter(fg_f, size, mode="constant") > 0) & (
        maximum_filter(1 - fg_f, size, mode="constant") > 0)
    w = 1 + border_weight * band
    ce = (ce_px * w).sum() / w.sum()
    pred = 1 / (1 + np.exp(-logits[..., 2]))
    diff = pred - y_true[..., 1]
    err = diff ** 2 if regression == "mse" else np.abs(diff)
    fg = cls != 0
    term = err[fg].mean() if foreground_only else err.mean()
    return ce + weight * term


@pytest.mark.parametrize("params", [{}, {"regression": "l1", "regression_weight": 3.0},
                                    {"foreground_only": False}, {"border_weight": 3.0},
                                    {"border_weight": 2.0, "border_pool": 5}])
def test_class_distance_loss_equals_reference(params):
    rng = np.random.default_rng(1)
    cls = np.zeros((2, 12, 12))
    cls[0, 2:7, 3:9] = 1  # one square cell and a random mask: outlines of both kinds
    cls[1] = rng.integers(0, 2, (12, 12))
    y_true = np.stack([cls, rng.random((2, 12, 12))], -1).astype("float32")
    logits = rng.normal(size=(2, 12, 12, 3)).astype("float32")
    expected = _reference(y_true, logits, params.get("regression", "mse"),
                          params.get("regression_weight", 1.0),
                          params.get("foreground_only", True),
                          params.get("border_weight", 0.0), params.get("border_pool", 3))
    assert float(_loss(**params)(y_true, logits)) == pytest.approx(expected, rel=1e-5)


def test_class_distance_border_weight_moves_the_loss_to_the_outline():
    from dlsuite.checks import CheckError
    from dlsuite_plugins.losses.params import ClassDistanceParams

    y = np.zeros((1, 12, 12, 2), "float32")
    y[0, 3:9, 3:9, 0] = 1
    z = np.zeros((1, 12, 12, 3), "float32")
    z[..., 1] = np.where(y[..., 0] > 0, 20.0, -20.0)  # right everywhere ...
    z[0, 2:10, 2:10, 1] = 20.0  # ... except a 1-px ring of false foreground around the cell
    z[..., 2] = -30.0  # distance 0 as the target says: the class term is all there is
    plain, weighted = float(_loss()(y, z)), float(_loss(border_weight=4.0)(y, z))
    # 28 wrong pixels, all on the 48-pixel band (28 outside, 20 inside the cell): weight 5
    # each of a total 144 + 4 * 48
    assert weighted == pytest.approx(plain * (28 * 5 / 336) / (28 / 144), rel=1e-4)
    with pytest.raises((CheckError, ValueError), match="odd"):
        ClassDistanceParams(border_pool=4)


def test_class_distance_lovasz_is_one_minus_iou_on_hard_predictions():
    """On 0/1 probabilities the Lovasz extension equals the Jaccard loss itself, per image
    (Berman et al. 2018): the cce_lovasz loss minus the cce loss is the mean of 1 - IoU,
    also for an image without foreground (IoU 0: cost 1); in graph mode with finite
    gradients too."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    cls = np.zeros((3, 16, 16))
    cls[0, 2:9, 3:12] = 1
    cls[1] = rng.integers(0, 2, (16, 16))
    predicted = np.zeros((3, 16, 16), bool)
    predicted[0, 3:10, 3:10] = True
    predicted[1] = rng.integers(0, 2, (16, 16)).astype(bool)
    predicted[2, 5:8, 5:8] = True  # image 2: no cell, 9 false pixels
    y = np.stack([cls, np.zeros_like(cls)], -1).astype("float32")
    z = np.zeros((3, 16, 16, 3), "float32")
    z[..., 1] = np.where(predicted, 40.0, -40.0)  # p = 0 or 1 to float precision
    iou = [np.sum((cls[i] > 0) & predicted[i]) / np.sum((cls[i] > 0) | predicted[i])
           for i in range(3)]
    expected = float(np.mean([1.0 - v for v in iou]))
    lovasz, plain = _loss(class_loss="cce_lovasz"), _loss()
    assert float(lovasz(y, z)) - float(plain(y, z)) == pytest.approx(expected, abs=1e-4)
    soft = tf.Variable(rng.normal(size=(3, 16, 16, 3)).astype("float32"))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            value = lovasz(tf.constant(y), soft)
        return value, tape.gradient(value, soft)

    value, grad = step()
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad.numpy()))
    assert float(tf.reduce_max(tf.abs(grad))) > 0


def test_class_distance_loss_checks_shapes_and_round_trips():
    import keras

    loss = _loss(class_loss="cce_dice", border_weight=1.0)
    with pytest.raises(DlsuiteInputError, match="3 output channels"):
        loss(np.zeros((1, 4, 4, 2), "float32"), np.zeros((1, 4, 4, 2), "float32"))
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    y = np.zeros((1, 4, 4, 2), "float32")
    y[:, 1:3, 1:3] = 1
    z = np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype("float32")
    assert float(again(y, z)) == pytest.approx(float(loss(y, z)))


# ---------------------------------------------------------------------------- config level
def _write_discs(folder, n=3, size=48):
    import tifffile

    (folder / "inputs").mkdir(parents=True)
    (folder / "labels").mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        lab = np.zeros((size, size), np.uint16)
        for k in range(1, 5):
            cy, cx = rng.uniform(8, size - 8, 2)
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = k
        img = (lab > 0) * 1000 + rng.integers(0, 200, lab.shape)
        tifffile.imwrite(folder / "inputs" / f"raw_{i:03d}.tif", img.astype(np.uint16))
        tifffile.imwrite(folder / "labels" / f"instance_ids_{i:03d}.tif", lab)


def _config(data, out, loss="class_distance"):
    return {"name": "heads", "output_dir": str(out), "seed": 1,
            "data": {"train": str(data), "val": str(data), "layout": "frames"},
            "model": {"name": "unet", "n_filters": 4, "pools": 2},
            "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2,
                        "target": {"name": "distance"}},
            "loss": {"name": loss}, "train": {"epochs": 1},
            "wandb": {"mode": "disabled"}}


def test_a_plain_loss_with_a_multi_head_target_is_a_preflight_error(tmp_path, registry):
    from dlsuite.preflight import preflight

    _write_discs(tmp_path / "d")
    loaded = parse_config(_config(tmp_path / "d", tmp_path / "o", loss="sparse_cce"), registry)
    with pytest.raises(ConfigError, match=r"\$\.loss.*class_distance"):
        preflight(loaded, registry)


@pytest.mark.slow
def test_distance_model_trains_and_predicts_its_heads(tmp_path, registry):
    """Model built with 3 output channels from the target's heads, compiled with the
    multi-head loss and a class-head metric; a few steps lower the loss; inference applies
    softmax to the class head and a sigmoid to the distance head."""
    import keras

    from dlsuite.data.pipeline import build_datasets
    from dlsuite.inference import predict_image
    from dlsuite.models import model_geometry
    from dlsuite.training import build_model, compile_model

    _write_discs(tmp_path / "d")
    cfg = parse_config(_config(tmp_path / "d", tmp_path / "o"), registry).config
    geo = model_geometry(cfg, registry)
    assert geo["n_classes"] == 3 and geo["heads"] == DIST_HEADS
    data = build_datasets(cfg, registry, temporal=False)
    assert data.n_classes == 3
    keras.utils.set_random_seed(0)
    model, _ = build_model(cfg, registry, n_classes=data.n_classes)
    assert model.output_shape[-1] == 3
    compile_model(model, cfg, registry, n_classes=data.n_classes)
    x, y = next(iter(data.train))
    assert y.shape[-1] == 2  # class, distance
    first = float(model.evaluate(x, y, verbose=0, return_dict=True)["loss"])
    for _ in range(15):
        logs = model.train_on_batch(x, y, return_dict=True)
    assert "jaccard" in logs and np.isfinite(logs["jaccard"])
    assert float(model.evaluate(x, y, verbose=0, return_dict=True)["loss"]) < first
    probs = predict_image(model, np.asarray(x)[0, ..., 0], tile_size=None, halo=8,
                          size_multiple=4, heads=geo["heads"])
    assert probs.shape == (32, 32, 3)
    np.testing.assert_allclose(probs[..., :2].sum(-1), 1.0, rtol=1e-5)
    assert (probs[..., 2] > 0).all() and (probs[..., 2] < 1).all()


# ---------------------------------------------------------------------------- watershed
def _touching_discs():
    lab = np.zeros((40, 60), np.int32)
    yy, xx = np.mgrid[:40, :60]
    lab[(yy - 20) ** 2 + (xx - 20) ** 2 < 144] = 1
    lab[((yy - 20) ** 2 + (xx - 40) ** 2 < 144) & (lab == 0)] = 2
    return lab


def _probs_from(lab, peak2=1.0):
    """Perfect class probabilities and the normalised distance of each disc (disc 2 scaled
    to peak at ``peak2``)."""
    d = np.zeros(lab.shape, np.float32)
    for k in (1, 2):
        e = ndimage.distance_transform_edt(lab == k)
        d[lab == k] = (e / e.max() * (peak2 if k == 2 else 1.0))[lab == k]
    fg = (lab > 0).astype(np.float32)
    return np.stack([1 - fg, fg, d], -1)


def _watershed(registry, **params):
    entry = registry.resolve("postprocessors", "distance_watershed")
    return entry.load()(entry.spec.params(**params))


def test_distance_watershed_splits_touching_cells(registry):
    lab = _touching_discs()
    out = _watershed(registry)(_probs_from(lab))
    assert out.dtype == np.int32 and set(np.unique(out)) == {0, 1, 2}
    for k in (1, 2):  # each disc is one instance (up to the id)
        ids, counts = np.unique(out[lab == k], return_counts=True)
        assert counts.max() / counts.sum() > 0.95
    assert np.array_equal(out > 0, lab > 0)


def test_distance_watershed_seed_threshold_and_min_size(registry):
    lab = _touching_discs()
    probs = _probs_from(lab, peak2=0.4)  # a weakly predicted second cell
    assert np.unique(_watershed(registry, seed_threshold=0.5)(probs)).size == 2  # merged
    assert np.unique(_watershed(registry, seed_threshold=0.3)(probs)).size == 3  # split
    small = _probs_from(lab)
    small[2:5, 55:58] = [0, 1, 1]  # a 9-pixel speck
    assert np.unique(_watershed(registry, min_size=20)(small)).size == 3
    assert np.unique(_watershed(registry, min_size=0)(small)).size == 4
    with pytest.raises(DlsuiteInputError, match="distance_channel"):
        _watershed(registry, distance_channel=5)(probs)


def test_distance_watershed_background_channel_takes_every_cell_class(registry):
    """With ``background_channel`` the foreground is 1 - P(background): a contours_distance
    output (cells class 1, their boundaries class 2) gives whole cells; with the default
    foreground_channel 1 the boundary ring is lost. Out-of-range channels are named."""
    lab = _touching_discs()
    entry = registry.resolve("targets", "contours_distance")
    y = entry.load()(entry.spec.params())(lab)
    classes = y[..., 0].astype(int)
    probs = np.concatenate([np.eye(3, dtype=np.float32)[classes], y[..., 1:]], -1)
    whole = _watershed(registry, background_channel=0)(probs)
    assert whole.max() == 2 and np.array_equal(whole > 0, lab > 0)
    assert (_watershed(registry)(probs) > 0).sum() < (lab > 0).sum()
    with pytest.raises(DlsuiteInputError, match="background_channel 4 out of range"):
        _watershed(registry, background_channel=4)(probs)


def test_h_maxima_cache_gives_skimage_pixels_and_serves_repeats(registry):
    """The h-maxima of a map seen before (as tuning repeats them) come from the cache: the
    same pixels as scikit-image, the same labels as computed afresh; another map, depth or
    dtype is computed; the cache stays within its byte budget."""
    from skimage.morphology import h_maxima

    from dlsuite_plugins.postprocess import hmaxima_cache as cache

    rng = np.random.default_rng(0)
    d = ndimage.gaussian_filter(rng.random((64, 96)), 3).astype(np.float32)
    cache.clear_cache()
    first = cache.h_maxima_mask(d, 0.01)
    assert first.dtype == bool and np.array_equal(first, h_maxima(d, 0.01).astype(bool))
    assert np.array_equal(cache.h_maxima_mask(d.copy(), 0.01), first)  # same bytes: a hit
    assert cache.cache_info()["hits"] == 1 and cache.cache_info()["misses"] == 1
    cache.h_maxima_mask(d, 0.02)
    cache.h_maxima_mask(d.astype(np.float64), 0.01)
    assert cache.cache_info()["misses"] == 3 and cache.cache_info()["entries"] == 3
    probs = _probs_from(_touching_discs())
    cache.clear_cache()
    fresh = _watershed(registry, seed_threshold=0.1, seed_depth=0.3)(probs)
    again = _watershed(registry, threshold=0.6, seed_threshold=0.1, seed_depth=0.3)(probs)
    assert cache.cache_info()["hits"] == 1
    cache.clear_cache()
    assert np.array_equal(again, _watershed(registry, threshold=0.6, seed_threshold=0.1,
                                            seed_depth=0.3)(probs))
    assert np.array_equal(np.unique(fresh), [0, 1, 2])
    budget = cache.MAX_BYTES
    try:
        cache.MAX_BYTES = 3 * (d.size // 8)  # three packed masks of this map
        cache.clear_cache()
        for depth in (0.01, 0.02, 0.03, 0.04):
            cache.h_maxima_mask(d, depth)
        info = cache.cache_info()
        assert info["entries"] == 3 and info["bytes"] <= cache.MAX_BYTES
        cache.h_maxima_mask(d, 0.01)  # the oldest was dropped
        assert cache.cache_info()["misses"] == 5
    finally:
        cache.MAX_BYTES = budget
        cache.clear_cache()


def test_h_maxima_follow_the_connectivity_parameter(registry):
    """The h-maxima (seeds of distance_watershed) use the step's ``connectivity``: a lower
    peak touching a higher one only at a corner is a maximum of its own with 4-connectivity
    (1), part of the higher one's slope with 8-connectivity (2); the cache keeps them apart."""
    from skimage.morphology import h_maxima

    from dlsuite_plugins.postprocess import hmaxima_cache as cache

    d = np.zeros((7, 7), np.float32)
    d[2, 2], d[3, 3] = 1.0, 0.5
    cache.clear_cache()
    four, eight = cache.h_maxima_mask(d, 0.3, 1), cache.h_maxima_mask(d, 0.3, 2)
    assert four[3, 3] and not eight[3, 3] and four[2, 2] and eight[2, 2]
    face = ndimage.generate_binary_structure(2, 1)
    assert np.array_equal(four, h_maxima(d, 0.3, footprint=face) > 0)
    assert np.array_equal(eight, h_maxima(d, 0.3) > 0)
    assert cache.cache_info()["misses"] == 2
    probs = np.zeros((7, 7, 3), np.float32)
    probs[..., 1] = 1.0
    probs[..., 2] = d
    cells = {c: int(_watershed(registry, threshold=0.5, seed_threshold=0.1, seed_depth=0.3,
                               connectivity=c)(probs).max()) for c in (1, 2)}
    assert cells == {1: 2, 2: 1}  # every pixel is foreground: one cell per seed
    cache.clear_cache()


def test_distance_watershed_seed_depth_keeps_a_shallow_dip_in_one_cell(registry):
    """An elongated cell whose predicted distance has two peaks (1.0 and 0.9) over a shallow
    saddle (0.8): threshold seeds above the saddle cut it in two; h-maxima seeds of a depth
    above the dip keep it whole, while two touching discs (saddle near 0) stay split."""
    yy, xx = np.mgrid[:40, :80]
    cell = ((yy - 20) / 10.0) ** 2 + ((xx - 40) / 35.0) ** 2 < 1
    d = 0.8 + 0.2 * np.exp(-((xx - 20) ** 2) / 40.0) + 0.1 * np.exp(-((xx - 60) ** 2) / 40.0)
    d = np.where(cell, d * (1 - ((yy - 20) / 10.0) ** 2).clip(0, 1), 0).astype(np.float32)
    fg = cell.astype(np.float32)
    probs = np.stack([1 - fg, fg, d], -1)
    assert np.unique(_watershed(registry, seed_threshold=0.85)(probs)).size == 3  # cut
    whole = _watershed(registry, seed_threshold=0.85, seed_depth=0.3)(probs)
    assert np.array_equal(np.unique(whole), [0, 1]) and np.array_equal(whole > 0, cell)
    discs = _watershed(registry, seed_threshold=0.1, seed_depth=0.3)(_probs_from(_touching_discs()))
    assert np.array_equal(np.unique(discs), [0, 1, 2])
