"""``dlsuite predict --resume``: a prediction of a folder stopped by SIGTERM part-way keeps what
it wrote, says how to go on, and continues where it stopped, but never with another checkpoint
(the outputs would mix). A real tiny trained run, real TIFFs, the real CLI in a subprocess
stopped by a real signal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import run_cli

N_INPUTS = 40
TIMEOUT = 300  # seconds any command may take on a loaded 2-core machine


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny unet run (1 epoch of 2 steps) with small tiles, so that each of the
    ``N_INPUTS`` inputs below takes a noticeable time to predict."""
    from dlsuite import api
    from dlsuite.data.example import write_example_frames

    root = tmp_path_factory.mktemp("resume-run")
    frames = write_example_frames(root / "data", n=2, size=32, seed=0)["frames"]
    cfg = {"name": "run", "output_dir": str(root / "run"), "seed": 0,
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
           "train": {"epochs": 1}, "inference": {"tile_size": 16, "halo": 8},
           "wandb": {"mode": "disabled"},
           "data": {"train": str(frames), "val": str(frames), "test": None}}
    return Path(api.train(cfg, quiet=True).run_dir)


def _random_images(folder: Path, size: int, seed: int) -> Path:
    """``N_INPUTS`` random 8-bit images of ``size`` x ``size`` in ``folder``."""
    rng = np.random.default_rng(seed)
    for k in range(N_INPUTS):
        tifffile.imwrite(folder / f"img_{k:02d}.tif",
                         rng.integers(0, 255, (size, size), dtype=np.uint8))
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return _random_images(tmp_path_factory.mktemp("resume-inputs"), 160, seed=0)


@pytest.fixture(scope="module")
def large_inputs(tmp_path_factory):
    """Inputs that take long enough to predict (several seconds after the first is written)
    for a second command, refused before it loads TensorFlow, to run while the first is
    still writing."""
    return _random_images(tmp_path_factory.mktemp("resume-large"), 192, seed=1)


def _under_way(run: Path, inputs: Path, out: Path) -> subprocess.Popen:
    """``dlsuite predict RUN INPUTS -o OUT`` started, returned once its first labels are on
    disk (the test fails when that takes too long or the command ends first)."""
    proc = subprocess.Popen([sys.executable, "-m", "dlsuite.cli", "predict", str(run),
                             str(inputs), "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while not (out.is_dir() and list((out / "labels").glob("img_*.tif"))):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no prediction under way: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    return proc


def _stopped(run: Path, inputs: Path, out: Path) -> subprocess.CompletedProcess:
    """``dlsuite predict RUN INPUTS -o OUT`` sent SIGTERM once its first labels are on disk."""
    proc = _under_way(run, inputs, out)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.slow
def test_a_stopped_prediction_resumes_where_it_stopped_and_only_with_the_same_job(
        run, inputs, tmp_path):
    out = tmp_path / "out"
    stopped = _stopped(run, inputs, out)
    assert stopped.returncode == 143, stopped.stderr
    said = re.search(r"stopped after (\d+) of (\d+) input\(s\): (.+) keeps their "
                     r"predictions; the same command with --resume continues", stopped.stderr)
    assert said, stopped.stderr
    done, total = int(said[1]), int(said[2])
    assert said[3] == str(out) and total == N_INPUTS and 1 <= done < N_INPUTS
    written = sorted((out / "labels").glob("img_*.tif"))
    assert done <= len(written) < N_INPUTS
    assert not (out / "predict.json").exists()  # written only when a prediction finishes
    job = json.loads((out / ".dlsuite-predict").read_text())["job"]  # before any output
    assert job["checkpoint"].endswith("best.keras")
    assert job["tiling"] == {"tile_size": 16, "halo": 8, "batch_size": 2}
    stamps = {p: p.stat().st_mtime_ns for p in written}

    # without --resume the folder is refused as before; with another checkpoint, or
    # together with --overwrite, --resume is refused: nothing is written
    from test_bad_values_cli import probe

    plain, _, _ = probe(tmp_path, "predict", str(run), str(inputs), "-o", str(out))
    assert plain.returncode == 2 and "already holds predictions" in plain.stderr
    assert "TF-NOT-IMPORTED" in plain.stderr  # refused before the model is loaded
    other = run_cli("predict", str(run), str(inputs), "-o", str(out), "--resume",
                    "--weights", "last")
    assert other.returncode == 2, other.stderr
    assert f"{out}: holds predictions made with other checkpoint" in other.stderr
    both = run_cli("predict", str(run), str(inputs), "-o", str(out), "--resume", "--overwrite")
    assert both.returncode == 2 and "--resume and --overwrite exclude each other" in both.stderr
    assert sorted((out / "labels").glob("img_*.tif")) == written
    # an input replaced after its prediction was written is predicted again, not kept
    replaced = written[0]
    tifffile.imwrite(inputs / replaced.name, 255 - tifffile.imread(inputs / replaced.name))
    kept = written[1:]

    resumed = run_cli("predict", str(run), str(inputs), "-o", str(out), "--resume",
                      timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr
    assert f"wrote {N_INPUTS} prediction(s)" in resumed.stdout
    names = [f"img_{k:02d}.tif" for k in range(N_INPUTS)]
    for kind in ("labels", "probabilities"):
        assert sorted(p.name for p in (out / kind).iterdir()) == names
    assert not list(out.rglob(".tmp-*"))
    for path in kept:  # complete before: read back, not predicted again
        assert path.stat().st_mtime_ns == stamps[path], path
    assert replaced.stat().st_mtime_ns > stamps[replaced]
    summary = json.loads((out / "predict.json").read_text())
    assert len(summary["inputs"]) == N_INPUTS
    skipped = [r["name"] for r in summary["inputs"] if r.get("skipped")]
    assert skipped == [p.stem for p in kept]
    assert f"resumed: {len(kept)} of {N_INPUTS} input(s) already complete" in resumed.stderr
    # the resumed folder equals a prediction that was never stopped: checked in this process
    # (the run's model is loaded here already) on the first input (replaced after the stop,
    # so predicted again), the next one predicted before the stop, if any, and the last two
    import shutil

    from dlsuite import api

    some = tmp_path / "some"
    some.mkdir()
    assert replaced.name == names[0]
    for name in {names[0], *(p.name for p in kept[:1]), *names[-2:]}:
        shutil.copy(inputs / name, some / name)
    whole = api.predict_folder(run, some, tmp_path / "whole", quiet=True)
    by_name = {r["name"]: r for r in summary["inputs"]}
    for row in whole.rows:
        assert np.array_equal(tifffile.imread(out / "labels" / f"{row['name']}.tif"),
                              tifffile.imread(row["labels"])), row["name"]
        assert by_name[row["name"]]["objects"] == row["objects"]

def test_a_ctrl_c_wrapped_by_c_code_still_says_how_to_go_on(run, tmp_path, monkeypatch,
                                                             caplog):
    """A Ctrl-C raised while C code runs comes back as a SystemError caused by it; the
    prediction stopped by it still says what it keeps and how to continue, as for a plain
    Ctrl-C, and re-raises it for the CLI's exit code 130."""
    from dlsuite import api, predict

    few = tmp_path / "few"
    few.mkdir()
    rng = np.random.default_rng(3)
    for k in range(3):
        tifffile.imwrite(few / f"img_{k}.tif", rng.integers(0, 255, (32, 32), dtype=np.uint8))
    real, calls = predict._predicted_row, []

    def wrapped_ctrl_c_at_second(*args):
        calls.append(1)
        if len(calls) == 2:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise SystemError("<built-in method __array__> returned a result with an "
                                  "exception set") from exc
        return real(*args)

    monkeypatch.setattr(predict, "_predicted_row", wrapped_ctrl_c_at_second)
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="dlsuite"), pytest.raises(SystemError):
        api.predict_folder(run, few, out, quiet=True)
    assert (f"stopped after 1 of 3 input(s): {out} keeps their predictions; the same "
            "command with --resume continues") in caplog.text
    assert [p.name for p in (out / "labels").glob("*.tif")] == ["img_0.tif"]


def test_resume_predicts_an_input_whose_output_is_damaged_again(run, tmp_path, caplog):
    """An output cut short (a copy, a disk error) made --resume fail with an unexpected
    error reading it back; it is predicted again, with a warning, the others skipped."""
    from dlsuite import api

    few = tmp_path / "few"
    few.mkdir()
    rng = np.random.default_rng(4)
    for k in range(3):
        tifffile.imwrite(few / f"img_{k}.tif", rng.integers(0, 255, (32, 32), dtype=np.uint8))
    out = tmp_path / "out"
    first = api.predict_folder(run, few, out, quiet=True)
    damaged = out / "labels" / "img_1.tif"
    damaged.write_bytes(damaged.read_bytes()[:300])
    with caplog.at_level("WARNING", logger="dlsuite"):
        again = api.predict_folder(run, few, out, resume=True, quiet=True)
    assert f"img_1: its outputs in {out} are damaged: predicted again" in caplog.text
    assert [bool(r.get("skipped")) for r in again.rows] == [True, False, True]
    assert [r["objects"] for r in again.rows] == [r["objects"] for r in first.rows]
    assert tifffile.imread(damaged).shape == (32, 32)


@pytest.mark.slow
def test_a_second_prediction_into_a_folder_being_written_is_refused_naming_the_first(
        run, large_inputs, tmp_path):
    """``--overwrite`` (or ``--resume``) into a folder another ``dlsuite predict`` is writing
    used to delete (or write twice) the first one's outputs while it ran; now it is refused,
    naming that process, and the first one completes untouched."""
    from test_bad_values_cli import PROBE

    out = tmp_path / "out"
    probe = tmp_path / "probe.py"  # the CLI, saying whether it imported TensorFlow
    probe.write_text(PROBE)
    first = _under_way(run, large_inputs, out)
    try:
        seconds = {flag: subprocess.Popen(  # both at once: the first is still writing
            [sys.executable, str(probe), "predict", str(run), str(large_inputs), "-o",
             str(out), flag], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for flag in ("--overwrite", "--resume")}
        for flag, second in seconds.items():
            _, err = second.communicate(timeout=TIMEOUT)
            assert second.returncode == 2, (flag, err)
            assert f"{out}: in use by another dlsuite process (pid {first.pid}: " in err, err
            assert "TF-NOT-IMPORTED" in err, err  # refused before the model is loaded
        assert first.poll() is None, "the first prediction ended before the second started"
        stdout, stderr = first.communicate(timeout=TIMEOUT)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    assert f"wrote {N_INPUTS} prediction(s)" in stdout
    assert len(list((out / "labels").glob("img_*.tif"))) == N_INPUTS
    assert len(json.loads((out / "predict.json").read_text())["inputs"]) == N_INPUTS
    from dlsuite.folder_lock import in_use

    assert in_use(out) is None  # once the first has ended, the folder is free


#: ``dlsuite predict`` in a subprocess whose block-wise prediction receives a real SIGTERM
#: once the probabilities of its fifth block are written, before its task reports back (so
#: the client has recorded four).
STOPPED_BLOCKWISE = """
import os, signal, sys
from dlsuite.scale import blocks

real, done = blocks.probs_task, []
def probs_task(*args):
    result = real(*args)
    done.append(1)
    if len(done) == 5:
        os.kill(os.getpid(), signal.SIGTERM)
    return result

blocks.probs_task = probs_task
from dlsuite.cli import main
sys.argv = ["dlsuite", *sys.argv[1:]]
main()
"""


def _blockwise_stopped(run: Path, image: Path, out: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", STOPPED_BLOCKWISE, "predict", str(run),
                           str(image), "-o", str(out), "--block-size", "32", "--quiet"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 143, proc.stderr
    assert "stopped after 0 of 1 image(s); 4 block(s) of big predicted" in proc.stderr
    assert "the same command with --resume goes on" in proc.stderr
    return proc


def _blockwise_outputs(out: Path) -> tuple[np.ndarray, np.ndarray]:
    import zarr

    image = out / "big.ome.zarr"
    return (np.asarray(zarr.open_array(str(image / "0"), mode="r")[...]),
            np.asarray(zarr.open_array(str(image / "labels" / "instances" / "0"),
                                       mode="r")[...]))


def test_a_stopped_blockwise_prediction_resumes_from_its_last_block(run, tmp_path,
                                                                   monkeypatch):
    """``--block-size`` prediction of a 160 x 160 TIFF (25 blocks of 32 px) stopped by SIGTERM
    while its fifth block is written: exit 143, the warning says what is kept (4 blocks
    recorded) and that ``--resume`` goes on; ``--resume`` predicts only the 21 blocks left
    (the fifth again, whole), and the outputs equal those of a prediction
    never stopped (probabilities and labels bit for bit). Resuming the finished folder
    predicts nothing (touched since: every block again); another block size, or resuming
    whole-image prediction into it (or the reverse), is refused; an
    input rewritten after the stop is predicted again whole, not mixed with its old blocks."""
    pytest.importorskip("ome_zarr")
    from dlsuite import api
    from dlsuite.errors import DlsuiteInputError
    from dlsuite.scale import blocks

    rng = np.random.default_rng(3)
    image = tmp_path / "in" / "big.tif"
    image.parent.mkdir()
    tifffile.imwrite(image, rng.integers(0, 255, (160, 160), dtype=np.uint8))
    whole = api.predict_folder(run, image, tmp_path / "whole", block_size=32, quiet=True)
    assert whole.rows[0]["blocks"] == 25

    calls = []
    real = blocks.probs_task
    monkeypatch.setattr(blocks, "probs_task", lambda *a: calls.append(1) or real(*a))
    out = tmp_path / "out"
    _blockwise_stopped(run, image, out)
    api.predict_folder(run, image, out, block_size=32, resume=True, quiet=True)
    assert len(calls) == 21
    resumed = json.loads((out / "predict.json").read_text())
    assert "big: resumed, 4 block(s) already predicted" in resumed["notes"]
    for mine, theirs in zip(_blockwise_outputs(out), _blockwise_outputs(tmp_path / "whole")):
        assert np.array_equal(mine, theirs)
    assert not (out / ".dlsuite-blocks").exists()  # progress removed once finished

    calls.clear()
    again = api.predict_folder(run, image, out, block_size=32, resume=True, quiet=True)
    assert calls == [] and again.rows[0]["objects"] == whole.rows[0]["objects"]
    assert again.rows[0]["skipped"] and f"resumed: 1 of 1 image(s) already complete in {out}" \
        in again.notes
    later = (out / "predict.json").stat().st_mtime_ns + 10**9
    os.utime(image, ns=(later, later))  # the input changed after the finished prediction
    api.predict_folder(run, image, out, block_size=32, resume=True, quiet=True)
    assert len(calls) == 25
    with pytest.raises(DlsuiteInputError, match="other block_size"):
        api.predict_folder(run, image, out, block_size=64, resume=True, quiet=True)
    with pytest.raises(DlsuiteInputError, match="holds predictions made block by block"):
        api.predict_folder(run, image, out, resume=True, quiet=True)  # whole, into OME-Zarr
    api.predict_folder(run, image, tmp_path / "whole_tiff", quiet=True)  # the reverse
    with pytest.raises(DlsuiteInputError, match="holds predictions made whole"):
        api.predict_folder(run, image, tmp_path / "whole_tiff", block_size=32, resume=True,
                           quiet=True)

    out2 = tmp_path / "out2"  # stopped again, in this process: Ctrl-C in the fifth task

    def ctrl_c_at_fifth(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args)

    calls.clear()
    monkeypatch.setattr(blocks, "probs_task", ctrl_c_at_fifth)
    with pytest.raises(KeyboardInterrupt):
        api.predict_folder(run, image, out2, block_size=32, quiet=True)
    assert len((out2 / ".dlsuite-blocks" / "big.jsonl").read_text().splitlines()) == 1 + 4
    tifffile.imwrite(image, rng.integers(0, 255, (160, 160), dtype=np.uint8))  # replaced
    api.predict_folder(run, image, tmp_path / "fresh", block_size=32, quiet=True)
    proc = run_cli("predict", str(run), str(image), "-o", str(out2), "--block-size", "32",
                   "--resume", "--quiet")
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    assert not any("resumed" in n for n in json.loads((out2 / "predict.json").read_text())[
        "notes"])  # the new image's blocks all predicted
    for mine, theirs in zip(_blockwise_outputs(out2), _blockwise_outputs(tmp_path / "fresh")):
        assert np.array_equal(mine, theirs)
