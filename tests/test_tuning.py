"""Post-processing parameters tuned on validation data (dlsuite.tuning), on small synthetic
predictions: touching discs that a lower seed threshold splits, a threshold that misses faint
cells, the time budget, and postprocess.json round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from dlsuite.config.schema import PostprocessorChoice
from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry
from dlsuite.tuning import (finish_labels, read_postprocess_json, score_labels, tune_postprocess,
                            tuned_chain, write_postprocess_json)


@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


def touching_pairs(n: int = 3):
    """``n`` frames of two touching discs each; the model predicts the second disc's distance
    weakly (peak 0.35), so a seed threshold of 0.5 merges the pair."""
    probs, truths = [], []
    yy, xx = np.mgrid[:40, :64]
    for k in range(n):
        lab = np.zeros((40, 64), np.int32)
        cx = 20 + 2 * k
        lab[(yy - 20) ** 2 + (xx - cx) ** 2 < 121] = 1
        lab[((yy - 20) ** 2 + (xx - cx - 21) ** 2 < 121) & (lab == 0)] = 2
        d = np.zeros(lab.shape, np.float32)
        for i, peak in ((1, 1.0), (2, 0.35)):
            e = ndimage.distance_transform_edt(lab == i)
            d[lab == i] = (e / e.max() * peak)[lab == i]
        fg = (lab > 0).astype(np.float32)
        probs.append(np.stack([1 - fg, fg, d], -1))
        truths.append(lab)
    return probs, truths


def chain(**params):
    return [PostprocessorChoice("distance_watershed", params or None)]


@pytest.mark.parametrize("metric", ["SEG", "f1"])
def test_lower_seed_threshold_splits_touching_discs(registry, metric):
    probs, truths = touching_pairs()
    result = tune_postprocess(probs, truths, chain(), registry, metric=metric)
    seed = result.tuned["0.distance_watershed.seed_threshold"]
    assert seed < 0.35  # below the weak cell's peak: it gets its own seed
    assert result.steps[0]["name"] == "distance_watershed"
    assert result.steps[0]["params"]["seed_threshold"] == seed
    assert result.score > 0.95 and result.default_score < 0.8
    assert not result.timed_out and result.evaluations > 1
    # the chosen values reproduce the score
    entry = registry.resolve("postprocessors", "distance_watershed")
    step = entry.load()(entry.spec.params(**result.steps[0]["params"]))
    assert score_labels(truths, [finish_labels(step(p)) for p in probs], metric) == result.score


def test_threshold_finds_faint_cells_and_later_steps_are_kept(registry):
    """threshold -> label -> remove_small_objects: cells predicted at 0.45 vanish at the
    configured threshold 0.5; the search lowers it. The removal of specks stays useful."""
    truths, probs = [], []
    rng = np.random.default_rng(0)
    for _ in range(2):
        lab = np.zeros((48, 48), np.int32)
        lab[5:20, 5:20], lab[25:45, 25:40] = 1, 2
        p = np.where(lab > 0, 0.45, 0.05).astype(np.float32)
        p[rng.integers(0, 48, 10), rng.integers(0, 48, 10)] = 0.9  # single-pixel specks
        probs.append(np.stack([1 - p, p], -1))
        truths.append(lab)
    steps = [PostprocessorChoice("threshold", None), PostprocessorChoice("label", None),
             PostprocessorChoice("remove_small_objects", {"min_size": 25})]
    result = tune_postprocess(probs, truths, steps, registry, metric="f1")
    assert result.tuned["0.threshold.threshold"] < 0.45
    assert result.tuned["2.remove_small_objects.min_size"] >= 25 > 1
    assert result.default_score == 0.0 and result.score == 1.0


def test_ties_keep_the_configured_values(registry):
    probs, truths = touching_pairs()
    strong = []  # both cells predicted with a full-height distance: every seed works
    for p, lab in zip(probs, truths):
        d = np.zeros(lab.shape, np.float32)
        for i in (1, 2):
            e = ndimage.distance_transform_edt(lab == i)
            d[lab == i] = (e / e.max())[lab == i]
        strong.append(np.concatenate([p[..., :2], d[..., None]], -1))
    result = tune_postprocess(strong, truths, chain(seed_threshold=0.6), registry)
    assert result.default_score == result.score == pytest.approx(1.0)
    assert result.tuned["0.distance_watershed.seed_threshold"] == 0.6


def test_time_budget_stops_the_search(registry):
    probs, truths = touching_pairs()
    ticks = iter(range(1000))
    result = tune_postprocess(probs, truths, chain(), registry, time_budget=2.5,
                              clock=lambda: float(next(ticks)))
    assert result.timed_out
    assert result.evaluations <= 3
    assert result.score >= result.default_score


def test_bad_input_is_reported(registry):
    probs, truths = touching_pairs(1)
    with pytest.raises(DlsuiteInputError, match="metric"):
        tune_postprocess(probs, truths, chain(), registry, metric="AP")
    with pytest.raises(DlsuiteInputError, match="matching"):
        tune_postprocess(probs, truths * 2, chain(), registry)
    with pytest.raises(DlsuiteInputError, match="nope"):
        tune_postprocess(probs, truths, [PostprocessorChoice("nope", None)], registry)


def test_postprocess_json_round_trip_and_tuned_chain(registry, tmp_path):
    probs, truths = touching_pairs()
    result = tune_postprocess(probs, truths, chain(), registry)
    path = write_postprocess_json(tmp_path, result)
    assert path.name == "postprocess.json"
    data = json.loads(path.read_text())
    assert data["metric"] == "SEG" and data["steps"][0]["name"] == "distance_watershed"
    assert read_postprocess_json(tmp_path) == data
    applied, note = tuned_chain(chain(), tmp_path, registry)
    assert note is None
    assert applied[0].params.seed_threshold == result.tuned["0.distance_watershed.seed_threshold"]
    # a config whose chain changed since tuning keeps its own values, with a note
    other = [PostprocessorChoice("threshold", None), PostprocessorChoice("label", None)]
    same, note = tuned_chain(other, tmp_path, registry)
    assert same == other and "tuned for steps" in note
    # no file: unchanged, no note
    assert tuned_chain(other, tmp_path / "none", registry) == (other, None)
    (tmp_path / "postprocess.json").write_text("{not json")
    with pytest.raises(DlsuiteInputError, match="postprocess.json"):
        read_postprocess_json(tmp_path)


@pytest.mark.slow
def test_run_tunes_on_validation_and_predict_reads_postprocess_json(tmp_path, registry):
    """A tiny distance-target run: postprocess.json is written after training, the test
    metrics hold the matching list, and open_run (dlsuite predict) uses the tuned values."""
    from dlsuite import pipeline
    from dlsuite.config import parse_config
    from dlsuite.data.example import write_example_frames
    from dlsuite.predict import open_run

    frames = write_example_frames(tmp_path / "data", n=2, size=32, seed=1)["frames"]
    cfg = {"name": "tune", "output_dir": str(tmp_path / "out"), "seed": 2,
           "data": {"train": str(frames), "val": str(frames), "test": str(frames)},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2,
                       "target": {"name": "distance"}},
           "loss": {"name": "class_distance"},
           "postprocess": [{"name": "distance_watershed", "min_size": 250}],
           "evaluation": {"tune_metric": "f1", "tune_seconds": 60},
           "train": {"epochs": 1}, "inference": {"tile_size": None},
           "wandb": {"mode": "disabled"}}
    result = pipeline.run(parse_config(cfg, registry), quiet=True, registry=registry)
    data = read_postprocess_json(result.run_dir)
    assert data["metric"] == "f1" and data["steps"][0]["name"] == "distance_watershed"
    assert set(data["tuned"]) == {"0.distance_watershed.threshold",
                                  "0.distance_watershed.seed_threshold",
                                  "0.distance_watershed.seed_depth",
                                  "0.distance_watershed.min_size"}
    assert data["score"] >= data["default_score"]
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert [e["iou"] for e in metrics["test"]["matching"]] == [0.5, 0.6, 0.7, 0.8, 0.9]
    predictor = open_run(result.run_dir, registry=registry)
    params = predictor.ctx.config.postprocess[0].params
    assert params.min_size == data["steps"][0]["params"]["min_size"]
    assert params.seed_threshold == data["steps"][0]["params"]["seed_threshold"]
    # the test set is the validation set: its probabilities come from the tuning step, and
    # score exactly as a fresh prediction of the same checkpoint (dlsuite test)
    assert "(2 already predicted by the tuning step)" in (result.run_dir / "run.log").read_text()
    from dlsuite.runtest import test_run

    tested = test_run(result.run_dir, quiet=True, registry=registry).metrics
    fresh = tested["test"]
    assert fresh["SEG"] == metrics["test"]["SEG"]
    assert fresh["matching"] == metrics["test"]["matching"]
    tuned_file = result.run_dir / "postprocess.json"
    assert tested["postprocess"]["tuned"] == str(tuned_file)
    assert tested["postprocess"]["steps"][0]["min_size"] == data["steps"][0]["params"]["min_size"]
    # dlsuite test reads the run's postprocess.json (as dlsuite tune --overwrite would leave
    # it): a minimum size no cell reaches leaves no object to count
    data["steps"][0]["params"]["min_size"] = 10**6
    tuned_file.write_text(json.dumps(data))
    emptied = test_run(result.run_dir, quiet=True, registry=registry).metrics
    assert emptied["postprocess"]["steps"][0]["min_size"] == 10**6
    assert emptied["test"]["matching"][0]["tp"] == 0 and emptied["test"]["SEG"] == 0
    # a config whose chain differs from the run's is tested with its own values, and says so
    changed = parse_config({**cfg, "postprocess": [{"name": "distance_watershed",
                                                    "min_size": 1}]}, registry)
    own = test_run(changed, quiet=True, registry=registry).metrics
    assert own["postprocess"]["tuned"] is None
    assert own["postprocess"]["steps"][0]["min_size"] == 1
    assert any("postprocess.json not applied" in n for n in own["notes"])
