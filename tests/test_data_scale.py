"""``data.scale``: images resized for the model in training and prediction, labels by nearest
neighbour, predictions resized back to each input's own size; bad values refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from dlsuite.data.resize import resize_frames, resize_labels, resize_outputs_back, scaled_size
from dlsuite.registry import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


def test_labels_keep_their_ids_and_dtype():
    labels = np.zeros((2, 40, 30), np.uint16)
    labels[:, 4:20, 2:14] = 7
    labels[1, 22:38, 16:28] = 300
    small = resize_labels(labels, 0.5)
    assert small.shape == (2, 20, 15) and small.dtype == np.uint16
    assert set(np.unique(small)) == {0, 7, 300}
    assert (small[0] == 300).sum() == 0
    big = resize_labels(labels, 2.0)
    assert big.shape == (2, 80, 60) and set(np.unique(big)) == {0, 7, 300}
    assert resize_labels(labels, 1) is labels


@pytest.mark.parametrize("scale", [0.5, 0.25])
def test_shrunk_labels_stay_centred_on_their_shrunk_image(scale):
    """Objects with edges at every parity: the shrunk label of each sits where the shrunk
    image of it sits (no half-pixel shift, as a fixed corner of each footprint gives), and
    keeps its area; an edge through a footprint goes either way in a checkerboard (always
    one corner, as nearest neighbour did, is off by 0.26 resized pixels at 0.5, 0.12 at 0.25)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    labels = np.zeros((200, 200), np.uint16)
    for i in range(48):  # disjoint rectangles on a 6 x 8 grid, random edges
        y, x = 33 * (i // 8) + int(rng.integers(0, 4)), 25 * (i % 8) + int(rng.integers(0, 4))
        labels[y:y + int(rng.integers(12, 28)), x:x + int(rng.integers(10, 20))] = i + 1
    small = resize_labels(labels, scale)
    offsets, ratios = [], []
    for i in range(1, 49):
        image = resize_frames((labels == i).astype(np.float32), scale)
        offsets.append(np.subtract(ndi.center_of_mass(small == i), ndi.center_of_mass(image)))
        ratios.append((small == i).sum() / ((labels == i).sum() * scale ** 2))
    assert np.abs(np.mean(offsets, axis=0)).max() < 0.06, np.mean(offsets, axis=0)
    assert abs(np.mean(ratios) - 1) < 0.05
    # a horizontal edge through every footprint row: half of the columns take each side
    edge = np.zeros((8, 8), np.uint8)
    edge[3:] = 1
    assert resize_labels(edge, 0.5)[1].tolist() == [1, 0, 1, 0]
    assert resize_labels(edge, 0.5)[2].tolist() == [1, 1, 1, 1]


def test_frames_and_outputs_round_trip_sizes():
    video = np.random.default_rng(0).random((3, 51, 64)).astype(np.float32)
    small = resize_frames(video, 0.5)
    assert small.shape == (3,) + scaled_size(51, 64, 0.5) == (3, 26, 32)
    assert small.dtype == np.float32
    # a smooth ramp survives the round trip
    ramp = np.broadcast_to(np.linspace(0, 1, 64, dtype=np.float32), (51, 64))
    back = resize_outputs_back(resize_frames(ramp, 0.5)[..., None], (51, 64))
    assert back.shape == (51, 64, 1)
    assert np.abs(back[..., 0] - ramp)[:, 4:-4].max() < 0.02


def test_outputs_back_keeps_probabilities_summing_to_one():
    p = np.random.default_rng(1).random((2, 10, 12, 3)).astype(np.float32)
    p /= p.sum(-1, keepdims=True)
    back = resize_outputs_back(p, (25, 31))
    assert back.shape == (2, 25, 31, 3)
    np.testing.assert_allclose(back.sum(-1), 1.0, atol=1e-5)


def _frames(tmp_path, size=(48, 64)):
    root = tmp_path / "frames"
    for k in range(2):
        image = np.zeros(size, np.uint16)
        labels = np.zeros(size, np.uint16)
        labels[8:24, 8:30] = 1
        labels[26:44, 30:60] = 2
        image[labels > 0] = 1000
        for sub, name, arr in (("inputs", f"raw_{k}.tif", image),
                               ("labels", f"instance_ids_{k}.tif", labels)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(root / sub / name, arr)
    return root


def test_training_samples_are_resized(tmp_path):
    from dlsuite.data.pipeline import PatchSource

    root = _frames(tmp_path)
    src = PatchSource(str(root), "frames", lambda x: x.astype(np.float32) / 1000, (16, 16),
                      scale=0.5)
    prepared = src.get(0)
    assert prepared.image.shape == (1, 24, 32) and prepared.labels.shape == (1, 24, 32)
    assert set(np.unique(prepared.labels)) == {0, 1, 2}
    # the resized image still marks exactly the resized objects (both come from one grid)
    inside = prepared.labels[0] > 0
    assert prepared.image[0][inside].mean() > 0.9 and prepared.image[0][~inside].mean() < 0.2


def test_prediction_is_resized_back(threshold_model):
    import keras

    from dlsuite.inference import model_tile_settings
    from dlsuite.steps import probabilities

    model = keras.models.load_model(threshold_model)
    tiles = model_tile_settings(model, tile_size=None, halo=0)
    image = np.zeros((50, 70), np.float32)
    image[10:30, 20:60] = 1.0
    full = probabilities(model, image, tiles, None)
    half = probabilities(model, image, tiles, None, scale=0.5)
    assert half.shape == full.shape == (50, 70, 2)
    # the object is found at its original place and size (up to the resizing's border)
    agree = (half.argmax(-1) == full.argmax(-1)).mean()
    assert agree > 0.97


@pytest.mark.parametrize("value", [0, -1, 5, "big"])
def test_bad_scale_is_refused_naming_the_key(tmp_path, cli, value):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": {"scale": value}}))
    result = cli("config", "validate", str(path))
    assert result.returncode == 2
    assert "$.data.scale" in result.stderr + result.stdout


def test_bioimageio_export_refuses_a_scaled_run(registry):
    from dlsuite.config import parse_config
    from dlsuite.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\$\.export\.formats\[1\].*data\.scale 0\.5"):
        parse_config({"data": {"scale": 0.5}, "export": {"formats": ["keras", "bioimageio"]}},
                     registry, check_paths=False)
    ok = parse_config({"data": {"scale": 0.5}, "export": {"formats": ["keras"]}}, registry,
                      check_paths=False)
    assert ok.config.data.scale == 0.5


@pytest.fixture(scope="module")
def scaled_run(tmp_path_factory, registry):
    """A tiny trained run with data.scale 0.5 on 64x64 synthetic frames."""
    from dlsuite import pipeline
    from dlsuite.config import parse_config
    from dlsuite.data.example import write_example_frames

    tmp = tmp_path_factory.mktemp("scaled")
    frames = write_example_frames(tmp / "data", n=2, size=64, seed=3)
    cfg = {"name": "half", "output_dir": str(tmp / "out"), "seed": 1,
           "data": {"train": str(frames["frames"]), "val": str(frames["frames"]),
                    "scale": 0.5},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [16, 16], "batch_size": 2, "steps_per_epoch": 1},
           "train": {"epochs": 1}, "inference": {"tile_size": None},
           "wandb": {"mode": "disabled"}}
    result = pipeline.run(parse_config(cfg, registry), quiet=True, registry=registry)
    return result.run_dir, frames


@pytest.mark.slow
def test_scaled_run_predicts_at_the_input_size_and_exports_carry_the_scale(scaled_run, cli,
                                                                          tmp_path):
    """predict writes labels at each input's own size; a SavedModel export predicts the same
    labels (the scale travels in its embedded config); bioimageio and block-wise
    prediction are refused with exit 2 before anything is written."""
    run_dir, frames = scaled_run
    image = frames["inputs"][0]
    out = tmp_path / "pred"
    result = cli("predict", str(run_dir), str(image), "-o", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    labels = tifffile.imread(next((out / "labels").glob("*.tif")))
    assert labels.shape == tifffile.imread(image).shape == (64, 64)

    saved = tmp_path / "m.savedmodel"
    exported = cli("export", str(run_dir), "--format", "savedmodel", "-o", str(saved))
    assert exported.returncode == 0 and "data.scale 0.5" in exported.stdout + exported.stderr
    out2 = tmp_path / "pred2"
    result = cli("predict", str(saved), str(image), "-o", str(out2), "--quiet")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(tifffile.imread(next((out2 / "labels").glob("*.tif"))),
                                  labels)

    bio = tmp_path / "m.zip"
    refused = cli("export", str(run_dir), "--format", "bioimageio", "-o", str(bio))
    assert refused.returncode == 2 and "data.scale 0.5" in refused.stderr
    assert not bio.exists()
    blocks = tmp_path / "blocks"
    refused = cli("predict", str(run_dir), str(image), "-o", str(blocks), "--block-size", "32")
    assert refused.returncode == 2 and "data.scale 0.5" in refused.stderr
    assert not blocks.exists()
