"""``dlsuite predict`` on real data (Inference "done when"): a unet trained one epoch on the
40 annotated T98G phase-contrast images (1022x1024, predicted tiled), a temporal
``mobilenet_mobileunet_lstm`` trained one epoch on generated videos and predicting the real
37-frame time-lapse, and the generated videos themselves. Everything goes through the CLI in
fresh processes. Skipped when ``../shared/data`` is absent."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import run_cli

_REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "usiigaci_t98g_phc"
_ANNOTATED = _REAL / "annotated"
_TIMELAPSE = _REAL / "video_T98G_sample"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (_ANNOTATED / "set1" / "raw.tif").exists()
                       or not _TIMELAPSE.is_dir(),
                       reason="real data ../shared/data/usiigaci_t98g_phc not present"),
]

#: wall time of each ``dlsuite predict`` call, printed at the end of the module (``-s``)
TIMES: dict[str, float] = {}


def _run(*args: str):
    """Run the CLI; assert exit 0 with its output in the message; return the wall time."""
    start = time.perf_counter()
    result = run_cli(*args, timeout=600)
    spent = time.perf_counter() - start
    assert result.returncode == 0, f"dlsuite {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return spent


def _probs(path: Path) -> np.ndarray:
    """Written probabilities (class axis first on disk) as (..., H, W, C)."""
    return np.moveaxis(tifffile.imread(path), -3, -1)


def _write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg, indent=1))
    return path


@pytest.fixture(scope="module", autouse=True)
def _report_times():
    yield
    if TIMES:
        print("\ndlsuite predict wall times: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()))


# --------------------------------------------------------------------------------------------
# (a) unet on the annotated images


@pytest.fixture(scope="module")
def frames_dataset(tmp_path_factory):
    """The 40 annotated images as a frames-layout dataset (symlinks): 32 train, 4 val,
    4 test."""
    root = tmp_path_factory.mktemp("t98g")
    sets = sorted((p for p in _ANNOTATED.iterdir() if p.name.startswith("set")),
                  key=lambda p: int(p.name[3:]))
    assert len(sets) == 40
    for k, folder in enumerate(sets):
        split = "train" if k < 32 else "val" if k < 36 else "test"
        for sub in ("inputs", "labels"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        os.symlink(folder / "raw.tif", root / split / "inputs" / f"raw_{k:03d}.tif")
        os.symlink(folder / "instances_ids.png",
                   root / split / "labels" / f"instance_ids_{k:03d}.png")
    return root


def test_unet_one_epoch_on_real_images_predicts_tiled(frames_dataset, tmp_path):
    run_dir = tmp_path / "run"
    cfg = _write_config(tmp_path / "config.json", {
        "name": "t98g-unet", "output_dir": str(run_dir), "seed": 0,
        "data": {"train": str(frames_dataset / "train"), "val": str(frames_dataset / "val"),
                 "layout": "frames"},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [256, 256], "batch_size": 2, "steps_per_epoch": 3},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "inference": {"tile_size": 512, "halo": "auto"},
        "wandb": {"mode": "disabled"},
    })
    _run("train", str(cfg), "--quiet")
    assert (run_dir / "checkpoints" / "best.keras").is_file()

    out = tmp_path / "pred"
    test_images = frames_dataset / "test" / "inputs"
    TIMES["unet 4 images 1022x1024 tiled 512"] = _run(
        "predict", str(run_dir), str(test_images), "-o", str(out), "--quiet")
    names = sorted(p.stem for p in test_images.iterdir())
    assert sorted(p.stem for p in (out / "labels").iterdir()) == names
    for name in names:
        labels = tifffile.imread(out / "labels" / f"{name}.tif")
        probs = _probs(out / "probabilities" / f"{name}.tif")
        assert labels.shape == (1022, 1024) and labels.dtype in (np.uint16, np.uint32)
        assert probs.shape == (1022, 1024, 2) and probs.dtype == np.float32
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    summary = json.loads((out / "predict.json").read_text())
    assert summary["tiles"]["tile_size"] == 512 and summary["tiles"]["halo"] > 0
    assert len(summary["inputs"]) == 4

    # the tiles (4 per image, auto halo) give the untiled prediction on real data
    whole = tmp_path / "whole"
    one = tmp_path / "one"
    one.mkdir()
    os.symlink(test_images / f"{names[0]}.tif", one / f"{names[0]}.tif")
    TIMES["unet 1 image untiled"] = _run("predict", str(run_dir), str(one), "-o", str(whole),
                                         "--tile-size", "none", "--quiet")
    np.testing.assert_allclose(_probs(whole / "probabilities" / f"{names[0]}.tif"),
                               _probs(out / "probabilities" / f"{names[0]}.tif"), atol=1e-4)


# --------------------------------------------------------------------------------------------
# (b, c) a temporal model trained on generated videos


@pytest.fixture(scope="module")
def temporal_run(tmp_path_factory):
    """``mobilenet_mobileunet_lstm`` (alpha 0.35, 4 filters, 2 pools, T=3: the tiny parameters
    of ``dlsuite.testing.TINY_ARCHITECTURES``) trained one epoch on videos
    written by ``dlsuite example-data videos``; returns (run_dir, generated data folder)."""
    root = tmp_path_factory.mktemp("temporal")
    data = root / "example"
    _run("example-data", "videos", str(data), "--n-videos", "3", "--frames", "6",
         "--size", "96")
    run_dir = root / "run"
    cfg = _write_config(root / "config.json", {
        "name": "videos-lstm", "output_dir": str(run_dir), "seed": 0,
        "data": {"train": str(data / "videos"), "val": str(data / "videos"),
                 "layout": "videos"},
        "model": {"name": "mobilenet_mobileunet_lstm", "n_filters": 4, "pools": 2,
                  "alpha": 0.35, "time_windows": 3},
        "datagen": {"patch_size": [64, 64], "batch_size": 2, "steps_per_epoch": 3},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "inference": {"tile_size": 512, "batch_size": 4},
        "wandb": {"mode": "disabled"},
    })
    _run("train", str(cfg), "--quiet")
    return run_dir, data


def test_temporal_model_predicts_the_real_37_frame_timelapse(temporal_run, tmp_path):
    """The model was built at the 64x64 training patch; the time-lapse is predicted in tiles
    of 512 + halo (the model rebuilt at that size), one output frame per input frame."""
    run_dir, _ = temporal_run
    frames = sorted(_TIMELAPSE.glob("*.tif"))
    assert len(frames) == 37
    out = tmp_path / "pred"
    TIMES["mobilenet_mobileunet_lstm 37x1022x1024 tiled 512"] = _run(
        "predict", str(run_dir), str(_TIMELAPSE), "--as-video", "-o", str(out), "--quiet")
    (labels_path,) = (out / "labels").iterdir()
    labels = tifffile.imread(labels_path)
    probs = _probs(out / "probabilities" / labels_path.name)
    shape = tifffile.imread(frames[0]).shape
    assert labels.shape == (37,) + shape
    assert probs.shape == (37,) + shape + (2,) and probs.dtype == np.float32
    np.testing.assert_allclose(probs[::9].sum(-1), 1.0, atol=1e-5)
    # frames differ, and so do their predictions (each frame has its own window)
    assert not np.array_equal(probs[0], probs[-1])


def test_temporal_model_predicts_generated_videos_with_ctc(temporal_run, tmp_path):
    run_dir, data = temporal_run
    inputs = data / "videos" / "inputs"
    out = tmp_path / "pred"
    TIMES["mobilenet_mobileunet_lstm 3 generated videos 6x96x96 + CTC"] = _run(
        "predict", str(run_dir), str(inputs), "-o", str(out), "--ctc", "--quiet")
    for video in sorted(inputs.iterdir()):
        source = tifffile.imread(video)
        labels = tifffile.imread(out / "labels" / f"{video.stem}.tif")
        probs = _probs(out / "probabilities" / f"{video.stem}.tif")
        assert labels.shape == source.shape and probs.shape == source.shape + (2,)
    res = sorted((out / "ctc").glob("*_RES"))
    assert len(res) == 3 and all((r / "res_track.txt").is_file() for r in res)
