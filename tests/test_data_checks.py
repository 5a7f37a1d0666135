"""Data that would poison training is caught before it starts: unreadable or truncated files in
train, val and test, NaN/Inf pixels (refused naming the file; masked only when the config
opts in), negative label ids are errors; constant images and label images without objects are
warnings; colour files and stacks say how they are read. Normalizers are NaN-safe. Real files,
real CLI subprocesses."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from dlsuite.data.checks import check_array, check_pixels
from dlsuite.data.example import write_example_frames, write_example_videos
from dlsuite.data.io import read_image, write_tiff

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _frames(tmp_path: Path, n: int = 3) -> dict:
    return write_example_frames(tmp_path, n=n, size=32)


def _truncate(path: Path, keep: float = 0.8) -> None:
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(int(size * keep))


def test_nan_pixel_is_refused_naming_the_file_and_the_pixel(tmp_path):
    ex = _frames(tmp_path)
    image = read_image(ex["inputs"][1]).astype(np.float32)
    image[3, 7] = np.nan
    write_tiff(ex["inputs"][1], image)
    found = check_pixels(ex["frames"], training=True)
    assert len(found.errors) == 1, found.errors
    assert str(ex["inputs"][1]) in found.errors[0] and "y=3, x=7" in found.errors[0]
    assert "nonfinite_pixels" in found.errors[0]
    # masking is an opt-in: a warning instead of an error
    masked = check_pixels(ex["frames"], training=True, nonfinite="mask")
    assert not masked.errors and any("masked" in w for w in masked.warnings), masked.warnings


def test_an_image_of_nan_only_says_so_without_numpys_warning(tmp_path):
    """An image of NaN only is refused as NaN pixels; NumPy's "All-NaN slice encountered"
    (from the constant-image check) leaked before the error as a dlsuite warning."""
    import warnings

    from dlsuite.data.checks import check_array

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        found = check_array(np.full((2, 8, 8), np.nan, np.float32), tmp_path / "nan.tif")
    assert len(found.errors) == 1 and "NaN/Inf pixel(s)" in found.errors[0]


def test_inf_in_a_video_names_the_frame(tmp_path):
    videos = write_example_videos(tmp_path, n_videos=1, frames=3, size=32)["videos"]
    path = videos / "inputs" / "cells_00.tif"
    video = read_image(path).astype(np.float32)
    video[2, 1, 4] = np.inf
    write_tiff(path, video)
    (error,) = check_pixels(videos).errors
    assert str(path) in error and "frame 2, y=1, x=4" in error


def test_truncated_file_whose_header_reads_is_an_error(tmp_path):
    from dlsuite.data.layouts import check_dataset

    ex = _frames(tmp_path)
    import tifffile  # a plain TIFF: header first, pixels after it

    big = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    tifffile.imwrite(ex["inputs"][0], big)
    write_tiff(ex["labels"][0], (big > 2000).astype(np.uint16))
    _truncate(ex["inputs"][0])
    assert check_dataset(ex["frames"]) == []  # the header alone looks fine
    (error,) = check_pixels(ex["frames"]).errors
    assert error.startswith(f"{ex['inputs'][0]}: unreadable image"), error


def test_imagej_tiff_cut_short_is_reported_as_damaged_not_misread(tmp_path):
    from dlsuite.data.io import read_info

    path = tmp_path / "video.tif"
    write_tiff(path, np.zeros((4, 32, 32), np.uint16))
    _truncate(path, 0.6)
    from dlsuite.errors import DataError

    with pytest.raises(DataError, match="damaged or truncated TIFF"):
        read_info(path)


def test_negative_label_ids_are_an_error(tmp_path):
    ex = _frames(tmp_path)
    labels = read_image(ex["labels"][2]).astype(np.int16)
    labels[0, 0] = -1
    write_tiff(ex["labels"][2], labels)
    (error,) = check_pixels(ex["frames"]).errors
    assert str(ex["labels"][2]) in error and "negative label ids (smallest -1)" in error


def test_constant_image_and_empty_labels_are_warnings(tmp_path):
    ex = _frames(tmp_path, n=4)
    write_tiff(ex["inputs"][0], np.full((32, 32), 7, np.uint16))
    write_tiff(ex["labels"][1], np.zeros((32, 32), np.uint16))
    found = check_pixels(ex["frames"], training=True)
    assert not found.errors
    text = "\n".join(found.warnings)
    assert f"{ex['inputs'][0]}: constant image (every pixel 7)" in text
    assert f"{ex['labels'][1]}: label image(s) without any object (1 of 4)" in text
    # not a training set: empty labels are not worth a warning
    assert not any("without any object" in w for w in check_pixels(ex["frames"]).warnings)


def test_all_background_training_labels_warn_that_the_sampler_has_nothing_to_aim_at(tmp_path):
    ex = _frames(tmp_path)
    for path in ex["labels"]:
        write_tiff(path, np.zeros((32, 32), np.uint16))
    (warning,) = check_pixels(ex["frames"], training=True).warnings
    assert "none of the 3 label images holds an object" in warning
    assert "nothing to aim at" in warning


def test_a_binary_mask_given_as_instance_labels_is_a_warning_naming_it(tmp_path):
    ex = write_example_frames(tmp_path, n=3, size=64)
    labels = read_image(ex["labels"][1])
    assert len(np.unique(labels)) > 2  # instance labels: no warning
    assert not check_pixels(ex["frames"]).warnings
    write_tiff(ex["labels"][1], np.where(labels > 0, 255, 0).astype(np.uint8))
    (warning,) = check_pixels(ex["frames"]).warnings  # every split, not only training
    assert warning.startswith(f"{ex['labels'][1]}: one object id in 2+ separate regions")
    assert "binary mask" in warning and "skimage.measure.label" in warning
    # one cell with a stray speck of its id is instance labels, not a mask
    one = np.zeros((64, 64), np.uint16)
    one[4:14, 4:14] = 3
    one[60, 60] = 3
    write_tiff(ex["labels"][1], one)
    assert not check_pixels(ex["frames"]).warnings


@pytest.mark.parametrize("val, test, says", [
    ("train", None, "data.train, data.val are one folder ({train}): validation (best "
                    "checkpoint, early stopping, post-processing tuning) sees the training "
                    "images: they measure the fit"),
    ("train", "train", "data.train, data.val, data.test are one folder ({train}): validation"),
    ("other", "train", "data.train, data.test are one folder ({train}): the test scores are on "
                       "training images"),
    ("other", "other", "data.val, data.test are one folder ({other}): the post-processing is "
                       "tuned on the test images: the test scores are optimistic"),
    ("other", None, None)])
def test_a_folder_in_two_roles_says_what_the_scores_then_measure(tmp_path, caplog, val, test,
                                                                 says):
    from dlsuite.config import parse_config
    from dlsuite.preflight import preflight_problems
    from dlsuite.registry import get_registry

    folders = {"train": _frames(tmp_path / "a")["frames"],
               "other": _frames(tmp_path / "b")["frames"]}
    data = {"train": str(folders["train"]), "val": str(folders[val]), "layout": "frames",
            "test": None if test is None else str(folders[test])}
    loaded = parse_config({"data": data, "datagen": {"patch_size": [32, 32], "batch_size": 2}},
                          get_registry())
    with caplog.at_level("INFO", logger="dlsuite"):
        assert preflight_problems(loaded.config, get_registry()) == []
    lines = [r.getMessage() for r in caplog.records if "one folder" in r.getMessage()]
    if says is None:
        assert lines == []
    else:
        (line,) = lines
        assert line.startswith(says.format(train=folders["train"].resolve(),
                                           other=folders["other"].resolve())), line


def test_colour_and_stacked_inputs_say_how_they_are_read(tmp_path):
    import imageio.v3 as iio

    ex = _frames(tmp_path)
    grey = (read_image(ex["inputs"][0]) // 256).astype(np.uint8)
    ex["inputs"][0].unlink()
    iio.imwrite(ex["inputs"][0].with_suffix(".png"), np.stack([grey] * 3, axis=-1))
    clip = np.stack([read_image(ex["inputs"][1])] * 3)
    write_tiff(ex["inputs"][1], clip)  # a 3-frame clip whose label is its last frame's
    found = check_pixels(ex["frames"])
    assert not found.errors, found.errors
    notes = "\n".join(found.notes)
    assert "raw_000.png: stored as (32, 32, 3); its 3 colour channels are read as one grey" \
        in notes
    assert "raw_001.tif: a 3-frame stack in the frames layout: read as a clip" in notes


def test_true_colour_input_is_refused_naming_the_file(tmp_path):
    import imageio.v3 as iio

    ex = _frames(tmp_path)
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    ex["inputs"][0].unlink()
    iio.imwrite(ex["inputs"][0].with_suffix(".png"), rgb)
    (error,) = check_pixels(ex["frames"]).errors
    assert "raw_000.png: colour/multi-channel images are not supported" in error


def test_check_array_of_a_prediction_input():
    video = np.ones((3, 8, 8), np.float32)
    video[1] = 5.0  # frames 0 and 2 vary below, frame 1 is constant
    video[0, 0, 0] = video[2, 0, 0] = 2.0
    found = check_array(video, "in.tif")
    assert found.errors == [] and found.warnings == [
        "in.tif: constant frame(s) 1 (1 of 3): they carry no signal"]
    video[0, 1, 1] = np.nan
    assert "in.tif: 1 NaN/Inf pixel(s) (first at frame 0, y=1, x=1)" in \
        check_array(video, "in.tif").errors[0]


@pytest.mark.parametrize("name", ["percentile", "mean", "median", "none"])
def test_normalizers_are_nan_safe(name):
    from dlsuite.data.pipeline import make_normalizer
    from dlsuite.config import parse_config
    from dlsuite.registry import get_registry

    params = {"illumination_sigma": 2.0}
    cfg = parse_config({"datagen": {"normalization": {"name": name, **params}}},
                       check_paths=False).config
    normalize = make_normalizer(cfg, get_registry())
    rng = np.random.default_rng(0)
    image = rng.normal(1000, 50, (2, 24, 24)).astype(np.float32)
    clean = normalize(image.copy())
    image[0, 5, 5], image[1, 0, 0] = np.nan, -np.inf
    out = normalize(image)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out[0, 5, 5] == 0 and out[1, 0, 0] == 0
    # the other pixels come out (almost) as without the bad ones: statistics ignore them
    far = np.ones(out.shape, bool)
    far[0, 2:9, 2:9] = far[1, :4, :4] = False  # near the bad pixels the blur sees the fill
    assert np.allclose(out[far], clean[far], rtol=1e-3, atol=0.02)
    assert (normalize(np.full((6, 6), np.nan, np.float32)) == 0).all()


# --------------------------------------------------------------------------------------------
# at preflight: dlsuite run refuses before anything is written or TensorFlow is imported


def _run_config(tmp_path: Path, **data) -> Path:
    videos = write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32)["videos"]
    cfg = {"name": "checks", "output_dir": str(tmp_path / "run"),
           "data": {"train": str(videos), "val": str(videos), **data},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2},
           "train": {"epochs": 1}, "wandb": {"mode": "disabled"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _corrupt_copy(tmp_path: Path, how: str) -> Path:
    src = write_example_videos(tmp_path / "other", n_videos=2, frames=3, size=32)["videos"]  # >= batch_size
    path = src / "inputs" / "cells_00.tif"
    if how == "nan":
        video = read_image(path).astype(np.float32)
        video[1, 2, 3] = np.nan
        write_tiff(path, video)
    else:
        import tifffile

        tifffile.imwrite(path, np.zeros((3, 32, 32), np.uint16), photometric="minisblack")
        _truncate(path)
    return src


@pytest.mark.parametrize("key,how,needle", [
    ("train", "nan", "NaN/Inf pixel(s) (first at frame 1, y=2, x=3)"),
    ("test", "truncated", "damaged or truncated TIFF (invalid page offset"),
])
def test_run_refuses_poisoned_data_before_training(tmp_path, key, how, needle):
    bad = _corrupt_copy(tmp_path, how)
    config = _run_config(tmp_path)
    data = json.loads(config.read_text())
    data["data"][key] = str(bad)
    config.write_text(json.dumps(data))
    start = time.monotonic()
    proc = run_cli("run", str(config), "--quiet", timeout=120)
    assert proc.returncode == 2, proc.stderr
    text = " ".join(proc.stderr.split())
    assert f"$.data.{key}: {bad / 'inputs' / 'cells_00.tif'}: " in text and needle in text
    assert not (tmp_path / "run").exists()
    assert time.monotonic() - start < 60


def test_config_validate_reads_the_pixels_as_the_run_would(tmp_path):
    """config validate said "valid" for data the run then refused at once (negative label
    ids): it reads the pixels too, naming the file, without TensorFlow; --no-pixels skips
    that read."""
    config = _run_config(tmp_path)
    labels = Path(json.loads(config.read_text())["data"]["train"]) / "labels" / "cells_01.tif"
    video = read_image(labels).astype(np.int16)
    video[0, 0, 0] = -3
    write_tiff(labels, video)
    proc = run_cli("config", "validate", str(config))
    assert proc.returncode == 2, proc.stderr
    text = " ".join(proc.stderr.split())
    assert f"$.data.train: {labels}: negative label ids (smallest -3)" in text
    assert "pixels of" in text and "checked in" in text
    skipped = run_cli("config", "validate", str(config), "--no-pixels")
    assert skipped.returncode == 0 and "valid" in skipped.stdout, skipped.stderr


def test_nan_learning_rate_and_invalid_wandb_mode_are_refused_before_training(tmp_path):
    from dlsuite import api
    from dlsuite.errors import ConfigError

    data = json.loads(_run_config(tmp_path).read_text())
    data["optimizer"] = {"learning_rate": float("nan")}
    with pytest.raises(ConfigError) as info:
        api.train(data)
    assert info.value.problems == [("$.optimizer.learning_rate", "expected a finite number, got NaN")]
    data["optimizer"] = {"learning_rate": 0.0}
    with pytest.raises(ConfigError, match=r"\$.optimizer.learning_rate: must be > 0, got 0"):
        api.train(data)
    assert not (tmp_path / "run").exists()


def test_invalid_wandb_mode_is_one_clear_line(tmp_path):
    config = _run_config(tmp_path)
    proc = run_cli("train", str(config), env={"WANDB_MODE": "onlin"}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert ("$.wandb.mode: the environment variable WANDB_MODE='onlin', which overrides it, "
            "is not a W&B mode") in " ".join(proc.stderr.split())
    assert "pydantic" not in proc.stderr and "validation error" not in proc.stderr
    assert not (tmp_path / "run").exists()


def _real_set(root: Path, image: str, labels: str) -> Path:
    """The 40 annotated sets as a frames dataset at ``root``: ``image`` of each set as its
    input, ``labels`` as its label image (symlinks)."""
    (root / "inputs").mkdir(parents=True)
    (root / "labels").mkdir()
    for n in range(1, 41):
        folder = SHARED / "usiigaci_t98g_phc" / "annotated" / f"set{n}"
        os.symlink(folder / image, root / "inputs" / f"raw_{n:03d}{Path(image).suffix}")
        os.symlink(folder / labels, root / "labels" / f"instance_ids_{n:03d}{Path(labels).suffix}")
    return root


@pytest.mark.skipif(not (SHARED / "usiigaci_t98g_phc").is_dir(),
                    reason="real data ../shared/data/usiigaci_t98g_phc is absent")
def test_pixel_check_of_the_real_training_set_is_fast_and_clean(tmp_path):
    """The 40 annotated 1022x1024 phase-contrast images and their labels (80 files)."""
    found = check_pixels(_real_set(tmp_path / "real", "raw.tif", "instances_ids.png"),
                         training=True)
    assert found.errors == [] and found.warnings == [] and found.files == 80
    assert found.seconds < 30, found.seconds
    # inputs and labels swapped: every "label image" is refused as an intensity image
    swapped = _real_set(tmp_path / "swapped", "instances_ids.png", "raw.tif")
    errors = check_pixels(swapped, training=True).errors
    assert len(errors) == 40 and all("not instance labels" in e for e in errors), errors[:2]


def test_inputs_given_as_labels_are_refused_once_per_file_naming_it(tmp_path):
    """A label folder holding intensity images (inputs and labels swapped, raw frames
    exported as 'labels') trained on grey values as object ids; now an error naming the file
    (once for a video, not per frame), by config validate before anything runs."""
    ex = write_example_videos(tmp_path / "v", n_videos=2, frames=4, size=48)
    videos = ex["videos"]
    assert check_pixels(videos, training=True).errors == []  # the labels as written pass
    write_tiff(videos / "labels" / "cells_01.tif", read_image(videos / "inputs" / "cells_01.tif"))
    (error,) = check_pixels(videos, training=True).errors
    assert error.startswith(f"{videos / 'labels' / 'cells_01.tif'} (frame 0): not instance "
                            "labels: ")
    assert "it looks like an intensity image; are the inputs and labels swapped?" in error
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"name": "swapped", "output_dir": str(tmp_path / "run"),
                                  "data": {"train": str(videos), "val": str(videos)},
                                  "datagen": {"patch_size": [32, 32], "batch_size": 1},
                                  "wandb": {"mode": "disabled"}}))
    proc = run_cli("config", "validate", str(config))
    assert proc.returncode == 2 and "not instance labels" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# predict's inputs; the masking opt-in end to end


def _nan_inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "new"
    video = read_image(write_example_videos(tmp_path / "src", n_videos=1, frames=3, size=32)[
        "inputs"][0]).astype(np.float32)
    write_tiff(folder / "fine.tif", video)
    video[2, 4, 5] = np.nan
    write_tiff(folder / "holes.tif", video)
    return folder


def test_a_z_stack_input_says_its_planes_are_read_as_frames(tmp_path):
    """dlsuite segments 2D images and 2D+t videos: a ZYX stack given to predict is read as a
    video of its planes, and the check says so (a TYX video or a plain image: nothing)."""
    import tifffile

    from dlsuite.data.checks import check_inputs
    from dlsuite.predict import list_inputs

    planes = np.random.default_rng(0).integers(0, 4000, (3, 24, 24)).astype(np.uint16)
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "stack.tif", planes, metadata={"axes": "ZYX"})
    write_tiff(tmp_path / "in" / "video.tif", planes, axes="TYX")
    write_tiff(tmp_path / "in" / "image.tif", planes[0])
    found = check_inputs(list_inputs(tmp_path / "in"))
    assert found.notes == [f"{tmp_path / 'in' / 'stack.tif'}: stored as (3, 24, 24); its 3 Z "
                           "planes are read as the frames of a video (segmented plane by "
                           "plane; a temporal model sees them as time)"]


def test_predict_inputs_with_nan_are_refused_unless_masked(tmp_path):
    from dlsuite.data.checks import check_inputs
    from dlsuite.errors import DataError
    from dlsuite.predict import list_inputs

    items = list_inputs(_nan_inputs(tmp_path))
    with pytest.raises(DataError) as info:
        check_inputs(items)
    assert str(info.value).startswith(f"{tmp_path / 'new' / 'holes.tif'}: 1 NaN/Inf pixel(s) "
                                      "(first at frame 2, y=4, x=5)")
    assert check_inputs(items, "mask").errors == []


@pytest.mark.slow
def test_masked_nan_pixels_train_finite_and_predict(tmp_path):
    from dlsuite import api

    config = _run_config(tmp_path)
    data = json.loads(config.read_text())
    bad = _corrupt_copy(tmp_path, "nan")
    data["data"].update(train=str(bad), nonfinite_pixels="mask")
    data["datagen"].update(steps_per_epoch=2, batch_size=1)  # one training video
    data["train"]["tensorboard"] = {"enabled": False}
    result = api.train(data, quiet=True)
    assert all(np.isfinite(row["loss"]) for row in result.history), result.history
    proc = run_cli("predict", str(result.run_dir), str(_nan_inputs(tmp_path)), "-o",
                   str(tmp_path / "out"), "--quiet", timeout=600)
    assert proc.returncode == 0, proc.stderr
    import tifffile

    probs = tifffile.imread(tmp_path / "out" / "probabilities" / "holes.tif")  # (T, C, Y, X)
    assert np.isfinite(probs).all()
