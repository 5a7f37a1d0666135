"""``data.videos_csv``: a test set of 2D frames (``dlsuite prepare frames``) is rebuilt into its
videos, which the run predicts, tracks and scores as videos; a relation that does not fit the
test folder is refused at ``$.data.videos_csv`` with exit 2 before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from dlsuite.data.example import write_example_videos
from dlsuite.data.prepare import RELATION_CSV, videos_to_frames

N_VIDEOS, FRAMES = 2, 3


@pytest.fixture
def frames_from_videos(tmp_path):
    """(videos folder, frames folder with videos2im_relation.csv) of two tracked videos."""
    videos = write_example_videos(tmp_path / "data", n_videos=N_VIDEOS, frames=FRAMES,
                                  size=32)["videos"]
    frames = videos_to_frames(videos, tmp_path / "frames")
    return Path(videos), Path(frames)


def _config(tmp_path, videos: Path, frames: Path, **data) -> dict:
    return {"name": "test-videos", "output_dir": str(tmp_path / "run"), "seed": 0,
            "data": {"train": str(videos), "val": str(videos), "test": str(frames),
                     "layout": "auto", "videos_csv": str(frames / RELATION_CSV), **data},
            "model": {"name": "unet", "n_filters": 4, "pools": 2},
            "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
            "train": {"epochs": 1, "tensorboard": {"enabled": False}},
            "wandb": {"mode": "disabled"}}


def _validate(cli, tmp_path, cfg: dict):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return cli("config", "validate", str(path))


def test_run_rebuilds_the_test_videos_and_tracks_and_scores_them(cli, tmp_path,
                                                                  frames_from_videos):
    videos, frames = frames_from_videos
    cfg = _config(tmp_path, videos, frames)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    done = cli("run", str(path), "--quiet")
    assert done.returncode == 0, done.stderr
    run = Path(cfg["output_dir"])
    rebuilt = run / "predictions" / "test_videos"
    for name in (p.name for p in sorted((videos / "inputs").iterdir())):
        # the rebuilt test videos equal the videos the frames came from, pixel for pixel
        for kind in ("inputs", "labels"):
            np.testing.assert_array_equal(tifffile.imread(rebuilt / kind / name),
                                          tifffile.imread(videos / kind / name))
        assert tifffile.imread(run / "predictions" / "labels" / name).shape[0] == FRAMES
    assert sorted(p.name for p in (run / "predictions" / "ctc").iterdir()) == ["01_RES",
                                                                                "02_RES"]
    assert (run / "predictions" / "ctc" / "01_RES" / "res_track.txt").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["SEG"] is not None
    # label videos carry no CTC tracking ground truth: said, with the way to get it
    assert set(metrics["test"]["unavailable"]) == {"DET", "TRA"}
    assert "dlsuite prepare ctc" in metrics["test"]["unavailable"]["TRA"]
    assert [s["sequence"] for s in metrics["per_sequence"]] == sorted(
        p.name for p in (videos / "labels").iterdir())

    # --overwrite removes the rebuilt videos with the rest of the run's predictions
    cfg["data"]["videos_csv"] = None
    path.write_text(json.dumps(cfg))
    again = cli("run", str(path), "--quiet", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert not (run / "predictions" / "test_videos").exists()
    assert not (run / "predictions" / "ctc").exists()  # single frames: nothing to track
    assert tifffile.imread(run / "predictions" / "labels" / "instance_ids_000.tif").ndim == 2


@pytest.mark.parametrize("change, expected", [
    ("missing_frame", "1 frame(s) of its videos have no input frame in"),
    ("unlisted_frame", "1 test frame(s) of {frames} belong to no video of it: raw_006.tif"),
    ("videos_layout", "relates 2D frames to videos, but data.test ({videos}) is in the videos "
                      "layout"),
    ("no_test", "data.videos_csv is set but data.test is not"),
    ("bad_header", "expected header 'video;frame;index'"),
    ("other_shape", "{frames}/inputs/raw_004.tif: (16, 32) uint16 differs from raw_003.tif "
                    "(32, 32) uint16, an earlier frame of video"),
])
def test_a_relation_that_does_not_fit_the_test_set_is_refused_before_anything_is_written(
        cli, tmp_path, frames_from_videos, change, expected):
    videos, frames = frames_from_videos
    cfg = _config(tmp_path, videos, frames)
    csv = frames / RELATION_CSV
    if change == "missing_frame":
        (frames / "inputs" / "raw_004.tif").unlink()
        (frames / "labels" / "instance_ids_004.tif").unlink()
    elif change == "unlisted_frame":
        for kind, prefix in (("inputs", "raw_"), ("labels", "instance_ids_")):
            (frames / kind / f"{prefix}006.tif").write_bytes(
                (frames / kind / f"{prefix}005.tif").read_bytes())
    elif change == "videos_layout":
        cfg["data"]["test"] = str(videos)
    elif change == "no_test":
        cfg["data"]["test"] = None
    elif change == "other_shape":
        image = tifffile.imread(frames / "inputs" / "raw_004.tif")
        tifffile.imwrite(frames / "inputs" / "raw_004.tif", image[:16])
    else:
        csv.write_text("clip;t\n")
    done = _validate(cli, tmp_path, cfg)
    assert done.returncode == 2, done.stdout + done.stderr
    message = expected.format(frames=frames, videos=videos)
    where = "" if change == "other_shape" else f"{csv}: "  # that line names the frame file
    assert f"$.data.videos_csv: {where}{message}" in done.stderr
    run = cli("run", str(tmp_path / "config.json"), "--quiet")
    assert run.returncode == 2 and not Path(cfg["output_dir"]).exists()


def test_summary_rows_give_numbers_then_what_was_not_computed_and_why():
    from dlsuite.cli._output import test_metric_rows

    rows = test_metric_rows({"SEG": 0.61234, "DET": None, "TRA": None, "matching": [],
                             "unavailable": {"DET": "no tracks", "TRA": "no tracks"}},
                            prefix="test ")
    assert rows == [("test SEG", "0.6123"), ("test DET, TRA", "not computed: no tracks")]
