"""dlsuite.data.layouts on real TIFF folders of each layout."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dlsuite.data.io import write_tiff
from dlsuite.data.layouts import (
    Sample,
    check_dataset,
    detect_layout,
    list_samples,
    load_sample,
    natural_key,
)
from dlsuite.errors import DataError, DlsuiteInputError

RNG = np.random.default_rng(0)


def _img(shape, dtype=np.uint16):
    return RNG.integers(0, 1000, size=shape).astype(dtype)


def make_frames(root, tokens=("000", "001", "002"), size=(8, 9), label_dtype=np.uint16):
    for tok in tokens:
        write_tiff(root / "inputs" / f"raw_{tok}.tif", _img(size))
        write_tiff(root / "labels" / f"instance_ids_{tok}.tif", _img(size, label_dtype))
    return root


def make_videos(root, names=("b_video", "a_video"), frames=(3, 2), size=(8, 9)):
    for name, t in zip(names, frames):
        write_tiff(root / "inputs" / f"{name}.tif", _img((t,) + size))
        labels = np.zeros((t,) + size, np.uint32)
        labels[:, 1:3, 1:3] = 70000
        write_tiff(root / "labels" / f"{name}.tif", labels)
    return root


def make_ctc(root, seq="01", frames=5, annotated=(0, 2, 4), size=(8, 9)):
    for t in range(frames):
        write_tiff(root / seq / f"t{t:03d}.tif", _img(size))
    for t in annotated:
        seg = np.zeros(size, np.uint16)
        seg[t : t + 2, 1:3] = 300 + t
        write_tiff(root / f"{seq}_GT" / "SEG" / f"man_seg{t:03d}.tif", seg)
    return root


# --- detection --------------------------------------------------------------------------------


def test_detect_each_layout(tmp_path):
    assert detect_layout(make_frames(tmp_path / "f")) == "frames"
    assert detect_layout(make_videos(tmp_path / "v")) == "videos"
    assert detect_layout(make_ctc(tmp_path / "c")) == "ctc"


def test_detect_frames_without_labels(tmp_path):
    write_tiff(tmp_path / "inputs" / "raw_000.tif", _img((4, 4)))
    assert detect_layout(tmp_path) == "frames"


def test_detect_videos_named_like_frames(tmp_path):
    # inputs and labels sharing names is the videos layout, even with raw_ names
    write_tiff(tmp_path / "inputs" / "raw_000.tif", _img((2, 4, 4)))
    write_tiff(tmp_path / "labels" / "raw_000.tif", _img((2, 4, 4)))
    assert detect_layout(tmp_path) == "videos"


def test_detect_errors_name_folder_and_expectation(tmp_path):
    with pytest.raises(DataError, match="nowhere.*not found"):
        detect_layout(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty.*expected one of: frames layout"):
        detect_layout(tmp_path / "empty")
    (tmp_path / "noinputs" / "inputs").mkdir(parents=True)
    with pytest.raises(DataError, match="inputs.*no input images"):
        detect_layout(tmp_path / "noinputs")


def test_unknown_layout_name(tmp_path):
    make_frames(tmp_path)
    with pytest.raises(DlsuiteInputError, match="unknown layout 'movies'"):
        list_samples(tmp_path, layout="movies")


# --- listing ---------------------------------------------------------------------------------


def test_frames_pair_by_token_sorted_naturally(tmp_path):
    make_frames(tmp_path, tokens=("10", "9", "000"))
    write_tiff(tmp_path / "labels" / "instance_ids_0009.tif", _img((8, 9)))  # numeric match
    (tmp_path / "labels" / "instance_ids_9.tif").unlink()
    samples = list_samples(tmp_path)
    assert [s.name for s in samples] == ["raw_000", "raw_9", "raw_10"]
    assert samples[1].labels.name == "instance_ids_0009.tif"
    assert all(s.layout == "frames" for s in samples)


def test_frames_named_alike_in_both_folders_pair_by_name(tmp_path):
    """The frames layout chosen for 2D images with one's own names (``a.tif`` in inputs/ and
    labels/) works as the videos layout does, instead of one error per file."""
    for name in ("cell_b", "cell_a", "cell_10"):
        write_tiff(tmp_path / "inputs" / f"{name}.tif", _img((8, 9)))
        write_tiff(tmp_path / "labels" / f"{name}.tif", _img((8, 9)))
    samples = list_samples(tmp_path, "frames")
    assert [(s.name, s.labels.name, s.layout) for s in samples] == [
        ("cell_10", "cell_10.tif", "frames"), ("cell_a", "cell_a.tif", "frames"),
        ("cell_b", "cell_b.tif", "frames")]
    assert check_dataset(tmp_path, "frames") == []
    # unlabelled inputs with one's own names are listed too (prediction)
    (tmp_path / "labels" / "cell_a.tif").rename(tmp_path / "cell_a.tif")
    with pytest.raises(DataError, match="no label for 1 input.*cell_a.tif"):
        list_samples(tmp_path, "frames")


def test_frames_named_by_neither_rule_is_one_line_per_folder(tmp_path):
    make_frames(tmp_path, tokens=("001",))
    write_tiff(tmp_path / "inputs" / "x.tif", _img((8, 9)))
    write_tiff(tmp_path / "inputs" / "y.tif", _img((8, 9)))
    problems = check_dataset(tmp_path, "frames")
    named = [p for p in problems if "named neither" in p]
    assert named == [f"{tmp_path / 'inputs'}: 2 input file(s) named neither raw_NNN nor like "
                     "the labels: x.tif, y.tif (frames layout: inputs/raw_NNN + "
                     "labels/instance_ids_NNN, or the same names in both)"]


def test_natural_key():
    assert sorted(["raw_10", "raw_9", "raw_100"], key=natural_key) == ["raw_9", "raw_10", "raw_100"]


def test_unpaired_frames_named(tmp_path):
    make_frames(tmp_path)
    (tmp_path / "labels" / "instance_ids_001.tif").unlink()
    write_tiff(tmp_path / "labels" / "instance_ids_077.tif", _img((8, 9)))
    with pytest.raises(DataError) as err:
        list_samples(tmp_path)
    assert "raw_001.tif" in str(err.value)
    assert "instance_ids_077.tif" in str(err.value)
    problems = check_dataset(tmp_path)
    assert any("raw_001.tif" in p for p in problems)
    assert any("instance_ids_077.tif" in p for p in problems)
    # without labels required the input is listed, unlabelled
    samples = list_samples(tmp_path, require_labels=False)
    assert [s.labels is None for s in samples] == [False, True, False]


def test_unpaired_videos_named(tmp_path):
    make_videos(tmp_path)
    write_tiff(tmp_path / "inputs" / "lonely.tif", _img((2, 8, 9)))
    with pytest.raises(DataError, match="lonely.tif"):
        list_samples(tmp_path)


def test_missing_labels_folder(tmp_path):
    write_tiff(tmp_path / "inputs" / "vid.tif", _img((2, 4, 4)))
    with pytest.raises(DataError, match="labels folder not found"):
        list_samples(tmp_path)
    assert list_samples(tmp_path, require_labels=False) == [
        Sample("vid", "videos", tmp_path / "inputs" / "vid.tif", None)
    ]


def test_ctc_missing_seg_named(tmp_path):
    make_ctc(tmp_path, "01")
    make_ctc(tmp_path, "02", annotated=())
    with pytest.raises(DataError, match="02_GT.SEG"):
        list_samples(tmp_path)
    samples = list_samples(tmp_path, require_labels=False)
    assert [(s.name, s.labels) for s in samples] == [
        ("01", tmp_path / "01_GT" / "SEG"),
        ("02", None),
    ]


# --- loading ---------------------------------------------------------------------------------


def test_load_frames_sample(tmp_path):
    make_frames(tmp_path, label_dtype=np.uint32)
    loaded = load_sample(list_samples(tmp_path)[0])
    assert loaded.image.shape == (1, 8, 9) and loaded.image.dtype == np.uint16
    assert loaded.labels.shape == (1, 8, 9) and loaded.labels.dtype == np.uint32
    assert loaded.annotated.tolist() == [0]


def test_load_frames_clip_targets_last_frame(tmp_path):
    clip = _img((5, 8, 9))
    target = np.full((8, 9), 7, np.uint16)
    write_tiff(tmp_path / "inputs" / "raw_000.tif", clip)
    write_tiff(tmp_path / "labels" / "instance_ids_000.tif", target)
    assert check_dataset(tmp_path) == []
    loaded = load_sample(list_samples(tmp_path)[0])
    assert np.array_equal(loaded.image, clip)
    assert loaded.annotated.tolist() == [4]
    assert np.array_equal(loaded.labels[4], target)
    assert not loaded.labels[:4].any()


def test_load_video_keeps_label_dtype(tmp_path):
    make_videos(tmp_path)
    samples = list_samples(tmp_path)
    assert [s.name for s in samples] == ["a_video", "b_video"]
    loaded = load_sample(samples[1])
    assert loaded.image.shape == (3, 8, 9)
    assert loaded.labels.dtype == np.uint32 and loaded.labels.max() == 70000
    assert loaded.annotated.tolist() == [0, 1, 2]


def test_load_ctc_sparse_annotations(tmp_path):
    make_ctc(tmp_path, frames=5, annotated=(0, 2, 4))
    sample = list_samples(tmp_path)[0]
    assert sample == Sample("01", "ctc", tmp_path / "01", tmp_path / "01_GT" / "SEG")
    loaded = load_sample(sample)
    assert loaded.image.shape == (5, 8, 9)
    assert loaded.annotated.tolist() == [0, 2, 4]
    assert loaded.labels.dtype == np.uint16
    assert [int(loaded.labels[t].max()) for t in range(5)] == [300, 0, 302, 0, 304]


def test_load_unlabelled(tmp_path):
    make_ctc(tmp_path, annotated=())
    loaded = load_sample(list_samples(tmp_path, require_labels=False)[0])
    assert loaded.labels is None and loaded.annotated.size == 0


# --- checking ----------------------------------------------------------------------------------


def test_check_ok_for_each_layout(tmp_path):
    assert check_dataset(make_frames(tmp_path / "f")) == []
    assert check_dataset(make_videos(tmp_path / "v")) == []
    assert check_dataset(make_ctc(tmp_path / "c")) == []


def test_check_shape_mismatch_named_and_load_raises(tmp_path):
    make_videos(tmp_path)
    write_tiff(tmp_path / "labels" / "a_video.tif", np.zeros((3, 8, 9), np.uint16))  # 2 frames in
    problems = check_dataset(tmp_path)
    assert len(problems) == 1 and "a_video.tif" in problems[0] and "shape" in problems[0]
    with pytest.raises(DataError, match="a_video.tif.*shape"):
        load_sample(list_samples(tmp_path)[0])


def test_check_float_labels_and_unreadable(tmp_path):
    """Float labels holding whole numbers (a label image saved as 32-bit, as Fiji does) are
    read as int32 ids, as ``dlsuite evaluate`` reads them; any other value is refused when
    the pixels are read, naming the file and the value; complex labels are refused from
    the header."""
    from dlsuite.data.checks import check_pixels

    make_frames(tmp_path)
    whole = np.zeros((8, 9), np.float32)
    whole[2:5, 2:5], whole[6:, 6:] = 3, 70000
    write_tiff(tmp_path / "labels" / "instance_ids_000.tif", whole)
    halves = whole.copy()
    halves[0, 0] = 2.5
    write_tiff(tmp_path / "labels" / "instance_ids_001.tif", halves)
    (tmp_path / "inputs" / "raw_002.tif").write_bytes(b"garbage")
    problems = check_dataset(tmp_path)
    assert len(problems) == 1 and "raw_002.tif" in problems[0] and "unreadable" in problems[0]
    samples = list_samples(tmp_path)
    loaded = load_sample(samples[0])
    assert loaded.labels.dtype == np.int32 and np.array_equal(loaded.labels[0], whole)
    message = (f"{tmp_path / 'labels' / 'instance_ids_001.tif'}: float labels (float32) "
               "holding 2.5, not a whole-number id")
    with pytest.raises(DataError, match=re.escape(message)):
        load_sample(samples[1])
    # a whole number beyond int32 is named as such, not as "not a whole-number id"
    from dlsuite.data.layouts import whole_number_labels

    with pytest.raises(DataError, match=r"holding 4e\+09, beyond the ids .* up to 2147483647"):
        whole_number_labels("big.tif", np.array([[0.0, 4e9]]))
    with pytest.raises(DataError, match="raw_002.tif"):
        load_sample(samples[2])
    errors = check_pixels(tmp_path).errors
    assert any(e.startswith(message) for e in errors), errors
    assert not any("instance_ids_000.tif" in e for e in errors), errors
    write_tiff(tmp_path / "labels" / "instance_ids_001.tif", whole.astype(np.complex64))
    assert any("instance_ids_001.tif: complex64 pixels" in p for p in check_dataset(tmp_path))


def test_check_ctc_problems(tmp_path):
    make_ctc(tmp_path, frames=3, annotated=(0,))
    write_tiff(tmp_path / "01_GT" / "SEG" / "man_seg007.tif", np.zeros((8, 9), np.uint16))
    write_tiff(tmp_path / "01_GT" / "SEG" / "man_seg001.tif", np.zeros((4, 4), np.uint16))
    problems = check_dataset(tmp_path)
    assert any("man_seg007.tif" in p and "no frame" in p for p in problems)
    assert any("man_seg001.tif" in p and "shape" in p for p in problems)
    with pytest.raises(DataError, match="man_seg"):
        load_sample(list_samples(tmp_path)[0])


def test_check_missing_folder_is_a_problem_not_a_crash(tmp_path):
    problems = check_dataset(tmp_path / "absent")
    assert len(problems) == 1 and "absent" in problems[0]


def test_singleton_time_axis_pairs_with_2d(tmp_path):
    write_tiff(tmp_path / "inputs" / "raw_000.tif", _img((8, 9)))
    write_tiff(tmp_path / "labels" / "instance_ids_000.tif", _img((1, 8, 9)))
    assert check_dataset(tmp_path) == []
    loaded = load_sample(list_samples(tmp_path)[0])
    assert loaded.labels.shape == (1, 8, 9) and loaded.annotated.tolist() == [0]
    # a video's labels must match frame for frame: a 2D label for a 3-frame video is wrong
    write_tiff(tmp_path / "v" / "inputs" / "m.tif", _img((3, 8, 9)))
    write_tiff(tmp_path / "v" / "labels" / "m.tif", _img((8, 9)))
    assert any("m.tif" in p for p in check_dataset(tmp_path / "v"))


def test_no_layout_names_the_subfolders_that_hold_datasets(tmp_path):
    """A split folder holding videos/ and ctc/ datasets (as the video quickstart's data/val):
    the error names them, so the user knows which folder to give."""
    frame = np.zeros((8, 8), np.uint16)
    write_tiff(tmp_path / "val" / "videos" / "inputs" / "a.tif", frame[None], axes="TYX")
    write_tiff(tmp_path / "val" / "ctc" / "01" / "t000.tif", frame)
    (tmp_path / "val" / "notes").mkdir()
    with pytest.raises(DataError, match=r"its subfolder\(s\) ctc/, videos/ hold a dataset"):
        detect_layout(tmp_path / "val")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as exc:
        detect_layout(tmp_path / "empty")
    assert "subfolder" not in str(exc.value)
