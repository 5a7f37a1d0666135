"""Tiled 2D prediction and temporal video prediction (core/inference/) with tiny Keras models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from dlsuite.errors import DataError, DlsuiteInputError
from dlsuite.inference import (
    halo_from_receptive_field,
    predict_image,
    predict_video,
    split_temporal_model,
    tile_grid,
    write_predictions,
)

keras = pytest.importorskip("keras")


def _frame_net(n_out: int, name: str, shape=(None, None, 1), activation="relu"):
    """A tiny U-Net-like net: 2 pools (size multiple 4), 'same' convs, a skip connection."""
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape)
    c1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    p1 = keras.layers.MaxPooling2D()(c1)
    c2 = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(p1)
    p2 = keras.layers.MaxPooling2D()(c2)
    c3 = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(p2)
    u2 = keras.layers.UpSampling2D()(c3)
    m2 = keras.layers.Concatenate()([u2, c2])
    d2 = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(m2)
    u1 = keras.layers.UpSampling2D()(d2)
    m1 = keras.layers.Concatenate()([u1, c1])
    out = keras.layers.Conv2D(n_out, 3, padding="same", activation=activation)(m1)
    return keras.Model(inp, out, name=name)


# receptive field of _frame_net: 3 + 2*2 + 2*4 + 2*4 (enc/bottleneck) + ... comfortably < 2*16
RF_HALO = 16


@pytest.fixture(scope="module")
def unet():
    return _frame_net(3, "tiny_unet", activation=None)


def _image(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(37, 53), (100, 70), (16, 16), (1, 9)])
def test_tiled_equals_untiled(unet, shape):
    image = _image(shape)
    untiled = predict_image(unet, image, tile_size=None, halo=RF_HALO, size_multiple=4)
    tiled = predict_image(unet, image, tile_size=32, halo=RF_HALO, batch_size=3, size_multiple=4)
    assert tiled.shape == shape + (3,) and tiled.dtype == np.float32
    np.testing.assert_allclose(tiled, untiled, atol=1e-5)
    np.testing.assert_allclose(tiled.sum(-1), 1.0, atol=1e-5)  # softmax probabilities


def test_tiles_are_batched_and_bounded(unet):
    (h, w), n = tile_grid((100, 70), 32, RF_HALO, 4)
    assert (h, w) == (64, 64) and n == 4 * 3
    (h, w), n = tile_grid((10, 10), 32, 3, 4)  # smaller than a tile: one small tile
    assert (h, w) == (20, 20) and n == 1


def test_too_small_halo_shows_seams(unet):
    """The equality is not vacuous: without context the tiles differ from the untiled pass."""
    image = _image((64, 64), seed=1)
    untiled = predict_image(unet, image, tile_size=None, halo=RF_HALO, size_multiple=4)
    seamy = predict_image(unet, image, tile_size=16, halo=0, size_multiple=4)
    assert np.abs(seamy - untiled).max() > 1e-3


def test_halo_from_receptive_field():
    assert halo_from_receptive_field(1) == 0
    assert halo_from_receptive_field(33) == 16
    assert halo_from_receptive_field(101, fraction=0.5) == 25
    with pytest.raises(DlsuiteInputError):
        halo_from_receptive_field(0)


def test_bad_input_is_a_clear_error(unet):
    with pytest.raises(DataError, match="2D"):
        predict_image(unet, np.zeros((2, 8, 8)), tile_size=8, halo=0, size_multiple=4)
    with pytest.raises(DlsuiteInputError, match="tile_size"):
        predict_image(unet, np.zeros((8, 8)), tile_size=0, halo=0, size_multiple=4)


def test_2d_model_on_a_video_predicts_each_frame(unet):
    video = _image((3, 20, 24))
    out = predict_video(unet, video, tile_size=16, halo=RF_HALO, size_multiple=4, temporal=False)
    assert out.shape == (3, 20, 24, 3)
    np.testing.assert_allclose(
        out[1], predict_image(unet, video[1], tile_size=None, halo=RF_HALO, size_multiple=4),
        atol=1e-5)


# --------------------------------------------------------------------------------------------
# temporal


def _temporal_model(T: int, size: int, wrapper_name: str = "td"):
    """Input (T, H, W, 1) -> TimeDistributed(frame_features) -> ConvLSTM2D -> 1x1 Conv2D."""
    frame = _frame_net(4, "frame_features")
    inp = keras.Input((T, size, size, 1))
    x = keras.layers.TimeDistributed(frame, name=wrapper_name)(inp)
    x = keras.layers.ConvLSTM2D(4, 3, padding="same", return_sequences=False)(x)
    out = keras.layers.Conv2D(2, 1)(x)
    return keras.Model(inp, out)


def _naive(model, video, T):
    """Reference: each window through the full model, untiled (window rule written out)."""
    from dlsuite.data.windows import window_indices

    x = np.stack([video[window_indices(t, T)] for t in range(len(video))])[..., None]
    logits = np.asarray(model.predict_on_batch(x))
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_temporal_cached_equals_per_window():
    T, size = 3, 32
    model = _temporal_model(T, size)
    video = _image((7, size, size), seed=2)
    naive = _naive(model, video, T)
    cached = predict_video(model, video, time_windows=T, tile_size=None, halo=0,
                           batch_size=2, size_multiple=4)
    windows = predict_video(model, video, time_windows=T, tile_size=None, halo=0,
                            batch_size=2, size_multiple=4, reuse_features=False)
    assert cached.shape == (7, size, size, 2)
    with pytest.raises(DlsuiteInputError, match="windows of 3 frames"):
        predict_video(model, video, time_windows=5, tile_size=None, halo=0, size_multiple=4)
    np.testing.assert_allclose(windows, naive, atol=1e-5)
    np.testing.assert_allclose(cached, naive, atol=1e-5)


def test_reloaded_temporal_model_is_still_split(tmp_path):
    """A temporal model saved to .keras and loaded back keeps the cached path."""
    from dlsuite.inference.temporal import _cached_runner

    T, size = 2, 16
    model = _temporal_model(T, size)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert _cached_runner(loaded, (size, size)) is not None
    video = _image((4, size, size), seed=6)
    cached = predict_video(loaded, video, time_windows=T, tile_size=None, halo=0, size_multiple=4)
    np.testing.assert_allclose(cached, _naive(model, video, T), atol=1e-5)


def test_generic_head_is_cached_too():
    """A head not starting with a plain ConvLSTM2D runs as rebuilt on cached features."""
    from dlsuite.inference.temporal import _cached_runner, _fused_convlstm

    T, size = 3, 16
    frame = _frame_net(4, "frame_features")
    inp = keras.Input((T, size, size, 1))
    x = keras.layers.TimeDistributed(frame)(inp)
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(3, 1))(x)
    x = keras.layers.ConvLSTM2D(4, 3, padding="same", recurrent_activation="hard_sigmoid")(x)
    model = keras.Model(inp, keras.layers.Conv2D(2, 1)(x))
    assert _fused_convlstm(*split_temporal_model(model)) is None
    assert _cached_runner(model, (size, size)) is not None
    video = _image((5, size, size), seed=4)
    cached = predict_video(model, video, time_windows=T, tile_size=None, halo=0, size_multiple=4)
    np.testing.assert_allclose(cached, _naive(model, video, T), atol=1e-5)


def test_split_contract():
    from dlsuite.inference.temporal import _fused_convlstm

    model = _temporal_model(3, 32, wrapper_name="frame_features_td")
    frame_model, head = split_temporal_model(model, (48, 40))
    assert _fused_convlstm(frame_model, head) is not None  # the ConvLSTM input conv is cached
    assert frame_model is model.layers[1].layer
    assert head.input_shape == (None, 3, 48, 40, 4) and head.output_shape == (None, 48, 40, 2)
    # a model without the named per-frame network is not split
    inp = keras.Input((3, 16, 16, 1))
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3, padding="same"))(inp)
    x = keras.layers.ConvLSTM2D(2, 3, padding="same")(x)
    assert split_temporal_model(keras.Model(inp, x)) is None


def test_temporal_video_larger_than_the_static_model_is_tiled():
    """A ConvLSTM model built at 32x32 predicts a 40x52 video tile by tile, same as cropping."""
    T, size, halo = 2, 32, 8
    model = _temporal_model(T, size)
    video = _image((4, 40, 52), seed=3)
    cached = predict_video(model, video, time_windows=T, tile_size=None, halo=halo,
                           size_multiple=4)
    windows = predict_video(model, video, time_windows=T, tile_size=None, halo=halo,
                            size_multiple=4, reuse_features=False)
    assert cached.shape == (4, 40, 52, 2)
    np.testing.assert_allclose(cached, windows, atol=1e-5)


# --------------------------------------------------------------------------------------------
# outputs


def test_write_predictions(tmp_path):
    probs = np.random.default_rng(0).random((5, 6, 2)).astype(np.float32)
    labels = np.zeros((5, 6), np.int64)
    labels[0, 0] = 70000
    paths = write_predictions(tmp_path, "img_001.tif", probs, labels)
    p = tifffile.imread(paths["probabilities"])
    assert p.dtype == np.float32 and np.array_equal(np.moveaxis(p, 0, -1), probs)
    lab = tifffile.imread(paths["labels"])
    assert lab.dtype == np.uint32 and lab[0, 0] == 70000
    small = write_predictions(tmp_path, "v", labels=np.ones((2, 5, 6), np.int32))
    assert tifffile.imread(small["labels"]).dtype == np.uint16


def test_mobilenet_mobileunet_lstm_cached_equals_per_window():
    """The built-in temporal architecture follows the split contract (fused ConvLSTM path)."""
    from dlsuite.inference.temporal import _cached_runner
    from dlsuite_plugins.architectures import params
    from dlsuite_plugins.architectures.mobilenet import build_mobilenet_mobileunet_lstm

    T, size = 3, 32
    prm = params.MobileUNetLSTMParams(n_filters=8, pools=3, alpha=0.35, time_windows=T,
                                      encoder_weights=None)
    model = build_mobilenet_mobileunet_lstm(prm, n_classes=2, input_shape=(T, size, size, 1))
    assert _cached_runner(model, (size, size)) is not None
    video = np.random.default_rng(5).random((5, size, size), dtype=np.float32)
    cached = predict_video(model, video, time_windows=T, tile_size=None, halo=0, size_multiple=8)
    np.testing.assert_allclose(cached, _naive(model, video, T), atol=1e-5)


# --------------------------------------------------------------------------------------------
# every registered architecture: tiled == untiled (inference mode, halo from the spec's RF)


def _arch_entries():
    """The built-in architectures (third-party plugins installed in the environment vary)."""
    from dlsuite.registry import Registry

    return [entry for entry in Registry.from_entry_points().entries("architectures")
            if entry.spec.factory.startswith("dlsuite_plugins.")]


_ARCHS = {entry.name: entry for entry in _arch_entries()}
assert len(_ARCHS) >= 8, sorted(_ARCHS)
_TILE = 32
# one size smaller than the tile, one not divisible by the size multiple, one a few tiles
_SIZES = [(20, 27), (45, 70), (64, 96)]


def _tiny(spec):
    """The spec's parameters with tiny values (n_filters 4, pools 2, alpha 0.35, T 2) where
    the parameter class has those fields."""
    import attrs

    fields = {f.name for f in attrs.fields(spec.params)}
    tiny = dict(n_filters=4, pools=2, alpha=0.35, time_windows=2, encoder_weights=None)
    return spec.params(**{k: v for k, v in tiny.items() if k in fields})


def _build(entry, prm, shape):
    keras.utils.set_random_seed(0)
    return entry.load()(prm, n_classes=3, input_shape=shape)




def _arch_param(name):
    marks = []
    if _ARCHS[name].spec.temporal and not _ARCHS[name].spec.supports_dynamic_size:
        marks.append(pytest.mark.slow)
    return pytest.param(name, marks=marks)


@pytest.mark.parametrize("name", [_arch_param(name) for name in sorted(_ARCHS)])
def test_every_architecture_tiled_equals_untiled(name):
    """Each registered architecture, built tiny, in inference mode: tiling with the halo of
    its spec's receptive field gives the untiled prediction within 1e-4 at three image sizes
    (one smaller than the tile). Static-size temporal models are tiled at their build size
    (cached path) and compared with the same weights built at the whole (halo-padded) image."""
    entry = _ARCHS[name]
    spec = entry.spec
    prm = _tiny(spec)
    multiple = spec.size_multiple(prm) if spec.size_multiple else 1
    halo = halo_from_receptive_field(spec.receptive_field(prm))
    rounded = -(-halo // multiple) * multiple
    rng = np.random.default_rng(7)
    if not spec.temporal:
        model = _build(entry, prm, (None, None, 1))
        for shape in _SIZES:
            image = rng.normal(size=shape).astype(np.float32)
            untiled = predict_image(model, image, tile_size=None, halo=halo,
                                    size_multiple=multiple)
            tiled = predict_image(model, image, tile_size=_TILE, halo=halo, batch_size=2,
                                  size_multiple=multiple)
            assert tiled.shape == shape + (3,)
            np.testing.assert_allclose(tiled, untiled, atol=1e-4, err_msg=f"{name} {shape}")
        return
    T = prm.time_windows
    side = _TILE + 2 * rounded
    small = _build(entry, prm, (T, side, side, 1))
    if spec.supports_dynamic_size:  # a temporal model taking any size: one model for both
        small = _build(entry, prm, (T, None, None, 1))
    for shape in _SIZES:
        video = rng.normal(size=(3,) + shape).astype(np.float32)
        tiled = predict_video(small, video, time_windows=T, tile_size=_TILE, halo=halo,
                              batch_size=2, size_multiple=multiple)
        big = small
        if not spec.supports_dynamic_size:
            whole = tuple(-(-n // multiple) * multiple + 2 * rounded for n in shape)
            big = _build(entry, prm, (T,) + whole + (1,))
            big.set_weights(small.get_weights())
        untiled = predict_video(big, video, time_windows=T, tile_size=None, halo=halo,
                                size_multiple=multiple, reuse_features=False)
        assert tiled.shape == (3,) + shape + (3,)
        np.testing.assert_allclose(tiled, untiled, atol=1e-4, err_msg=f"{name} {shape}")


def test_static_model_is_rebuilt_at_the_tile_size():
    """A ConvLSTM model built at its 32x32 training patch predicts 48x40 tiles with the same
    weights: the rebuilt model equals the architecture built at 48x40; tiling a video then
    uses tiles of tile_size + halo, not of 32."""
    from dlsuite.inference.tiling import _axes, _for_tiles, rebuild_at_size

    T = 2
    model = _temporal_model(T, 32)
    bigger = rebuild_at_size(model, (48, 40))
    assert bigger.input_shape == (None, T, 48, 40, 1)
    x = _image((2, T, 48, 40, 1), seed=9)
    frame = _frame_net(4, "frame_features")
    inp = keras.Input((T, 48, 40, 1))
    y = keras.layers.TimeDistributed(frame, name="td")(inp)
    y = keras.layers.ConvLSTM2D(4, 3, padding="same", return_sequences=False)(y)
    reference = keras.Model(inp, keras.layers.Conv2D(2, 1)(y))
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(bigger(x)), np.asarray(reference(x)), atol=1e-5)

    ay, ax = _axes((100, 90), 24, 8, 4)
    used, ay2, ax2 = _for_tiles(model, (2, 3), (100, 90), ay, ax, 8, 4)
    assert used.input_shape[2:4] == (40, 40) and (ay2.core, ax2.core) == (24, 24)
    again, _, _ = _for_tiles(model, (2, 3), (100, 90), ay, ax, 8, 4)
    assert again is used  # memoized


def test_static_model_that_cannot_be_rebuilt_gets_tiles_of_its_size():
    """A hard-coded Reshape cannot change size: tiles fall back to the model's 32x32 input
    (core 32 - 2 * 8) and the result still equals the untiled pass of the same size."""
    inp = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(2, 3, padding="same")(inp)
    x = keras.layers.Reshape((32 * 32, 2))(x)
    model = keras.Model(inp, keras.layers.Reshape((32, 32, 2))(x))
    image = _image((40, 50), seed=10)
    out = predict_image(model, image, tile_size=64, halo=8, size_multiple=1)
    assert out.shape == (40, 50, 2)
    padded = np.pad(image, 8, mode="reflect")[:32, :32]  # the first tile's input
    first = np.asarray(model(padded[None, ..., None]))[0, 8:24, 8:24]
    e = np.exp(first - first.max(-1, keepdims=True))
    np.testing.assert_allclose(out[:16, :16], e / e.sum(-1, keepdims=True), atol=1e-5)


# --------------------------------------------------------------------------------------------
# the post-processing chain and the checkpoint choice (TF-free parts of dlsuite.inference)


def _two_squares() -> np.ndarray:
    """Probabilities (2, 20, 20, 2) of a 2-frame video with two separated squares (0.9 / 0.6
    foreground) per frame."""
    fg = np.full((20, 20), 0.1, np.float32)
    fg[2:7, 2:7] = 0.9
    fg[12:18, 12:18] = 0.6
    probs = np.stack([1 - fg, fg], axis=-1)
    return np.stack([probs, probs])


def test_postprocess_chain_built_once_gives_instance_labels_per_frame():
    from dlsuite.config.schema import PostprocessorChoice
    from dlsuite.inference import build_postprocess
    from dlsuite.registry import get_registry

    registry = get_registry()
    chain = build_postprocess([PostprocessorChoice("threshold")], registry)
    assert chain.choices[0].params.threshold == 0.5  # defaults filled in from the spec
    labels = chain.labels(_two_squares())
    # a chain ending with a mask is completed by connected components: 2 objects per frame
    assert labels.shape == (2, 20, 20) and labels.dtype == np.int64
    assert [len(np.unique(f[f > 0])) for f in labels] == [2, 2]
    # an empty chain: argmax, then connected components
    np.testing.assert_array_equal(build_postprocess([], registry).labels(_two_squares()),
                                  labels)


def test_postprocess_chain_parameters_can_be_changed_one_step_at_a_time():
    from dlsuite.config.schema import PostprocessorChoice
    from dlsuite.inference import build_postprocess
    from dlsuite.registry import get_registry

    chain = build_postprocess([PostprocessorChoice("threshold"), PostprocessorChoice("label")],
                              get_registry())
    strict = chain.with_params(0, threshold=0.7)
    assert strict.choices[0].params.threshold == 0.7 and strict.steps[1] is chain.steps[1]
    assert chain.choices[0].params.threshold == 0.5  # the original chain is unchanged
    assert len(np.unique(chain.frame_labels(_two_squares()[0]))) == 3  # background + 2
    assert len(np.unique(strict.frame_labels(_two_squares()[0]))) == 2  # the 0.6 square gone


def test_choose_checkpoint_best_last_and_paths(tmp_path, monkeypatch):
    from dlsuite.inference import choose_checkpoint
    from dlsuite.rundir import RunDir

    run = RunDir(tmp_path / "run").make()
    for weights in ("best", "last"):  # no epoch ended: said, with the way out
        with pytest.raises(DlsuiteInputError, match=f"{weights}.keras: no checkpoint to predict "
                           "with .* the run has no checkpoint yet: it stopped before its first "
                           "epoch ended, or is still in it; finish its training first"):
            choose_checkpoint(run, weights)
    run.best.write_bytes(b"best")
    with pytest.raises(DlsuiteInputError, match="last.keras: no checkpoint to predict with "
                       r"\(weights 'last'\); the run has best.keras: weights best"):
        choose_checkpoint(run, "last")
    run.best.unlink()
    run.last.write_bytes(b"last")
    assert choose_checkpoint(run, "best") == run.last  # no best.keras: last.keras
    run.best.write_bytes(b"best")
    assert choose_checkpoint(run, "best") == run.best
    assert choose_checkpoint(run, "last") == run.last
    (run.root / "other.keras").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert choose_checkpoint(run, "other.keras") == run.root / "other.keras"  # from the run
    with pytest.raises(DlsuiteInputError, match="missing.keras: checkpoint not found"):
        choose_checkpoint(run, "missing.keras")
    # another kind of file (Keras' answer was a paragraph on SavedModels) and a folder
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DlsuiteInputError, match=r"notes.txt: not a Keras checkpoint \(weights "
                       r"names a .keras file"):
        choose_checkpoint(run, "notes.txt")
    with pytest.raises(DlsuiteInputError, match="checkpoints: is a folder, not a checkpoint"):
        choose_checkpoint(run, str(run.checkpoints))
    (tmp_path / "legacy.h5").write_bytes(b"h")
    assert choose_checkpoint(run, "legacy.h5") == Path("legacy.h5")
