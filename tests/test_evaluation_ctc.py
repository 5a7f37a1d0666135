"""CTC sequences: SEG/DET/TRA of NN_RES vs NN_GT, against py-ctcmetrics' evaluate_sequence."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import tifffile

from dlsuite.errors import DataError
from dlsuite.evaluation import evaluate_ctc
from dlsuite.data.ctc import write_track_file
from synthetic_ctc import tracked_squares, write_ctc_sequence


def py_ctcmetrics(res, gt, metrics):
    from ctc_metrics import evaluate_sequence

    with contextlib.redirect_stdout(io.StringIO()):
        return evaluate_sequence(str(res), str(gt), list(metrics), threads=1)


@pytest.fixture
def seq(tmp_path):
    """A perfect 6-frame tracked sequence with a division; SEG annotated on frames 0, 3, 4."""
    video, tracks = tracked_squares()
    gt = write_ctc_sequence(tmp_path / "01_GT", video, tracks, kind="gt", seg_frames=[0, 3, 4])
    res = write_ctc_sequence(tmp_path / "01_RES", video, tracks)
    return video, tracks, res, gt


def broken(video):
    """Cell 2 missed in frame 2 and its track continued under a new label 6 (no link)."""
    b = video.copy()
    b[2][b[2] == 2] = 0
    b[3:][b[3:] == 2] = 6
    tracks = np.array([[1, 0, 5, 0], [2, 0, 1, 0], [6, 3, 5, 0], [3, 0, 2, 0], [4, 3, 5, 3], [5, 3, 5, 3]])
    return b, tracks


def test_perfect_sequence_scores_one(seq):
    _, _, res, gt = seq
    out = evaluate_ctc(res, gt)
    assert out["SEG"] == 1.0 and out["DET"] == 1.0 and out["TRA"] == 1.0
    assert out["unavailable"] == {}
    assert out["n_gt_objects"] == 3 + 4 + 4  # frame 0 has 3 cells, frames 3/4 have 4
    assert [r["frame"] for r in out["per_frame"]] == [0, 3, 4]


def test_broken_sequence_is_lower_and_equals_py_ctcmetrics(seq, tmp_path):
    video, tracks, _, gt = seq
    b, btracks = broken(video)
    res = write_ctc_sequence(tmp_path / "02_RES", b, btracks)
    out = evaluate_ctc(res, gt)
    ref = py_ctcmetrics(res, gt, ["SEG", "DET", "TRA"])
    assert out["DET"] < 1.0 and out["TRA"] < out["DET"]
    for key in ("SEG", "DET", "TRA", "AOGM", "AOGM_FN", "AOGM_EA", "AOGM_ED", "AOGM_EC"):
        assert abs(out[key] - float(ref[key])) < 1e-6, key
    # hand check: one missed marker (FN weight 10) of 21 vertices -> DET = 1 - 10/210
    assert out["DET"] == pytest.approx(1 - 10 / 210)


def test_segmentation_errors_lower_seg_and_det(seq, tmp_path):
    video, tracks, _, gt = seq
    shrunk = video.copy()
    shrunk[:, :, :] = 0
    shrunk[:, 4:12, :] = video[:, 4:12, :]  # keep cell 1 only
    shrunk[:, 20:24, :] = video[:, 20:24, :]  # half of cell 2: exactly half -> no match
    tr = np.array([[1, 0, 5, 0], [2, 0, 5, 0]])
    res = write_ctc_sequence(tmp_path / "03_RES", shrunk, tr)
    out = evaluate_ctc(res, gt)
    ref = py_ctcmetrics(res, gt, ["SEG", "DET", "TRA"])
    assert out["SEG"] == pytest.approx(3 / 11)  # cell 1 perfect on the 3 annotated frames
    for key in ("SEG", "DET", "TRA"):
        assert abs(out[key] - ref[key]) < 1e-6, key


def test_det_without_res_track_tra_unavailable(seq):
    _, _, res, gt = seq
    (res / "res_track.txt").unlink()
    out = evaluate_ctc(res, gt)
    assert out["DET"] == 1.0
    assert out["TRA"] is None and "res_track.txt" in out["unavailable"]["TRA"]


def test_an_empty_result_scores_zero_as_py_ctcmetrics_and_a_mean_counts_it(seq, tmp_path):
    """A sequence in which nothing was found (empty masks, empty res_track.txt, as
    ``dlsuite track`` writes them) is a valid result scoring DET = TRA = 0, not an invalid
    one left out of a mean over sequences (which would then show only the good ones)."""
    video, _, res, gt = seq
    empty = write_ctc_sequence(tmp_path / "02_RES", np.zeros_like(video), None)
    write_track_file(empty / "res_track.txt", [])
    out = evaluate_ctc(empty, gt)  # (py-ctcmetrics' own evaluate_sequence fails on it)
    assert out["unavailable"] == {}
    assert out["SEG"] == 0.0 and out["DET"] == 0.0 and out["TRA"] == 0.0
    # by the definitions: every marker missed (FN weight 10 each), nothing else to correct,
    # so the AOGM equals that of building the graph from nothing
    assert out["AOGM_FN"] == 21 and out["AOGM"] == out["AOGM_0"] > 0
    # the mean over a perfect and an empty sequence is 0.5, not the perfect one's 1.0
    from dlsuite import api

    video, tracks = tracked_squares()
    both = tmp_path / "both"
    for number in ("01", "02"):
        write_ctc_sequence(both / "gt" / f"{number}_GT", video, tracks, kind="gt",
                           seg_frames=[0, 3, 4])
    write_ctc_sequence(both / "res" / "01_RES", video, tracks)
    write_ctc_sequence(both / "res" / "02_RES", np.zeros_like(video), None)
    write_track_file(both / "res" / "02_RES" / "res_track.txt", [])
    mean = api.evaluate(both / "res", both / "gt", ["SEG", "DET", "TRA"])["metrics"]
    assert mean == {"SEG": 0.5, "DET": 0.5, "TRA": 0.5}
    # empty tracks but objects in the masks: inconsistent, still refused
    write_track_file(res / "res_track.txt", [])
    assert "invalid result" in evaluate_ctc(res, gt, ["DET", "TRA"])["unavailable"]["TRA"]


def test_no_tra_ground_truth_reports_reason(tmp_path):
    video, tracks = tracked_squares()
    gt = write_ctc_sequence(tmp_path / "01_GT", video, None, kind="gt")  # SEG only
    res = write_ctc_sequence(tmp_path / "01_RES", video, tracks)
    out = evaluate_ctc(res, gt)
    assert out["SEG"] == 1.0
    assert out["DET"] is None and out["TRA"] is None
    assert "TRA ground truth" in out["unavailable"]["DET"]


def test_invalid_res_track_reports_reason(seq):
    _, _, res, gt = seq
    write_track_file(res / "res_track.txt", [[1, 0, 5, 0], [2, 0, 5, 0]])  # labels 3-5 missing
    out = evaluate_ctc(res, gt, ["DET", "TRA"])
    assert out["DET"] is None and out["TRA"] is None
    assert "invalid result" in out["unavailable"]["TRA"]


def test_missing_result_for_annotated_frame(seq):
    _, _, res, gt = seq
    (res / "mask003.tif").unlink()
    with pytest.raises(DataError, match=r"\[3\]"):
        evaluate_ctc(res, gt, ["SEG"])


def test_bad_track_file_line_is_named(seq):
    _, _, res, gt = seq
    (res / "res_track.txt").write_text("1 0 5 0\n2 zero 5 0\n")
    with pytest.raises(DataError, match=r"res_track.txt:2"):
        evaluate_ctc(res, gt, ["TRA"])


def test_sparse_seg_slices_are_ignored(seq):
    _, _, res, gt = seq
    (gt / "SEG" / "man_seg000_001.tif").write_bytes((gt / "SEG" / "man_seg000.tif").read_bytes())
    assert evaluate_ctc(res, gt, ["SEG"])["n_annotated_frames"] == 3


def test_temporal_stability_reported_beside_gt(seq, tmp_path):
    video, tracks, _, gt = seq
    flicker = video.copy()
    flicker[1] = 0  # frame 1 empty: a flickering result
    res = write_ctc_sequence(tmp_path / "04_RES", flicker, None)
    out = evaluate_ctc(res, gt, ["temporal_stability", "temporal_stability_gt"])
    perfect = evaluate_ctc(seq[2], gt, ["temporal_stability", "temporal_stability_gt"])
    assert out["temporal_stability"] < perfect["temporal_stability"]
    # the GT value (pair 3->4) is the same whatever the result
    assert out["temporal_stability_gt"] == perfect["temporal_stability_gt"] == pytest.approx(7 / 9)
    assert out["temporal_stability_on_gt_pairs"] == pytest.approx(7 / 9)


def test_a_result_frame_of_another_shape_is_named_by_temporal_stability(seq):
    """Two consecutive result frames of different shapes: both files named (the message
    called them "reference" and "result" and named neither)."""
    _, _, res, gt = seq
    frame = res / "mask004.tif"
    tifffile.imwrite(frame, tifffile.imread(frame)[:, :-2])
    with pytest.raises(DataError, match=r"mask004\.tif: shape .* differs from the frame "
                                        r"before it, .*mask003\.tif"):
        evaluate_ctc(res, gt, ["temporal_stability"])


def test_track_file_with_unknown_parent_is_reported_not_raised(seq):
    _, tracks, res, gt = seq
    bad = tracks.copy()
    bad[-1, 3] = 99  # parent 99 does not exist
    write_track_file(res / "res_track.txt", bad)
    out = evaluate_ctc(res, gt, ["SEG", "TRA"])
    assert out["SEG"] == 1.0
    assert out["TRA"] is None and "res_track.txt" in out["unavailable"]["TRA"]


def test_man_track_inconsistent_with_markers_is_reported(seq):
    _, tracks, res, gt = seq
    bad = tracks.copy()
    bad[-1, 3] = 1  # GT says track 5 is a child of track 1, which lives to the end
    bad[-1, 1] = 0
    write_track_file(gt / "TRA" / "man_track.txt", bad)
    out = evaluate_ctc(res, gt, ["DET", "TRA"])
    assert out["DET"] == 1.0  # DET needs no track file
    assert out["TRA"] is None and "man_track.txt" in out["unavailable"]["TRA"]


def test_a_mean_over_some_sequences_says_which_were_left_out(tmp_path):
    """Sequence 01 lacks the result of a frame only TRA annotates: its DET/TRA are n/a and
    the summary's were 02's alone, printed as the whole result's without a word."""
    import json

    from conftest import run_cli

    video, tracks = tracked_squares()
    for name in ("01", "02"):
        write_ctc_sequence(tmp_path / "gt" / f"{name}_GT", video, tracks, kind="gt",
                           seg_frames=[0, 3, 4])
        write_ctc_sequence(tmp_path / "res" / f"{name}_RES", video, tracks)
    (tmp_path / "res" / "01_RES" / "mask002.tif").unlink()
    proc = run_cli("evaluate", str(tmp_path / "res"), str(tmp_path / "gt"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("warning: DET, TRA: mean over 1 of 2 sequences, without 01: result "
                           "and TRA ground truth frames differ; no result for frames [2]\n")
    result = json.loads(proc.stdout)
    assert result["metrics"]["DET"] == result["per_sequence"][1]["DET"] == 1.0
    assert result["per_sequence"][0]["DET"] is None
    # every sequence gives every mean: no warning
    write_ctc_sequence(tmp_path / "res" / "01_RES", video, tracks)
    proc = run_cli("evaluate", str(tmp_path / "res"), str(tmp_path / "gt"), "-q")
    assert (proc.returncode, proc.stderr) == (0, "")
