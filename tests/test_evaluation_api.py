"""evaluate(res, gt): CTC roots, sequence folders, label-image folders, errors; and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from dlsuite.cli.evaluate import evaluate as evaluate_cmd
from dlsuite.data.io import write_tiff
from dlsuite.errors import DataError, DlsuiteInputError
from dlsuite.evaluation import evaluate
from synthetic_ctc import tracked_squares, write_ctc_sequence

ALL = ["SEG", "DET", "TRA", "jaccard", "dice", "precision", "recall", "f1",
       "temporal_stability", "temporal_stability_gt"]


@pytest.fixture
def ctc_root(tmp_path):
    """RES root with 01_RES (perfect) and 02_RES (cell 1 missing in frame 0); GT root apart."""
    video, tracks = tracked_squares(divide_at=None)
    for seq in ("01", "02"):
        write_ctc_sequence(tmp_path / "gt" / f"{seq}_GT", video, tracks, kind="gt", seg_frames=[0, 2])
    write_ctc_sequence(tmp_path / "res" / "01_RES", video, tracks)
    bad = video.copy()
    bad[0][bad[0] == 1] = 0
    write_ctc_sequence(tmp_path / "res" / "02_RES", bad, np.array([[1, 1, 5, 0], [2, 0, 5, 0], [3, 0, 5, 0]]))
    return tmp_path / "res", tmp_path / "gt"


def test_a_predict_ctc_output_folder_is_compared_with_the_ctc_dataset_it_predicted(ctc_root,
                                                                                   tmp_path):
    """dlsuite predict --ctc writes OUT/ctc/NN_RES: ``evaluate OUT DATASET`` pairs them with
    DATASET/NN_GT (it looked for DATASET/ctc/NN_GT); label videos against CTC ground truth
    are refused with a pointer to the CTC results."""
    import shutil

    res, gt = ctc_root
    out = tmp_path / "out"
    shutil.copytree(res, out / "ctc")
    (out / "labels").mkdir()
    result = evaluate(out, gt, "SEG")
    assert [s["sequence"] for s in result["per_sequence"]] == ["01", "02"]
    assert result["metrics"]["SEG"] == pytest.approx(evaluate(res, gt, "SEG")["metrics"]["SEG"])
    shutil.rmtree(out / "ctc")
    tifffile.imwrite(out / "labels" / "01.tif", np.zeros((3, 8, 8), np.uint16))
    with pytest.raises(DataError, match="is CTC ground truth .*dlsuite predict --ctc"):
        evaluate(out, gt, "SEG")


def test_ctc_roots_every_sequence_including_01(ctc_root):
    res, gt = ctc_root
    out = evaluate(res, gt)
    assert set(out) == {"metrics", "per_sequence", "per_frame", "matching", "warnings"}
    assert out["warnings"] == []  # instance ground truth
    assert list(out["metrics"]) == ALL
    assert [s["sequence"] for s in out["per_sequence"]] == ["01", "02"]
    s1, s2 = out["per_sequence"]
    assert s1["SEG"] == 1.0 and s1["TRA"] == 1.0
    assert s2["SEG"] == pytest.approx(5 / 6) and s2["DET"] < 1.0
    assert out["metrics"]["SEG"] == pytest.approx((1 + 5 / 6) / 2)  # mean over sequences
    assert len(out["per_frame"]) == 4  # 2 annotated frames x 2 sequences


def test_ctc_sequence_folders_directly(ctc_root):
    res, gt = ctc_root
    out = evaluate(res / "02_RES", gt / "02_GT", "SEG,f1")
    assert list(out["metrics"]) == ["SEG", "f1"]
    assert out["metrics"]["SEG"] == pytest.approx(5 / 6)
    assert out["metrics"]["f1"] == pytest.approx(2 * 5 / (2 * 5 + 1))
    # the GT root holding NN_GT also works for a sequence folder
    assert evaluate(res / "02_RES", gt, ["SEG"])["metrics"]["SEG"] == pytest.approx(5 / 6)


def test_ctc_nested_dataset_layout(tmp_path):
    video, tracks = tracked_squares(divide_at=None)
    write_ctc_sequence(tmp_path / "res" / "DS1" / "01_RES", video, tracks)
    write_ctc_sequence(tmp_path / "gt" / "DS1" / "01_GT", video, tracks, kind="gt")
    out = evaluate(tmp_path / "res", tmp_path / "gt", ["SEG", "TRA"])
    assert out["per_sequence"][0]["sequence"] == "DS1/01"
    assert out["metrics"] == {"SEG": 1.0, "TRA": 1.0}


def test_ctc_missing_gt_sequence_named(ctc_root):
    res, gt = ctc_root
    import shutil

    shutil.rmtree(gt / "02_GT")
    with pytest.raises(DataError, match="02_GT"):
        evaluate(res, gt)


def test_label_folders_2d_and_video(tmp_path):
    from skimage.io import imsave

    (tmp_path / "res").mkdir()
    (tmp_path / "gt").mkdir()
    gt = np.zeros((16, 16), np.uint8)
    gt[2:8, 2:8] = 1
    gt[10:14, 10:14] = 2
    imsave(tmp_path / "gt" / "a.png", gt, check_contrast=False)
    imsave(tmp_path / "res" / "a.png", (gt > 0).astype(np.uint8) * 3, check_contrast=False)  # merged
    video = np.stack([gt, gt, np.zeros_like(gt)]).astype(np.uint16)
    write_tiff(tmp_path / "gt" / "v.tif", video, axes="TYX")
    flick = video.copy()
    flick[1], flick[2] = 0, gt  # result [gt, empty, gt] vs truth [gt, gt, empty]
    write_tiff(tmp_path / "res" / "v.tif", flick, axes="TYX")
    out = evaluate(tmp_path / "res", tmp_path / "gt")
    by = {s["sequence"]: s for s in out["per_sequence"]}
    assert by["a.png"]["SEG"] == pytest.approx((36 / 52 + 16 / 52) / 2)  # merge: both matched
    assert by["a.png"]["DET"] is None and "no tracks" in by["a.png"]["unavailable"]["DET"]
    assert "dlsuite prepare ctc" in by["a.png"]["unavailable"]["DET"]  # the way to get them
    assert by["a.png"]["temporal_stability"] is None
    assert by["v.tif"]["temporal_stability"] == 0.0  # both consecutive pairs disagree
    assert by["v.tif"]["temporal_stability_gt"] == pytest.approx(0.5)  # 1.0 then 0.0
    assert len(out["per_frame"]) == 1 + 3
    assert out["metrics"]["DET"] is None and out["metrics"]["temporal_stability"] == 0.0


def test_label_folders_unpaired_named(tmp_path):
    for side in ("res", "gt"):
        (tmp_path / side).mkdir()
    img = np.ones((4, 4), np.uint16)
    tifffile.imwrite(tmp_path / "res" / "x.tif", img)
    tifffile.imwrite(tmp_path / "res" / "only_res.tif", img)
    tifffile.imwrite(tmp_path / "gt" / "x.tif", img)
    tifffile.imwrite(tmp_path / "gt" / "only_gt.tif", img)
    with pytest.raises(DataError, match="only_res.tif") as exc:
        evaluate(tmp_path / "res", tmp_path / "gt")
    assert "only_gt.tif" in str(exc.value)


def _frames_dataset(root, frames):
    for k, labels in enumerate(frames, start=1):
        write_tiff(root / "inputs" / f"raw_{k:03d}.tif", (labels > 0).astype(np.uint8) * 200)
        write_tiff(root / "labels" / f"instance_ids_{k:03d}.tif", labels)


def test_dataset_folder_as_ground_truth_pairs_results_named_as_its_inputs(tmp_path):
    """dlsuite predict RUN data/test -o out names its labels as the inputs (raw_001.tif);
    dlsuite evaluate out data/test pairs each with the label file of its input."""
    first, second = np.zeros((16, 16), np.uint16), np.zeros((16, 16), np.uint16)
    first[1:7, 1:7], second[9:15, 9:15] = 1, 4  # apart: a wrong pairing scores 0
    _frames_dataset(tmp_path / "data", [first, second])
    out = tmp_path / "out"
    for k, labels in enumerate([first, second], start=1):  # as dlsuite predict writes them
        write_tiff(out / "labels" / f"raw_{k:03d}.tif", labels)
        write_tiff(out / "probabilities" / f"raw_{k:03d}.tif", np.zeros((16, 16, 2), np.float32))
    result = evaluate(out, tmp_path / "data", metrics="SEG,f1")
    assert result["metrics"]["SEG"] == 1.0 and result["metrics"]["f1"] == 1.0
    assert [s["sequence"] for s in result["per_sequence"]] == ["raw_001.tif", "raw_002.tif"]
    # the dataset's labels/ folder given as the ground truth pairs the same way
    by_labels = evaluate(out, tmp_path / "data" / "labels", metrics="SEG,f1")
    assert by_labels["metrics"] == result["metrics"]
    # results named as the label files pair too; a missing one is named
    (out / "labels" / "raw_002.tif").rename(out / "labels" / "instance_ids_002.tif")
    assert evaluate(out / "labels", tmp_path / "data", metrics="SEG")["metrics"]["SEG"] == 1.0
    (out / "labels" / "instance_ids_002.tif").unlink()
    with pytest.raises(DataError, match="no result in .* for: instance_ids_002.tif"):
        evaluate(out, tmp_path / "data")


def test_predicted_videos_folder_with_ctc_results_is_evaluated_by_its_labels(tmp_path):
    """A videos dataset predicted with tracking holds ctc/01_RES beside labels/: against the
    dataset folder (no NN_GT) its label videos are evaluated."""
    video = np.zeros((3, 16, 16), np.uint16)
    video[:, 2:8, 2:8] = 1
    write_tiff(tmp_path / "data" / "inputs" / "cells.tif", video.astype(np.uint8), axes="TYX")
    write_tiff(tmp_path / "data" / "labels" / "cells.tif", video, axes="TYX")
    write_tiff(tmp_path / "out" / "labels" / "cells.tif", video, axes="TYX")
    write_ctc_sequence(tmp_path / "out" / "ctc" / "01_RES", video, np.array([[1, 0, 2, 0]]))
    result = evaluate(tmp_path / "out", tmp_path / "data", metrics="SEG")
    assert result["metrics"]["SEG"] == 1.0
    assert [s["sequence"] for s in result["per_sequence"]] == ["cells.tif"]


def test_shape_mismatch_and_missing_paths(tmp_path):
    for side in ("res", "gt"):
        (tmp_path / side).mkdir()
    tifffile.imwrite(tmp_path / "res" / "x.tif", np.ones((4, 4), np.uint16))
    tifffile.imwrite(tmp_path / "gt" / "x.tif", np.ones((5, 4), np.uint16))
    with pytest.raises(DataError, match="x.tif"):
        evaluate(tmp_path / "res", tmp_path / "gt")
    with pytest.raises(DataError, match="nope"):
        evaluate(tmp_path / "nope", tmp_path / "gt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CTC sequence"):
        evaluate(tmp_path / "empty", tmp_path / "gt")


def test_unknown_metric(ctc_root):
    with pytest.raises(DlsuiteInputError, match="bogus"):
        evaluate(*ctc_root, ["SEG", "bogus"])


def test_metric_names_case_insensitive_canonical_output(ctc_root):
    out = evaluate(*ctc_root, "seg,F1,Temporal_Stability")
    assert list(out["metrics"]) == ["SEG", "f1", "temporal_stability"]


# ---- CLI ------------------------------------------------------------------------------------
def test_cli_json_keys(ctc_root, tmp_path):
    res, gt = ctc_root
    out_file = tmp_path / "m.json"
    r = CliRunner().invoke(evaluate_cmd, [str(res), str(gt), "--metrics", "SEG,DET,TRA,f1", "--json", "-o", str(out_file)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert list(data) == ["metrics", "per_sequence", "matching"]
    assert list(data["metrics"]) == ["SEG", "DET", "TRA", "f1"]
    assert data["metrics"]["SEG"] == pytest.approx((1 + 5 / 6) / 2)
    assert json.loads(out_file.read_text()) == data


def test_output_and_per_frame_as_one_file_are_refused_before_evaluating(ctc_root, tmp_path,
                                                                         monkeypatch):
    """-o X --per-frame X: one would have replaced the other; refused, nothing written."""
    res, gt = ctc_root
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(evaluate_cmd, [str(res), str(gt), "-o", "both.csv",
                                          "--per-frame", str(tmp_path / "both.csv")])
    assert isinstance(r.exception, DlsuiteInputError)  # exit 2 in the CLI's main
    assert "are one file" in str(r.exception) and not (tmp_path / "both.csv").exists()


@pytest.mark.parametrize("metrics", ["DET", "TRA,temporal_stability"])
def test_per_frame_with_only_per_sequence_metrics_is_refused_before_evaluating(
        ctc_root, tmp_path, metrics):
    """--per-frame with DET/TRA/temporal metrics alone wrote an empty CSV (CTC) or frame names
    only, which the next --overwrite then refused as not dlsuite's; now refused at once."""
    res, gt = ctc_root
    csv_file = tmp_path / "frames.csv"
    r = CliRunner().invoke(evaluate_cmd, [str(res), str(gt), "--metrics", metrics,
                                          "--per-frame", str(csv_file)])
    assert isinstance(r.exception, DlsuiteInputError)  # exit 2 in the CLI's main
    assert str(r.exception).startswith("--per-frame: none of the metrics asked for")
    assert "add one of SEG, jaccard" in str(r.exception) and not csv_file.exists()


def test_cli_table_and_per_frame_csv(ctc_root, tmp_path):
    res, gt = ctc_root
    csv_file = tmp_path / "frames.csv"
    r = CliRunner().invoke(evaluate_cmd, [str(res), str(gt), "--metrics", "SEG,jaccard", "--per-frame", str(csv_file)])
    assert r.exit_code == 0, r.output
    assert "SEG" in r.output and "0.9167" in r.output
    assert csv_file.read_text().splitlines()[0].startswith("sequence,frame,SEG")


@pytest.mark.parametrize("n_sequences", [2, 12])
def test_cli_per_sequence_numbers_are_never_folded_over_two_lines(tmp_path, n_sequences):
    """On an 80-column console the per-sequence table of all metrics folded each value
    (0.9558 as '0.95' over '58'): every value now stands whole on one line, with a column per
    sequence when there are fewer sequences than metrics, else a row per sequence."""
    rng = np.random.default_rng(0)
    for i in range(n_sequences):
        gt = np.zeros((24, 24), np.uint16)
        gt[2:10, 2:10], gt[12:22, 12:20] = 1, 2
        res = gt.copy()
        res[2:10, 2:2 + int(rng.integers(3, 8))] = 0  # a different SEG per sequence
        for kind, image in (("gt", gt), ("res", res)):
            (tmp_path / kind).mkdir(exist_ok=True)
            write_tiff(tmp_path / kind / f"s{i:02d}.tif", image)
    out = evaluate(tmp_path / "res", tmp_path / "gt")
    r = CliRunner().invoke(evaluate_cmd, [str(tmp_path / "res"), str(tmp_path / "gt")],
                           terminal_width=80)
    assert r.exit_code == 0, r.output
    table = r.output[r.output.index("per sequence"):r.output.index("instance matching")]
    for row in out["per_sequence"]:
        value = f"{row['SEG']:.4f}"
        assert value in table, (value, table)
    widest = max(len(line) for line in table.splitlines())
    assert (widest <= 80) == (n_sequences == 2), widest  # 12 rows: wider than 80, unfolded


def test_cli_bad_input_raises_input_errors(ctc_root, tmp_path):
    res, gt = ctc_root
    r = CliRunner().invoke(evaluate_cmd, [str(res), str(gt), "--metrics", "SEG,nope"])
    assert isinstance(r.exception, DlsuiteInputError) and "nope" in str(r.exception)
    r = CliRunner().invoke(evaluate_cmd, [str(tmp_path / "missing"), str(gt)])
    assert isinstance(r.exception, DataError) and "missing" in str(r.exception)


def test_root_with_one_sequence_against_its_gt_folder(ctc_root, tmp_path):
    import shutil

    res, gt = ctc_root
    shutil.rmtree(res / "01_RES")
    out = evaluate(res, gt / "02_GT", ["SEG"])
    assert [s["sequence"] for s in out["per_sequence"]] == ["02"]


def test_mask_named_label_folders_are_plain_label_folders(tmp_path):
    """Files named maskTTT.tif on both sides without CTC GT are compared by file name."""
    for side in ("res", "gt"):
        (tmp_path / side).mkdir()
        img = np.zeros((6, 6), np.uint16)
        img[1:4, 1:4] = 1
        tifffile.imwrite(tmp_path / side / "mask000.tif", img)
    out = evaluate(tmp_path / "res", tmp_path / "gt", ["SEG", "jaccard"])
    assert out["per_sequence"][0]["sequence"] == "mask000.tif"
    assert out["metrics"] == {"SEG": 1.0, "jaccard": 1.0}


def test_importing_evaluation_and_cli_imports_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys, dlsuite.evaluation, dlsuite.cli.evaluate; "
            "bad = [m for m in ('tensorflow', 'keras', 'ctc_metrics') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_benchmark_runs_and_agrees(capsys):
    """benchmarks/evaluation.py on 3 synthetic frames: same SEG as py-ctcmetrics."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "evaluation.py"
    spec = importlib.util.spec_from_file_location("bench_evaluation", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--frames", "3", "--repeats", "1", "--synthetic"])
    out = capsys.readouterr().out
    diff = float(out.split("largest absolute difference:")[1].split()[0])
    assert diff < 1e-6
    assert "speed ratio" in out


def test_ground_truth_that_looks_like_binary_masks_is_warned_about(tmp_path):
    """A binary mask given as ground truth (0/255, all cells one id) scores its cells as one
    object: `evaluate` says so, naming the file, on stderr and in the result; instance
    labels give no warning."""
    from conftest import run_cli

    for name in ("res", "gt", "gt_ok"):
        (tmp_path / name).mkdir()
    cells = np.zeros((32, 32), np.uint16)
    cells[2:10, 2:10], cells[20:28, 20:28] = 1, 2
    write_tiff(tmp_path / "res" / "a.tif", cells)
    write_tiff(tmp_path / "gt" / "a.tif", ((cells > 0) * 255).astype(np.uint8))
    write_tiff(tmp_path / "gt_ok" / "a.tif", cells)
    out = evaluate(tmp_path / "res", tmp_path / "gt", "SEG")
    assert len(out["warnings"]) == 1 and str(tmp_path / "gt" / "a.tif") in out["warnings"][0]
    assert out["per_sequence"][0]["warnings"] == out["warnings"]
    clean = evaluate(tmp_path / "res", tmp_path / "gt_ok", "SEG")
    assert clean["warnings"] == [] and "warnings" not in clean["per_sequence"][0]

    proc = run_cli("evaluate", str(tmp_path / "res"), str(tmp_path / "gt"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)) == ["metrics", "per_sequence", "matching"]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and "a.tif" in lines[0] and "binary mask" in lines[0]
    proc = run_cli("evaluate", str(tmp_path / "res"), str(tmp_path / "gt_ok"))
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr

    # CTC ground truth: one line for the sequence, naming its first such SEG frame
    video = np.stack([cells, cells, cells])
    write_ctc_sequence(tmp_path / "ctc_gt" / "01_GT", (video > 0).astype(np.uint16) * 7,
                       None, kind="gt", seg_frames=[0, 2])
    write_ctc_sequence(tmp_path / "ctc_res" / "01_RES", video, None)
    out = evaluate(tmp_path / "ctc_res", tmp_path / "ctc_gt", "SEG")
    assert len(out["warnings"]) == 1
    assert "man_seg000.tif (and 1 more ground-truth file(s))" in out["warnings"][0]


def test_an_intensity_image_in_a_label_folder_is_refused_naming_it(tmp_path):
    """Evaluating the inputs folder instead of the labels scored every grey value as an
    object (23429 'objects' for one phase-contrast image); now one error naming the file."""
    from dlsuite.data.example import write_example_videos

    ex = write_example_videos(tmp_path / "ex", n_videos=1, frames=3, size=48)
    videos = ex["videos"]
    assert evaluate(videos / "labels", videos / "labels", "SEG")["metrics"]["SEG"] == 1.0
    for res, gt, named in ((videos / "inputs", videos / "labels", videos / "inputs"),
                           (videos / "labels", videos / "inputs", videos / "inputs")):
        with pytest.raises(DataError) as caught:
            evaluate(res, gt, "SEG")
        text = str(caught.value)
        assert text.startswith(f"{named / 'cells_00.tif'} (frame 0): not a label image: ")
        assert "it looks like an intensity image" in text
