"""Per-frame metrics, instance F1 at IoU 0.5, temporal stability and the writers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from dlsuite.errors import DataError
from dlsuite.evaluation import (
    foreground_dice,
    foreground_jaccard,
    frame_metrics,
    instance_counts,
    temporal_stability,
    video_metrics,
    write_metrics_csv,
    write_metrics_json,
)


def test_jaccard_dice_hand_values():
    gt = np.zeros((4, 4), int)
    gt[:2, :] = 1  # 8 px
    res = np.zeros((4, 4), int)
    res[1:3, :] = 5  # 8 px, 4 shared
    assert foreground_jaccard(gt, res) == pytest.approx(4 / 12)
    assert foreground_dice(gt, res) == pytest.approx(8 / 16)


def test_both_empty_is_perfect_and_one_empty_is_zero():
    empty = np.zeros((5, 5), np.uint16)
    full = np.ones((5, 5), np.uint16)
    assert foreground_jaccard(empty, empty) == 1.0 and foreground_dice(empty, empty) == 1.0
    assert foreground_jaccard(full, empty) == 0.0 and foreground_dice(empty, full) == 0.0


def test_instance_counts_iou_half_is_not_a_match():
    gt = np.zeros((10, 20), int)
    gt[0:4, 0:4] = 1  # 16 px, predicted exactly -> TP
    gt[5:9, 0:4] = 2  # 16 px
    gt[0:4, 10:14] = 3  # missed -> FN
    res = np.zeros_like(gt)
    res[0:4, 0:4] = 7
    res[5:9, 0:4] = 8
    res[5:9, 4:8] = 8  # 32 px: IoU with object 2 = 16/32 = 0.5 exactly -> not a TP
    res[7:9, 15:19] = 9  # false positive
    c = instance_counts(gt, res)
    assert c == {"tp": 1, "fp": 2, "fn": 2}
    m = frame_metrics(gt, res)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 / 6)


def test_instance_f1_just_over_half_matches():
    gt = np.zeros((10, 10), int)
    gt[0:4, 0:4] = 1
    res = np.zeros_like(gt)
    res[0:4, 0:4] = 1
    res[0:3, 4] = 1  # 19 px: IoU 16/19 > 0.5
    assert instance_counts(gt, res) == {"tp": 1, "fp": 0, "fn": 0}


def test_instance_empty_frames():
    empty = np.zeros((6, 6), int)
    m = frame_metrics(empty, empty)
    assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    one = empty.copy()
    one[1:3, 1:3] = 1
    m = frame_metrics(empty, one)
    assert (m["tp"], m["fp"], m["fn"], m["precision"], m["f1"]) == (0, 1, 0, 0.0, 0.0)
    # nothing found where there was something to find: precision 0, not 1
    m = frame_metrics(one, empty)
    assert (m["tp"], m["fp"], m["fn"], m["precision"], m["recall"], m["f1"]) == (
        0, 0, 1, 0.0, 0.0, 0.0)
    summary, _ = video_metrics([one, one], [empty, empty])
    assert (summary["precision"], summary["recall"], summary["f1"]) == (0.0, 0.0, 0.0)


def test_temporal_stability_hand_value():
    a = np.zeros((4, 4), int)
    a[:2] = 1
    b = np.zeros((4, 4), int)
    b[:1] = 1  # Jaccard(a, b) = 4/8
    assert temporal_stability([a, a, b]) == pytest.approx((1.0 + 0.5) / 2)
    assert temporal_stability(np.stack([a, a, a])) == 1.0
    assert temporal_stability([a]) is None


def test_video_metrics_summary_and_gt_stability():
    a = np.zeros((4, 4), int)
    a[:2] = 1
    gt = [a, a, a]
    res = [a, np.zeros_like(a), a]  # flicker: the middle frame is lost
    summary, rows = video_metrics(gt, res)
    assert summary["temporal_stability"] == 0.0
    assert summary["temporal_stability_gt"] == 1.0
    assert summary["jaccard"] == pytest.approx(2 / 3)
    assert (summary["tp"], summary["fn"], summary["fp"]) == (2, 1, 0)
    assert summary["recall"] == pytest.approx(2 / 3) and summary["precision"] == 1.0
    assert [r["frame"] for r in rows] == [0, 1, 2]


def test_video_metrics_frame_count_mismatch():
    a = np.zeros((4, 4), int)
    with pytest.raises(DataError, match="frame count"):
        video_metrics([a, a], [a])


def test_write_metrics_json_strict_and_atomic(tmp_path):
    path = write_metrics_json(tmp_path / "out" / "m.json", {"SEG": float("nan"), "n": np.int64(3), "x": np.float32(0.5)})
    assert json.loads(path.read_text()) == {"SEG": None, "n": 3, "x": 0.5}
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.json"]  # no temp file left


def test_write_metrics_csv_union_header(tmp_path):
    rows = [{"sequence": "01", "frame": 0, "SEG": 0.5}, {"sequence": "01", "frame": 1, "jaccard": None, "SEG": np.float64(1.0)}]
    path = write_metrics_csv(tmp_path / "rows.csv", rows)
    with open(path, newline="") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == ["sequence", "frame", "SEG", "jaccard"]
    assert got[0]["jaccard"] == "" and got[1]["SEG"] == "1.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]
