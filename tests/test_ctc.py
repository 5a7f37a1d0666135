"""dlsuite.data.ctc, the one CTC module: names, the case rule, track files, sequence folders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from dlsuite.data import ctc
from dlsuite.data.ctc import Track
from dlsuite.data.layouts import list_samples, load_sample
from dlsuite.errors import DataError
from dlsuite.evaluation import evaluate, evaluate_ctc
from synthetic_ctc import tracked_squares


def test_one_track_class_everywhere():
    import dlsuite.data.prepare
    import dlsuite.tracking

    assert dlsuite.data.prepare.Track is dlsuite.tracking.Track is Track
    tr = Track(4, 2, 5, 3)
    assert tr.line() == "4 2 5 3" and Track(7, 0, 1) == (7, 0, 1, 0)


# --- file-name patterns ---------------------------------------------------------------------


@pytest.mark.parametrize("kind, prefix", [("image", "t"), ("seg", "man_seg"),
                                          ("tra", "man_track"), ("res", "mask")])
def test_frame_names_written_canonically_and_read_in_any_form(kind, prefix):
    assert ctc.frame_name(kind, 7, 10) == f"{prefix}007.tif"
    assert ctc.frame_name(kind, 7, 1000) == f"{prefix}007.tif"
    assert ctc.frame_name(kind, 7, 1001) == f"{prefix}0007.tif"  # 4 digits beyond 1000 frames
    for name in (f"{prefix}007.tif", f"{prefix}7.tif", f"{prefix}0007.tiff",
                 f"{prefix.upper()}007.TIF", f"{prefix.title()}007.Tif"):
        assert ctc.frame_index(name, kind) == 7, name
    for name in (f"{prefix}007_001.tif", f"{prefix}007.png", f"{prefix}.tif", f"x{prefix}007.tif"):
        assert ctc.frame_index(name, kind) is None, name


def test_kinds_do_not_overlap():
    assert ctc.frame_index("man_seg003.tif", "tra") is None
    assert ctc.frame_index("man_track003.tif", "seg") is None
    assert ctc.frame_index("t003.tif", "res") is None
    with pytest.raises(ValueError, match="frame kind"):
        ctc.frame_name("mask", 0)


def test_folder_names():
    assert ctc.sequence_name(1) == "01" and ctc.sequence_name(3, count=120) == "003"
    assert ctc.folder_sequence("02_RES", "RES") == "02" == ctc.folder_sequence("02_res", "RES")
    assert ctc.folder_sequence("02_GT", "GT") == "02" == ctc.folder_sequence("02_Gt", "GT")
    assert ctc.folder_sequence("02", "images") == "02"
    assert ctc.folder_sequence("02_GT", "RES") is None
    assert ctc.folder_sequence("DS1_RES", "RES") is None
    assert ctc.folder_sequence("02_RES", "images") is None


def test_duplicate_frame_numbers_name_both_files(tmp_path):
    for name in ("mask01.tif", "MASK001.tif"):
        tifffile.imwrite(tmp_path / name, np.zeros((4, 4), np.uint16))
    with pytest.raises(DataError, match="frame 1 appears twice.*mask01.tif"):
        ctc.list_frames(tmp_path, "res")
    assert ctc.list_frames(tmp_path / "absent", "res") == {}


# --- track files ----------------------------------------------------------------------------


def test_track_file_round_trip(tmp_path):
    tracks = [Track(5, 3, 5, 3), Track(1, 0, 5, 0), (3, 0, 2, 0), np.array([4, 3, 5, 3])]
    path = ctc.write_track_file(tmp_path / "res_track.txt", tracks)
    assert path.read_text() == "1 0 5 0\n3 0 2 0\n4 3 5 3\n5 3 5 3\n"  # sorted by label
    back = ctc.read_track_file(path)
    assert back == [Track(1, 0, 5, 0), Track(3, 0, 2, 0), Track(4, 3, 5, 3), Track(5, 3, 5, 3)]
    assert all(isinstance(tr, Track) for tr in back)
    assert ctc.write_track_file(tmp_path / "empty.txt", []).read_text() == ""
    assert ctc.read_track_file(tmp_path / "empty.txt") == []


@pytest.mark.parametrize("bad", ["1 0 5", "1 0 5 0 9", "1 0 x 0", "1 -1 5 0"])
def test_malformed_track_line_is_named(tmp_path, bad):
    path = tmp_path / "man_track.txt"
    path.write_text(f"1 0 5 0\n\n{bad}\n")
    with pytest.raises(DataError, match=r"man_track.txt:3"):
        ctc.read_track_file(path)


def test_track_table_and_check_tracks_agree():
    video, rows = tracked_squares()
    tracks = ctc.track_table(video, parents={4: 3, 5: 3})
    assert tracks == [Track(*r) for r in rows.tolist()]
    assert ctc.check_tracks(video, tracks) == []
    problems = ctc.check_tracks(video, tracks[:-1] + [Track(5, 2, 5, 3)])
    assert any("track 5" in p for p in problems)
    gapped = video.copy()
    gapped[2][gapped[2] == 1] = 0
    with pytest.raises(DataError, match="label 1 has a temporal gap"):
        ctc.track_table(gapped)
    fixed = ctc.split_gapped_tracks(gapped)
    assert ctc.check_tracks(fixed, ctc.track_table(fixed)) == []


# --- sequence folders -----------------------------------------------------------------------


def test_sequence_folder_round_trip(tmp_path):
    video, rows = tracked_squares()
    images = (np.arange(video.size, dtype=np.uint16) % 1000).reshape(video.shape)
    tracks = [Track(*r) for r in rows.tolist()]
    root = tmp_path / "ctc"
    ctc.write_frames(root / "01", "image", images)
    gt = ctc.write_ground_truth(ctc.gt_folder(root, "01"), video, tracks, annotated=[0, 3])
    res = ctc.write_result(ctc.res_folder(root, "01"), video, tracks)
    assert gt == root / "01_GT" and res == root / "01_RES"

    names = sorted(p.name for p in res.iterdir())
    assert names == [f"mask{t:03d}.tif" for t in range(6)] + ["res_track.txt"]
    assert sorted(ctc.list_frames(ctc.seg_folder(gt), "seg")) == [0, 3]
    for folder, kind, expected in ((root / "01", "image", images), (res, "res", video),
                                   (ctc.tra_folder(gt), "tra", video)):
        indices, back = ctc.read_sequence(folder, kind)
        assert indices == list(range(6)) and back.dtype == expected.dtype
        np.testing.assert_array_equal(back, expected)
    np.testing.assert_array_equal(ctc.read_frame(gt / "SEG" / "man_seg003.tif"), video[3])
    assert ctc.read_track_file(ctc.res_track_file(res)) == tracks
    assert ctc.read_track_file(ctc.man_track_file(gt)) == tracks
    assert ctc.is_ground_truth(gt) and not ctc.is_ground_truth(res)

    # output_files: exactly what an export writes, nothing else
    (root / "01" / "notes.txt").write_text("mine")
    tifffile.imwrite(root / "01_RES" / "other.tif", video[0])
    listed = {p.relative_to(root).as_posix() for p in ctc.output_files(root)}
    assert len(listed) == 6 + 2 + 6 + 1 + 6 + 1
    assert "01_RES/res_track.txt" in listed and "01_GT/TRA/man_track.txt" in listed
    assert "01/notes.txt" not in listed and "01_RES/other.tif" not in listed
    # the evaluation reads back a perfect score
    out = evaluate_ctc(res, gt, ["SEG", "DET", "TRA"])
    assert (out["SEG"], out["DET"], out["TRA"]) == (1.0, 1.0, 1.0)


def test_write_result_refuses_before_writing(tmp_path):
    video, rows = tracked_squares()
    tracks = [Track(*r) for r in rows.tolist()]
    with pytest.raises(DataError, match="inconsistent.*track 5"):
        ctc.write_result(tmp_path / "01_RES", video, tracks[:-1] + [Track(5, 0, 5, 3)])
    wide = video.astype(np.uint32)
    wide[wide == 2] = 70000
    wide_tracks = [tr._replace(label=70000) if tr.label == 2 else tr for tr in tracks]
    with pytest.raises(DataError, match="70000 does not fit a 16-bit"):
        ctc.write_result(tmp_path / "02_RES", wide, wide_tracks)
    with pytest.raises(DataError, match="integer labels"):
        ctc.write_result(tmp_path / "03_RES", video.astype(np.float32), tracks)
    assert not any(tmp_path.iterdir())
    res = ctc.write_result(tmp_path / "04_RES", wide, wide_tracks, allow_wide=True)
    mask = tifffile.imread(res / "mask000.tif")
    assert mask.dtype == np.uint32 and mask.max() == 70000
    assert ctc.write_result(tmp_path / "05_RES", video.astype(np.int64), tracks) \
        and tifffile.imread(tmp_path / "05_RES" / "mask000.tif").dtype == np.uint16


# --- the case rule --------------------------------------------------------------------------


def _write_upper_case(root, video, rows, images):
    """The same sequence as the canonical writers produce, every CTC name in another case."""
    for sub in ("01", "01_gt/Seg", "01_gt/tra", "01_res"):
        (root / sub).mkdir(parents=True)
    for t, frame in enumerate(images):
        tifffile.imwrite(root / "01" / f"T{t:03d}.TIF", frame)
    for t, frame in enumerate(video):
        tifffile.imwrite(root / "01_gt" / "tra" / f"MAN_TRACK{t:03d}.TIF", frame)
        tifffile.imwrite(root / "01_res" / f"Mask{t:03d}.tiff", frame)
        if t in (0, 3):
            tifffile.imwrite(root / "01_gt" / "Seg" / f"MAN_SEG{t:03d}.TIF", frame)
    text = "".join(" ".join(map(str, r)) + "\n" for r in rows)
    (root / "01_gt" / "tra" / "MAN_TRACK.TXT").write_text(text)
    (root / "01_res" / "RES_TRACK.txt").write_text(text)


def test_upper_and_lower_case_folders_are_read_the_same(tmp_path):
    video, rows = tracked_squares()
    images = (video * 10 + 3).astype(np.uint16)
    tracks = [Track(*r) for r in rows.tolist()]
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    ctc.write_frames(lower / "01", "image", images)
    ctc.write_ground_truth(lower / "01_GT", video, tracks, annotated=[0, 3])
    ctc.write_result(lower / "01_RES", video, tracks)
    _write_upper_case(upper, video, rows.tolist(), images)

    # the file-level helpers find the differently spelled names
    assert ctc.gt_folder(upper, "01").name == "01_gt"
    assert ctc.seg_folder(upper / "01_gt").name == "Seg"
    assert ctc.man_track_file(upper / "01_gt").name == "MAN_TRACK.TXT"
    assert ctc.read_track_file(ctc.res_track_file(upper / "01_res")) == tracks
    assert len(ctc.output_files(upper)) == len(ctc.output_files(lower)) == 6 + 2 + 6 + 1 + 6 + 1

    # evaluation: same numbers from either spelling, through the folder discovery too
    metrics = ["SEG", "DET", "TRA", "f1", "temporal_stability", "temporal_stability_gt"]

    def scores(out):
        return {k: out[k] for k in metrics} | {"per_frame": out["per_frame"]}

    assert scores(evaluate_ctc(upper / "01_res", upper / "01_gt", metrics)) == \
        scores(evaluate_ctc(lower / "01_RES", lower / "01_GT", metrics))
    both = [evaluate(root, root, metrics) for root in (upper, lower)]
    assert both[0]["metrics"] == both[1]["metrics"] and both[0]["metrics"]["TRA"] == 1.0
    assert [s["sequence"] for s in both[0]["per_sequence"]] == ["01"]

    # dataset layout: same sample content (images, sparse SEG labels)
    loaded = [load_sample(list_samples(root)[0]) for root in (upper, lower)]
    np.testing.assert_array_equal(loaded[0].image, loaded[1].image)
    np.testing.assert_array_equal(loaded[0].labels, loaded[1].labels)
    assert loaded[0].annotated.tolist() == loaded[1].annotated.tolist() == [0, 3]


def test_exact_canonical_name_wins_over_other_spelling(tmp_path):
    (tmp_path / "seg").mkdir()
    (tmp_path / "SEG").mkdir()
    assert ctc.seg_folder(tmp_path) == tmp_path / "SEG"
    assert ctc.tra_folder(tmp_path) == tmp_path / "TRA"  # missing: the canonical path to create


def test_module_imports_no_tensorflow_and_nothing_above_data():
    code = ("import sys, dlsuite.data.ctc; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras') "
            "or m.startswith(('dlsuite.tracking', 'dlsuite.evaluation'))]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
