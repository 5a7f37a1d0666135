"""One dlsuite process at a time in a run directory (:mod:`dlsuite.folder_lock`).

A second ``dlsuite train --overwrite`` (or ``--resume``) of a run directory another process
is still writing used to delete that process's files under it. Here a real second process
holds the lock (as a training run does) and every way into the folder is refused, naming the
folder and the holder, with nothing in the folder touched; once the holder is gone (killed:
the operating system drops the lock) the folder is usable again.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import run_cli
from dlsuite import folder_lock
from dlsuite.errors import DlsuiteInputError
from dlsuite.rundir import prepare_run_dir, run_dir_refusal

HOLDER = ("import sys; from dlsuite import folder_lock; folder_lock.acquire(sys.argv[1]); "
          "print('ready', flush=True); sys.stdin.read()")


@pytest.fixture
def holder():
    """Start a process holding the lock of a folder; yields the start function."""
    procs = []

    def start(folder) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def _run_dir(root):
    """A finished-looking run directory: marker, a recorded file, a resumable state."""
    run = prepare_run_dir(root)
    folder_lock.release(run.root)
    (run.root / "history.csv").write_text("epoch\n0\n")
    run.resume_state.parent.mkdir(parents=True, exist_ok=True)
    run.resume_state.write_text("{}")
    (run.root / ".tmp-partial").write_text("being written")
    return run


def test_a_run_directory_in_use_is_refused_untouched(tmp_path, holder):
    run = _run_dir(tmp_path / "run")
    before = sorted(p.relative_to(run.root) for p in run.root.rglob("*"))
    proc = holder(run.root)
    for flags in ({"overwrite": True}, {"resume": True}, {}):
        with pytest.raises(DlsuiteInputError) as info:
            prepare_run_dir(run.root, **flags)
        if flags:
            assert f"{run.root}: in use by another dlsuite process (pid {proc.pid}" in \
                str(info.value)
        else:  # without a flag: in use too (asking for --overwrite would not help)
            assert "in use by another dlsuite process" in str(info.value)
        # the early check of dlsuite run (before the data's pixels) says the same
        assert f"in use by another dlsuite process (pid {proc.pid}" in run_dir_refusal(
            run.root, **flags)
    assert sorted(p.relative_to(run.root) for p in run.root.rglob("*")) == before
    assert (run.root / ".tmp-partial").read_text() == "being written"

    proc.kill()
    proc.wait(timeout=30)  # the operating system drops the lock of a killed process
    assert run_dir_refusal(run.root, overwrite=True) is None
    assert "already holds a run" in run_dir_refusal(run.root)
    run2 = prepare_run_dir(run.root, overwrite=True)
    folder_lock.release(run2.root)
    assert not (run.root / "history.csv").exists()  # replaced: the run's own file
    assert (run.root / folder_lock.LOCK_FILE).is_file()  # dlsuite's own, never "foreign"


def test_the_lock_is_reentrant_within_a_process_and_released(tmp_path, holder):
    folder = tmp_path / "run"
    with folder_lock.held(folder):
        with folder_lock.held(folder):  # api.run, then api.tune in one notebook
            pass
        proc = subprocess.run([sys.executable, "-c", HOLDER, str(folder)], input="",
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and "in use by another dlsuite process" in proc.stderr
    # released: another process takes it
    other = holder(folder)
    other.kill()
    other.wait(timeout=30)
    # a folder holding only the lock file is an empty folder, not a user's folder
    run = prepare_run_dir(folder)
    folder_lock.release(run.root)


def test_the_cli_refuses_a_run_directory_in_use(tmp_path, holder):
    from test_resume import _config

    config = _config(tmp_path)
    data = json.loads(config.read_text())
    data["wandb"] = {"mode": "disabled"}
    config.write_text(json.dumps(data))
    _run_dir(tmp_path / "run")
    proc = holder(tmp_path / "run")
    for flag in ("--overwrite", "--resume"):
        result = run_cli("train", str(config), flag, "--quiet", timeout=120)
        assert result.returncode == 2, result.stderr
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "in use by another dlsuite process" in lines[0]
        assert f"pid {proc.pid}" in lines[0]
    assert (tmp_path / "run" / "history.csv").read_text() == "epoch\n0\n"


def test_a_sweep_in_progress_is_not_resumed_twice(tmp_path, holder):
    """``dlsuite sweep --resume`` of a sweep another process is running would start its
    trials a second time: refused, naming the holder, the sweep file untouched."""
    from test_compare import GRID, _base, _write

    from dlsuite.ownership import OwnedFolder

    _base(tmp_path)
    sweep_file = _write(tmp_path, "grid.yaml", GRID)
    out = tmp_path / "sweep"
    OwnedFolder(out, "sweep").create(["sweep.json", "trial-*"])
    (out / "sweep.json").write_text("{}")
    proc = holder(out)
    result = run_cli("sweep", str(sweep_file), "-o", str(out), "--resume", timeout=120)
    assert result.returncode == 2 and f"pid {proc.pid}" in result.stderr, result.stderr
    assert "in use by another dlsuite process" in result.stderr
    assert (out / "sweep.json").read_text() == "{}"


def test_a_track_output_in_use_is_refused_untouched(tmp_path, holder):
    """A second ``dlsuite track --overwrite`` into the folder another one is writing used to
    remove the first one's results while it wrote them: refused, naming the holder; the
    same command goes through once the holder is gone."""
    import numpy as np
    import tifffile

    from dlsuite import api

    videos = tmp_path / "videos"
    videos.mkdir()
    labels = np.zeros((4, 16, 16), np.uint16)
    labels[:, 4:8, 4:8] = 1
    tifffile.imwrite(videos / "a.tif", labels, photometric="minisblack")
    out = tmp_path / "tracked"
    api.track(videos, out)
    def results() -> dict:
        return {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
                if p.is_file() and p.name != folder_lock.LOCK_FILE}

    before = results()
    proc = holder(out)
    with pytest.raises(DlsuiteInputError) as info:
        api.track(videos, out, overwrite=True)
    assert f"{out}: in use by another dlsuite process (pid {proc.pid}" in str(info.value)
    assert "choose another OUTPUT_DIR" in str(info.value)
    assert results() == before
    proc.kill()
    proc.wait(timeout=30)
    assert api.track(videos, out, overwrite=True)[0]["tracks"] == 1
    assert not folder_lock.in_use(out)
