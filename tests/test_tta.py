"""Test-time augmentation (``inference.tta``): the model's outputs averaged over the 8 flips
and quarter turns of each frame, each mapped back; on by config for prediction, tuning and
``dlsuite predict``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from dlsuite.inference import predict_video
from dlsuite.inference.tta import DIHEDRAL, dihedral_average


def test_every_output_is_mapped_back_on_non_square_frames():
    video = np.random.default_rng(0).random((2, 12, 20)).astype(np.float32)
    seen = []

    def echo(v):  # an output that is the input itself: every symmetry must be undone
        seen.append(v.shape)
        return v[..., None] * np.float32(2)

    out = dihedral_average(echo, video)
    assert out.shape == (2, 12, 20, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], 2 * video, rtol=1e-6)
    assert len(seen) == len(DIHEDRAL) == 8
    assert seen.count((2, 20, 12)) == 4  # quarter turns swap height and width


def _asymmetric_model():
    """A real Keras model whose 3x3 kernels have no symmetry, so its output on a turned
    image differs from the turned output."""
    import keras

    keras.utils.set_random_seed(4)
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same")(x)
    return keras.Model(inputs, keras.layers.Softmax()(x))


def test_tta_is_the_mean_of_the_turned_and_flipped_predictions():
    model = _asymmetric_model()
    video = np.random.default_rng(1).random((1, 24, 32)).astype(np.float32)
    kw = dict(tile_size=None, halo=0, batch_size=1, temporal=False)
    plain = predict_video(model, video, **kw)
    tta = predict_video(model, video, tta=True, **kw)
    manual = np.zeros_like(plain)
    for turns, flip in DIHEDRAL:
        x = np.rot90(video, turns, axes=(1, 2))
        x = x[:, :, ::-1] if flip else x
        p = predict_video(model, np.ascontiguousarray(x), **kw)
        p = p[:, :, ::-1] if flip else p
        manual += np.rot90(p, -turns, axes=(1, 2))
    np.testing.assert_allclose(tta, manual / 8, atol=1e-6)
    np.testing.assert_allclose(tta.sum(-1), 1.0, atol=1e-5)
    assert np.abs(tta - plain).max() > 1e-3  # the augmentation changed something


@pytest.mark.slow
def test_run_config_turns_tta_on_for_prediction_and_records_it(tmp_path, cli):
    """A tiny trained run predicted with ``--set inference.tta=true``: ``predict.json``
    records it and the probabilities are the dihedral mean of the one-pass prediction the
    run's own predictor gives."""
    from dlsuite import pipeline
    from dlsuite.config import parse_config
    from dlsuite.data.example import write_example_frames
    from dlsuite.predict import open_run
    from dlsuite.registry import Registry

    registry = Registry.from_entry_points()
    frames = write_example_frames(tmp_path / "data", n=2, size=48, seed=3)
    cfg = {"name": "tta", "output_dir": str(tmp_path / "out"), "seed": 1,
           "data": {"train": str(frames["frames"]), "val": str(frames["frames"])},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [16, 16], "batch_size": 2, "steps_per_epoch": 1},
           "train": {"epochs": 1}, "inference": {"tile_size": None},
           "evaluation": {"tune_postprocess": False}, "wandb": {"mode": "disabled"}}
    run_dir = pipeline.run(parse_config(cfg, registry), quiet=True, registry=registry).run_dir
    image = frames["inputs"][0]
    out = tmp_path / "pred"
    result = cli("predict", str(run_dir), str(image), "-o", str(out), "--quiet",
                 "--set", "inference.tta=true")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "predict.json").read_text())["tiles"]["tta"] is True
    probs = np.moveaxis(tifffile.imread(next((out / "probabilities").glob("*.tif"))), 0, -1)

    pred = open_run(run_dir, registry=registry)
    assert pred.tiles.tta is False
    x = pred.normalize(tifffile.imread(image)[None].astype(np.float32))
    expected = dihedral_average(lambda v: predict_video(pred.model, v, **pred.tiles.kwargs()),
                                x)[0]
    assert probs.shape == expected.shape
    np.testing.assert_allclose(probs, expected, atol=1e-5)
