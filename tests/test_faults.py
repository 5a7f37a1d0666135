"""Faults a real run meets (issue 13): the process killed (SIGKILL) in the middle of writing a
checkpoint, and a full disk while predicting. Real subprocesses, real tiny Keras models; the
fault is injected at the operating-system level (SIGKILL, RLIMIT_FSIZE) or by making Keras'
own save write half a file and then killing the process."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from test_resume import _rows, _small

# Patches Keras' Model.save / Model.save_weights so that their ``nth`` call writes half a file
# and kills the process with SIGKILL (no handler, no cleanup can run), then runs the console
# entry point with the remaining arguments.
KILL_DRIVER = """
import os, signal, sys
import keras
from dlsuite.cli import main

method, nth = sys.argv[1], int(sys.argv[2])
original = getattr(keras.Model, method)
calls = []

def dying(self, filepath, *args, **kwargs):
    calls.append(filepath)
    if len(calls) == nth:
        with open(filepath, "wb") as fh:
            fh.write(b"half a file")
            fh.flush()
            os.fsync(fh.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, filepath, *args, **kwargs)

setattr(keras.Model, method, dying)
main(sys.argv[3:])
"""


def _env() -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("WANDB_MODE", None)
    return env


def _loadable(path: Path) -> None:
    import keras

    keras.models.load_model(path, compile=False)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_kill_9_during_a_checkpoint_write_keeps_the_previous_one_and_resume_works(
        tmp_path, method):
    # save: epoch 2's first .keras checkpoint; save_weights: epoch 2's resumable weights
    config = _small(tmp_path, epochs=3)
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILL_DRIVER, method, "2", "train",
                           str(config), "--quiet"], capture_output=True, text=True,
                          env=_env(), timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    state = json.loads((run / "checkpoints" / "resume" / "state.json").read_text())
    assert state["epoch"] == 1  # the state of the last finished epoch
    assert list(run.rglob(".tmp-*")), "the kill did not happen during an atomic write"
    for name in ("best.keras", "last.keras"):  # epoch 1's checkpoints are intact
        _loadable(run / "checkpoints" / name)
    _succeeds("train", config, "--resume")
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == [1, 2, 3]
    final = json.loads((run / "checkpoints" / "resume" / "state.json").read_text())
    assert final["epoch"] == 3
    assert not list(run.rglob(".tmp-*"))  # the half-written temporaries are gone
    _loadable(run / "checkpoints" / "last.keras")


# Lowers this process's file size limit (RLIMIT_FSIZE, a real OS limit: writes beyond it fail
# with EFBIG, as on a full disk) when epoch 1 or 2 begins (argv[1] "epoch-1", "epoch-2") or
# when training ends ("train-end"), then runs the console entry point with the remaining arguments.
FULL_DISK = """
import resource, sys
import keras
from dlsuite import hookimpl
from dlsuite.registry import get_registry

when = sys.argv[1]
def full():
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

class FullDisk:
    @hookimpl
    def dlsuite_callbacks(self, config):
        class Limit(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if (when, epoch) in (("epoch-1", 0), ("epoch-2", 1)):
                    full()
            def on_train_end(self, logs=None):
                if when == "train-end":
                    full()
        return [Limit()]

get_registry().add_plugin(FullDisk(), "full-disk", None, None)
from dlsuite.cli import main
main(sys.argv[2:])
"""


def _full_disk_error(when: str, config: Path) -> str:
    """The one error line of ``dlsuite train CONFIG`` whose disk fills ``when`` (FULL_DISK);
    exit status 2."""
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, when, "train", str(config),
                           "--quiet"], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    return line


def _succeeds(command: str, config: Path, *flags: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", command, str(config), "--quiet",
                           *flags], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


# when the disk fills -> (epochs, the message's words, the flag that carries on, epochs trained)
FULL_DURING_TRAINING = {
    # it said only "check the permissions and free space"
    "epoch-2": (3, "File too large: training stopped; the checkpoints and resumable state of "
                "epoch 1 are kept in {run}/checkpoints: free space there, then continue with: "
                "dlsuite run {config} --resume", "--resume", [1, 2, 3]),
    "epoch-1": (1, "File too large: training stopped in its first epoch, before any "
                "checkpoint was written (nothing to resume): free space in {run}, then start "
                "again with: dlsuite run {config} --overwrite", "--overwrite", [1]),
}


@pytest.mark.slow
@pytest.mark.parametrize("when", list(FULL_DURING_TRAINING))
def test_a_full_disk_during_training_says_what_is_kept_and_how_to_go_on(tmp_path, when):
    """The disk fills during epoch 2 (epoch 1 is kept) or epoch 1 (nothing is): exit 2, one
    line naming the file, what is kept and the command that goes on; with room again, that
    command finishes the run."""
    epochs, words, flag, trained = FULL_DURING_TRAINING[when]
    config = _small(tmp_path, epochs=epochs)
    run = tmp_path / "run"
    line = _full_disk_error(when, config)
    assert words.format(run=run, config=config) in line, line
    if when == "epoch-2":
        state = json.loads((run / "checkpoints" / "resume" / "state.json").read_text())
        assert state["epoch"] == 1
        _loadable(run / "checkpoints" / "last.keras")
    _succeeds("train", config, flag)
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == trained


@pytest.mark.slow
def test_a_full_disk_after_training_says_that_resume_finishes_the_run_without_training(
        tmp_path):
    """The disk fills once training is done (while the test set is predicted): exit 2 naming
    the file, saying training is finished and that --resume finishes the run; it does, with
    no epoch trained again."""
    config = _small(tmp_path, epochs=1)
    data = json.loads(config.read_text())
    data["data"]["test"] = data["data"]["val"]
    config.write_text(json.dumps(data))
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, "train-end", "run", str(config),
                           "--quiet"], capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert f"File too large: training is finished (checkpoints in {run / 'checkpoints'}); " \
           f"free space there (or fix the permissions), then dlsuite run {config} --resume " \
           "predicts, evaluates and reports without training again" in line, line
    assert "test" not in json.loads((run / "metrics.json").read_text())  # training's only
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "run", str(config), "--resume"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing to train: 1 of 1 epochs already done" in proc.stderr
    assert [int(r["epoch"]) for r in _rows(run / "history.csv")] == [1]
    assert "SEG" in json.loads((run / "metrics.json").read_text())["test"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    from dlsuite import api

    root = tmp_path_factory.mktemp("faults-run")
    config = _small(root)
    data = json.loads(config.read_text())
    data["inference"] = {"tile_size": None}
    config.write_text(json.dumps(data))
    return Path(api.train(config, quiet=True).run_dir)


def _limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_full_disk_during_prediction_exits_2_without_half_written_files(trained_run, tmp_path):
    from dlsuite.data.example import write_example_frames

    images = write_example_frames(tmp_path / "data", n=2, size=64, seed=1)["frames"] / "inputs"
    out = tmp_path / "out"
    # 16 KiB per file: the marker fits, a 64x64x2 float32 probability map (32 KiB) does not
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "predict", str(trained_run),
                           str(images), "-o", str(out), "--quiet"], capture_output=True,
                          text=True, env=_env(), timeout=300,
                          preexec_fn=_limit_file_size(16 * 1024))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "please report" not in proc.stderr
    assert str(out / "probabilities" / "raw_000.tif") in " ".join(proc.stderr.split())
    assert "File too large" in proc.stderr
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    # no half-written output, no temporary file: dlsuite's marker and lock file alone
    assert left == [".dlsuite-lock", ".dlsuite-predict"]
    assert "stopped after 0 of 2 input(s)" in proc.stderr and "--resume continues" in proc.stderr
    # the same command with room to write succeeds and replaces nothing of anyone else's
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "predict", str(trained_run),
                           str(images), "-o", str(out), "--quiet", "--overwrite"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (out / "probabilities").iterdir()) == ["raw_000.tif",
                                                                          "raw_001.tif"]


WRITE_DRIVER = """
import resource, sys
from dlsuite.fileio import write_text_atomic
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_text_atomic(sys.argv[1], "x" * 100_000)
except OSError as exc:
    print(exc.errno, exc.filename)
"""


def test_an_atomic_write_over_the_size_limit_names_the_target_and_leaves_nothing(tmp_path):
    import errno

    target = tmp_path / "big.json"
    proc = subprocess.run([sys.executable, "-c", WRITE_DRIVER, str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == [str(errno.EFBIG), str(target)], proc.stderr
    assert list(tmp_path.iterdir()) == []


KILLED_DRIVER = """
import os, signal, sys
from pathlib import Path
from dlsuite.fileio import atomic_write

def write(tmp: Path) -> None:
    tmp.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)  # killed before the rename

atomic_write(sys.argv[1], write)
"""


def test_leftover_temporaries_finds_what_a_killed_atomic_write_left_and_nothing_else(tmp_path):
    from dlsuite.fileio import leftover_temporaries

    target = tmp_path / "labels" / "img_02.tif"
    proc = subprocess.run([sys.executable, "-c", KILLED_DRIVER, str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert not target.exists()
    left = list(target.parent.iterdir())
    assert len(left) == 1 and left[0].read_bytes() == b"half"
    # the user's files and the temporaries of other targets are not the target's leftovers
    for name in (".tmp-img_02-notes.tif", ".tmp-img_02-abcdefgh.txt", ".tmp-img_03-abcdefgh.tif",
                 "img_02.tif.bak", ".tmp-img_02-x-abcdefgh.tif"):
        (target.parent / name).write_text("keep")
    assert leftover_temporaries(target) == left
    assert leftover_temporaries(tmp_path / "nowhere" / "img_02.tif") == []


SIGNALLED_DRIVER = """
import os, signal, sys, tempfile, threading, time
from pathlib import Path
from dlsuite.fileio import atomic_write

signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest-xdist ignores it
real_mkstemp = tempfile.mkstemp
# a thread like TensorFlow's: the kernel may hand the process's SIGINT to it
other = threading.Thread(target=time.sleep, args=(30,), daemon=True)
other.start()

def mkstemp_then_ctrl_c(*args, **kwargs):  # the worst moment: the file exists, unnamed yet
    made = real_mkstemp(*args, **kwargs)
    if sys.argv[2] == "main":
        os.kill(os.getpid(), signal.SIGINT)
    else:
        signal.pthread_kill(other.ident, signal.SIGINT)
    time.sleep(0.3)  # Python runs the handler in this thread meanwhile, unless it is held
    return made

tempfile.mkstemp = mkstemp_then_ctrl_c
try:
    atomic_write(sys.argv[1], lambda tmp: tmp.write_text("never"))
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.parametrize("thread", ["main", "other"])
def test_a_ctrl_c_right_after_the_temporary_file_is_made_leaves_nothing(tmp_path, thread):
    """Whichever thread the kernel hands SIGINT to (CI once saw one left behind)."""
    target = tmp_path / "labels" / "img_00.tif"
    proc = subprocess.run([sys.executable, "-c", SIGNALLED_DRIVER, str(target), thread],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["interrupted"], proc.stderr
    assert list(target.parent.iterdir()) == []


def test_an_atomic_write_gives_back_the_signal_handlers_it_held_and_works_in_other_threads(
        tmp_path):
    """The hold swaps only Python handlers, and only in the main thread, and restores them."""
    import signal
    import threading

    from dlsuite.fileio import atomic_write

    def mine(signum, frame):
        raise AssertionError("not expected")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("a"))
        assert signal.getsignal(signal.SIGTERM) is mine
        done = []
        worker = threading.Thread(target=lambda: done.append(
            atomic_write(tmp_path / "b.txt", lambda tmp: tmp.write_text("b"))))
        worker.start()
        worker.join(30)
        assert done == [tmp_path / "b.txt"] and (tmp_path / "b.txt").read_text() == "b"
    finally:
        signal.signal(signal.SIGTERM, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
