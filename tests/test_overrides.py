"""``--set KEY=VALUE`` overrides (issue 15): dotted JSON paths, JSON values else strings,
validated like the file, errors naming the override (exit 2), applied after a legacy
migration, recorded in the run's config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlsuite import api
from dlsuite.config.overrides import apply_overrides, normalize_overrides, parse_override
from dlsuite.errors import ConfigError, DlsuiteInputError
from conftest import run_cli


def _config(tmp_path: Path, **extra) -> Path:
    cfg = {"name": "ov", "data": {"train": "train"}, "output_dir": "run",
           "model": {"name": "unet", "n_filters": 8}, **extra}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_parse_override_values_are_json_else_strings():
    assert parse_override("model.n_filters=32") == ("model.n_filters", 32)
    assert parse_override("loss=dice") == ("loss", "dice")
    assert parse_override("datagen.patch_size=[64, 64]") == ("datagen.patch_size", [64, 64])
    assert parse_override("train.mixed_precision=true") == ("train.mixed_precision", True)
    assert parse_override("wandb.entity=null") == ("wandb.entity", None)
    assert parse_override("name=a=b") == ("name", "a=b")  # only the first '=' splits
    assert normalize_overrides(["seed=1", "seed=2"]) == {"seed": 2}  # the last one wins
    with pytest.raises(DlsuiteInputError, match="--set seed: expected KEY=VALUE"):
        parse_override("seed")
    with pytest.raises(DlsuiteInputError, match=r"override a\.\.b=1: not a config path"):
        parse_override("a..b=1")
    for raw in ("1e999", "NaN", "-Infinity"):  # JSON numbers Python reads as inf / nan
        with pytest.raises(DlsuiteInputError, match=f"--set model.n_filters={raw}: {raw} is "
                           "not a finite number"):
            parse_override(f"model.n_filters={raw}")


def test_apply_overrides_walks_paths_with_defaults_shorthands_and_plugin_switches():
    defaults = {"model": {"name": "unet", "n_filters": 16}, "datagen": {"augmentation": []}}
    data = {"loss": "dice", "model": {"name": "unet", "n_filters": 8, "pools": 2}}
    out = apply_overrides(data, {"loss.smooth": 2.0, "datagen.augmentation[0]": "flip",
                                 "datagen.augmentation[0].vertical": False}, defaults)
    assert out["loss"] == {"name": "dice", "smooth": 2.0}  # name-only section -> object
    assert out["datagen"]["augmentation"] == [{"name": "flip", "vertical": False}]
    assert data["loss"] == "dice"  # the input is not changed
    # another plugin: the old one's parameters go, in any order of the overrides
    out = apply_overrides(data, {"model.n_filters": 4, "model": "residual_unet"}, defaults)
    assert out["model"] == {"name": "residual_unet", "n_filters": 4}
    out = apply_overrides(data, {"model.name": "residual_unet"}, defaults)
    assert out["model"] == {"name": "residual_unet"}
    # the run's own name is not a plugin's: nothing else goes
    assert apply_overrides({**data, "name": "a"}, {"name": "b"}, defaults) == {**data, "name": "b"}
    # a section the file does not hold starts from the defaults
    assert apply_overrides({}, {"model.n_filters": 4}, defaults)["model"] == \
        {"name": "unet", "n_filters": 4}
    with pytest.raises(DlsuiteInputError, match=r"datagen\.augmentation has 0 item\(s\); "
                                                r"index 1 is out of range"):
        apply_overrides({}, {"datagen.augmentation[1]": "flip"}, defaults)
    with pytest.raises(DlsuiteInputError, match="model.n_filters is not an object"):
        apply_overrides(data, {"model.n_filters.x": 1}, defaults)


def test_api_overrides_are_validated_and_named(tmp_path):
    path = _config(tmp_path)
    loaded = api.load_config(path, check_paths=False,
                             overrides={"model.n_filters": 32, "loss": "dice",
                                        "datagen.augmentation[0]": {"name": "flip"}})
    cfg = loaded.config
    assert cfg.model.params.n_filters == 32 and cfg.loss.name == "dice"
    assert [a.name for a in cfg.datagen.augmentation] == ["flip"]
    assert loaded.overrides["model.n_filters"] == 32
    # relative paths given as overrides resolve against the config's folder, like the file's
    shown = api.show_config(path, check_paths=False, overrides=["output_dir=elsewhere"])
    assert shown.data["output_dir"] == str(tmp_path / "elsewhere")
    with pytest.raises(ConfigError) as bad:
        api.load_config(path, check_paths=False, overrides={"model.n_filtres": 32,
                                                            "model.pools": 0})
    problems = dict(bad.value.problems)
    assert problems["override model.n_filtres=32"].startswith("unknown key; did you mean "
                                                               "n_filters?")
    assert "must be" in problems["override model.pools=0"]
    with pytest.raises(ConfigError, match=r"override loss=dicee: unknown loss 'dicee'; did "
                                          r"you mean 'dice'"):
        api.validate_config(json.loads(path.read_text()), check_paths=False,
                            overrides=["loss=dicee"])
    # a problem of the file itself keeps its JSON path
    bad_file = _config(tmp_path, seed="x")
    with pytest.raises(ConfigError) as both:
        api.load_config(bad_file, check_paths=False, overrides={"model.pools": 0})
    assert {p for p, _ in both.value.problems} == {"$.seed", "override model.pools=0"}


def test_overrides_apply_after_the_legacy_migration(tmp_path):
    legacy = {"train_path": "train", "val_path": "val", "test_path": "test", "n_filters": 8,
              "epochs": 3, "batch_size": 2, "loss_fn": "dice"}
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(legacy))
    loaded = api.load_config(path, check_paths=False, overrides={"model.n_filters": 4,
                                                                 "train.epochs": 7})
    assert loaded.is_legacy  # the migration rows are kept
    assert loaded.config.model.params.n_filters == 4 and loaded.config.train.epochs == 7
    # the overrides name the new (nested) keys; a legacy name is not a key of the new config
    with pytest.raises(ConfigError, match="override n_filters=4: unknown key"):
        api.load_config(path, check_paths=False, overrides={"n_filters": 4})


def test_cli_set_bad_path_or_value_exits_2_naming_the_override(tmp_path):
    path = _config(tmp_path)
    proc = run_cli("config", "validate", str(path), "--no-paths", "--set", "model.n_filtres=3")
    assert proc.returncode == 2
    assert "override model.n_filtres=3: unknown key; did you mean n_filters?" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("config", "validate", str(path), "--no-paths", "--set", "seed")
    assert proc.returncode == 2 and "--set seed: expected KEY=VALUE" in proc.stderr
    proc = run_cli("config", "show", str(path), "--no-paths", "--set", "model.n_filters=32",
                   "--set", "loss=dice", "--set", "datagen.patch_size=[48, 48]")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["model"]["n_filters"] == 32 and shown["loss"]["name"] == "dice"
    assert shown["datagen"]["patch_size"] == [48, 48]
    # run: the bad override stops before anything is written
    proc = run_cli("run", str(path), "--set", "model.n_filters=-1", "--quiet")
    assert proc.returncode == 2
    assert "override model.n_filters=-1: must be > 0, got -1" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_with_overrides_records_them_in_config_json(tmp_path):
    from dlsuite.data.example import write_example_videos

    data = write_example_videos(tmp_path / "data", n_videos=1, frames=2, size=32)["videos"]
    path = _config(tmp_path, datagen={"patch_size": [32, 32], "batch_size": 1,
                                      "steps_per_epoch": 1},
                   train={"epochs": 1, "tensorboard": {"enabled": False}},
                   wandb={"mode": "disabled"})
    cfg = json.loads(path.read_text())
    cfg["data"] = {"train": str(data), "val": str(data)}
    path.write_text(json.dumps(cfg))
    proc = run_cli("train", str(path), "--quiet", "--set", "model.n_filters=2",
                   "--set", "model.pools=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert written["overrides"] == {"model.n_filters": 2, "model.pools": 1}
    assert written["config"]["model"]["n_filters"] == 2
    assert written["config"]["model"]["pools"] == 1
