"""SEG: crafted cases against hand-computed values and against py-ctcmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from conftest import run_cli
from dlsuite.errors import DataError
from dlsuite.evaluation import seg_details, seg_score
from dlsuite.evaluation.overlap import overlap_table


def reference_seg(tmp_path, gt_frames: dict, res_frames: dict) -> float:
    """SEG by py-ctcmetrics (match + seg) on TIFF files; labels written as int32 so its
    in-place offset cannot overflow."""
    from ctc_metrics.metrics import seg
    from ctc_metrics.utils.representations import match

    labels_ref, ious = [], []
    for t in sorted(gt_frames):
        g = tmp_path / f"ref_seg{t:03d}.tif"
        r = tmp_path / f"ref_mask{t:03d}.tif"
        tifffile.imwrite(g, np.asarray(gt_frames[t]).astype(np.int32))
        tifffile.imwrite(r, np.asarray(res_frames[t]).astype(np.int32))
        lr, _, _, _, iou = match(str(g), str(r))
        labels_ref.append(lr)
        ious.append(iou)
    return seg(labels_ref, ious)


def square(shape=(20, 20), box=(2, 12, 2, 12), label=1, into=None):
    a = np.zeros(shape, np.uint16) if into is None else into
    y0, y1, x0, x1 = box
    a[y0:y1, x0:x1] = label
    return a


def crafted_cases():
    """name -> (gt, res, hand-computed SEG)."""
    cases = {}
    gt = square(label=1)
    square(box=(14, 18, 14, 18), label=2, into=gt)  # 16 px
    res = square(label=7)
    square(box=(14, 18, 14, 18), label=3, into=res)
    cases["perfect, relabelled"] = (gt, res, 1.0)

    gt = square(label=1)  # 10x10 = 100 px
    res = np.zeros_like(gt)
    res[2:8, 2:12] = 1  # 60 px -> matched, J = 60/100
    res[8:12, 2:12] = 2  # 40 px -> not matched
    cases["split 60/40"] = (gt, res, 0.6)

    gt = np.zeros((20, 20), np.uint16)
    gt[2:7, 2:12] = 1  # 50 px
    gt[7:12, 2:12] = 2  # 50 px
    res = square(label=5)  # 100 px covering both
    cases["merge of two"] = (gt, res, 0.5)

    gt = square(label=1)  # 100 px
    res = np.zeros_like(gt)
    res[2:7, 2:12] = 4  # exactly 50 px = half: must NOT match
    cases["exactly half"] = (gt, res, 0.0)

    res = res.copy()
    res[7, 2] = 4  # 51 px > half: matches, J = 51/100
    cases["just over half"] = (gt, res, 0.51)

    cases["empty prediction"] = (gt, np.zeros_like(gt), 0.0)

    res = square(box=(14, 19, 14, 19), label=9)  # disjoint from the reference object
    cases["false positives only"] = (gt, res, 0.0)

    res = square(label=2)
    square(box=(14, 19, 14, 19), label=9, into=res)
    cases["perfect plus a false positive"] = (gt, res, 1.0)

    res = square(box=(2, 12, 2, 14), label=1)  # 120 px covering the 100 px object
    cases["over-segmented object"] = (gt, res, 100 / 120)
    return cases


CASES = crafted_cases()


@pytest.mark.parametrize("name", list(CASES))
def test_seg_crafted_hand_value(name):
    gt, res, expected = CASES[name]
    assert seg_score({0: gt}, {0: res}) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_seg_crafted_equals_py_ctcmetrics(name, tmp_path):
    gt, res, _ = CASES[name]
    ours = seg_score({0: gt}, {0: res})
    assert abs(ours - reference_seg(tmp_path, {0: gt}, {0: res})) < 1e-6


def test_seg_mean_is_over_objects_not_frames(tmp_path):
    gt0 = square(label=1)
    gt1 = np.zeros((20, 20), np.uint16)
    gt1[0:4, 0:4], gt1[5:9, 5:9], gt1[10:14, 10:14] = 1, 2, 3
    gt = {0: gt0, 5: gt1}
    res = {0: gt0.copy(), 5: np.zeros_like(gt1), 3: gt1}  # extra result frame 3 is ignored
    assert seg_score(gt, res) == pytest.approx(0.25)  # (1 + 0 + 0 + 0) / 4
    assert abs(seg_score(gt, res) - reference_seg(tmp_path, gt, res)) < 1e-6


def test_seg_details_per_object():
    gt, res, _ = CASES["split 60/40"]
    d = seg_details({4: gt}, {4: res})
    assert d["SEG"] == pytest.approx(0.6)
    assert d["n_objects"] == 1 and d["n_matched"] == 1
    assert d["objects"] == [{"frame": 4, "gt_label": 1, "res_label": 1, "jaccard": pytest.approx(0.6)}]
    assert d["per_frame"][0]["frame"] == 4


def test_seg_unmatched_object_has_res_label_zero():
    gt, res, _ = CASES["exactly half"]
    d = seg_details({0: gt}, {0: res})
    assert d["objects"][0]["res_label"] == 0 and d["objects"][0]["jaccard"] == 0.0


def test_seg_no_reference_object_is_nan():
    empty = np.zeros((8, 8), np.uint16)
    assert np.isnan(seg_score({0: empty}, {0: square((8, 8), (1, 3, 1, 3))}))


def test_seg_missing_result_frame_is_named():
    gt = square(label=1)
    with pytest.raises(DataError, match=r"\[7\]"):
        seg_score({0: gt, 7: gt}, {0: gt})


def test_seg_shape_mismatch():
    with pytest.raises(DataError, match="shape"):
        seg_score({0: square()}, {0: np.zeros((10, 10), np.uint16)})


def test_seg_negative_or_float_labels_rejected():
    gt = square().astype(np.int32)
    with pytest.raises(DataError, match="negative"):
        seg_score({0: gt}, {0: -gt})
    # named as track and prepare name it: the value, and how to save integer labels
    with pytest.raises(DataError, match=r"holding 0\.5, not a whole-number id.*16-bit"):
        seg_score({0: gt}, {0: gt * 0.5})


def test_seg_uint16_high_labels_do_not_wrap(tmp_path):
    """py-ctcmetrics adds max(ref)+1 to the result labels in place: in uint16 this wraps for
    labels near 65535. We count in int64, so high labels are fine."""
    gt = square(label=65000)
    square(box=(14, 18, 14, 18), label=65535, into=gt)
    res = square(box=(2, 12, 2, 11), label=64000)  # 90 px of the 100 px object
    square(box=(14, 18, 14, 18), label=65534, into=res)
    expected = (0.9 + 1.0) / 2
    assert seg_score({0: gt}, {0: res}) == pytest.approx(expected)
    assert abs(seg_score({0: gt}, {0: res}) - reference_seg(tmp_path, {0: gt}, {0: res})) < 1e-6
    assert gt.dtype == np.uint16 and res.max() == 65534  # inputs untouched


def test_uint64_labels_count_up_to_the_int64_limit_and_larger_ids_are_named(tmp_path):
    """Labels are counted as int64: uint64 ids up to 2**63 - 1 score as any other; a larger
    id is refused naming the file (it was an unexpected error, exit 1)."""
    gt = square(label=1).astype(np.uint64)
    gt[gt == 1] = 2**63 - 1
    assert seg_score({0: gt}, {0: gt}) == 1.0
    gt[gt > 0] = 2**63 + 5
    (tmp_path / "res").mkdir()
    (tmp_path / "gt").mkdir()
    tifffile.imwrite(tmp_path / "res" / "a.tif", gt)
    tifffile.imwrite(tmp_path / "gt" / "a.tif", square(label=1))
    proc = run_cli("evaluate", str(tmp_path / "res"), str(tmp_path / "gt"), "--metrics", "SEG")
    assert proc.returncode == 2, proc.stderr
    assert "a.tif: label id 9223372036854775813 is too large" in proc.stderr


@pytest.mark.parametrize("seed", range(12))
def test_seg_random_blocky_labels_equal_py_ctcmetrics(seed, tmp_path):
    rng = np.random.default_rng(seed)
    frames_gt, frames_res = {}, {}
    for t in range(2):
        gt = np.kron(rng.permutation(16).reshape(4, 4), np.ones((8, 8), int)).astype(np.uint16)
        res = gt.copy()
        flip = rng.random(gt.shape) < 0.15
        res[flip] = rng.integers(0, 20, int(flip.sum()))
        res = np.roll(res, tuple(rng.integers(-1, 2, 2)), axis=(0, 1))
        frames_gt[t * 3], frames_res[t * 3] = gt, res
    ours = seg_score(frames_gt, frames_res)
    assert 0.0 < ours < 1.0
    assert abs(ours - reference_seg(tmp_path, frames_gt, frames_res)) < 1e-6


def test_overlap_table_counts():
    gt = np.array([[1, 1, 0], [2, 2, 2], [0, 0, 0]])
    res = np.array([[5, 0, 0], [5, 5, 3], [3, 0, 0]])
    t = overlap_table(gt, res)
    assert t.ref_labels.tolist() == [1, 2] and t.ref_areas.tolist() == [2, 3]
    assert t.res_labels.tolist() == [3, 5] and t.res_areas.tolist() == [2, 3]
    got = {(int(t.ref_labels[i]), int(t.res_labels[j])): int(n) for (i, j), n in zip(t.pairs, t.intersections)}
    assert got == {(1, 5): 1, (2, 5): 2, (2, 3): 1}


def test_overlap_table_sparse_path_for_huge_labels():
    """Labels above the dense-bincount limit take the np.unique path with the same result."""
    gt = np.array([[1, 1], [2, 0]], np.int64) * (1 << 30)
    res = np.array([[7, 7], [7, 0]], np.int64)
    t = overlap_table(gt, res)
    assert t.ref_labels.tolist() == [1 << 30, 1 << 31]
    assert seg_score({0: gt}, {0: res}) == pytest.approx((2 / 3 + 1 / 3) / 2)
