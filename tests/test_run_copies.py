"""A run copied (or moved) elsewhere and given by its own ``config.json`` is that copy, for
``run`` and ``train`` as for ``test``: ``--overwrite`` used to wipe the *original* run (the
place the record names as output_dir) and ``--resume`` to continue it there, in the
original's W&B run (syncing both would have merged them). Real trainings through the CLI,
real offline W&B runs; the original's files are compared byte for byte."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli, tiny_training_config
from dlsuite.checkpoints import original_sharing_wandb_run
from dlsuite.config.loader import load_config
from dlsuite.rundir import RunDir


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
    config = tiny_training_config(tmp_path_factory.mktemp("copies"), wandb="offline")
    proc = run_cli("train", str(config), "--quiet", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return config.parent / "run"


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


def _wandb_id(run: Path) -> str:
    return json.loads((run / "checkpoints" / "resume" / "state.json").read_text())["wandb_run_id"]


@pytest.mark.slow
def test_a_resumed_copy_gets_its_own_wandb_run_a_moved_run_keeps_its_own(original, tmp_path):
    first = _wandb_id(original)
    copy = _copy(original, tmp_path)
    assert original_sharing_wandb_run(RunDir(copy), first) == original
    proc = run_cli("train", str(copy / "config.json"), "--resume",
                   "--set", "train.epochs=2", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"this run is a copy of the run in {original}: it continues in a new W&B run" \
        in proc.stderr
    second = _wandb_id(copy)
    assert second and second != first and _wandb_id(original) == first
    assert list((copy / "wandb").glob(f"offline-run-*-{second}"))
    # resumed again, the copy continues its own W&B run
    assert original_sharing_wandb_run(RunDir(copy), second) is None
    # a run moved here (nothing left where it was first written) keeps its W&B run
    moved = tmp_path / "moved"
    shutil.copytree(original, moved, ignore=shutil.ignore_patterns(".dlsuite-lock"))
    record = json.loads((moved / "config.json").read_text())
    record["config"]["output_dir"] = str(tmp_path / "first-place")
    (moved / "config.json").write_text(json.dumps(record))
    assert original_sharing_wandb_run(RunDir(moved), first) is None
