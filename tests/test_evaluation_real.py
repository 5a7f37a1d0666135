"""SEG on real annotated cells (usiigaci T98G): perturbed predictions vs py-ctcmetrics.

Each annotated image is written as a one-frame CTC sequence (NN_GT/SEG/man_seg000.tif and
NN_RES/mask000.tif) in tmp_path, and evaluated through the folder API and py-ctcmetrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from dlsuite.evaluation import evaluate, evaluate_ctc, seg_score

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usiigaci_t98g_phc" / "annotated"
SETS = ["set1", "set7", "set23"]

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real annotated data not found at {DATA} (only in the dev checkout)"
)


def load_gt(name: str) -> np.ndarray:
    from dlsuite.data.io import read_image

    return read_image(DATA / name / "instances_ids.png").astype(np.uint16)


def eroded(lab):
    lo = ndimage.grey_erosion(lab, size=5)
    hi = ndimage.grey_dilation(lab, size=5)
    return np.where(lo == hi, lab, 0).astype(lab.dtype)


def dilated(lab):
    from skimage.segmentation import expand_labels

    return expand_labels(lab, 3).astype(lab.dtype)


def shifted(lab):
    return np.roll(lab, (4, -6), axis=(0, 1))


def permuted(lab):
    rng = np.random.default_rng(0)
    lut = np.zeros(int(lab.max()) + 1, np.uint16)
    lut[1:] = rng.choice(np.arange(60000, 65535), size=lut.size - 1, replace=False)
    return lut[lab]


PERTURB = {"eroded": eroded, "dilated": dilated, "shifted": shifted, "permuted": permuted}


def reference_seg_files(gt_file: Path, res_file: Path) -> float:
    """py-ctcmetrics on int32 copies (its in-place label offset overflows uint16)."""
    from ctc_metrics.metrics import seg
    from ctc_metrics.utils.representations import match

    g32 = gt_file.with_name("ref_" + gt_file.name)
    r32 = res_file.with_name("ref_" + res_file.name)
    tifffile.imwrite(g32, tifffile.imread(gt_file).astype(np.int32))
    tifffile.imwrite(r32, tifffile.imread(res_file).astype(np.int32))
    lr, _, _, _, iou = match(str(g32), str(r32))
    return seg([lr], [iou])


@pytest.fixture(scope="module")
def ctc_root(tmp_path_factory):
    """Root with one-frame CTC sequences: NN_GT from the annotation, NN_RES perturbed."""
    root = tmp_path_factory.mktemp("usiigaci_ctc")
    index = {}
    n = 0
    for name in SETS:
        gt = load_gt(name)
        for kind, fn in PERTURB.items():
            n += 1
            seq = f"{n:02d}"
            (root / f"{seq}_GT" / "SEG").mkdir(parents=True)
            (root / f"{seq}_RES").mkdir()
            tifffile.imwrite(root / f"{seq}_GT" / "SEG" / "man_seg000.tif", gt)
            tifffile.imwrite(root / f"{seq}_RES" / "mask000.tif", fn(gt))
            index[seq] = (name, kind)
    return root, index


def test_real_seg_matches_py_ctcmetrics(ctc_root):
    root, index = ctc_root
    for seq, (name, kind) in index.items():
        gt_file = root / f"{seq}_GT" / "SEG" / "man_seg000.tif"
        res_file = root / f"{seq}_RES" / "mask000.tif"
        ours = evaluate_ctc(root / f"{seq}_RES", root / f"{seq}_GT", ["SEG"])["SEG"]
        assert abs(ours - reference_seg_files(gt_file, res_file)) < 1e-6, (name, kind)


def test_real_perturbations_order(ctc_root):
    root, index = ctc_root
    result = evaluate(root, root, ["SEG", "f1", "jaccard"])
    by_seq = {s["sequence"]: s for s in result["per_sequence"]}
    assert set(by_seq) == set(index)  # sequence 01 is evaluated, nothing skipped
    for seq, (name, kind) in index.items():
        s = by_seq[seq]
        if kind == "permuted":
            assert s["SEG"] == 1.0 and s["f1"] == 1.0 and s["jaccard"] == 1.0
        else:
            assert 0.3 < s["SEG"] < 0.98, (name, kind, s["SEG"])
    assert 0.5 < result["metrics"]["SEG"] < 1.0


def test_real_in_memory_equals_folder(ctc_root):
    gt = load_gt(SETS[0])
    res = eroded(gt)
    root, index = ctc_root
    seq = next(k for k, v in index.items() if v == (SETS[0], "eroded"))
    folder = evaluate_ctc(root / f"{seq}_RES", root / f"{seq}_GT", ["SEG"])["SEG"]
    assert seg_score({0: gt}, {0: res}) == pytest.approx(folder, abs=1e-12)
