"""Legacy flat configs of the original suite: detection, migration table, validation (C4)."""

from __future__ import annotations

import copy
import json
import os

import attrs
import numpy as np
import pytest
import tifffile
from rich.console import Console
from rich.table import Table

from dlsuite.config import load_config, parse_config
from dlsuite.config.legacy import (MigrationRow, format_migration, is_legacy, migrate,
                                   migrate_file, migration_to_text, select_architecture,
                                   write_migrated)
from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry, get_registry

# Every key of the original suite's configs: those its code read and those present but ignored,
# written out here independently of the implementation's table.
KEYS_1_2 = [
    "cnn_name", "OUTPUTPATH", "TRAINPATH", "VALPATH", "TESTPATH", "PATH2VIDEOS",
    "model_n_filters", "model_pools", "model_kernel_size", "model_dilation_rate",
    "model_mobile_alpha", "model_time_windows", "model_lr", "model_dropout", "model_activation",
    "model_last_activation", "model_padding", "model_kernel_initializer", "model_lossfunction",
    "model_loss_tips", "model_metrics", "model_train_decoder_only", "model_category_weights",
    "model_seed_initializer", "train_seed_initializer", "train_max_epochs",
    "train_pretrained_weights", "train_load_from_frozen", "callbacks_save_best_only",
    "callbacks_save_freq", "callbacks_patience", "callbacks_tb_update_freq", "datagen_type",
    "datagen_patch_batch", "datagen_batch_size", "datagen_dim_size", "datagen_sampling_pdf",
    "normalization", "newinfer_padding", "newinfer_epoch_process_test", "newinfer_data",
    "newinfer_output_folder_name",
]
KEYS_1_3 = ["datagen_tips_factor", "datagen_sigma", "newinfer_uneven_illumination",
            "newinfer_normalization"]
KEYS_1_4 = ["model_output_ch", "model_batch_norm"]


def template_config(**overrides):
    """The original suite's examples/config/config_template.json, key for key."""
    data = {
        "cnn_name": "mobilenet_mobileunet_lstm_",
        "OUTPUTPATH": "/content/drive/MyDrive/results/mobilenet_lstm_template",
        "TRAINPATH": "/content/HT1080WT_PHASECONTRAST/train",
        "VALPATH": "/content/HT1080WT_PHASECONTRAST/val",
        "TESTPATH": "/content/HT1080WT_PHASECONTRAST/test",
        "PATH2VIDEOS": "/content/HT1080WT_PHASECONTRAST/test/stack2im/videos2im_relation.csv",
        "model_n_filters": 16, "model_pools": 3, "model_kernel_size": [3, 3],
        "model_dilation_rate": 2, "model_mobile_alpha": 0.35, "model_time_windows": 5,
        "model_lr": 0.0001, "model_dropout": 0.05, "model_activation": "elu",
        "model_last_activation": "tanh", "model_padding": "same",
        "model_kernel_initializer": "glorot_uniform", "model_lossfunction": "sparse_cce",
        "model_loss_tips": "L1L2", "model_metrics": "accuracy", "model_train_decoder_only": 0,
        "model_category_weights": [1, 10], "model_seed_initializer": "None",
        "train_seed_initializer": "None", "train_max_epochs": 2000,
        "train_pretrained_weights": "None", "train_load_from_frozen": 0,
        "callbacks_save_best_only": 1, "callbacks_save_freq": 100, "callbacks_patience": 2001,
        "callbacks_tb_update_freq": 100, "datagen_type": "segmentation",
        "datagen_patch_batch": 1, "datagen_batch_size": 2, "datagen_dim_size": [256, 256],
        "datagen_sampling_pdf": 500000, "datagen_sigma": 1000, "datagen_tips_factor": 10,
        "normalization": "PERCENTILE", "newinfer_padding": [115, 115],
        "newinfer_epoch_process_test": "mobilenet_mobileunet_lstm_01950.hdf5",
        "newinfer_uneven_illumination": 0,
    }
    data.update(overrides)
    return data


def numbered_config(cnn_name, n_filters, pools, dilation, batch, save_freq):
    """The original suite's examples/config/config_mobilenet_lstm_N.json: no seed keys (the original
    crashed on them) and Colab paths for the pretrained weights."""
    data = template_config(cnn_name=cnn_name, model_n_filters=n_filters, model_pools=pools,
                           model_dilation_rate=dilation, datagen_batch_size=batch,
                           callbacks_save_freq=save_freq, callbacks_save_best_only=0,
                           model_train_decoder_only=1, train_load_from_frozen=1,
                           train_pretrained_weights="/content/drive/MyDrive/weights_best.hdf5")
    del data["model_seed_initializer"], data["train_seed_initializer"]
    return data


NUMBERED = {
    "template": template_config(),
    "config_1": numbered_config("mobilenet_mobileunet_lstm", 16, 5, 1, 1, 100),
    "config_2": numbered_config("mobilenet_mobileunet_lstm", 25, 4, 1, 2, 500),
    "config_3": numbered_config("mobilenet_mobileunet_lstm", 25, 4, 2, 2, 500),
    "config_4": numbered_config("mobilenet_mobileunet_lstm", 50, 4, 1, 2, 500),
    "config_5": numbered_config("mobilenet_mobileunet_lstm_", 25, 3, 1, 2, 100),
}


def unet_config(**overrides):
    """A flat config for a U-Net of the original (the path crashed at build there)."""
    data = {
        "cnn_name": "categorical_unet_fc_dil_experiment", "OUTPUTPATH": "results/unet_run",
        "TRAINPATH": "data/train/stack2im", "VALPATH": "data/val/stack2im",
        "TESTPATH": "data/test/stack2im", "model_n_filters": 8, "model_pools": 3,
        "model_kernel_size": [3, 3], "model_dilation_rate": 2, "model_mobile_alpha": 0.35,
        "model_lr": 0.001, "model_dropout": 0.1, "model_activation": "relu",
        "model_last_activation": "tanh", "model_padding": "same",
        "model_kernel_initializer": "he_uniform", "model_lossfunction": "weighted_bce",
        "model_metrics": "accuracy", "model_category_weights": [1, 10], "model_batch_norm": 1,
        "model_output_ch": 2, "model_seed_initializer": 7, "train_seed_initializer": 7,
        "train_max_epochs": 50, "train_pretrained_weights": "None",
        "train_load_from_frozen": 0, "callbacks_save_best_only": 1, "callbacks_save_freq": 1,
        "callbacks_patience": 10, "callbacks_tb_update_freq": 1, "datagen_type": "segmentation",
        "datagen_patch_batch": 2, "datagen_batch_size": 4, "datagen_dim_size": [64, 64],
        "datagen_sampling_pdf": 1, "normalization": "MEAN", "newinfer_padding": [16, 20],
        "newinfer_epoch_process_test": "/abs/weights_best.hdf5",
    }
    data.update(overrides)
    return data


def _needed_plugins(new: dict) -> list[tuple[str, str]]:
    """(kind, name) of every plugin the migrated config and the schema defaults select."""
    needed = [("architectures", new["model"]["name"]), ("losses", new.get("loss", {}).get(
        "name", "sparse_cce")), ("samplers", "foreground_pdf"), ("normalizers", "percentile"),
        ("targets", "binary"), ("metrics", "jaccard"), ("postprocessors", "argmax")]
    datagen = new.get("datagen", {})
    for section, kind in (("sampling", "samplers"), ("normalization", "normalizers"),
                          ("target", "targets")):
        if section in datagen:
            needed.append((kind, datagen[section]["name"]))
    needed += [("augmentations", a["name"]) for a in datagen.get("augmentation", [])]
    return needed


def validate(data):
    """parse_config on a legacy dict; skips (at run time) when a plugin it needs is missing
    from the installed registry (plugins being written in parallel)."""
    new, _ = migrate(data)
    tables = get_registry().tables
    missing = [f"{k}:{n}" for k, n in _needed_plugins(new) if n not in tables[k]]
    if missing:
        kinds = sorted({m.split(":")[0] for m in missing})
        pytest.skip(f"{'/'.join(kinds)} plugins not registered: {', '.join(missing)}")
    return parse_config(data, check_paths=False)


def rows_for(rows, key):
    return [r for r in rows if r.old_key == key]


def row_to(rows, key, new_key):
    (row,) = [r for r in rows if r.old_key == key and r.new_key == new_key]
    return row


# ---- detection ---------------------------------------------------------------------------------
@pytest.mark.parametrize("data, expected", [
    (template_config(), True),
    ({"OUTPUTPATH": "/x"}, True),
    ({"datagen_sigma": 3}, True),
    ({"model_n_filters": 16, "callbacks_patience": 3}, True),
    ({}, False),
    ({"schema_version": 1, "cnn_name": "unet"}, False),
    ({"model": {"name": "unet"}, "train": {"epochs": 2}}, False),
    ({"model": "unet", "model_n_filters": 4}, False),  # new form with a stray key: validate it
    ([template_config()], False),
    ("cnn_name", False),
])
def test_is_legacy(data, expected):
    assert is_legacy(data) is expected


# ---- architecture choice -----------------------------------------------------------------------
@pytest.mark.parametrize("cnn_name, arch", [
    ("mobilenet_mobileunet_lstm", "mobilenet_mobileunet_lstm"),
    ("mobilenet_mobileunet_lstm_", "mobilenet_mobileunet_lstm"),
    ("mobilenet_mobileunet_lstm_tips", "mobilenet_mobileunet_lstm"),
    ("mobilenet_mobileunet", "mobilenet_mobileunet"),
    ("my_mobilenet_mobileunet_v2", "mobilenet_mobileunet"),
    ("categorical_unet_transpose", "categorical_unet_transpose"),
    ("categorical_unet_fc_dil_x", "categorical_unet_fc_dil"),
    ("categorical_unet_fc_x", "categorical_unet_fc"),
    ("categorical_unet_x", "categorical_unet"),
    ("unet", "unet"),
    ("None", "unet"),
    ("something_else", "unet"),
])
def test_substring_rule_in_the_originals_order(cnn_name, arch):
    assert select_architecture(cnn_name) == arch
    new, rows = migrate({"cnn_name": cnn_name})
    assert new["model"]["name"] == arch
    assert row_to(rows, "cnn_name", "$.model.name").new_value == arch


@pytest.mark.parametrize("cnn_name, arch", [
    ("unet_lstm", "unet_lstm"),  # README name: the original built a 2D unet and crashed
    ("categorical_unet_lstm", "unet_lstm"),
    ("mobilenet_mobileunet_x_lstm", "mobilenet_mobileunet_lstm"),
])
def test_lstm_in_the_name_makes_the_model_temporal(cnn_name, arch):
    new, rows = migrate({"cnn_name": cnn_name, "model_time_windows": 7})
    assert new["model"] == {"name": arch, "time_windows": 7}
    assert "temporal" in row_to(rows, "cnn_name", "$.model.name").note


def test_tips_name_builds_the_plain_lstm_model_with_a_note():
    new, rows = migrate({"cnn_name": "mobilenet_mobileunet_lstm_tips"})
    assert new["model"] == {"name": "mobilenet_mobileunet_lstm"}
    assert "no tips head" in rows_for(rows, "cnn_name")[0].note


def test_missing_cnn_name_is_reported_and_falls_back_to_unet():
    new, rows = migrate({"OUTPUTPATH": "out", "model_n_filters": 4})
    assert new["model"] == {"name": "unet", "n_filters": 4}
    assert "missing" in rows_for(rows, "cnn_name")[0].note


# ---- completeness ------------------------------------------------------------------------------
def every_key_config():
    return template_config(newinfer_data="/content/new_videos",
                           newinfer_output_folder_name="new_output",
                           newinfer_normalization="PERCENTILE", model_output_ch=2,
                           model_batch_norm=0)


def test_every_original_key_gets_a_row_and_obsolete_rows_say_why():
    data = every_key_config()
    assert set(KEYS_1_2 + KEYS_1_3 + KEYS_1_4) <= set(data)
    new, rows = migrate(data)
    keys = [r.old_key for r in rows]
    for key in KEYS_1_2 + KEYS_1_3 + KEYS_1_4:
        assert key in keys, key
    assert all(isinstance(r, MigrationRow) for r in rows)
    for row in rows:
        if row.new_key is None:
            assert row.note.strip(), row
        else:
            assert row.new_key.startswith("$."), row
    assert "ignored, as it was" in rows_for(rows, "datagen_sigma")[0].note
    assert "README" in rows_for(rows, "datagen_sigma")[0].note
    for key in ("datagen_tips_factor", "newinfer_uneven_illumination", "model_loss_tips",
                "model_metrics", "model_last_activation", "newinfer_normalization"):
        assert all(r.new_key is None for r in rows_for(rows, key)), key


@pytest.mark.parametrize("name", sorted(NUMBERED))
def test_original_example_configs_migrate_and_validate(name):
    data = NUMBERED[name]
    before = copy.deepcopy(data)
    loaded = validate(data)
    assert data == before  # the input is not modified
    model = loaded.config.model
    assert model.name == "mobilenet_mobileunet_lstm"
    assert (model.params.n_filters, model.params.pools) == (data["model_n_filters"],
                                                            data["model_pools"])
    assert model.params.dilation_rate == data["model_dilation_rate"]
    assert model.params.alpha == 0.35 and model.params.time_windows == 5
    assert model.params.dropout == 0.05 and model.params.activation == "elu"
    assert model.params.train_decoder_only is bool(data["model_train_decoder_only"])
    assert loaded.config.loss.name == "sparse_cce"
    assert loaded.config.optimizer.learning_rate == 1e-4
    assert loaded.config.datagen.batch_size == data["datagen_batch_size"]
    assert loaded.config.datagen.patch_size == (256, 256)
    assert loaded.config.datagen.sampling.name == "foreground_pdf"
    assert loaded.config.datagen.sampling.params.pdf == 500000
    # 115 px leaves no core in 256 px static tiles at size multiple 2**pools >= 16: lowered
    assert loaded.config.inference.halo == {3: 115, 4: 112, 5: 96}[data["model_pools"]]
    halo_row = row_to(loaded.migration, "newinfer_padding", "$.inference.halo")
    assert ("leaves no core" in halo_row.note) is (data["model_pools"] > 3)
    assert loaded.config.train.reduce_lr.enabled is False  # patience 2001 >= 2000 epochs
    assert loaded.config.train.epochs == 2000
    assert loaded.is_legacy and loaded.migration == migrate(data)[1]


def test_template_sentinels_and_booleans():
    new, rows = migrate(template_config())
    assert new["seed"] is None  # "None": unseeded, as the original
    assert new["train"]["pretrained_weights"] is None
    assert new["train"]["load_from_frozen"] is False
    assert new["model"]["train_decoder_only"] is False
    assert new["train"]["checkpoint"]["save_best"] is True
    # save_best_only 1: save_freq was unused
    assert rows_for(rows, "callbacks_save_freq")[0].new_key is None
    assert new["name"] == "mobilenet_lstm_template"
    assert new["output_dir"] == "/content/drive/MyDrive/results/mobilenet_lstm_template"
    assert new["inference"]["weights"] == (
        "/content/drive/MyDrive/results/mobilenet_lstm_template/checkpoints/"
        "mobilenet_mobileunet_lstm_01950.hdf5")


def test_numbered_config_booleans_and_paths():
    new, _ = migrate(NUMBERED["config_1"])
    assert new["model"]["train_decoder_only"] is True
    assert new["train"]["load_from_frozen"] is True
    assert new["train"]["pretrained_weights"] == "/content/drive/MyDrive/weights_best.hdf5"
    assert new["train"]["checkpoint"]["save_best"] is False
    assert "seed" not in new  # the original crashed without the seed keys: schema default


@pytest.mark.parametrize("key, value, path", [
    ("TRAINPATH", "None", ("data", "train")),
    ("VALPATH", "None", ("data", "val")),
    ("train_pretrained_weights", "None", ("train", "pretrained_weights")),
    ("model_seed_initializer", "None", ("seed",)),
])
def test_none_sentinel_means_null(key, value, path):
    new, _ = migrate({"cnn_name": "unet", key: value})
    node = new
    for part in path:
        node = node[part]
    assert node is None


@pytest.mark.parametrize("key, path", [
    ("train_load_from_frozen", ("train", "load_from_frozen")),
    ("callbacks_save_best_only", ("train", "checkpoint", "save_best")),
    ("model_train_decoder_only", ("model", "train_decoder_only")),
])
@pytest.mark.parametrize("value", [0, 1])
def test_zero_one_booleans(key, path, value):
    new, _ = migrate({"cnn_name": "mobilenet_mobileunet", key: value})
    node = new
    for part in path:
        node = node[part]
    assert node is bool(value)


# ---- model parameters resolved against the architecture ---------------------------------------
def test_mobilenet_drops_keys_the_original_ignored():
    new, rows = migrate(template_config())
    for key in ("model_kernel_size", "model_kernel_initializer", "model_padding"):
        (row,) = rows_for(rows, key)
        assert row.new_key is None and "MobileNet" in row.note, key
    assert "kernel_size" not in new["model"] and "kernel_initializer" not in new["model"]


def test_unet_config_migrates_and_validates():
    data = unet_config()
    new, rows = migrate(data)
    assert new["model"] == {"name": "categorical_unet_fc_dil", "n_filters": 8, "pools": 3,
                            "kernel_size": 3, "dilation_rate": 2, "dropout": 0.1,
                            "activation": "relu", "kernel_initializer": "he_uniform",
                            "batch_norm": True}
    assert "not used by categorical_unet_fc_dil" in rows_for(rows, "model_mobile_alpha")[0].note
    assert new["loss"] == {"name": "weighted_bce"}
    assert new["datagen"]["target"] == {"name": "weight_map"}
    assert new["datagen"]["sampling"] == {"name": "uniform"}  # pdf 1
    assert new["datagen"]["normalization"] == {"name": "mean"}
    assert new["seed"] == 7 and new["inference"]["halo"] == 20
    assert new["inference"]["weights"] == "/abs/weights_best.hdf5"
    assert new["train"]["reduce_lr"] == {"patience": 10, "enabled": True}
    assert rows_for(rows, "model_category_weights")[0].new_key is None
    loaded = validate(data)
    assert loaded.config.model.params.batch_norm is True
    assert loaded.config.datagen.patches_per_image == 2


@pytest.mark.parametrize("arch", ["unet", "categorical_unet", "categorical_unet_transpose",
                                  "categorical_unet_fc", "unet_lstm", "mobilenet_mobileunet"])
def test_model_params_only_those_the_architecture_takes(arch):
    tables = get_registry().tables["architectures"]
    if arch not in tables:
        pytest.skip("architecture plugins not registered")
    fields = set(attrs.fields_dict(tables[arch][0].spec.params))
    data = {**unet_config(cnn_name=arch), **{k: v for k, v in template_config().items()
                                             if k.startswith("model_")}}
    new, rows = migrate(data)
    written = set(new["model"]) - {"name"}
    assert written and written <= fields
    for row in rows:
        if row.old_key.startswith("model_") and row.new_key is None:
            assert row.note, row


def test_undocumented_model_passthroughs():
    new, rows = migrate({"cnn_name": "unet", "model_tips": 1, "model_upsampling": "transpose",
                         "model_foo": 3, "foo": 1})
    assert new["model"]["tips"] is True and new["model"]["upsampling"] == "transpose"
    assert "unknown key, ignored" in rows_for(rows, "model_foo")[0].note
    assert rows_for(rows, "foo")[0].note == "unknown key, ignored"
    assert "foo" not in new["model"]


def test_static_fallback_when_the_architecture_is_not_registered():
    from dlsuite_plugins.losses import plugin as losses_plugin

    registry = Registry.from_plugins([losses_plugin], ["losses"])
    new, rows = migrate(template_config(), registry)
    assert new["model"]["n_filters"] == 16 and new["model"]["time_windows"] == 5
    assert "not registered" in rows_for(rows, "cnn_name")[0].note
    # no augmentation plugins in that registry: augmentation left empty with a note
    (aug,) = rows_for(rows, "(augmentation)")
    assert aug.new_value == [] and "no augmentation plugins registered" in aug.note


# ---- losses and targets ------------------------------------------------------------------------
@pytest.mark.parametrize("value, loss, target", [
    ("sparse_cce", "sparse_cce", None),
    ("categorical_crossentropy", "categorical_cce", None),
    ("categorical_cce", "categorical_cce", None),
    ("weighted_bce_dice", "weighted_bce_dice", None),
    ("weighted_bce", "weighted_bce", "weight_map"),
    ("multiple_output", "multiple_output", None),
    ("something", "categorical_cce", None),
])
def test_unet_lossfunction(value, loss, target):
    new, rows = migrate({"cnn_name": "categorical_unet", "model_lossfunction": value,
                         "model_category_weights": [1, 10]})
    assert new["loss"]["name"] == loss
    assert new.get("datagen", {}).get("target", {}).get("name") == target
    if loss == "multiple_output":
        assert new["loss"]["category_weights"] == [1, 10]
    else:
        assert "category_weights" not in new["loss"]


@pytest.mark.parametrize("value", ["weighted_bce", "categorical_crossentropy", "sparse_cce"])
def test_mobilenets_always_used_sparse_cce(value):
    new, rows = migrate({"cnn_name": "mobilenet_mobileunet", "model_lossfunction": value})
    assert new["loss"] == {"name": "sparse_cce"}
    assert "ignored" in rows_for(rows, "model_lossfunction")[0].note


@pytest.mark.parametrize("cnn_name, target", [
    ("categorical_unet", "contours"), ("mobilenet_mobileunet", "contours"),
    ("mobilenet_mobileunet_lstm", "binary"),  # the original ignored datagen_type for LSTMs
])
def test_contours_datagen_type(cnn_name, target):
    new, rows = migrate({"cnn_name": cnn_name, "datagen_type": "contours_segmentation",
                         "model_output_ch": 3})
    assert new["datagen"]["target"] == {"name": target}
    differs = "differs" in rows_for(rows, "model_output_ch")[0].note
    assert differs is (target != "contours")


@pytest.mark.parametrize("value, name", [("PERCENTILE", "percentile"), ("MEAN", "mean"),
                                         ("MEDIAN", "median"), ("percentile", "percentile"),
                                         ("HE", "percentile")])
def test_normalization(value, name):
    new, rows = migrate({"cnn_name": "unet", "normalization": value})
    assert new["datagen"]["normalization"]["name"] == name
    if value == "HE":
        assert "not supported" in rows_for(rows, "normalization")[0].note


def test_readme_normalization_name_used_only_when_the_code_key_is_missing():
    new, rows = migrate({"cnn_name": "unet", "newinfer_normalization": "MEDIAN"})
    assert new["datagen"]["normalization"]["name"] == "median"
    new, rows = migrate({"cnn_name": "unet", "newinfer_normalization": "MEDIAN",
                         "normalization": "MEAN"})
    assert new["datagen"]["normalization"]["name"] == "mean"
    assert rows_for(rows, "newinfer_normalization")[0].new_key is None


# ---- training, inference, seeds ----------------------------------------------------------------
@pytest.mark.parametrize("patience, epochs, enabled", [(10, 100, True), (2001, 2000, False),
                                                       (100, 100, False)])
def test_reduce_lr_enabled_only_when_patience_below_epochs(patience, epochs, enabled):
    new, _ = migrate({"cnn_name": "unet", "callbacks_patience": patience,
                      "train_max_epochs": epochs})
    assert new["train"]["reduce_lr"] == {"patience": patience, "enabled": enabled}


def test_save_freq_batches_become_epochs_counted_from_trainpath(tmp_path):
    inputs = tmp_path / "train" / "inputs"
    inputs.mkdir(parents=True)
    for i in range(10):
        tifffile.imwrite(inputs / f"raw_{i:03d}.tif", np.zeros((8, 8), np.uint16))
    data = {"cnn_name": "unet", "TRAINPATH": str(tmp_path / "train"), "datagen_batch_size": 2,
            "callbacks_save_best_only": 0, "callbacks_save_freq": 100}
    new, rows = migrate(data)
    assert new["train"]["checkpoint"] == {"save_best": False, "every_n_epochs": 20}
    assert "5 steps per epoch" in rows_for(rows, "callbacks_save_freq")[0].note
    data["TRAINPATH"] = str(tmp_path / "missing")
    new, rows = migrate(data)
    assert new["train"]["checkpoint"]["every_n_epochs"] == 100
    assert "counted batches" in rows_for(rows, "callbacks_save_freq")[0].note


def test_tensorboard_frequency_sets_both_like_the_original():
    new, rows = migrate({"cnn_name": "unet", "callbacks_tb_update_freq": 100})
    assert new["train"]["tensorboard"] == {"update_freq": 100, "histogram_freq": 100}
    assert len(rows_for(rows, "callbacks_tb_update_freq")) == 2


@pytest.mark.parametrize("padding, halo", [([115, 115], 115), ([16, 20], 20), (64, 64)])
def test_newinfer_padding_becomes_one_halo(padding, halo):
    new, _ = migrate({"cnn_name": "unet", "newinfer_padding": padding})
    assert new["inference"]["halo"] == halo


@pytest.mark.parametrize("out, weights, expected", [
    ("/runs/a", "w_best.hdf5", os.path.join("/runs/a", "checkpoints", "w_best.hdf5")),
    ("/runs/a", "/elsewhere/w.hdf5", "/elsewhere/w.hdf5"),
    (None, "w.hdf5", os.path.join("checkpoints", "w.hdf5")),
])
def test_weights_joined_with_outputpath_checkpoints(out, weights, expected):
    data = {"cnn_name": "unet", "newinfer_epoch_process_test": weights}
    if out:
        data["OUTPUTPATH"] = out
    new, _ = migrate(data)
    assert new["inference"]["weights"] == expected


def test_newinfer_data_is_the_test_set_only_without_testpath():
    new, rows = migrate({"cnn_name": "unet", "newinfer_data": "/new"})
    assert new["data"]["test"] == "/new"
    assert "no inputs/" in rows_for(rows, "newinfer_data")[0].note
    new, rows = migrate({"cnn_name": "unet", "newinfer_data": "/new", "TESTPATH": "/test"})
    assert new["data"]["test"] == "/test"
    assert rows_for(rows, "newinfer_data")[0].new_key is None


@pytest.mark.parametrize("model_seed, train_seed, seed, note", [
    (1, 1, 1, False), (1, 2, 1, True), ("None", 3, 3, True), ("None", "None", None, False),
])
def test_seeds(model_seed, train_seed, seed, note):
    new, rows = migrate({"cnn_name": "unet", "model_seed_initializer": model_seed,
                         "train_seed_initializer": train_seed})
    assert new["seed"] == seed if seed is not None else new["seed"] is None
    assert ("differs" in rows_for(rows, "train_seed_initializer")[0].note) is note


# ---- augmentation ------------------------------------------------------------------------------
def test_legacy_augmentation_uses_only_registered_plugins():
    registry = get_registry()
    new, rows = migrate(template_config())
    (row,) = rows_for(rows, "(augmentation)")
    assert "legacy augmentation" in row.note
    names = [a["name"] for a in new["datagen"]["augmentation"]]
    assert all(n in registry.tables["augmentations"] for n in names)
    if "affine" in registry.tables["augmentations"]:
        affine = new["datagen"]["augmentation"][names.index("affine")]
        assert (affine["rotation"], affine["shift"], affine["zoom"]) == (30.0, 0.2, 0.2)
    if "flip" in registry.tables["augmentations"]:
        flip = new["datagen"]["augmentation"][names.index("flip")]
        assert flip["horizontal"] is True and flip.get("vertical") is False
    if not registry.tables["augmentations"]:
        assert names == [] and "no augmentation plugins" in row.note


# ---- presentation and output -------------------------------------------------------------------
def test_format_migration_is_a_rich_table_with_literal_brackets():
    _, rows = migrate(template_config())
    table = format_migration(rows)
    assert isinstance(table, Table)
    assert [c.header for c in table.columns] == ["old key", "value", "new key", "note"]
    assert table.row_count == len(rows)
    console = Console(record=True, width=240)
    console.print(table)
    text = console.export_text()
    assert "[h, w] per side" in text  # markup in notes is escaped, not swallowed
    assert "datagen_sigma" in text and "obsolete" in text


def test_migration_to_text_one_line_per_row():
    _, rows = migrate(template_config())
    text = migration_to_text(rows)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == len(rows) + 2
    assert [c.strip() for c in lines[0].split(" | ")] == ["old key", "value", "new key", "note"]
    assert any(line.startswith("datagen_sigma") and "obsolete" in line for line in lines)
    assert any("[115, 115] -> 115" in line for line in lines)


def test_write_migrated_round_trips_and_validates(tmp_path):
    data = template_config()
    new, rows = migrate(data)
    path = write_migrated(new, tmp_path / "sub" / "new.json")
    assert json.loads(path.read_text()) == new
    assert sorted(p.name for p in path.parent.iterdir()) == ["new.json"]  # no temp left
    reread = json.loads(path.read_text())
    assert not is_legacy(reread)
    legacy_loaded = validate(data)
    new_loaded = parse_config(reread, check_paths=False)
    assert not new_loaded.is_legacy
    assert new_loaded.config == legacy_loaded.config


def test_write_migrated_names_the_file_on_failure(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DlsuiteInputError, match="file"):
        write_migrated({"schema_version": 1}, blocker / "new.json")


def test_load_config_migrates_a_legacy_file(tmp_path):
    path = tmp_path / "config_template.json"
    data = template_config(OUTPUTPATH="results")
    path.write_text(json.dumps(data))
    validate(data)  # skip when plugins are missing
    loaded = load_config(path, check_paths=False)
    assert loaded.is_legacy and loaded.source == str(path)
    assert loaded.config.output_dir == str(tmp_path / "results")
    assert loaded.config.inference.weights == str(
        tmp_path / "results" / "checkpoints" / "mobilenet_mobileunet_lstm_01950.hdf5")


def test_migrate_rejects_non_objects():
    with pytest.raises(DlsuiteInputError, match="JSON object"):
        migrate(["cnn_name"])


def test_migrate_file(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps(unet_config()))
    new, rows = migrate_file(old)
    assert (new, rows) == migrate(unet_config())
    current = tmp_path / "new.json"
    write_migrated(new, current)
    with pytest.raises(DlsuiteInputError, match="not a legacy flat config"):
        migrate_file(current)
    with pytest.raises(DlsuiteInputError, match="not found"):
        migrate_file(tmp_path / "absent.json")


def test_relative_paths_are_flagged():
    new, rows = migrate(unet_config())  # relative data paths, absolute weights
    assert "config file's folder" in row_to(rows, "TRAINPATH", "$.data.train").note
    assert "config file's folder" in row_to(rows, "OUTPUTPATH", "$.output_dir").note
    assert "config file's folder" not in row_to(
        rows, "newinfer_epoch_process_test", "$.inference.weights").note
    _, rows = migrate(template_config())
    assert not any("config file's folder" in r.note for r in rows)


def test_result_shares_no_mutable_value_with_input_or_rows():
    data = unet_config(model_lossfunction="multiple_output")
    new, rows = migrate(data)
    new["datagen"]["patch_size"].append(1)
    new["loss"]["category_weights"].append(5)
    assert data["datagen_dim_size"] == [64, 64] and data["model_category_weights"] == [1, 10]
    assert row_to(rows, "model_lossfunction", "$.loss").new_value == {"name": "multiple_output"}
    assert row_to(rows, "datagen_dim_size", "$.datagen.patch_size").new_value == [64, 64]


def test_cli_config_migrate_writes_the_new_form(tmp_path, cli):
    old = tmp_path / "config_template.json"
    old.write_text(json.dumps(template_config()))
    validate(template_config())  # skip when plugins are missing
    result = cli("config", "migrate", str(old), "-o", str(tmp_path / "new.json"),
                 env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "datagen_sigma" in result.stderr and "$.model.n_filters" in result.stderr
    new = json.loads((tmp_path / "new.json").read_text())
    assert new == migrate(template_config())[0]
    assert parse_config(new, check_paths=False).config == validate(template_config()).config
