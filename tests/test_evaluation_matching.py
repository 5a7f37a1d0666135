"""One-to-one instance matching (precision/recall/F1/AP/PQ per IoU threshold): hand-computed
cases, evaluate()/CLI wiring, and a cross-check against stardist.matching on real labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from dlsuite.evaluation import evaluate
from dlsuite.evaluation.matching import (DEFAULT_THRESHOLDS, MatchingAccumulator, matching,
                                         matching_at, matching_dataset, merge_matching)

from conftest import SHARED_DATA, run_cli

KEYS = ["iou", "tp", "fp", "fn", "precision", "recall", "f1", "ap", "pq"]


def row(pixels: dict[int, range], n: int = 20) -> np.ndarray:
    """A 1 x n label image with label k on the pixels of ``pixels[k]``."""
    out = np.zeros((1, n), np.int32)
    for lab, where in pixels.items():
        out[0, list(where)] = lab
    return out


def two_discs() -> np.ndarray:
    lab = np.zeros((40, 40), np.uint16)
    yy, xx = np.mgrid[:40, :40]
    lab[(yy - 10) ** 2 + (xx - 10) ** 2 < 36] = 1
    lab[(yy - 28) ** 2 + (xx - 25) ** 2 < 49] = 2
    return lab


def test_keys_and_default_thresholds():
    out = matching(two_discs(), two_discs())
    assert [e["iou"] for e in out] == [0.5, 0.6, 0.7, 0.8, 0.9] == list(DEFAULT_THRESHOLDS)
    for e in out:
        assert list(e) == KEYS
        assert (e["tp"], e["fp"], e["fn"]) == (2, 0, 0)
        assert e["precision"] == e["recall"] == e["f1"] == e["ap"] == e["pq"] == 1.0


def test_no_prediction_gives_precision_zero():
    out = matching(two_discs(), np.zeros((40, 40), np.uint16))
    for e in out:
        assert (e["tp"], e["fp"], e["fn"]) == (0, 0, 2)
        assert e["precision"] == 0.0 and e["recall"] == 0.0
        assert e["f1"] == e["ap"] == e["pq"] == 0.0


def test_no_ground_truth_all_false_positives():
    out = matching(np.zeros((40, 40), np.uint16), two_discs())
    assert all((e["tp"], e["fp"], e["fn"]) == (0, 2, 0) for e in out)
    assert all(e["precision"] == e["recall"] == e["f1"] == e["ap"] == 0.0 for e in out)


def test_both_empty_scores_zero_like_stardist():
    e = matching(np.zeros((5, 5), int), np.zeros((5, 5), int), [0.5])[0]
    assert (e["tp"], e["fp"], e["fn"]) == (0, 0, 0)
    assert e["precision"] == e["recall"] == e["f1"] == e["ap"] == e["pq"] == 0.0


def test_hungarian_beats_greedy():
    # GT A = 0..9, B = 10..12; result P = 3..12, Q = 0..2.
    # IoU(A,P) = 7/13, IoU(A,Q) = 0.3, IoU(B,P) = 0.3, IoU(B,Q) = 0.
    # Greedy on the best IoU takes A-P and leaves B and Q unmatched (1 TP); the one-to-one
    # optimum at IoU >= 0.25 pairs A-Q and B-P (2 TP).
    gt = row({1: range(0, 10), 2: range(10, 13)})
    res = row({1: range(3, 13), 2: range(0, 3)})
    low, half = matching(gt, res, [0.25, 0.5])
    assert (low["tp"], low["fp"], low["fn"]) == (2, 0, 0)
    assert low["precision"] == low["recall"] == 1.0
    assert low["pq"] == pytest.approx(0.6 / 2)
    assert (half["tp"], half["fp"], half["fn"]) == (1, 1, 1)
    assert half["precision"] == half["recall"] == half["f1"] == 0.5
    assert half["ap"] == pytest.approx(1 / 3)
    assert half["pq"] == pytest.approx((7 / 13) / 2)


def test_among_equal_counts_the_larger_iou_wins():
    # R = 0..9; S1 = 0..3 (IoU 0.4), S2 = 4..9 (IoU 0.6): both candidates at 0.3, S2 is taken
    e = matching(row({1: range(0, 10)}), row({1: range(0, 4), 2: range(4, 10)}), [0.3])[0]
    assert (e["tp"], e["fp"], e["fn"]) == (1, 1, 0)
    assert e["pq"] == pytest.approx(0.6 / 1.5)


def test_exactly_half_is_matched_once():
    # R = 0..9 and result halves S1 = 0..4, S2 = 5..9: IoU 0.5 with both; one-to-one -> 1 TP
    e = matching(row({1: range(0, 10)}), row({1: range(0, 5), 2: range(5, 10)}), [0.5])[0]
    assert (e["tp"], e["fp"], e["fn"]) == (1, 1, 0)
    assert e["pq"] == pytest.approx(0.5 / 1.5)


def test_counts_are_summed_over_frames_before_scoring():
    gt = [two_discs(), two_discs()]
    res = [two_discs(), np.zeros((40, 40), np.uint16)]
    e = matching_dataset(gt, res, [0.5])[0]
    assert (e["tp"], e["fp"], e["fn"]) == (2, 0, 2)
    assert e["precision"] == 1.0 and e["recall"] == 0.5
    assert e["f1"] == pytest.approx(2 / 3) and e["ap"] == 0.5 and e["pq"] == pytest.approx(2 / 3)
    # mappings (annotated frames) give the same; merging per-frame lists too
    assert matching_dataset(dict(enumerate(gt)), dict(enumerate(res)), [0.5])[0] == e
    merged = merge_matching([matching(g, r, [0.5]) for g, r in zip(gt, res)])
    assert merged[0] == pytest.approx(e)


def test_thresholds_are_checked():
    with pytest.raises(ValueError, match="thresholds"):
        MatchingAccumulator([0.0])
    with pytest.raises(ValueError):
        MatchingAccumulator([])


def test_many_objects_partial_overlaps_match_brute_force():
    """Random shifted discs: TP and the IoU sum equal a brute-force assignment on the dense
    IoU matrix (most pairs >= t, then the largest IoU sum of those pairs), at thresholds
    below and above 0.5."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(3)
    gt = np.zeros((120, 120), np.int32)
    res = np.zeros((120, 120), np.int32)
    yy, xx = np.mgrid[:120, :120]
    for k in range(1, 40):
        cy, cx, r = rng.uniform(5, 115), rng.uniform(5, 115), rng.uniform(3, 9)
        gt[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
        dy, dx = rng.normal(0, 3, 2)
        res[(yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 < (r * rng.uniform(0.7, 1.3)) ** 2] = k
    g_ids, r_ids = np.unique(gt)[1:], np.unique(res)[1:]
    iou = np.zeros((g_ids.size, r_ids.size))
    for i, g in enumerate(g_ids):
        for j, q in enumerate(r_ids):
            a, b = gt == g, res == q
            iou[i, j] = (a & b).sum() / (a | b).sum()
    thresholds = [0.1, 0.3, 0.5, 0.7]
    out = matching(gt, res, thresholds)
    for t, e in zip(thresholds, out):
        n = min(iou.shape)
        cand = iou >= t
        ri, ci = linear_sum_assignment(-cand.astype(float) - np.where(cand, iou, 0) / (2 * n))
        ok = iou[ri, ci] >= t
        assert e["tp"] == ok.sum(), t
        assert e["pq"] == pytest.approx(iou[ri, ci][ok].sum() / (e["tp"] + (e["fp"] + e["fn"]) / 2))


# -------------------------------------------------------------------- evaluate() and the CLI
def _write_pair(root: Path, name: str, gt: np.ndarray, res: np.ndarray) -> tuple[Path, Path]:
    (root / "gt").mkdir(parents=True, exist_ok=True)
    (root / "res").mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(root / "gt" / name, gt)
    tifffile.imwrite(root / "res" / name, res)
    return root / "res", root / "gt"


def test_evaluate_reports_matching_over_all_files(tmp_path):
    res, gt = _write_pair(tmp_path, "a.tif", two_discs(), two_discs())
    _write_pair(tmp_path, "b.tif", two_discs(), np.zeros((40, 40), np.uint16))
    result = evaluate(res, gt)
    top = matching_at(result["matching"], 0.5)
    assert (top["tp"], top["fp"], top["fn"]) == (2, 0, 2)
    assert top["recall"] == 0.5 and top["precision"] == 1.0
    per_seq = {s["sequence"]: matching_at(s["matching"], 0.5) for s in result["per_sequence"]}
    assert per_seq["a.tif"]["tp"] == 2 and per_seq["b.tif"]["precision"] == 0.0
    # only SEG requested: no instance matching computed
    assert evaluate(res, gt, "SEG")["matching"] is None


def test_evaluate_ctc_folders_report_matching(tmp_path):
    seq = tmp_path / "01_GT" / "SEG"
    seq.mkdir(parents=True)
    out = tmp_path / "01_RES"
    out.mkdir()
    gt = two_discs()
    res = gt.copy()
    res[res == 2] = 0  # one object missed
    tifffile.imwrite(seq / "man_seg000.tif", gt)
    tifffile.imwrite(out / "mask000.tif", res)
    result = evaluate(out, tmp_path / "01_GT", "SEG,f1")
    e = matching_at(result["matching"], 0.9)
    assert (e["tp"], e["fp"], e["fn"]) == (1, 0, 1)
    assert result["per_sequence"][0]["matching"] == result["matching"]


def test_cli_json_has_matching_list(tmp_path):
    res, gt = _write_pair(tmp_path, "a.tif", two_discs(), two_discs()[:, ::-1].copy())
    proc = run_cli("evaluate", str(res), str(gt), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [e["iou"] for e in data["matching"]] == [0.5, 0.6, 0.7, 0.8, 0.9]
    for e in data["matching"]:
        assert list(e) == KEYS
        assert e["tp"] + e["fn"] == 2 and e["tp"] + e["fp"] == 2


# -------------------------------------------------------------------- stardist cross-check
REAL = SHARED_DATA / "usiigaci_t98g_phc" / "annotated"
DSB = SHARED_DATA / "dsb2018_nuclei_2d" / "mask2d.tif"


def _perturbed(lab: np.ndarray, seed: int) -> np.ndarray:
    """A plausible imperfect result: shifted, some objects dropped, some eroded, two merged,
    a few false objects, ids permuted."""
    rng = np.random.default_rng(seed)
    out = np.roll(lab, (seed % 3, -2), axis=(0, 1)).astype(np.int32)
    ids = np.unique(out)[1:]
    out[np.isin(out, rng.choice(ids, size=max(1, ids.size // 10), replace=False))] = 0
    ero = rng.choice(ids, size=max(1, ids.size // 5), replace=False)
    shrunk = np.where(ndimage.grey_erosion(out, size=7) == out, out, 0)
    out = np.where(np.isin(out, ero), shrunk, out)
    if ids.size > 3:
        out[out == ids[1]] = ids[2]
    for k in range(5):
        y, x = rng.integers(10, lab.shape[0] - 10), rng.integers(10, lab.shape[1] - 10)
        out[y - 4:y + 4, x - 4:x + 4] = 70000 + k
    perm = np.zeros(out.max() + 1, np.int64)
    present = np.unique(out)[1:]
    perm[present] = rng.permutation(present.size) + 1
    return perm[out]


def _real_pairs():
    from dlsuite.data.io import read_image

    pairs = []
    for i, name in enumerate(["set1", "set7", "set23"]):
        if (REAL / name).is_dir():
            gt = np.asarray(read_image(REAL / name / "instances_ids.png")).astype(np.int32)
            pairs.append((gt, _perturbed(gt, i)))
    if DSB.is_file():
        gt = tifffile.imread(DSB).astype(np.int32)
        pairs.append((gt, _perturbed(gt, 5)))
    return pairs


def test_agrees_with_stardist_matching_dataset():
    stardist_matching = pytest.importorskip(
        "stardist.matching", reason="stardist is not installed (benchmark extra only)")
    pairs = _real_pairs()
    if not pairs:
        pytest.skip(f"real label images not found under {SHARED_DATA}")
    thresholds = [0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9]
    ours = matching_dataset([g for g, _ in pairs], [r for _, r in pairs], thresholds)
    theirs = stardist_matching.matching_dataset([g for g, _ in pairs], [r for _, r in pairs],
                                                thresh=thresholds, show_progress=False)
    for a, b in zip(ours, theirs):
        assert a["iou"] == b.thresh
        assert (a["tp"], a["fp"], a["fn"]) == (b.tp, b.fp, b.fn)
        for ka, kb in (("precision", "precision"), ("recall", "recall"), ("f1", "f1"),
                       ("ap", "accuracy")):
            assert a[ka] == pytest.approx(getattr(b, kb), abs=1e-12), (a["iou"], ka)
        # StarDist's IoUs are float32, ours float64: PQ agrees to float32 precision
        if a["iou"] >= 0.5:  # below 0.5 the choice among equally many pairs may differ
            assert a["pq"] == pytest.approx(b.panoptic_quality, rel=1e-6), a["iou"]
        else:  # ours maximises the matched IoU sum, StarDist a sum including unmatched pairs
            assert a["pq"] >= b.panoptic_quality * (1 - 1e-6)


def test_the_table_says_what_nothing_to_match_scores(tmp_path):
    # the summary's 1.0 and the matching table's 0.0 for label images without any object are
    # two conventions side by side: the table says both, not only the modules
    from dlsuite.data.io import write_tiff

    for folder in ("res", "gt"):
        write_tiff(tmp_path / folder / "a.tif", np.zeros((16, 16), np.uint16))
    proc = run_cli("evaluate", str(tmp_path / "res"), str(tmp_path / "gt"), "--metrics",
                   "precision,f1", env={"COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "precision" in line)
    assert "1.0000" in row and "1.0 when no frame holds an object" in row
    title = " ".join(proc.stdout.split())  # the title is folded to its table's width
    assert "0 when nothing is predicted or nothing is to be found" in title
