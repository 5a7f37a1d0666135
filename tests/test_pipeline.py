"""Training input pipeline: batches from all layouts, time windows, seeds,
deterministic validation, errors naming files, a real Keras fit on the datasets."""

import logging

import numpy as np
import pytest
import tifffile

from dlsuite.config import parse_config
from dlsuite.data.pipeline import build_datasets, grid_positions, make_normalizer
from dlsuite.data.windows import window_indices
from dlsuite.errors import DataError
from dlsuite.registry import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


def blobs(shape, seed, n=6, first_id=300):
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint32)
    for k in range(n):
        y, x = rng.integers(6, shape[0] - 6), rng.integers(6, shape[1] - 6)
        lab[y - 5:y + 5, x - 5:x + 5] = first_id + k
    return lab


def write_frames(root, n=3, shape=(70, 80), seed=0, label_dtype=np.uint16):
    (root / "inputs").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        lab = blobs(shape, seed * 100 + i)
        img = (lab > 0) * 2000 + rng.integers(0, 500, shape)
        tifffile.imwrite(root / "inputs" / f"raw_{i:03d}.tif", img.astype(np.uint16))
        tifffile.imwrite(root / "labels" / f"instance_ids_{i:03d}.tif", lab.astype(label_dtype))
    return root


def write_coded_video(root, name="vid", frames=5, size=32):
    """Frame t has constant intensity t and a foreground stripe at rows 4t..4t+3."""
    (root / "inputs").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    img = np.zeros((frames, size, size), np.float32)
    lab = np.zeros((frames, size, size), np.uint16)
    for t in range(frames):
        img[t] = t
        lab[t, 4 * t:4 * t + 4] = 1
    tifffile.imwrite(root / "inputs" / f"{name}.tif", img, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(root / "labels" / f"{name}.tif", lab, imagej=True, metadata={"axes": "TYX"})
    return root


def config(registry, train, val=None, seed=0, **datagen):
    base = {"patch_size": [32, 32], "batch_size": 2, "patches_per_image": 2}
    base.update(datagen)
    data = {"train": str(train)}
    if val is not None:
        data["val"] = str(val)
    return parse_config({"seed": seed, "data": data, "datagen": base}, registry, check_paths=False).config


def batches(ds, n):
    return [(x.numpy(), y.numpy()) for x, y in ds.take(n)]


def test_2d_batches_shapes_dtypes(registry, tmp_path):
    train = write_frames(tmp_path / "train")
    cfg = config(registry, train, target={"name": "weight_map"},
                 augmentation=[{"name": "affine"}, {"name": "flip"}, {"name": "noise"}])
    data = build_datasets(cfg, registry, temporal=False)
    assert data.n_classes == 2 and data.target_channels == ("class", "weight")
    assert data.steps_per_epoch == 1 and data.val is None and data.validation_steps is None
    for x, y in batches(data.train, 3):
        assert x.shape == (4, 32, 32, 1) and x.dtype == np.float32
        assert y.shape == (4, 32, 32, 2) and y.dtype == np.float32
        assert set(np.unique(y[..., 0])) <= {0.0, 1.0}
        np.testing.assert_allclose(y[..., 1].mean(axis=(1, 2)), 1.0, atol=1e-4)
        assert np.isfinite(x).all()


def test_foreground_sampling_through_pipeline(registry, tmp_path):
    train = write_frames(tmp_path / "train", shape=(120, 120))
    fg = build_datasets(config(registry, train, patch_size=[16, 16]), registry, temporal=False)
    un = build_datasets(config(registry, train, patch_size=[16, 16],
                               sampling={"name": "uniform"}), registry, temporal=False)
    centre = lambda ds: np.mean([y[:, 8, 8, 0].mean() for _, y in batches(ds, 25)])  # noqa
    assert centre(fg.train) > 0.99
    assert centre(un.train) < 0.3


def test_every_row_is_real_data(registry, tmp_path):
    # one image, batch_size 3: the original left uninitialised rows; here all rows are samples
    train = write_frames(tmp_path / "train", n=1)
    cfg = config(registry, train, batch_size=3, patches_per_image=1,
                 normalization={"name": "none"}, sampling={"name": "uniform"})
    raw = tifffile.imread(train / "inputs" / "raw_000.tif").astype(np.float32)
    values = set(np.unique(raw).tolist())
    (x, y), = batches(build_datasets(cfg, registry, temporal=False).train, 1)
    assert x.shape[0] == 3
    for row in x:
        assert set(np.unique(row).tolist()) <= values


def test_same_seed_same_batches_different_seed_different(registry, tmp_path):
    train = write_frames(tmp_path / "train")
    aug = [{"name": "affine"}, {"name": "flip"}, {"name": "intensity"}, {"name": "noise"}]
    a = batches(build_datasets(config(registry, train, augmentation=aug, seed=1), registry,
                               temporal=False).train, 3)
    b = batches(build_datasets(config(registry, train, augmentation=aug, seed=1), registry,
                               temporal=False).train, 3)
    c = batches(build_datasets(config(registry, train, augmentation=aug, seed=2), registry,
                               temporal=False).train, 3)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not all(np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_validation_deterministic_and_covers_frames(registry, tmp_path):
    train = write_frames(tmp_path / "train")
    val = write_frames(tmp_path / "val", n=2, shape=(70, 80), seed=5)
    cfg = config(registry, train, val, augmentation=[{"name": "affine"}, {"name": "noise"}])
    data = build_datasets(cfg, registry, temporal=False)
    first = [(x.numpy(), y.numpy()) for x, y in data.val]
    second = [(x.numpy(), y.numpy()) for x, y in data.val]
    tiles = 2 * len(grid_positions(70, 32)) * len(grid_positions(80, 32))  # 2 * 3 * 3
    assert sum(x.shape[0] for x, _ in first) == tiles
    assert len(first) == data.validation_steps == int(np.ceil(tiles / 4))
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # no augmentation: the first tile is the top-left corner of the first image, normalised
    img = tifffile.imread(val / "inputs" / "raw_000.tif")
    norm = make_normalizer(cfg, registry)(img)
    np.testing.assert_allclose(first[0][0][0, ..., 0], norm[:32, :32], atol=1e-6)
    lab = tifffile.imread(val / "labels" / "instance_ids_000.tif")
    np.testing.assert_array_equal(first[0][1][0, ..., 0], lab[:32, :32] > 0)


def test_temporal_windows_any_annotated_frame(registry, tmp_path):
    T = 3
    train = write_coded_video(tmp_path / "train", frames=5)
    cfg = config(registry, train, normalization={"name": "none"}, batch_size=1,
                 patches_per_image=4)
    data = build_datasets(cfg, registry, temporal=True, time_windows=T)
    seen = set()
    for x, y in batches(data.train, 20):
        assert x.shape == (4, T, 32, 32, 1) and y.shape == (4, 32, 32, 1)
        for b in range(4):
            window = [int(round(v)) for v in x[b, :, 0, 0, 0]]
            t = window[-1]
            assert window == window_indices(t, T)
            rows = np.flatnonzero(y[b, :, 0, 0] > 0)  # target = labels of frame t
            np.testing.assert_array_equal(rows, np.arange(4 * t, 4 * t + 4))
            seen.add(t)
    assert seen == {0, 1, 2, 3, 4}  # first (t=0, fully mirrored), t=1, T-1 and the last frame
    assert window_indices(0, T) == [0, 0, 0] and window_indices(1, T) == [1, 0, 1]


def test_temporal_model_params_give_time_windows(registry, tmp_path):
    train = write_coded_video(tmp_path / "train", frames=4)
    cfg = parse_config({"data": {"train": str(train)}, "model": {"name": "unet"},
                        "datagen": {"patch_size": [32, 32], "batch_size": 1}},
                       registry, check_paths=False).config
    import attrs

    @attrs.frozen
    class P:
        time_windows: int = 2

    cfg = attrs.evolve(cfg, model=attrs.evolve(cfg.model, params=P()))
    x, _ = batches(build_datasets(cfg, registry, temporal=True).train, 1)[0]
    assert x.shape == (1, 2, 32, 32, 1)


def test_ctc_only_annotated_frames_are_targets(registry, tmp_path):
    root = tmp_path / "ctc"
    (root / "01").mkdir(parents=True)
    (root / "01_GT" / "SEG").mkdir(parents=True)
    for t in range(6):
        tifffile.imwrite(root / "01" / f"t{t:03d}.tif", np.full((32, 32), t * 100, np.uint16))
    for t in (0, 3, 5):
        lab = np.zeros((32, 32), np.uint16)
        lab[4 * t:4 * t + 4] = 700
        tifffile.imwrite(root / "01_GT" / "SEG" / f"man_seg{t:03d}.tif", lab)
    cfg = config(registry, root, normalization={"name": "none"}, batch_size=1,
                 patches_per_image=8)
    seen = set()
    for x, y in batches(build_datasets(cfg, registry, temporal=True, time_windows=2).train, 8):
        for b in range(8):
            t = int(round(x[b, -1, 0, 0, 0] / 100))
            rows = np.flatnonzero(y[b, :, 0, 0] > 0)
            np.testing.assert_array_equal(rows, np.arange(4 * t, 4 * t + 4))
            seen.add(t)
    assert seen == {0, 3, 5}
    # 2D model on the same sequence: x is (B, h, w, 1)
    x, _ = batches(build_datasets(cfg, registry, temporal=False).train, 1)[0]
    assert x.shape == (8, 32, 32, 1)


def test_small_images_padded_with_one_warning(registry, tmp_path, caplog):
    train = write_frames(tmp_path / "train", n=2, shape=(20, 24))
    cfg = config(registry, train, target={"name": "contours"})
    with caplog.at_level(logging.WARNING, logger="dlsuite.data"):
        data = build_datasets(cfg, registry, temporal=False)
    # one dlsuite warning naming the folder, not a Python UserWarning
    padded = [r for r in caplog.records if "reflect-padded" in r.getMessage()]
    assert [r.name for r in padded] == ["dlsuite.data"]
    messages = [padded[0].getMessage()]
    assert messages[0].startswith(f"{train}: 2 image(s)")
    assert "raw_000.tif" in messages[0] and "raw_001.tif" in messages[0]
    x, y = batches(data.train, 1)[0]
    assert x.shape == (4, 32, 32, 1) and y.shape == (4, 32, 32, 1) and data.n_classes == 3


def test_float_labels_error_names_file(registry, tmp_path):
    """Whole-number float labels train; a float label that is not a whole number is refused
    naming its file."""
    train = write_frames(tmp_path / "train", n=1, label_dtype=np.float32)
    build_datasets(config(registry, train), registry, temporal=False)
    path = train / "labels" / "instance_ids_000.tif"
    labels = tifffile.imread(path)
    labels[labels > 0] += 0.25
    tifffile.imwrite(path, labels)
    with pytest.raises(DataError, match="instance_ids_000.tif: float labels .* not a whole"):
        build_datasets(config(registry, train), registry, temporal=False)


def test_shape_mismatch_error_names_file(registry, tmp_path):
    train = write_frames(tmp_path / "train", n=2)
    tifffile.imwrite(train / "labels" / "instance_ids_001.tif", np.zeros((10, 10), np.uint16))
    with pytest.raises(DataError, match="instance_ids_001.tif"):
        build_datasets(config(registry, train), registry, temporal=False)


def test_empty_dataset_error_names_folder(registry, tmp_path):
    (tmp_path / "train" / "inputs").mkdir(parents=True)
    (tmp_path / "train" / "labels").mkdir(parents=True)
    with pytest.raises(DataError, match="train"):
        build_datasets(config(registry, tmp_path / "train"), registry, temporal=False)


def test_unannotated_ctc_is_empty(registry, tmp_path):
    root = tmp_path / "ctc"
    (root / "01").mkdir(parents=True)
    (root / "01_GT" / "SEG").mkdir(parents=True)
    tifffile.imwrite(root / "01" / "t000.tif", np.zeros((32, 32), np.uint16))
    with pytest.raises(DataError):
        build_datasets(config(registry, root), registry, temporal=False)


def test_keras_fit_on_the_datasets(registry, tmp_path):
    import keras

    train = write_frames(tmp_path / "train")
    val = write_frames(tmp_path / "val", n=1, seed=3)
    cfg = config(registry, train, val, target={"name": "contours"},
                 augmentation=[{"name": "flip"}])
    data = build_datasets(cfg, registry, temporal=False)
    model = keras.Sequential([keras.Input((32, 32, 1)),
                              keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                              keras.layers.Conv2D(data.n_classes, 1)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(data.train, epochs=2, steps_per_epoch=2, validation_data=data.val,
                        validation_steps=data.validation_steps, shuffle=False, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()


def test_temporal_validation_on_frames_clips(registry, tmp_path):
    """Validation clips (frames layout, T-frame input, 2D label of the last frame): the window
    ending at the last frame is the clip itself."""
    train = write_coded_video(tmp_path / "train", frames=4)
    val = tmp_path / "val"
    (val / "inputs").mkdir(parents=True)
    (val / "labels").mkdir(parents=True)
    clip = np.stack([np.full((32, 32), t, np.float32) for t in (5, 6, 7)])
    lab = np.zeros((32, 32), np.uint16)
    lab[:8] = 1
    tifffile.imwrite(val / "inputs" / "raw_000.tif", clip, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(val / "labels" / "instance_ids_000.tif", lab)
    cfg = config(registry, train, val, normalization={"name": "none"}, batch_size=1)
    data = build_datasets(cfg, registry, temporal=True, time_windows=3)
    (x, y), = [(a.numpy(), b.numpy()) for a, b in data.val]
    assert x.shape == (1, 3, 32, 32, 1) and data.validation_steps == 1
    np.testing.assert_array_equal(x[0, :, 0, 0, 0], [5, 6, 7])
    np.testing.assert_array_equal(y[0, :, 0, 0], lab[:, 0] > 0)


def test_cache_off_gives_the_same_batches(registry, tmp_path):
    train = write_frames(tmp_path / "train")
    aug = [{"name": "affine"}, {"name": "flip"}]
    a = batches(build_datasets(config(registry, train, augmentation=aug), registry,
                               temporal=False).train, 2)
    b = batches(build_datasets(config(registry, train, augmentation=aug, cache=False), registry,
                               temporal=False).train, 2)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_imports_do_not_load_tensorflow():
    import subprocess
    import sys

    code = ("import sys, dlsuite.data.pipeline, dlsuite_plugins.datagen.plugin, "
            "dlsuite_plugins.datagen.params; "
            "from dlsuite.registry import Registry; Registry.from_entry_points(); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("target", ["binary", "contours", "weight_map"])
def test_augmented_patches_stay_aligned(registry, tmp_path, target):
    """The image is built from the labels; after affine+flip through the whole pipeline the
    image (>0.5) still equals the target's cell classes up to a few interpolation pixels."""
    root = tmp_path / "train"
    (root / "inputs").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    lab = blobs((90, 100), 1, n=10, first_id=70000).astype(np.uint32)
    tifffile.imwrite(root / "inputs" / "raw_000.tif", (lab > 0).astype(np.float32))
    tifffile.imwrite(root / "labels" / "instance_ids_000.tif", lab)
    cfg = config(registry, root, normalization={"name": "none"}, target={"name": target},
                 augmentation=[{"name": "affine", "rotation": 45.0, "zoom": 0.3},
                               {"name": "flip"}])
    for x, y in batches(build_datasets(cfg, registry, temporal=False).train, 5):
        for b in range(x.shape[0]):
            cells = y[b, ..., 0] > 0
            assert ((x[b, ..., 0] > 0.5) != cells).sum() <= 0.02 * cells.size
            assert cells.any()  # foreground sampling + alignment
