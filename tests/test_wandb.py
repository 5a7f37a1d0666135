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
    # sample predictions as images with ground-truth and prediction masks: per epoch
    # (validation patches) and of the test set
    media = folder / "files" / "media" / "images"
    assert len(list(media.glob("samples_*.png"))) == 2
    assert len(list(media.glob("test/samples_*.png"))) == 2
    assert len(list(media.glob("mask/samples_*.mask.png"))) >= 2  # identical masks dedupe
    assert len(list(media.glob("mask/test/samples_*.mask.png"))) >= 2
