"""Bad input to ``dlsuite run`` / ``dlsuite train`` (issue "run end to end", point 10):
missing data paths, an unknown architecture, a patch size the model cannot take, too little
data for one batch, a halo leaving no core for a static-size model. Each gives one clear
message naming the key (and file), exit 2, no traceback, and leaves no run directory behind:
the checks (:mod:`dlsuite.preflight`) run before anything is created or TensorFlow is
imported."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dlsuite.config import parse_config
from dlsuite.errors import ConfigError, DlsuiteInputError
from dlsuite.preflight import preflight, preflight_problems
from dlsuite.registry import get_registry


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    """Two labelled 32x32 frames."""
    from dlsuite.data.example import write_example_frames

    return write_example_frames(tmp_path_factory.mktemp("data"), n=2, size=32, seed=1)["frames"]


def _config(frames: Path, out: Path, **sections) -> dict:
    cfg = {"name": "bad", "output_dir": str(out), "seed": 1,
           "data": {"train": str(frames), "val": str(frames), "test": str(frames)},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 1},
           "train": {"epochs": 1}, "inference": {"tile_size": None},
           "wandb": {"mode": "disabled"}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict) and key != "model":
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def _cli(config_path: Path, command: str = "run") -> subprocess.CompletedProcess:
    from conftest import run_cli

    return run_cli(command, str(config_path), "--quiet", env={"WANDB_MODE": "disabled"},
                   timeout=120)


# bad input -> (config sections, JSON path and words the message must hold)
CASES = {
    "missing_train_folder": (
        lambda f: {"data": {"train": str(f.parent / "nowhere"), "val": None, "test": None}},
        ["$.data.train", "nowhere", "not found"]),
    "unknown_architecture": (
        lambda f: {"model": {"name": "unett"}},
        ["$.model", "unknown architecture 'unett'", "did you mean 'unet'"]),
    "patch_not_divisible_by_2_pow_pools": (
        lambda f: {"model": {"name": "unet", "n_filters": 4, "pools": 3},
                   "datagen": {"patch_size": [36, 36]}},
        ["$.datagen.patch_size", "[36, 36]", "divisible by 8", "[32, 32]"]),
    "batch_larger_than_training_set": (
        lambda f: {"datagen": {"batch_size": 3}},
        ["$.datagen.batch_size", "only 2 labelled images", "at most 2"]),
    "patch_over_twice_the_frames": (  # used to pad 32 px frames to 128 px, far into memory
        lambda f: {"datagen": {"patch_size": [128, 128]}},
        ["$.datagen.patch_size", "[128, 128] is over 2 times the largest training frame "
         "(32 x 32 in", "mostly mirrored padding"]),
    "halo_leaves_no_core_for_static_model": (
        lambda f: {"model": {"name": "mobilenet_mobileunet_lstm", "n_filters": 4, "pools": 3,
                             "time_windows": 2},
                   "data": {"train": None, "val": None, "test": None},
                   "datagen": {"patch_size": [32, 32]}, "inference": {"halo": "auto"}},
        ["$.inference.halo", "leaves no core", "at most 8"]),
}


def _write(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize("case", [c for c in CASES if c != "halo_leaves_no_core_for_static_model"])
def test_bad_input_exits_2_with_one_message_and_no_run_directory(case, frames, tmp_path):
    make, needles = CASES[case]
    out = tmp_path / "run"
    path = _write(tmp_path, _config(frames, out, **make(frames)))
    proc = _cli(path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    # one message: one "error:" line, one problem listed
    assert proc.stderr.startswith("error:") and proc.stderr.count("error:") == 1, proc.stderr
    assert "1 config error(s)" in proc.stderr
    assert not out.exists()  # no run directory, no config.json


def test_halo_without_core_for_a_static_size_model_is_refused_before_training(frames, tmp_path):
    make, needles = CASES["halo_leaves_no_core_for_static_model"]
    cfg = _config(frames, tmp_path / "run", **make(frames))
    cfg["data"] = {"train": str(frames), "val": None, "test": str(frames)}
    proc = _cli(_write(tmp_path, cfg))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)
    assert not (tmp_path / "run").exists()
    # the same model with a halo leaving a core, or without a test set, passes the check
    ok = copy.deepcopy(cfg)
    ok["inference"]["halo"] = 8
    assert preflight_problems(parse_config(ok).config, get_registry()) == []
    ok["inference"]["halo"], ok["data"]["test"] = "auto", None
    assert preflight_problems(parse_config(ok).config, get_registry()) == []


def test_a_patch_up_to_twice_the_frames_passes_and_data_scale_counts(frames, tmp_path):
    """Frames smaller than the patch are padded (up to twice their side); ``data.scale``
    resizes the frames before patches are cut, so it counts in the limit."""
    registry = get_registry()

    def problems(patch: int, scale: float = 1.0) -> list[str]:
        cfg = _config(frames, tmp_path / "run", datagen={"patch_size": [patch, patch]},
                      data={"train": str(frames), "val": str(frames), "test": None,
                            "scale": scale})
        config = parse_config(cfg, check_paths=False).config
        return [p for p, _ in preflight_problems(config, registry)]

    assert problems(64) == []
    assert problems(32, scale=0.5) == []  # 32 px frames at scale 0.5 are 16 px
    assert problems(64, scale=0.5) == ["$.datagen.patch_size"]
    assert problems(68) == ["$.datagen.patch_size"]


def test_api_refuses_before_creating_the_run_directory(frames, tmp_path):
    """The API (configs parsed without path checks) stops at the same checks, all problems
    in one ConfigError; what needs no data is refused when the config is parsed."""
    from dlsuite import pipeline

    out = tmp_path / "run"
    cfg = _config(frames, out, datagen={"patch_size": [36, 36], "batch_size": 5},
                  model={"name": "unet", "n_filters": 4, "pools": 3})
    cfg["data"]["val"] = str(tmp_path / "missing-val")
    with pytest.raises(ConfigError) as info:
        parse_config(cfg, check_paths=False)
    assert [p for p, _ in info.value.problems] == ["$.datagen.patch_size"]
    cfg["datagen"]["patch_size"] = [32, 32]
    loaded = parse_config(cfg, check_paths=False)
    for step in (pipeline.train, pipeline.run):
        with pytest.raises(ConfigError) as info:
            step(loaded, quiet=True)
        paths = [p for p, _ in info.value.problems]
        assert paths == ["$.data.val", "$.datagen.batch_size"], paths
        assert isinstance(info.value, DlsuiteInputError)
        assert not out.exists()


def test_valid_config_passes_and_imports_no_tensorflow(frames, tmp_path):
    code = (
        "import sys, json\n"
        "from dlsuite.config import parse_config\n"
        "from dlsuite.preflight import preflight\n"
        "from dlsuite.registry import get_registry\n"
        f"preflight(parse_config(json.loads({json.dumps(json.dumps(_config(frames, tmp_path / 'r')))})),"
        " get_registry())\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_batch_equal_to_the_number_of_samples_is_enough(frames, tmp_path):
    loaded = parse_config(_config(frames, tmp_path / "r", datagen={"batch_size": 2}))
    assert preflight(loaded, get_registry()) is None
