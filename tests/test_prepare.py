"""dlsuite.data.prepare, dlsuite.data.windows and the data CLI commands, on real TIFFs."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from dlsuite.cli.data import example_data, prepare
from dlsuite.data.io import read_image, write_tiff
from dlsuite.data.layouts import check_dataset, detect_layout, list_samples, load_sample
from dlsuite.data.prepare import (
    Track,
    frames_to_videos,
    make_clips,
    read_relation,
    split_gapped_tracks,
    split_gaps,
    track_table,
    videos_to_ctc,
    videos_to_frames,
)
from dlsuite.data.windows import window_indices
from dlsuite.errors import DataError, DlsuiteInputError
from dlsuite.ownership import OwnedFolder


def _video(t, seed, dtype=np.uint16, size=(6, 7)):
    # frame k is filled with distinct values so the frame order is checkable
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 500, size=(t,) + size) + 1000 * np.arange(t)[:, None, None]).astype(dtype)


@pytest.fixture
def videos(tmp_path):
    """A videos layout: 3 videos (created out of name order), one of a single frame, uint32
    labels above 65535."""
    root = tmp_path / "videos"
    data = {}
    for name, t in [("vid_b", 4), ("vid_10", 1), ("vid_a", 6)]:
        image = _video(t, seed=len(name) + t)
        labels = np.zeros(image.shape, np.uint32)
        labels[:, :2, :2] = 70000
        labels[:, 3:, 3:] = np.arange(1, t + 1)[:, None, None]
        write_tiff(root / "inputs" / f"{name}.tif", image)
        write_tiff(root / "labels" / f"{name}.tif", labels)
        data[name] = (image, labels)
    return root, data


# --- window rule ------------------------------------------------------------------------------


def test_window_indices_values():
    assert window_indices(0, 5) == [0, 0, 0, 0, 0]
    assert window_indices(1, 5) == [1, 0, 1, 0, 1]
    assert window_indices(2, 5) == [2, 1, 0, 1, 2]
    assert window_indices(3, 5) == [1, 0, 1, 2, 3]  # t = T-2
    assert window_indices(4, 5) == [0, 1, 2, 3, 4]  # t = T-1: no mirroring needed
    assert window_indices(9, 5) == [5, 6, 7, 8, 9]  # t >= T-1
    assert window_indices(3, 1) == [3]
    assert window_indices(2, 8) == [1, 0, 1, 2, 1, 0, 1, 2]  # continuous back-and-forth
    for t in range(12):
        for T in range(1, 9):
            w = window_indices(t, T)
            assert len(w) == T and w[-1] == t and all(0 <= i <= t for i in w)
            assert all(abs(a - b) == 1 for a, b in zip(w, w[1:])) or t == 0
    with pytest.raises(ValueError):
        window_indices(-1, 5)


# --- videos <-> frames -----------------------------------------------------------------------


def test_videos_to_frames_numbering_and_csv(videos, tmp_path):
    src, data = videos
    dst = videos_to_frames(src, tmp_path / "frames")
    assert detect_layout(dst) == "frames" and check_dataset(dst) == []
    rows = (dst / "videos2im_relation.csv").read_text().splitlines()
    assert rows[0] == "video;frame;index"
    names = [s.name for s in list_samples(src)]  # natural, deterministic order
    assert names == ["vid_10", "vid_a", "vid_b"]
    expected = [f"{n};{f};{i}" for i, (n, f) in enumerate(
        (n, f) for n in names for f in range(data[n][0].shape[0]))]
    assert rows[1:] == expected
    assert (dst / "inputs" / "raw_000.tif").is_file()
    assert len(list((dst / "inputs").iterdir())) == 11
    first = names[0]
    assert np.array_equal(read_image(dst / "inputs" / "raw_000.tif"), data[first][0][0])
    label = read_image(dst / "labels" / "instance_ids_000.tif")
    assert label.dtype == np.uint32 and label.max() == 70000  # no wrap


def test_frames_to_videos_round_trip_exact(videos, tmp_path):
    src, data = videos
    frames = videos_to_frames(src, tmp_path / "frames")
    written = frames_to_videos(frames, tmp_path / "back", frames / "videos2im_relation.csv")
    assert len(written) == 6
    for name, (image, labels) in data.items():
        for kind, original in (("inputs", image), ("labels", labels)):
            back = read_image(tmp_path / "back" / kind / f"{name}.tif")
            assert back.dtype == original.dtype
            assert np.array_equal(back, original), (kind, name)


def test_frames_to_videos_flat_predictions_and_legacy_csv(tmp_path):
    # predictions named pred_NNN.tif in a flat folder, relation in the original suite's format
    for i in range(1, 4):
        write_tiff(tmp_path / "pred" / f"pred_{i:03d}.tif", np.full((4, 4), i, np.uint16))
    (tmp_path / "rel.csv").write_text("Video; Frame\nmovie;raw_002.tif\nmovie;raw_003.tif\nsolo;raw_001.tif\n")
    assert read_relation(tmp_path / "rel.csv") == {"movie": [2, 3], "solo": [1]}
    # saved by Excel as "CSV UTF-8": a byte-order mark before the header
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "rel.csv").read_bytes())
    assert read_relation(tmp_path / "excel.csv") == {"movie": [2, 3], "solo": [1]}
    frames_to_videos(tmp_path / "pred", tmp_path / "out", tmp_path / "rel.csv")
    assert read_image(tmp_path / "out" / "movie.tif")[:, 0, 0].tolist() == [2, 3]
    assert read_image(tmp_path / "out" / "solo.tif").shape == (1, 4, 4)


def test_frames_to_videos_errors(tmp_path):
    write_tiff(tmp_path / "pred" / "raw_000.tif", np.zeros((4, 4), np.uint16))
    (tmp_path / "rel.csv").write_text("video;frame;index\nm;0;0\nm;1;5\n")
    with pytest.raises(DataError, match="index 5.*video m"):
        frames_to_videos(tmp_path / "pred", tmp_path / "out", tmp_path / "rel.csv")
    (tmp_path / "gap.csv").write_text("video;frame;index\nm;0;0\nm;2;1\n")
    with pytest.raises(DataError, match="gap.csv.*not 0..1"):
        read_relation(tmp_path / "gap.csv")
    (tmp_path / "bad.csv").write_text("name,frame\n")
    with pytest.raises(DataError, match="bad.csv.*header"):
        read_relation(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="nope.csv"):
        read_relation(tmp_path / "nope.csv")
    # a video name is a file name in DST: "../../escaped" wrote outside it
    for name in ("../../escaped", "sub/v", "..", "a\\b"):
        (tmp_path / "out.csv").write_text(f"video;frame;index\n{name};0;0\n")
        with pytest.raises(DataError, match=r"out.csv: video name .* is not a file name"):
            frames_to_videos(tmp_path / "pred", tmp_path / "dst", tmp_path / "out.csv")
    assert not (tmp_path / "dst").exists() and not (tmp_path.parent / "escaped.tif").exists()


def test_videos_to_frames_unlabelled(tmp_path):
    write_tiff(tmp_path / "v" / "inputs" / "x.tif", _video(3, 0))
    dst = videos_to_frames(tmp_path / "v", tmp_path / "f")
    assert len(list((dst / "inputs").iterdir())) == 3
    assert not (dst / "labels").exists()


# --- clips ----------------------------------------------------------------------------------


def test_make_clips_from_videos(tmp_path, caplog):
    image = _video(7, seed=1)
    labels = (np.arange(7)[:, None, None] + 1 + np.zeros((7, 6, 7))).astype(np.uint16)
    write_tiff(tmp_path / "v" / "inputs" / "m.tif", image)
    write_tiff(tmp_path / "v" / "labels" / "m.tif", labels)
    T = 5
    with caplog.at_level("WARNING", logger="dlsuite.data"):
        dst = make_clips(tmp_path / "v", tmp_path / "clips", T)
    # frames 0-3 have fewer than T - 1 frames before them: said once
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        f"{tmp_path / 'v'}: 4 of 7 clip(s) end before frame 4 (T=5)"]
    assert detect_layout(dst) == "frames" and check_dataset(dst) == []
    rows = (dst / "clips_relation.csv").read_text().splitlines()
    assert rows[0] == "video;frame;index" and len(rows) == 8
    for t in (0, 1, T - 1, 6):  # first, mirrored, first full window, last frame
        clip = read_image(dst / "inputs" / f"raw_{t:03d}.tif")
        target = read_image(dst / "labels" / f"instance_ids_{t:03d}.tif")
        assert clip.shape == (T, 6, 7)
        assert np.array_equal(clip, image[window_indices(t, T)])
        assert np.array_equal(target, labels[t])
    assert np.array_equal(read_image(dst / "inputs" / "raw_001.tif"), image[[1, 0, 1, 0, 1]])
    # the clips load as frames samples whose only annotated frame is the last
    loaded = load_sample(list_samples(dst)[1])
    assert loaded.annotated.tolist() == [T - 1]
    assert np.array_equal(loaded.labels[T - 1], labels[1])


def test_make_clips_every_and_ctc_source(tmp_path):
    write_tiff(tmp_path / "v" / "inputs" / "m.tif", _video(6, seed=2))
    write_tiff(tmp_path / "v" / "labels" / "m.tif", np.ones((6, 6, 7), np.uint16))
    make_clips(tmp_path / "v", tmp_path / "c2", 3, every=2)
    assert [r.split(";")[1] for r in (tmp_path / "c2" / "clips_relation.csv").read_text().splitlines()[1:]] == ["0", "2", "4"]
    # CTC source: clips only at the sparse man_seg frames
    for t in range(4):
        write_tiff(tmp_path / "ctc" / "01" / f"t{t:03d}.tif", np.full((5, 5), t, np.uint16))
    for t in (1, 3):
        write_tiff(tmp_path / "ctc" / "01_GT" / "SEG" / f"man_seg{t:03d}.tif", np.full((5, 5), 9, np.uint16))
    make_clips(tmp_path / "ctc", tmp_path / "c3", 3)
    assert read_image(tmp_path / "c3" / "inputs" / "raw_000.tif")[:, 0, 0].tolist() == [1, 0, 1]
    assert read_image(tmp_path / "c3" / "inputs" / "raw_001.tif")[:, 0, 0].tolist() == [1, 2, 3]
    with pytest.raises(DlsuiteInputError):
        make_clips(tmp_path / "v", tmp_path / "c4", 0)


# --- CTC -------------------------------------------------------------------------------------


def test_split_gapped_tracks_and_track_table():
    labels = np.zeros((5, 4, 4), np.uint16)
    labels[0:2, 0, 0] = 3  # label 3 in frames 0-1, gone, back at 4
    labels[4, 0, 0] = 3
    labels[1:5, 2, 2] = 7
    with pytest.raises(DataError, match="label 3 has a temporal gap"):
        track_table(labels)
    fixed = split_gapped_tracks(labels)
    assert fixed[4, 0, 0] == 8 and fixed[0, 0, 0] == 3
    assert track_table(fixed) == [Track(3, 0, 1, 0), Track(7, 1, 4, 0), Track(8, 4, 4, 0)]
    assert split_gapped_tracks(fixed) is fixed
    labels[[0, 2, 4], 3, 3] = 9  # two gaps: each run the child of the run before it
    split, parents = split_gaps(labels)
    assert parents == {10: 3, 11: 9, 12: 11}
    assert split[0, 3, 3] == 9 and split[2, 3, 3] == 11 and split[4, 3, 3] == 12
    assert split_gaps(split)[1] == {}
    assert track_table(split, parents) == [Track(3, 0, 1, 0), Track(7, 1, 4, 0),
                                           Track(9, 0, 0, 0), Track(10, 4, 4, 3),
                                           Track(11, 2, 2, 9), Track(12, 4, 4, 11)]
    with pytest.raises(DataError, match="parent 99"):
        track_table(fixed, parents={7: 99})


def test_videos_to_ctc_gt(videos, tmp_path):
    src, data = videos
    gapped_image = _video(4, seed=9)
    gapped = np.zeros(gapped_image.shape, np.uint16)
    gapped[[0, 1, 3], 0, 0] = 5
    write_tiff(src / "inputs" / "vid_gap.tif", gapped_image)
    write_tiff(src / "labels" / "vid_gap.tif", gapped)
    mapping = videos_to_ctc(src, tmp_path / "ctc", kind="GT")
    names = [s.name for s in list_samples(src)]
    assert list(mapping.values()) == names and list(mapping) == ["01", "02", "03", "04"]
    csv_rows = (tmp_path / "ctc" / "sequences.csv").read_text().splitlines()
    assert csv_rows[0] == "sequence;video" and csv_rows[1] == f"01;{names[0]}"
    assert detect_layout(tmp_path / "ctc") == "ctc" and check_dataset(tmp_path / "ctc") == []
    seq = {v: k for k, v in mapping.items()}
    gt = tmp_path / "ctc" / f"{seq['vid_a']}_GT"
    image, labels = data["vid_a"]
    assert sorted(p.name for p in (gt / "SEG").iterdir()) == [f"man_seg{t:03d}.tif" for t in range(6)]
    tra = read_image(gt / "TRA" / "man_track002.tif")
    assert tra.dtype == np.uint32 and np.array_equal(tra, labels[2])  # 70000 does not fit uint16
    assert np.array_equal(read_image(tmp_path / "ctc" / seq["vid_a"] / "t005.tif"), image[5])
    lines = (gt / "TRA" / "man_track.txt").read_text().splitlines()
    assert lines == ["1 0 0 0", "2 1 1 0", "3 2 2 0", "4 3 3 0", "5 4 4 0", "6 5 5 0", "70000 0 5 0"]
    gap_lines = (tmp_path / "ctc" / f"{seq['vid_gap']}_GT" / "TRA" / "man_track.txt").read_text()
    # one object missed in frame 2: the run after the gap is the child of the one before,
    # as CTC links a track across a gap (it had no parent: a new object, TRA < 1 for the
    # same labels tracked by dlsuite track)
    assert gap_lines.splitlines() == ["5 0 1 0", "6 3 3 5"]
    tra3 = read_image(tmp_path / "ctc" / f"{seq['vid_gap']}_GT" / "TRA" / "man_track003.tif")
    assert tra3.dtype == np.uint16 and tra3[0, 0] == 6


def test_videos_to_ctc_res_from_flat_folder(tmp_path):
    labels = np.zeros((3, 4, 4), np.int32)
    labels[:, 1, 1] = 2
    write_tiff(tmp_path / "pred" / "movie.tif", labels)
    assert videos_to_ctc(tmp_path / "pred", tmp_path / "res", kind="RES") == {"01": "movie"}
    res = tmp_path / "res" / "01_RES"
    assert sorted(p.name for p in res.iterdir()) == ["mask000.tif", "mask001.tif", "mask002.tif", "res_track.txt"]
    assert (res / "res_track.txt").read_text() == "2 0 2 0\n"
    assert read_image(res / "mask001.tif").dtype == np.uint16
    with pytest.raises(DlsuiteInputError, match="kind"):
        videos_to_ctc(tmp_path / "pred", tmp_path / "x", kind="SEG")
    write_tiff(tmp_path / "fl" / "f.tif", labels.astype(np.float32))
    with pytest.raises(DataError, match="f.tif.*float32"):
        videos_to_ctc(tmp_path / "fl", tmp_path / "y")


def test_videos_to_ctc_checks_every_pair_before_creating_the_output(videos, tmp_path):
    """A frames dataset is named as such, a missing or mis-sized input video names its
    file; in each case the output folder is not even created."""
    from dlsuite.data.example import write_example_frames

    frames = write_example_frames(tmp_path / "data", n=2, size=16, seed=1)["frames"]
    with pytest.raises(DataError, match=r"a frames dataset .* dlsuite prepare videos"):
        videos_to_ctc(frames, tmp_path / "out1")
    root, data = videos
    image, _ = data["vid_a"]
    write_tiff(root / "inputs" / "vid_a.tif", image[:2])  # the last video: mis-sized
    with pytest.raises(DataError, match="vid_a.tif: shape differs from labels"):
        videos_to_ctc(root, tmp_path / "out2")
    (root / "inputs" / "vid_a.tif").unlink()
    with pytest.raises(DataError, match="no input video vid_a.tif"):
        videos_to_ctc(root, tmp_path / "out3")
    write_tiff(root / "inputs" / "vid_a.tif", image)
    _, labels = data["vid_b"]  # float labels (as Fiji saves 32-bit): how to convert them
    write_tiff(root / "labels" / "vid_b.tif", labels.astype(np.float32))
    with pytest.raises(DataError, match=r"vid_b.tif: float32 labels; CTC sequences need "
                                        r"integer .* Fiji: Image > Type > 16-bit"):
        videos_to_ctc(root, tmp_path / "out4")
    assert not any((tmp_path / f"out{k}").exists() for k in (1, 2, 3, 4))


@pytest.mark.parametrize("convert", ["frames", "clips"])
def test_frames_and_clips_check_every_video_before_writing(videos, tmp_path, convert):
    """A mis-sized label video after good ones: refused naming it, and no frame of the
    videos before it written (the folder is not created)."""
    root, data = videos
    _, labels = data["vid_b"]
    write_tiff(root / "labels" / "vid_b.tif", labels[:, :3])
    out = tmp_path / "out"
    with pytest.raises(DataError, match=r"vid_b.tif: label shape \(4, 3, 7\)"):
        videos_to_frames(root, out) if convert == "frames" else make_clips(root, out, T=2)
    assert not out.exists()


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_example_and_prepare_chain(tmp_path):
    runner = CliRunner()
    res = runner.invoke(example_data, ["videos", str(tmp_path / "ex"), "--n-videos", "2", "--frames", "5", "--size", "32", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "CTC" in res.output and detect_layout(tmp_path / "ex" / "videos") == "videos"
    res = runner.invoke(example_data, ["frames", str(tmp_path / "ex"), "--n", "2", "--size", "32"])
    assert res.exit_code == 0 and len(list((tmp_path / "ex" / "frames" / "inputs").iterdir())) == 2

    res = runner.invoke(prepare, ["frames", str(tmp_path / "ex" / "videos"), str(tmp_path / "fr")])
    assert res.exit_code == 0, res.output
    assert "10 files" in res.output
    res = runner.invoke(prepare, ["videos", str(tmp_path / "fr"), str(tmp_path / "rv")])
    assert res.exit_code == 0, res.output
    for name in ("cells_00", "cells_01"):
        assert np.array_equal(read_image(tmp_path / "rv" / "labels" / f"{name}.tif"),
                              read_image(tmp_path / "ex" / "videos" / "labels" / f"{name}.tif"))
    res = runner.invoke(prepare, ["clips", str(tmp_path / "ex" / "ctc"), str(tmp_path / "cl"), "-T", "3", "--every", "2"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "cl" / "inputs").iterdir())) == 4  # SEG at 0,2,4 ->every 2: 0,4 x 2
    res = runner.invoke(prepare, ["ctc", str(tmp_path / "ex" / "videos"), str(tmp_path / "gt")])
    assert res.exit_code == 0 and (tmp_path / "gt" / "02_GT" / "TRA" / "man_track.txt").is_file()


def test_cli_bad_input_raises_input_error(tmp_path):
    res = CliRunner().invoke(prepare, ["frames", str(tmp_path / "missing"), str(tmp_path / "o")])
    assert res.exit_code != 0
    assert isinstance(res.exception, DataError) and "missing" in str(res.exception)


def test_outputs_are_not_silently_mixed_with_older_runs(videos, tmp_path):
    src, _ = videos
    dst = videos_to_frames(src, tmp_path / "frames")
    # a stale extra frame of an earlier, larger conversion (recorded before it was written)
    OwnedFolder(dst, "prepare").record(["inputs/raw_099.tif"])
    write_tiff(dst / "inputs" / "raw_099.tif", np.zeros((6, 7), np.uint16))
    with pytest.raises(DataError, match="already holds"):
        videos_to_frames(src, dst)
    videos_to_frames(src, dst, overwrite=True)
    assert not (dst / "inputs" / "raw_099.tif").exists()
    assert check_dataset(dst) == []
    videos_to_ctc(src, tmp_path / "ctc")
    with pytest.raises(DataError, match="already holds"):
        videos_to_ctc(src, tmp_path / "ctc")
    res = CliRunner().invoke(prepare, ["ctc", str(src), str(tmp_path / "ctc"), "--overwrite"])
    assert res.exit_code == 0, res.output
