"""A run copied (or moved) elsewhere and given by its own ``config.json`` is that copy, for
``run`` and ``train`` as for ``test``: ``--overwrite`` used to wipe the *original* run (the
place the record names as output_dir) and ``--resume`` to continue it there. Real trainings
through the CLI; the original's files are compared byte for byte."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from dlsuite.config.loader import load_config


def _digest(folder: Path) -> dict[str, str]:
    """Every file of a run but W&B's and the lock, by content."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "wandb" not in p.parts and p.name != ".dlsuite-lock"}


def _epochs(run: Path) -> int:
    with (run / "history.csv").open() as fh:
        return len(list(csv.DictReader(fh)))


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    from dlsuite.data.example import write_example_frames

    root = tmp_path_factory.mktemp("copies")
    data = write_example_frames(root / "data", n=2, size=32, seed=1)["frames"]
    config = root / "config.json"
    config.write_text(json.dumps({
        "name": "copies", "output_dir": str(root / "original"), "seed": 1,
        "data": {"train": str(data), "val": str(data)},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 1},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "evaluation": {"tune_postprocess": False}, "wandb": {"mode": "disabled"}}))
    proc = run_cli("train", str(config), "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "original"


def _copy(original: Path, where: Path) -> Path:
    copy = where / "copy"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns(".dlsuite-lock"))
    return copy


def test_a_runs_own_config_names_the_folder_it_is_in(original, tmp_path):
    copy = _copy(original, tmp_path)
    assert load_config(copy / "config.json").config.output_dir == str(copy.resolve())
    assert load_config(original / "config.json").config.output_dir == str(original)
    # --set output_dir still chooses another place
    other = load_config(copy / "config.json", overrides={"output_dir": str(tmp_path / "new")})
    assert other.config.output_dir == str(tmp_path / "new")
    # the same file outside a run folder is an ordinary config: its output_dir as written
    plain = tmp_path / "elsewhere" / "config.json"
    plain.parent.mkdir()
    shutil.copy(copy / "config.json", plain)
    assert load_config(plain).config.output_dir == str(original)


@pytest.mark.slow
def test_overwrite_and_resume_of_a_copy_leave_the_original_alone(original, tmp_path):
    before = _digest(original)
    copy = _copy(original, tmp_path)
    # neither flag: refused naming the copy, not the original
    proc = run_cli("train", str(copy / "config.json"), "--quiet")
    assert proc.returncode == 2 and f"{copy} already holds a run" in proc.stderr, proc.stderr
    # --resume continues the copy
    proc = run_cli("train", str(copy / "config.json"), "--resume", "--quiet",
                   "--set", "train.epochs=2", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (_epochs(copy), _epochs(original)) == (2, 1)
    # --overwrite replaces the copy (its record now says 2 epochs); the record then names
    # where the copy is
    proc = run_cli("train", str(copy / "config.json"), "--overwrite", "--quiet",
                   "--set", "train.epochs=1", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _epochs(copy) == 1
    assert json.loads((copy / "config.json").read_text())["config"]["output_dir"] == str(copy)
    assert _digest(original) == before
