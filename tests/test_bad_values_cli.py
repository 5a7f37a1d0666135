"""Bad config values through the real CLI (issue 13): `dlsuite config validate` and `dlsuite run`
refuse each one with its JSON path, exit 2, without importing TensorFlow and, for `run`,
without creating the run directory; a legacy config with five value mistakes gets all five
named (with their legacy keys) in well under a second."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROBE = ("import runpy, sys\n"
         "sys.argv = ['dlsuite'] + sys.argv[1:]\n"
         "try:\n"
         "    runpy.run_module('dlsuite.cli', run_name='__main__')\n"
         "finally:\n"
         "    print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'TF-NOT-IMPORTED',"
         " file=sys.stderr)\n")


def probe(tmp_path: Path, *args: str, timeout: float = 120):
    """Run the CLI in a subprocess that reports whether TensorFlow got imported; returns
    (process, wall seconds, child CPU seconds)."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "WANDB_MODE": "disabled"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    from dlsuite.data.example import write_example_frames

    return write_example_frames(tmp_path_factory.mktemp("data"), n=2, size=32, seed=1)["frames"]


def _config(frames: Path, out: Path) -> dict:
    return {"name": "bad", "output_dir": str(out), "seed": 1,
            "data": {"train": str(frames), "val": str(frames), "test": str(frames)},
            "model": {"name": "unet", "n_filters": 4, "pools": 2},
            "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 1},
            "train": {"epochs": 1}, "inference": {"tile_size": None},
            "wandb": {"mode": "disabled"}}


# case -> (changes to the config, JSON path, words of the message)
CASES = {
    "learning_rate_-1": ({"optimizer": {"learning_rate": -1}}, "$.optimizer.learning_rate",
                         "must be > 0, got -1"),
    "learning_rate_-0.01": ({"optimizer": {"learning_rate": -0.01}},
                            "$.optimizer.learning_rate", "must be > 0, got -0.01"),
    "learning_rate_NaN": ({"optimizer": {"learning_rate": float("nan")}},
                          "$.optimizer.learning_rate", "expected a finite number, got NaN"),
    "batch_size_0": ({"datagen": {"batch_size": 0}}, "$.datagen.batch_size",
                     "must be > 0, got 0"),
    "batch_size_above_samples": ({"datagen": {"batch_size": 3}}, "$.datagen.batch_size",
                                 "only 2 labelled images"),
    "epochs_-5": ({"train": {"epochs": -5}}, "$.train.epochs", "must be > 0, got -5"),
    "n_filters_-3": ({"model": {"n_filters": -3}}, "$.model.n_filters", "must be > 0, got -3"),
    "pools_0": ({"model": {"pools": 0}}, "$.model.pools", "must be in [1, 8], got 0"),
    "pools_12": ({"model": {"pools": 12}}, "$.model.pools", "must be in [1, 8], got 12"),
    "pools_9": ({"model": {"pools": 9}}, "$.model.pools", "must be in [1, 8], got 9"),
    "pools_6_in_32px_patch": ({"model": {"pools": 6}}, "$.datagen.patch_size",
                              "divisible by 64"),
    "dropout_1.7": ({"model": {"dropout": 1.7}}, "$.model.dropout",
                    "must be in [0, 1), got 1.7"),
    "percentiles_99_1": ({"datagen": {"normalization": {"name": "percentile", "low": 99,
                                                        "high": 1}}},
                         "$.datagen.normalization.high", "must be greater than low (99), got 1"),
    "patch_not_divisible": ({"model": {"pools": 3}, "datagen": {"patch_size": [36, 36]}},
                            "$.datagen.patch_size", "divisible by 8"),
    # trained, then a MemoryError predicting the test set
    "halo_100000": ({"inference": {"halo": 100000}}, "$.inference.halo",
                    "must be in [0, 4096], got 100000"),
    # trained, then "checkpoint not found"
    "weights_missing": ({"inference": {"weights": "/nonexistent/model.keras"}},
                        "$.inference.weights", "/nonexistent/model.keras: file not found"),
    # trained to the end, warning that best.keras was not kept
    "monitor_misspelt": ({"train": {"monitor": "val_jacard"}}, "$.train.monitor",
                         "'val_jacard' is not a value training logs; choose one of val_loss"),
    "monitor_of_no_metric": ({"metrics": [], "train": {"monitor": "val_dice"}},
                             "$.train.monitor", "choose one of val_loss, loss (the metrics"),
}


def _merge(cfg: dict, changes: dict) -> dict:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = _merge(dict(cfg[key]), value)
        else:
            cfg[key] = value
    return cfg


@pytest.mark.parametrize("case", list(CASES))
def test_bad_value_is_refused_by_validate_and_run_before_anything(case, frames, tmp_path):
    changes, path, words = CASES[case]
    out = tmp_path / "run"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_merge(_config(frames, out), changes)))  # NaN written as NaN
    for args in (["config", "validate", str(config)], ["run", str(config), "--quiet"]):
        proc, wall, _ = probe(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert f"{path}: " in proc.stderr and words in proc.stderr, (args, proc.stderr)
        assert "1 config error(s)" in proc.stderr and "Traceback" not in proc.stderr
        assert "TF-NOT-IMPORTED" in proc.stderr, proc.stderr
        assert wall < 60, wall  # pools 12 used to hang for more than 10 minutes
        assert not out.exists()  # run: no run directory, no config.json


def test_output_dir_that_is_a_file_is_refused_before_the_pixels_and_left_alone(frames,
                                                                             tmp_path):
    """A file where the run would go: config validate and run say so naming $.output_dir,
    before TensorFlow and the pixel check; the file keeps its bytes."""
    out = tmp_path / "notes.txt"
    out.write_text("my notes")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(frames, out)))
    for args in (["config", "validate", str(config)],
                 ["run", str(config), "--overwrite", "--verbose"]):
        proc, _, _ = probe(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert f"$.output_dir: {out}: exists and is not a folder" in proc.stderr, proc.stderr
        assert "TF-NOT-IMPORTED" in proc.stderr and "pixels of" not in proc.stderr
    assert out.read_text() == "my notes"


@pytest.mark.parametrize("inside", ["", "inputs/run"])
def test_output_dir_in_a_data_folder_is_refused_naming_it(frames, tmp_path, inside):
    """The run's checkpoints and predictions never land among the data: output_dir that is
    data.train, or a new folder inside its inputs/, is a config error; nothing is created."""
    out = frames / inside if inside else frames
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(frames, out)))
    before = sorted(p.relative_to(frames) for p in frames.rglob("*"))
    for args in (["config", "validate", str(config)], ["run", str(config), "--overwrite"]):
        proc, _, _ = probe(tmp_path, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        text = " ".join(proc.stderr.split())
        assert f"$.output_dir: {out}: is the data folder data.train ({frames})" in text, text
        assert "TF-NOT-IMPORTED" in proc.stderr
    assert sorted(p.relative_to(frames) for p in frames.rglob("*")) == before


def test_an_output_dir_holding_a_run_is_refused_before_the_pixels(frames, tmp_path):
    """Without --resume or --overwrite, an output_dir that holds a run is said at once,
    not after every pixel of the data was read; so are --resume without a resumable state
    and both flags together."""
    from dlsuite import folder_lock
    from dlsuite.rundir import RunDir, prepare_run_dir

    run = tmp_path / "run"
    folder_lock.release(prepare_run_dir(run).root)  # a run: its marker and a file it wrote
    (run / "history.csv").write_text("epoch\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(frames, run)))
    # a run killed before its first epoch ended: --resume cannot help, and is not advised
    # (each refusal used to send the user to the other)
    stopped = "it stopped before its first epoch ended, with nothing to resume: pass " \
              "--overwrite to start it again, or choose another output_dir"
    for flags, words in (([], f"{run} already holds a run; {stopped}"),
                         (["--resume"], f"{run}: nothing to resume (no checkpoints/resume/"
                                        "state.json): the run stopped before its first epoch "
                                        "ended; pass --overwrite to start it again"),
                         (["--resume", "--overwrite"], "exclude each other")):
        proc, _, _ = probe(tmp_path, "run", str(config), *flags)
        assert proc.returncode == 2, (flags, proc.stderr)
        assert words in " ".join(proc.stderr.split()), proc.stderr
        assert "pixels of" not in proc.stderr and "TF-NOT-IMPORTED" in proc.stderr
    state = RunDir(run).resume_state  # a run with a saved state: either flag
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{}")
    proc, _, _ = probe(tmp_path, "run", str(config))
    assert proc.returncode == 2 and f"{run} already holds a run; pass --resume to continue " \
        "it or --overwrite to replace it" in " ".join(proc.stderr.split()), proc.stderr
    assert (run / "history.csv").read_text() == "epoch\n"


def test_pools_12_model_summary_is_an_error_not_a_hang(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"name": "unet", "pools": 12}}))
    proc, wall, _ = probe(tmp_path, "model", "summary", str(config))
    assert proc.returncode == 2 and "$.model.pools: must be in [1, 8], got 12" in proc.stderr
    assert "TF-NOT-IMPORTED" in proc.stderr and wall < 60


LEGACY_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "legacy" / "config.json"


def test_legacy_config_with_five_value_mistakes_names_all_five_fast(tmp_path):
    data = json.loads(LEGACY_EXAMPLE.read_text())
    for key in ("TRAINPATH", "VALPATH", "TESTPATH"):
        data[key] = "None"
    data.update({"model_lr": -0.01, "datagen_batch_size": 0, "train_max_epochs": -5,
                 "model_dropout": 1.7, "normalization": "PERCENTIL"})
    config = tmp_path / "legacy.json"
    config.write_text(json.dumps(data))
    proc, wall, cpu = probe(tmp_path, "config", "validate", str(config))
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "5 config error(s)" in err, err
    for needle in (
            "$.optimizer.learning_rate: must be > 0, got -0.01 (legacy key model_lr)",
            "$.datagen.batch_size: must be > 0, got 0 (legacy key datagen_batch_size)",
            "$.train.epochs: must be > 0, got -5 (legacy key train_max_epochs)",
            "$.model.dropout: must be in [0, 1), got 1.7 (legacy key model_dropout)",
            "$.datagen.normalization: unknown normalization 'PERCENTIL' (the original crashed "
            "on it); did you mean 'PERCENTILE'?"):
        assert needle in err, (needle, err)
    assert "TF-NOT-IMPORTED" in err
    # a guard against heavy work (a model built, data read), not a speed measurement: the
    # checks take well under a second of CPU
    assert cpu < 10, (cpu, wall)


def test_legacy_unknown_normalization_is_an_error_not_a_silent_default():
    from dlsuite.config import parse_config
    from dlsuite.config.legacy import migrate
    from dlsuite.errors import ConfigError

    data = json.loads(LEGACY_EXAMPLE.read_text())
    data.update({"TRAINPATH": "None", "VALPATH": "None", "TESTPATH": "None",
                 "normalization": "MEDAIN"})
    new, rows = migrate(data)
    (row,) = [r for r in rows if r.old_key == "normalization"]
    assert "did you mean 'MEDIAN'?" in row.error
    assert new["datagen"]["normalization"] == {"name": "MEDAIN"}  # carried, not replaced
    with pytest.raises(ConfigError) as info:
        parse_config(data, check_paths=False)
    assert dict(info.value.problems)["$.datagen.normalization"].endswith(
        "(legacy key normalization)")
    with pytest.raises(ConfigError):  # the migrated config alone is refused as well
        parse_config(new, check_paths=False)


@pytest.mark.parametrize("args, words", [
    # these were unexpected errors, exit 1
    (("example-data", "frames", "OUT", "--seed", "-1"), "'--seed': -1 is not in the range"),
    (("new-plugin", "p" + "a" * 300, "-d", "OUT"), "301 characters; use at most 64"),
    (("config", "validate", "DEEP"), "DEEP: not a config: lists or objects nested too deeply"),
])
def test_more_bad_values_exit_2_with_one_line(tmp_path, args, words):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    out = tmp_path / "out"
    swap = {"OUT": str(out), "DEEP": str(deep)}
    args = tuple(swap.get(a, a) for a in args)
    words = words.replace("DEEP", str(deep))
    proc, _, _ = probe(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert words in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert not out.exists()
