"""``dlsuite run``: train -> predict -> post-process -> export -> evaluate -> report
and the ``train`` / ``run`` click commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from dlsuite.config import parse_config
from dlsuite.data.io import read_image
from dlsuite.data.layouts import list_samples, load_sample
from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import get_registry
from dlsuite.rundir import RunDir


def _config(data: Path, test: Path, out: Path, **extra) -> dict:
    cfg = {
        "name": "e2e", "output_dir": str(out), "seed": 2,
        "data": {"train": str(data), "val": str(data), "test": str(test)},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
        "train": {"epochs": 2},
        "inference": {"tile_size": 16, "halo": 8},
        "wandb": {"mode": "disabled"},
    }
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from dlsuite.data.example import write_example_frames, write_example_videos

    root = tmp_path_factory.mktemp("data")
    written = write_example_videos(root, n_videos=2, frames=4, size=32, seed=1)
    frames = write_example_frames(root, n=2, size=32, seed=1)["frames"]
    return written["videos"], frames, written["ctc"]


def _foreground_jaccard(gt_folder: Path, labels_folder: Path) -> float:
    scores = []
    for sample in list_samples(gt_folder):
        loaded = load_sample(sample)
        name = f"{sample.name}.tif" if sample.layout == "ctc" else sample.labels.name
        pred = read_image(labels_folder / name)
        pred = pred.reshape(loaded.labels.shape)
        for t in np.asarray(loaded.annotated, dtype=int):
            g, r = loaded.labels[t] > 0, pred[t] > 0
            union = np.logical_or(g, r).sum()
            scores.append(1.0 if union == 0 else np.logical_and(g, r).sum() / union)
    return float(np.mean(scores))


@pytest.mark.slow
def test_run_end_to_end_train_on_videos_test_on_ctc(example, tmp_path):
    from dlsuite import pipeline

    videos, _, ctc = example
    result = pipeline.run(parse_config(_config(videos, ctc, tmp_path / "run")), quiet=True)
    run = RunDir(result.run_dir)
    labels_dir = run.predictions / "labels"
    assert sorted(p.name for p in labels_dir.iterdir()) == ["01.tif", "02.tif"]
    for name in ("01.tif", "02.tif"):
        pred = read_image(labels_dir / name)
        assert pred.shape == (4, 32, 32) and pred.dtype.kind in "iu"
        probs = tifffile.imread(run.predictions / "probabilities" / name)
        assert probs.dtype == np.float32 and probs.shape == (4, 2, 32, 32)  # TCYX
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # CTC export with the tracker's res_track.txt, one NN_RES per sequence
    for seq in ("01", "02"):
        res = run.predictions / "ctc" / f"{seq}_RES"
        assert (res / "res_track.txt").is_file() and len(list(res.glob("mask*.tif"))) == 4
    # metrics.json: train and test parts; the Jaccard matches the written label files
    metrics = json.loads(run.metrics_json.read_text())
    assert metrics["train"]["epochs"] == 2
    test = metrics["test"]
    assert test["foreground_jaccard"] == pytest.approx(_foreground_jaccard(ctc, labels_dir))
    for name in ("SEG", "jaccard", "dice"):
        assert 0.0 <= test[name] <= 1.0, name
    for name in ("DET", "TRA"):  # computed on the CTC export (None, with a reason, when the
        # tiny model found no object at all)
        assert name in test
        assert test[name] is not None or all(
            name in s.get("unavailable", {}) for s in metrics["per_sequence"])
    assert result.metrics["test"] == test
    assert {s["sequence"] for s in metrics["per_sequence"]} >= {"01", "02"}
    # report pictures a person would look at
    from PIL import Image

    curves = Image.open(run.report / "curves.png")
    assert curves.mode == "RGB" and curves.size[0] >= 400
    pictures = sorted(run.report.glob("test_*.png"))
    assert len(pictures) == 2
    panel = np.asarray(Image.open(pictures[0]))
    assert panel.shape[1] > 3 * 32 and panel.std() > 0
    assert "predicted 2 test sample(s)" in run.run_log.read_text()


def test_export_and_evaluation_of_2d_frames(example, tmp_path):
    """Frames stay 2D in predictions/labels, named like their ground truth; a perfect
    prediction scores 1 with the evaluation module."""
    from dlsuite.pipeline import (RunContext, SamplePrediction, Predictions, evaluate_step,
                                  export_step)

    _, frames, _ = example
    loaded = parse_config(_config(frames, frames, tmp_path / "run"))
    ctx = RunContext(loaded, get_registry(), RunDir(tmp_path / "run").make(), quiet=True)
    samples = []
    for sample in list_samples(frames):
        s = load_sample(sample)
        probs = np.stack([1.0 - (s.labels > 0), (s.labels > 0)], axis=-1).astype(np.float32)
        samples.append(SamplePrediction(s.name, s.image, s.labels, s.annotated, probs,
                                        labels=s.labels.astype(np.int64),
                                        truth_path=sample.labels, layout=sample.layout))
    preds = Predictions(samples)
    exported = export_step(ctx, preds)
    for sample in list_samples(frames):
        written = read_image(exported.labels_dir / sample.labels.name)
        assert written.shape == (32, 32)
        np.testing.assert_array_equal(written, read_image(sample.labels))
    assert exported.ctc_dir is None  # single frames: nothing to track
    evaluation = evaluate_step(ctx, preds, exported)
    assert evaluation.metrics["foreground_jaccard"] == 1.0
    assert evaluation.metrics["jaccard"] == pytest.approx(1.0)
    assert evaluation.metrics["SEG"] == pytest.approx(1.0)


def test_cli_refuses_an_existing_run_and_names_the_flags(example, tmp_path):
    from dlsuite.cli.run import run, train

    from dlsuite.rundir import prepare_run_dir

    videos, _, _ = example
    out = tmp_path / "run"
    run_dir = prepare_run_dir(out)  # a run: the folder carries dlsuite's marker
    (out / "config.json").write_text("{}")
    run_dir.resume_state.parent.mkdir(parents=True, exist_ok=True)  # resumable: both flags
    run_dir.resume_state.write_text("{}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(videos, videos, out)))
    for command in (train, run):
        result = CliRunner().invoke(command, [str(config), "--quiet"])
        assert isinstance(result.exception, DlsuiteInputError)
        assert "--resume" in str(result.exception) and "--overwrite" in str(result.exception)
    assert (out / "config.json").read_text() == "{}"


def test_cli_help_lists_the_options():
    from dlsuite.cli.run import run

    result = CliRunner().invoke(run, ["--help"])
    assert result.exit_code == 0
    for flag in ("--resume", "--overwrite", "--quiet"):
        assert flag in result.output
