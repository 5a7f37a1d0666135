"""Weights & Biases: offline by default, env override, structured config,
per-epoch metrics and learning rate, images with masks, model artifact, test summary; a W&B
failure never stops training."""

from __future__ import annotations

import json
import logging
import pytest

from dlsuite.logging import WandbRun, resolve_mode


def test_environment_overrides_the_config_mode(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert resolve_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("offline") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert resolve_mode("online") == "offline"
    monkeypatch.setenv("WANDB_MODE", "nonsense")
    assert resolve_mode("online") == "online"


def test_config_is_flattened_to_dotted_keys_a_dashboard_can_filter_on():
    from dlsuite.config import parse_config
    from dlsuite.config.converter import unstructure_config
    from dlsuite.logging.wandb_run import flatten_config
    from dlsuite.registry import get_registry

    cfg = parse_config({"model": {"name": "unet", "n_filters": 8},
                        "datagen": {"augmentation": ["flip"]}}, check_paths=False).config
    flat = flatten_config(unstructure_config(cfg, get_registry()))
    assert flat["model.name"] == "unet" and flat["model.n_filters"] == 8
    assert flat["optimizer.learning_rate"] == 0.001
    assert flat["train.reduce_lr.patience"] == 10  # nested twice
    assert flat["datagen.patch_size"] == [64, 64]  # plain lists stay values
    assert flat["postprocess.0.name"] == "argmax" and flat["metrics.1.name"] == "dice"
    assert flat["datagen.augmentation.0.name"] == "flip"
    assert flat["wandb.tags"] == []
    assert not any(isinstance(v, dict) and v for v in flat.values())
    assert flatten_config({"a": {}, "b": [{}, 3]}) == {"a": {}, "b.0": {}, "b.1": 3}


def test_disabled_run_is_inert(monkeypatch, tmp_path):
    from dlsuite.config.schema import WandbConfig

    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = WandbRun.start(wandb_config=WandbConfig(), run_dir=tmp_path, name="x", config={})
    assert not run.active and run.id is None
    run.log({"loss": 1.0}, step=1)
    run.summary({"a": 1})
    run.finish()
    assert not (tmp_path / "wandb").exists()


class _FailingRun:
    """Stands in for a wandb Run whose backend died: every call raises."""

    id = "dead0000"

    def log(self, *a, **k):
        raise ConnectionError("wandb service gone")

    def log_artifact(self, *a, **k):
        raise ConnectionError("wandb service gone")

    def finish(self, *a, **k):
        raise ConnectionError("wandb service gone")

    @property
    def summary(self):
        raise ConnectionError("wandb service gone")


def test_wandb_failures_are_warnings_not_errors(tmp_path, caplog):
    import wandb

    run = WandbRun(_FailingRun(), wandb)
    (tmp_path / "m.keras").write_text("x")
    with caplog.at_level(logging.WARNING, logger="dlsuite.wandb"):
        for _ in range(2):
            run.log({"loss": 1.0}, step=1)
        run.summary({"test/jaccard": 0.5})
        run.log_model(tmp_path / "m.keras", name="m")
        run.finish()
    warnings = [r.getMessage() for r in caplog.records]
    assert len([w for w in warnings if w.startswith("W&B log failed")]) == 1  # once per kind
    assert any("summary failed" in w for w in warnings)
    assert any("log_model failed" in w for w in warnings)
    assert not run.active


@pytest.mark.slow
def test_offline_run_logs_config_metrics_images_artifact_and_test_summary(tmp_path, monkeypatch):
    from dlsuite import pipeline
    from dlsuite.config import parse_config
    from dlsuite.data.example import write_example_videos

    monkeypatch.delenv("WANDB_MODE", raising=False)
    data = write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32)["videos"]
    cfg = {
        "name": "wb", "output_dir": str(tmp_path / "run"), "seed": 1,
        "data": {"train": str(data), "val": str(data), "test": str(data)},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 1},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "inference": {"tile_size": None},
        "wandb": {"project": "dlsuite-tests", "group": "grp-x", "tags": ["tag-y"],
                  "n_images": 2},
    }
    result = pipeline.run(parse_config(cfg), quiet=True)
    run_id = result.wandb_run_id
    assert run_id
    state = json.loads((result.run_dir / "checkpoints/resume/state.json").read_text())
    assert state["wandb_run_id"] == run_id
    (folder,) = (result.run_dir / "wandb").glob(f"offline-run-*-{run_id}")
    records = (folder / f"run-{run_id}.wandb").read_bytes()
    # structured config with flattened keys, group and tags, per-epoch metrics + learning
    # rate, test summary
    for needle in (b"model.n_filters", b"datagen.patch_size", b"train.reduce_lr.patience",
                   b"grp-x", b"tag-y", b"val_jaccard", b"learning_rate",
                   b"test/foreground_jaccard", b"test/jaccard", b"model-wb"):
        assert needle in records, needle
    value = json.dumps(result.metrics["test"]["foreground_jaccard"]).encode()
    assert value in records
    # read back: a `train` job, the stable summary names, the test-image table
    from wandb_records import read_run

    data = read_run(folder)
    assert data["run"]["job_type"] == "train" and data["run"]["group"] == "grp-x"
    train = result.metrics["train"]
    summary = data["summary"]
    monitor = train["monitor"]  # val_jaccard: the first metric, maximised
    assert summary["best/monitor"] == monitor and summary["best/mode"] == train["mode"]
    assert summary["best/value"] == summary[f"{monitor}/best"] == train["best"]
    assert data["metrics"][monitor] == [train["mode"]]
    assert summary["best/epoch"] == 1 and summary["epochs"] == 1
    assert summary["test/foreground_jaccard"] == result.metrics["test"]["foreground_jaccard"]
    assert summary["test/SEG"] == result.metrics["test"]["SEG"]
    assert summary["test/images"]["nrows"] == 2 * 3  # 2 videos x 3 annotated frames
    model = [a for a in data["artifacts"] if a["type"] == "model"]
    assert model and model[0]["run_id"] == run_id and "best" in model[0]["aliases"]
    # sample predictions as images with ground-truth and prediction masks: per epoch
    # (validation patches) and of the test set
    media = folder / "files" / "media" / "images"
    assert len(list(media.glob("samples_*.png"))) == 2
    assert len(list(media.glob("test/samples_*.png"))) == 2
    assert len(list(media.glob("mask/samples_*.mask.png"))) >= 2  # identical masks dedupe
    assert len(list(media.glob("mask/test/samples_*.mask.png"))) >= 2


def _label_video(frames: int = 2, size: int = 24):
    """Two square cells per frame."""
    import numpy as np

    labels = np.zeros((frames, size, size), np.int32)
    labels[:, 2:10, 2:10] = 1
    labels[:, 12:20, 12:20] = 2
    return labels


def test_offline_run_structure_reads_back_from_the_run_files(tmp_path, monkeypatch):
    """job type, group, override tags, flattened config with the overrides, best and test
    summary under the stable names, per-epoch history, the test-image table with per-image
    SEG, and the model artifact as the run's output: all read back from the .wandb file."""
    import numpy as np
    from types import SimpleNamespace

    from dlsuite.config.schema import WandbConfig
    from dlsuite.logging.wandb_run import JOB_SWEEP_TRIAL
    from dlsuite.wandb_results import TABLE_COLUMNS, best_summary, log_test_results
    from wandb_records import offline_runs

    monkeypatch.delenv("WANDB_MODE", raising=False)
    overrides = {"model.n_filters": 8, "loss": "dice", "output_dir": str(tmp_path),
                 "wandb.group": "sw"}
    run = WandbRun.start(
        wandb_config=WandbConfig(project="dlsuite-tests", group="sw", tags=["mine"]),
        run_dir=tmp_path, name="sw-trial-000", job_type=JOB_SWEEP_TRIAL, overrides=overrides,
        config={"model": {"name": "unet", "n_filters": 8}, "loss": {"name": "dice"}})
    assert run.active and run.offline()
    run.track_best("val_loss", "min")
    for epoch, val in ((1, 0.9), (2, 0.5), (3, 0.7)):
        run.log({"epoch": epoch, "loss": 1.0 / epoch, "val_loss": val}, step=epoch)
    run.summary(best_summary("val_loss", "min", 0.5, 2, 3))
    truth = _label_video()
    perfect, half = truth.copy(), truth.copy()
    half[half == 2] = 0  # the second cell missed: SEG 0.5
    pixels = np.random.default_rng(0).random(truth.shape, np.float32)  # distinct frames
    samples = [SimpleNamespace(name="vid-a", image=pixels, truth=truth,
                               annotated=np.array([0, 1]), labels=perfect),
               SimpleNamespace(name="vid-b", image=pixels.transpose(0, 2, 1).copy(), truth=truth,
                               annotated=np.array([1]), labels=half)]
    log_test_results(run, samples, {"SEG": 0.83, "DET": 0.9, "matching": [{"iou": 0.5}],
                                    "skipped": None}, n_images=1)
    model = tmp_path / "best.keras"
    model.write_bytes(b"weights")
    run.log_model(model, name="sw-trial-000", aliases=["latest", "best"],
                  metadata={"monitor": "val_loss"})
    run_id = run.id
    run.finish()

    (data,) = offline_runs(tmp_path).values()
    assert data["run"] == {"id": run_id, "project": "dlsuite-tests", "group": "sw",
                           "job_type": "sweep-trial", "name": "sw-trial-000",
                           "tags": ["mine", "model.n_filters=8", "loss=dice"]}
    config = data["config"]
    assert config["model.n_filters"] == 8 and config["loss.name"] == "dice"
    assert config["overrides"] == "model.n_filters=8, loss=dice"  # placement left out
    summary = data["summary"]
    assert {k: summary[k] for k in ("best/monitor", "best/mode", "best/value", "best/epoch",
                                    "val_loss/best", "epochs", "test/SEG", "test/DET")} == {
        "best/monitor": "val_loss", "best/mode": "min", "best/value": 0.5, "best/epoch": 2,
        "val_loss/best": 0.5, "epochs": 3, "test/SEG": 0.83, "test/DET": 0.9}
    assert "test/matching" not in summary and "test/skipped" not in summary
    assert data["metrics"]["val_loss"] == ["min"]
    assert summary["val_loss"] == {"min": 0.5}  # W&B's own aggregation of the history
    epochs = [r for r in data["history"] if "val_loss" in r]
    assert [(r["epoch"], r["val_loss"], r["_step"]) for r in epochs] == [
        (1, 0.9, 1), (2, 0.5, 2), (3, 0.7, 3)]
    # the test-image table: one row per annotated frame, per-image SEG
    table_ref = summary["test/images"]
    assert table_ref["_type"] == "table-file" and table_ref["nrows"] == 3
    table = json.loads((data["folder"] / "files" / table_ref["path"]).read_text())
    assert table["columns"] == list(TABLE_COLUMNS)
    rows = [dict(zip(table["columns"], r)) for r in table["data"]]
    assert [(r["sample"], r["frame"], r["SEG"], r["objects_true"], r["objects_predicted"])
            for r in rows] == [("vid-a", 0, 1.0, 2, 2), ("vid-a", 1, 1.0, 2, 2),
                               ("vid-b", 1, 0.5, 2, 1)]
    assert rows[2]["foreground_jaccard"] == 0.5
    artifacts = {a["type"]: a for a in data["artifacts"]}
    media = artifacts["run_table"]["files"]  # the table's images with their masks
    assert len([f for f in media if f.endswith(".mask.png")]) >= 2
    assert len([f for f in media if f.startswith("media/images/")
                and not f.endswith(".mask.png")]) == 3
    # the model artifact is this run's output
    model_art = artifacts["model"]
    assert model_art["name"] == "model-sw-trial-000" and model_art["run_id"] == run_id
    assert sorted(model_art["aliases"]) == ["best", "latest"] and model_art["files"] == ["best.keras"]
    assert len(list((data["folder"] / "files" / "media" / "images" / "test").glob(
        "samples_*.png"))) == 1
