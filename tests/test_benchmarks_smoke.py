"""Smoke run of the architecture benchmark: ``benchmarks/models.py --quick`` prints its table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_models_benchmark_quick_prints_the_table():
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "models.py"), "--quick"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("architecture"))
    rows = {line.split()[0]: line.split() for line in lines[header + 2:]
            if line and not line.startswith(("Q3", " "))}
    assert set(rows) == {"unet", "unet_lstm"}
    assert rows["unet_lstm"][1] == "window(T=5)"
    for cells in rows.values():
        assert float(cells[2]) > 0 and float(cells[3]) > 0  # train units/s, infer s/unit
    assert rows["unet"][4].endswith("%")
    q3 = [line for line in lines if line.startswith("Q3 unet training step")]
    assert q3 and "GFLOP" in q3[0]


# --------------------------------------------------------------------------------------------
# benchmarks/instances.py and benchmarks/video_instances.py (issue 12, items 6 and 7)

USIIGACI = REPO.parent / "shared" / "data" / "usiigaci_t98g_phc"
needs_usiigaci = pytest.mark.skipif(not (USIIGACI / "annotated").is_dir(),
                                    reason=f"real data {USIIGACI} not present")


def _scorer():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "instances_score", REPO / "benchmarks" / "instances_score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _squares(shifts, size=64):
    """A label image of 3x3 squares of side 12 (ids 1..9), each shifted by ``shifts[i]``."""
    import numpy as np

    lab = np.zeros((size, size), np.int32)
    for i in range(9):
        y, x = 4 + (i // 3) * 20, 4 + (i % 3) * 20
        dy, dx = shifts[i]
        lab[y + dy:y + dy + 12, x + dx:x + dx + 12] = i + 1
    return lab


def test_instance_scorer_counts_matches_at_each_threshold():
    """Perfect result: every score 1. Shifted objects fall below IoU 0.75 (some below 0.5);
    a missing object counts as FN, an extra one as FP; SEG follows its own > 50% rule."""
    import numpy as np

    score = _scorer().score
    gt = _squares([(0, 0)] * 9)
    perfect = score({"a": gt}, {"a": gt.copy()})
    assert perfect["SEG"] == 1.0 and perfect["F1@0.5"] == 1.0 and perfect["AP@0.75"] == 1.0
    # shift 2 px: IoU 120/168 = 0.714 (matched at 0.5, not 0.75); shift 4 px: 96/192 = 0.5
    # (>= 0.5 counts, as in StarDist); shift 5 px: 84/204 = 0.41 (unmatched)
    res = _squares([(0, 2), (0, 2), (0, 4), (0, 5), (0, 0), (0, 0), (0, 0), (0, 0), (0, 0)])
    res[res == 9] = 0  # one object missing
    res[60:64, 60:64] = 99  # one extra object
    out = score({"a": gt}, {"a": res})
    # at 0.5: 7 TP (objects 1-3, 5-8), FP = 2 (object 4's result, the extra), FN = 2 (4, 9)
    assert out["AP@0.5"] == 7 / 11 and out["F1@0.5"] == 14 / 18
    # at 0.75: only the 4 exact objects match: FP = 9 - 4, FN = 9 - 4
    assert out["AP@0.75"] == 4 / 14
    # SEG matches R to S when |R & S| > |R| / 2 = 72: objects 1-4 (120, 120, 96, 84 px),
    # 5-8 exactly; 9 counts 0
    assert np.isclose(out["SEG"], (2 * 120 / 168 + 96 / 192 + 84 / 204 + 4) / 9)
    assert out["n_gt"] == 9 and out["n_res"] == 9
    with pytest.raises(KeyError):
        score({"a": gt, "b": gt}, {"a": gt})


def test_instance_scorer_agrees_with_stardist_matching():
    """The benchmark's matching gives StarDist's matching_dataset numbers (by_image=False)."""
    matching = pytest.importorskip("stardist.matching")
    import numpy as np

    rng = np.random.default_rng(0)
    gts, ress = [], []
    for k in range(3):
        shifts = [tuple(rng.integers(-4, 5, 2)) for _ in range(9)]
        gts.append(_squares([(0, 0)] * 9))
        ress.append(_squares([(max(0, a), max(0, b)) for a, b in shifts]))
    out = _scorer().score({str(i): g for i, g in enumerate(gts)},
                          {str(i): r for i, r in enumerate(ress)})
    for t, key in ((0.5, "AP@0.5"), (0.75, "AP@0.75")):
        ref = matching.matching_dataset(gts, ress, thresh=t, by_image=False, show_progress=False)
        assert out[key] == pytest.approx(ref.accuracy)
        if t == 0.5:
            assert out["F1@0.5"] == pytest.approx(ref.f1)


@pytest.mark.slow
@pytest.mark.benchmark
@needs_usiigaci
def test_instances_benchmark_tiny_budget_prints_the_table(tmp_path):
    """The side-by-side benchmark on 4 + 4 cropped images with a tiny budget: exit 0, one row
    per contender with scores in [0, 1], the JSON with the same numbers."""
    import importlib.util
    import json

    contenders = ["dlsuite", "legacy"]
    if all(importlib.util.find_spec(m) for m in ("stardist", "csbdeep")):
        contenders.insert(1, "stardist")
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "instances.py"), "--minutes", "0.2",
         "--contenders", ",".join(contenders), "--work", str(tmp_path), "--max-images", "4",
         "--crop", "256", "--steps-per-epoch", "2", "--legacy-epochs", "2"],
        capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("contender"))
    rows = {line.split()[0]: line.split() for line in lines[header + 2:header + 2 + len(contenders)]}
    assert list(rows) == contenders
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    for name in contenders:
        r = results[name]
        for i, key in enumerate(("SEG", "F1@0.5", "AP@0.5", "AP@0.75"), start=1):
            assert 0.0 <= r[key] <= 1.0
            assert rows[name][i] == f"{r[key]:.3f}"
        assert r["n_gt"] > 0 and r["train_s"] > 0
    assert results["legacy"]["epochs_done"] <= 2
    _check_seg_oracles(tmp_path, results["dlsuite"])


def _check_seg_oracles(work, dlsuite_result):
    """``benchmarks/seg_oracles.py`` on the recipe's predictions: its ``predicted`` row is the
    benchmark's own score (same chain on the same probabilities), the reference objects'
    fates add up, and the error table counts exactly the foreground pixels that differ."""
    import json

    import numpy as np
    import tifffile

    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "seg_oracles.py"), str(work / "dlsuite" / "pred"),
         str(work / "data" / "val" / "labels"), "--json"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    diag = json.loads(out.stdout)
    assert diag["rows"]["predicted"]["SEG"] == pytest.approx(dlsuite_result["SEG"], abs=1e-12)
    assert diag["rows"]["predicted"]["F1@0.5"] == pytest.approx(dlsuite_result["F1@0.5"], abs=1e-12)
    assert set(diag["rows"]) == {"predicted", "reference distance", "reference foreground",
                                 "reference foreground within 1 px",
                                 "reference foreground within 3 px", "reference both"}
    assert all(0.0 <= row["SEG"] <= 1.0 for row in diag["rows"].values())
    # with every channel the reference's own, the chain finds most reference cells again
    assert diag["rows"]["reference both"]["SEG"] > 0.5
    fates = diag["reference_objects"]
    assert fates["n"] == dlsuite_result["n_gt"] == (
        fates["matched_iou_at_least_0.5"] + fates["matched_iou_below_0.5"] + fates["unmatched"])
    predict = json.loads((work / "dlsuite" / "pred" / "predict.json").read_text())
    threshold = predict["chain"]["steps"][0]["threshold"]
    differ = 0
    for prob in sorted((work / "dlsuite" / "pred" / "probabilities").glob("*.tif")):
        ref = tifffile.imread(work / "data" / "val" / "labels" / prob.name.replace(
            "raw_", "instance_ids_")) > 0
        differ += int(((tifffile.imread(prob)[1] > threshold) != ref).sum())
    assert differ == sum(e["false_positive"] + e["false_negative"]
                         for e in diag["foreground_errors"])


@pytest.mark.slow
@pytest.mark.benchmark
@pytest.mark.skipif(not (USIIGACI / "video_T98G_sample_tracked").is_dir(),
                    reason=f"real data {USIIGACI} not present")
def test_video_benchmark_tiny_budget_reports_seg_det_tra(tmp_path):
    """Both models on cropped frames 1-4, predicting 5-7: exit 0, SEG/DET/TRA and temporal
    stability for each, next to the silver labels' own stability."""
    import json

    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "video_instances.py"), "--minutes", "0.2",
         "--work", str(tmp_path), "--frames", "4,5,7", "--crop", "256",
         "--steps-per-epoch", "2"],
        capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert set(results) == {"2d", "temporal"}
    for r in results.values():
        for key in ("SEG", "temporal_stability", "F1@0.5"):
            assert 0.0 <= r[key] <= 1.0, (key, r)
        for key in ("DET", "TRA"):  # n/a (None) when a barely trained model finds no cell
            assert key in r and (r[key] is None or 0.0 <= r[key] <= 1.0), (key, r)
        assert 0.0 < r["temporal_stability_gt"] <= 1.0 and r["n_gt"] > 0
    assert "temporal stability of the silver labels" in out.stdout


def test_recipe_config_lifts_epochs_unless_the_rate_decays_over_them(tmp_path):
    import importlib.util
    import json

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(
            "instances_dlsuite", REPO / "benchmarks" / "instances_dlsuite.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    plateau = {"train": {"epochs": 180, "reduce_lr": {"patience": 15}}}
    cosine = {"train": {"epochs": 180, "reduce_lr": {"enabled": False},
                        "cosine_decay": {"enabled": True}}}
    for cfg, want in ((plateau, 100_000), (cosine, 180)):
        example = tmp_path / "config.json"
        example.write_text(json.dumps(cfg))
        out = module.recipe_config(example, tmp_path / "data", tmp_path / "run", 1,
                                   epochs=100_000)
        assert out["train"]["epochs"] == want
        assert out["data"]["test"] is None and out["wandb"]["mode"] == "disabled"
