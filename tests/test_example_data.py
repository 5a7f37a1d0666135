"""dlsuite.data.example: synthetic videos written as videos layout and CTC sequences."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dlsuite.data import ctc
from dlsuite.data.example import synthetic_video, write_example_frames, write_example_videos
from dlsuite.data.io import read_image
from dlsuite.data.layouts import check_dataset, ctc_seg_files, detect_layout, list_samples


def _tracks(path):
    return {tr.label: (tr.begin, tr.end, tr.parent) for tr in ctc.read_track_file(path)}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    out = tmp_path_factory.mktemp("example")
    return write_example_videos(out, n_videos=4, frames=8, size=64, seed=0)


def test_layouts_and_dtypes(example):
    assert detect_layout(example["videos"]) == "videos"
    assert detect_layout(example["ctc"]) == "ctc"
    assert check_dataset(example["videos"]) == []
    assert check_dataset(example["ctc"]) == []
    assert len(list_samples(example["videos"])) == 4
    image, labels = read_image(example["inputs"][0]), read_image(example["labels"][0])
    assert image.shape == labels.shape == (8, 64, 64)
    assert image.dtype == np.uint16 and labels.dtype == np.uint16
    assert image.std() > 100  # not a flat image


def test_track_file_matches_tra_masks(example):
    n_divisions = 0
    for seq in example["sequences"]:
        tra = example["ctc"] / f"{seq.name}_GT" / "TRA"
        masks = np.stack([read_image(tra / f"man_track{t:03d}.tif") for t in range(8)])
        tracks = _tracks(tra / "man_track.txt")
        present = {int(v) for v in np.unique(masks) if v}
        assert set(tracks) == present
        for label, (begin, end, parent) in tracks.items():
            frames = [t for t in range(8) if (masks[t] == label).any()]
            assert (begin, end) == (frames[0], frames[-1])
            assert frames == list(range(begin, end + 1))  # no gaps
            if parent:
                assert parent in tracks
                assert tracks[parent][1] == begin - 1  # mother ends just before
        children: dict[int, list[int]] = {}
        for label, (_, _, parent) in tracks.items():
            if parent:
                children.setdefault(parent, []).append(label)
        assert all(len(c) == 2 for c in children.values())
        n_divisions += len(children)
    assert n_divisions >= 4  # every video has at least one division


def test_sparse_seg_matches_labels(example):
    for seq, labels_path in zip(example["sequences"], example["labels"]):
        labels = read_image(labels_path)
        segs = ctc_seg_files(example["ctc"] / f"{seq.name}_GT" / "SEG")
        indices = [i for i, _ in segs]
        assert indices == example["annotated"] == [0, 2, 4, 6, 7]
        for index, path in segs:
            assert np.array_equal(read_image(path), labels[index])
        frames = np.stack([read_image(example["ctc"] / seq.name / f"t{t:03d}.tif") for t in range(8)])
        assert np.array_equal(frames, read_image(example["inputs"][int(seq.name) - 1]))
    assert (example["ctc"] / "sequences.csv").read_text().splitlines()[1] == "01;cells_00"


def test_phase_contrast_model():
    video = synthetic_video(frames=4, size=64, seed=3)
    inside = video.image[video.labels > 0].mean()
    background = video.image[video.labels == 0].mean()
    assert inside < background  # dark cells
    assert video.image[video.labels == 0].max() > background + 1500  # bright halos exist


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(read_image(p).tobytes() if p.suffix == ".tif" else p.read_bytes())
    return h.hexdigest()


def test_deterministic_with_seed(tmp_path):
    write_example_videos(tmp_path / "a", n_videos=2, frames=5, size=32, seed=7)
    write_example_videos(tmp_path / "b", n_videos=2, frames=5, size=32, seed=7)
    write_example_videos(tmp_path / "c", n_videos=2, frames=5, size=32, seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_example_frames(tmp_path):
    written = write_example_frames(tmp_path, n=3, size=48, seed=1)
    assert detect_layout(written["frames"]) == "frames"
    assert check_dataset(written["frames"]) == []
    assert [p.name for p in written["inputs"]] == ["raw_000.tif", "raw_001.tif", "raw_002.tif"]
    labels = read_image(written["labels"][0])
    assert labels.shape == (48, 48) and labels.max() >= 1


def test_rerun_replaces_previous_example(tmp_path):
    write_example_videos(tmp_path, n_videos=3, frames=6, size=32)
    written = write_example_videos(tmp_path, n_videos=2, frames=4, size=32)
    assert len(list((tmp_path / "videos" / "inputs").iterdir())) == 2
    assert sorted(p.name for p in (tmp_path / "ctc" / "01").iterdir()) == [f"t{t:03d}.tif" for t in range(4)]
    assert check_dataset(written["ctc"]) == [] and len(list_samples(written["ctc"])) == 2


def test_example_data_too_large_for_memory_is_refused_before_writing(tmp_path):
    """A size no machine holds is one line naming the memory, exit 2, nothing created (it
    used to allocate until the kernel killed it, leaving a folder with a marker)."""
    from conftest import run_cli

    for args in (["videos", str(tmp_path / "v"), "--size", "1000000"],
                 ["frames", str(tmp_path / "f"), "--size", "1000000"]):
        proc = run_cli("example-data", *args, timeout=120)
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.splitlines()
        assert line.startswith("error: example data of ") and "1000000x1000000" in line
        assert "GiB of memory is available; choose a smaller --size" in line
    assert list(tmp_path.iterdir()) == []
