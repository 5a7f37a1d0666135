"""`dlsuite track` refuses an input that is not a label video (an intensity image would make
every grey value an object and run for minutes) in under a second, naming the file, before
anything is written; real label videos, dense small objects and 0/1 masks are accepted."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from conftest import run_cli
from dlsuite.data.io import read_image, write_tiff
from dlsuite.tracking.folder import label_problem

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usiigaci_t98g_phc"


def _labels(frames: int = 3, size: int = 64) -> np.ndarray:
    video = np.zeros((frames, size, size), np.uint16)
    for t in range(frames):
        video[t, 5 + t:20 + t, 5:20] = 1
        video[t, 30:50, 30 + t:45 + t] = 2
    return video


def _intensity(frames: int = 3, size: int = 64, smooth: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    video = rng.normal(2000, 300, (frames, size, size))
    if smooth:
        video = ndimage.gaussian_filter(video, (0, smooth, smooth))
    return np.clip(video, 0, 65535).astype(np.uint16)


def test_label_videos_and_masks_are_accepted():
    assert label_problem(_labels(), "a.tif") is None
    assert label_problem((_labels() > 0).astype(np.uint8), "m.tif") is None
    dense = np.arange(1, 21 * 21 + 1, dtype=np.int32).reshape(21, 21)
    dense = np.kron(dense, np.ones((3, 3), np.int32))[None]  # 441 touching 3x3 objects
    assert label_problem(dense, "dense.tif") is None
    assert label_problem(np.zeros((2, 8, 8), np.uint16), "empty.tif") is None


@pytest.mark.parametrize("video", [_intensity(), _intensity(smooth=2.0),
                                   (_intensity(smooth=1.0) // 64).astype(np.uint8)])
def test_intensity_videos_are_refused(video):
    problem = label_problem(video, "in.tif")
    assert problem is not None and problem.startswith("in.tif: not a label video: frame 0 has")
    assert "it looks like an intensity image" in problem


def test_float_and_negative_videos_are_refused():
    assert "got float32 values" in label_problem(np.zeros((2, 4, 4), np.float32), "f.tif")
    assert "negative labels (smallest -3)" in label_problem(
        np.full((2, 4, 4), -3, np.int16), "n.tif")


def test_float_label_videos_of_whole_numbers_are_tracked_as_evaluate_takes_them(tmp_path):
    """A label video Fiji saved as 32-bit floats was refused as an intensity image, while
    ``dlsuite evaluate`` accepts it: tracked as the integer video; fractional values are
    still refused, naming the file and a value."""
    from dlsuite import api

    write_tiff(tmp_path / "ints" / "v.tif", _labels())
    write_tiff(tmp_path / "floats" / "v.tif", _labels().astype(np.float32))
    ints = api.track(tmp_path / "ints", tmp_path / "out_ints")
    floats = api.track(tmp_path / "floats", tmp_path / "out_floats")
    assert [r["tracks"] for r in floats] == [r["tracks"] for r in ints] == [2]
    for t in range(3):
        assert np.array_equal(read_image(tmp_path / "out_floats" / "01_RES" / f"mask{t:03d}.tif"),
                              read_image(tmp_path / "out_ints" / "01_RES" / f"mask{t:03d}.tif"))
    write_tiff(tmp_path / "half" / "v.tif", _labels().astype(np.float32) / 2)
    proc = run_cli("track", str(tmp_path / "half"), str(tmp_path / "out_half"))
    assert proc.returncode == 2 and "v.tif: float labels (float32) holding 0.5" in \
        " ".join(proc.stderr.split()), proc.stderr
    assert not (tmp_path / "out_half").exists()


def test_track_refuses_before_writing_anything(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    write_tiff(src / "a_labels.tif", _labels())
    write_tiff(src / "b_phase.tif", _intensity())  # the second video: a first one is fine
    start = time.monotonic()
    proc = run_cli("track", str(src), str(out), timeout=120)
    assert proc.returncode == 2, proc.stderr
    text = " ".join(proc.stderr.split())
    assert text.startswith(f"error: {src / 'b_phase.tif'}: not a label video"), proc.stderr
    assert not out.exists()  # not even 01_RES of the good first video
    assert time.monotonic() - start < 60


def test_track_refuses_an_output_folder_inside_or_around_its_input(tmp_path):
    """CTC results written into the label folder (or around it) would mix with the labels,
    as predictions with their inputs: refused like ``predict -o``, nothing written."""
    src = tmp_path / "data" / "labels"
    write_tiff(src / "a.tif", _labels())
    for out in (src / "tracks", tmp_path / "data"):
        proc = run_cli("track", str(src), str(out))
        assert proc.returncode == 2, proc.stderr
        assert f"error: {out}: the output folder" in proc.stderr
        assert "tracking results would mix with (or replace) the inputs" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "data").rglob("*")) == ["a.tif", "labels"]
    assert run_cli("track", str(src), str(tmp_path / "tracks"), "-q").returncode == 0


@pytest.mark.skipif(not REAL.is_dir(), reason="real data ../shared/data/usiigaci_t98g_phc absent")
def test_real_phase_contrast_is_refused_and_real_labels_pass():
    frames = sorted((REAL / "video_T98G_sample").glob("*.tif"))[:10]
    phase = np.stack([read_image(f) for f in frames])  # 10 x 1022 x 1024 uint16
    start = time.perf_counter()
    problem = label_problem(phase, "phase.tif")
    assert time.perf_counter() - start < 30  # a hang guard (it takes well under a second)
    assert problem is not None and "intensity image" in problem
    tracked = sorted((REAL / "video_T98G_sample_tracked").glob("*_ids.png"))[:10]
    labels = np.stack([read_image(f) for f in tracked])
    assert label_problem(labels, "ids.tif") is None


@pytest.mark.parametrize("option, message", [
    (["--max-distance", "nan"], "'--max-distance': nan is not a finite number > 0"),
    (["--max-distance", "-5"], "'--max-distance': -5.0 is not a finite number > 0"),
    (["--max-distance", "0"], "'--max-distance': 0.0 is not a finite number > 0"),
    (["--fill-gaps", "--sigma", "nan"], "'--sigma': nan is not a finite number >= 0"),
    (["--fill-gaps", "--sigma", "inf"], "'--sigma': inf is not a finite number >= 0"),
    (["--min-overlap", "1.5"], "'--min-overlap': 1.5 is not in the range 0<=x<=1"),
])
def test_track_refuses_nan_and_out_of_range_options_before_writing(tmp_path, option, message):
    # NaN compared false everywhere, so it used to pass the checks and link nothing; the
    # error names the flag the user typed, not the API parameter behind it
    src, out = tmp_path / "in", tmp_path / "out"
    write_tiff(src / "a_labels.tif", _labels())
    proc = run_cli("track", str(src), str(out), *option, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and not out.exists()
