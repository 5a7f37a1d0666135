"""Issue 17 items 2-3: ``dlsuite predict --scheduler`` on a Dask cluster, OME-Zarr in and out,
block-wise prediction of images larger than memory. Real tiny trained run, real local Dask
cluster of 2 worker processes on 127.0.0.1 (started once for the module through
``--scheduler local:2``'s own code), real files, real CLI subprocesses. Every distributed
call is bounded in time."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")

from conftest import run_cli  # noqa: E402
from dlsuite import api  # noqa: E402
from dlsuite.errors import DataError, DlsuiteInputError  # noqa: E402

TINY = {"model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
        "train": {"epochs": 1}, "inference": {"tile_size": 32, "halo": "auto"},
        "wandb": {"mode": "disabled"}, "seed": 0}
N_KILL = 20  # inputs of the killed-worker test
TIMEOUT = 240  # seconds any distributed step may take on a loaded 2-core machine


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from dlsuite.data.example import write_example_frames, write_example_videos

    root = tmp_path_factory.mktemp("scale-data")
    frames = write_example_frames(root, n=6, size=64, seed=0)
    videos = write_example_videos(root, n_videos=1, frames=3, size=48, seed=1)
    big = write_example_frames(root / "big", n=1, size=96, seed=3)["inputs"][0]
    return {"frames": frames["frames"], "inputs": frames["frames"] / "inputs",
            "video": videos["inputs"][0], "big": big}


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """One tiny unet run for the module (1 epoch of 2 steps)."""
    out = tmp_path_factory.mktemp("scale-run") / "run"
    cfg = {**TINY, "name": "run", "output_dir": str(out),
           "data": {"train": str(data["frames"]), "val": str(data["frames"]), "test": None}}
    return Path(api.train(cfg, quiet=True).run_dir)


@pytest.fixture(scope="module")
def cluster():
    """``--scheduler local:2``'s LocalCluster (2 single-threaded worker processes on
    127.0.0.1), kept for the module so workers keep their cached models between tests."""
    from dlsuite.scale.cluster import connect

    with connect("local:2") as client:
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield client


def _bounded(fn, *args, timeout=TIMEOUT, **kwargs):
    """``fn(*args, **kwargs)`` in a thread, failing the test after ``timeout`` seconds."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{fn.__name__} did not finish within {timeout} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _same_outputs(a: Path, b: Path, names) -> None:
    """Labels bit for bit, probabilities within 1e-6."""
    for name in names:
        la, lb = (tifffile.imread(d / "labels" / f"{name}.tif") for d in (a, b))
        assert la.dtype == lb.dtype and np.array_equal(la, lb), name
        pa, pb = (tifffile.imread(d / "probabilities" / f"{name}.tif") for d in (a, b))
        np.testing.assert_allclose(pa, pb, atol=1e-6, err_msg=name)


# --------------------------------------------------------------------------------------------
# no cluster needed


def test_scheduler_values_parsed_or_refused():
    from dlsuite.scale.cluster import parse_scheduler

    assert parse_scheduler("local") == ("local", 2)
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    for bad in ("local:0", "lokal", "tcp://"):
        with pytest.raises(DlsuiteInputError, match="--scheduler"):
            parse_scheduler(bad)


def test_labels_cut_by_block_borders_merge_into_one_id():
    """Objects cut into blocks (local ids per block) get one global id each; two objects
    touching across a border stay apart; ids are 1..N."""
    from dlsuite.scale.blocks import block_grid, neighbours
    from dlsuite.scale.labels import faces, local_labels, merge_table

    truth = np.zeros((40, 40), dtype=np.int32)
    yy, xx = np.mgrid[:40, :40]
    truth[(yy - 16) ** 2 + (xx - 16) ** 2 < 49] = 7  # a disc over the corner of 4 blocks
    truth[2:6, 22:30] = 3  # a bar cut by the vertical border x=24 ...
    truth[6:10, 22:30] = 5  # ... touching another bar below it (different object)
    truth[30:36, 30:36] = 9  # inside one block
    tiles = block_grid(1, 40, 40, 24)  # borders at 24 cut the disc and the bars
    counts, fcs, pieces = {}, {}, {}
    for b in tiles:
        local, n = local_labels(truth[b.y0:b.y1, b.x0:b.x1])
        counts[b.key], fcs[b.key], pieces[b.key] = n, faces(local), local
    tables, total = merge_table(counts, fcs, neighbours(tiles))
    merged = np.zeros_like(truth, dtype=np.uint32)
    for b in tiles:
        merged[b.y0:b.y1, b.x0:b.x1] = tables[b.key][pieces[b.key]]
    assert total == 4 and sorted(np.unique(merged[merged > 0])) == [1, 2, 3, 4]
    for value in (3, 5, 7, 9):  # each true object is exactly one merged id, and vice versa
        ids = np.unique(merged[truth == value])
        assert len(ids) == 1 and ids[0] > 0
        assert np.array_equal(merged == ids[0], truth == value)


def test_large_tiff_read_lazily_window_by_window(tmp_path):
    """A TIFF opens as a Source without reading pixels; windows and the dask array give the
    stored pixels; the pixel size comes from the resolution tags."""
    from dlsuite.scale.omezarr import open_source

    video = (np.arange(3 * 50 * 60) % 4099).astype(np.uint16).reshape(3, 50, 60)
    tifffile.imwrite(tmp_path / "v.tif", video, photometric="minisblack",
                     resolution=(1 / 0.4, 1 / 0.2), tile=(16, 16))
    source = open_source(tmp_path / "v.tif")
    assert source.shape == (3, 50, 60) and source.pixel_size == (pytest.approx(0.2),
                                                                 pytest.approx(0.4))
    assert np.array_equal(source.read(2, 10, 40, 5, 33), video[2, 10:40, 5:33])
    assert np.array_equal(source.dask().compute(), video)
    with pytest.raises(Exception, match="not an OME-Zarr image"):
        open_source(tmp_path)


@pytest.mark.parametrize("options", [{}, {"imagej": True}, {"compression": "zlib"}],
                         ids=["one-strip", "imagej", "compressed"])
def test_a_tiff_in_one_strip_is_memory_mapped_not_decoded_whole_per_window(tmp_path, options):
    """tifffile (and dlsuite) write a page as one strip: its windows come from a memory map
    (a window of a 20000 x 20000 image used to decode the whole 800 MB frame); compressed
    pages go through tifffile's zarr view. Both give the stored pixels."""
    from dlsuite.scale.omezarr import open_source

    video = (np.arange(3 * 70 * 90) % 5003).astype(np.uint16).reshape(3, 70, 90)
    tifffile.imwrite(tmp_path / "v.tif", video, photometric="minisblack", **options)
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert len(tif.pages[0].dataoffsets) == 1  # one strip per frame
    source = open_source(tmp_path / "v.tif")
    assert isinstance(source._store(), np.memmap) == ("compression" not in options)
    assert np.array_equal(source.read(1, 5, 60, 7, 81), video[1, 5:60, 7:81])
    assert np.array_equal(source.dask(chunk=32).compute(), video)


# --------------------------------------------------------------------------------------------
# batch prediction on the cluster


@pytest.mark.slow
def test_cluster_predict_equals_single_process_and_loads_model_once_per_worker(
        run, data, threshold_model, cluster, tmp_path):
    from dlsuite.scale.cluster import cached_models, worker_settings

    address = cluster.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    names = sorted(p.stem for p in data["inputs"].iterdir())
    single = api.predict_folder(run, data["inputs"], tmp_path / "single", quiet=True,
                                weights=str(threshold_model))
    assert sum(r["objects"] for r in single.rows) > 0  # the threshold model finds cells
    dist = _bounded(api.predict_folder, run, data["inputs"], tmp_path / "dist", quiet=True,
                    weights=str(threshold_model), scheduler=address)
    _same_outputs(single.out_dir, dist.out_dir, names)
    assert [r["objects"] for r in dist.rows] == [r["objects"] for r in single.rows]
    summary = json.loads((dist.out_dir / "predict.json").read_text())
    assert summary["scheduler"] == address and len(summary["inputs"]) == len(names)
    # a second job with the same checkpoint reuses the workers' models: still one per worker
    _bounded(api.predict_folder, run, data["inputs"], tmp_path / "again", quiet=True,
             weights=str(threshold_model), scheduler=address)
    loaded = cluster.run(cached_models)
    assert all(n <= 1 for n in loaded.values()) and sum(loaded.values()) >= 1, loaded
    # workers that predicted run as one process does per core: TF on the worker's single
    # thread, glibc malloc thresholds freed from the nanny's MALLOC_TRIM_THRESHOLD_ (1.8x the
    # CPU per image without), no statistical profiler
    settings = cluster.run(worker_settings)
    used = [settings[w] for w, n in loaded.items() if n]
    assert used and all(s == {"tf_threads": (1, 1), "steady_malloc": True, "profiler": False}
                        for s in used), settings


@pytest.mark.slow
def test_killed_worker_is_replaced_and_every_output_written_once(
        run, data, threshold_model, cluster, tmp_path):
    """SIGKILL a worker process while the job runs: the nanny starts a new one, the lost
    tasks rerun, every output is complete and equal to single-process, none is duplicated
    and no temporary file is left."""
    inputs = tmp_path / "many"
    inputs.mkdir()
    for k in range(N_KILL):  # many more inputs than workers: the kill hits a running job
        src = sorted(data["inputs"].iterdir())[k % 6]
        tifffile.imwrite(inputs / f"img_{k:02d}.tif", np.tile(tifffile.imread(src), (5, 5)))
    address = cluster.scheduler.address
    out = tmp_path / "out"
    job = threading.Thread(target=lambda: job.__dict__.setdefault("result", api.predict_folder(
        run, inputs, out, quiet=True, weights=str(threshold_model), scheduler=address)),
        daemon=True)
    job.start()
    victim = None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and victim is None:
        done = list((out / "probabilities").glob("img_*.tif")) if out.exists() else []
        if done:  # the job is under way: kill one worker process
            victim = next(iter(cluster.run(os.getpid).values()))
            os.kill(victim, signal.SIGKILL)
            killed_at = len(done)
        time.sleep(0.05)
    assert victim is not None, "no output appeared in time"
    job.join(TIMEOUT)
    assert not job.is_alive(), "the job did not finish after the worker was killed"
    assert killed_at < N_KILL, "the job had already finished when the worker was killed"
    summary = job.__dict__["result"]
    cluster.wait_for_workers(2, timeout=TIMEOUT)  # the nanny replaced the killed worker
    assert victim not in cluster.run(os.getpid).values()
    names = [f"img_{k:02d}" for k in range(N_KILL)]
    assert [r["name"] for r in summary.rows] == names
    assert sorted(p.name for p in (out / "probabilities").iterdir()) == [f"{n}.tif" for n in names]
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"{n}.tif" for n in names]
    assert not list(out.rglob(".tmp-*"))
    single = api.predict_folder(run, inputs, tmp_path / "single", quiet=True,
                                weights=str(threshold_model))
    _same_outputs(single.out_dir, out, names)


@pytest.mark.slow
def test_rerun_skips_complete_outputs_and_refuses_foreign_files(
        run, data, threshold_model, cluster, tmp_path):
    address = cluster.scheduler.address
    out = tmp_path / "out"
    first = _bounded(api.predict_folder, run, data["inputs"], out, quiet=True,
                     weights=str(threshold_model), scheduler=address)
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*.tif")}
    (out / "labels" / "raw_002.tif").unlink()  # as if the job had been stopped before it
    # ... with a killed worker's temporary file beside it, and one of the user's
    import tempfile
    fd, leftover = tempfile.mkstemp(dir=out / "labels", prefix=".tmp-raw_002-", suffix=".tif")
    os.close(fd)
    (out / "labels" / ".tmp-mine.tif").write_text("the user's")
    again = _bounded(api.predict_folder, run, data["inputs"], out, quiet=True,
                     weights=str(threshold_model), scheduler=address)
    assert [r.get("skipped", False) for r in again.rows] == [
        r["name"] != "raw_002" for r in first.rows]
    assert any("resumed: 5 of 6" in n for n in again.notes)
    assert not Path(leftover).exists() and (out / "labels" / ".tmp-mine.tif").is_file()
    (out / "labels" / ".tmp-mine.tif").unlink()
    for path, stamp in stamps.items():  # nothing complete was written again
        if path.name != "raw_002.tif" or path.parent.name == "probabilities":
            assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp, path
    assert [r["objects"] for r in again.rows] == [r["objects"] for r in first.rows]
    # the same job with another checkpoint is refused (outputs would mix)
    with pytest.raises(DlsuiteInputError, match="other checkpoint"):
        api.predict_folder(run, data["inputs"], out, quiet=True, scheduler=address)
    # a file dlsuite did not write, where an output goes, is never replaced
    (out / "labels" / "raw_002.tif").unlink()
    tifffile.imwrite(out / "labels" / "raw_002.tif", np.zeros((4, 4), np.uint8))
    marker = json.loads((out / ".dlsuite-predict").read_text())
    marker["written"] = [e for e in marker["written"] if e != "labels/raw_002.tif"]
    (out / ".dlsuite-predict").write_text(json.dumps(marker))
    with pytest.raises(DlsuiteInputError, match="not written by dlsuite"):
        api.predict_folder(run, data["inputs"], out, quiet=True, weights=str(threshold_model),
                           scheduler=address)
    assert tifffile.imread(out / "labels" / "raw_002.tif").shape == (4, 4)


@pytest.mark.slow
def test_a_stopped_job_resumes_only_with_the_same_checkpoint_and_tiling(
        run, data, threshold_model, cluster, tmp_path):
    """SIGTERM to ``dlsuite predict --scheduler ADDRESS`` once its first output is on disk:
    the folder's marker records the job before any task ran, so a rerun with another checkpoint or
    tiling is refused (it used to complete the folder, mixing two models' outputs), and the
    same command completes it."""
    import subprocess
    import sys

    inputs = tmp_path / "many"
    inputs.mkdir()
    for k in range(N_KILL):
        src = sorted(data["inputs"].iterdir())[k % 6]
        tifffile.imwrite(inputs / f"img_{k:02d}.tif", np.tile(tifffile.imread(src), (5, 5)))
    address, out = cluster.scheduler.address, tmp_path / "out"
    command = [sys.executable, "-m", "dlsuite.cli", "predict", str(run), str(inputs), "-o",
               str(out), "--weights", str(threshold_model), "--scheduler", address]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and list((out / "labels").glob("img_*.tif")):
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 143, stderr
    assert re.search(r"stopped after \d+ of 20 input\(s\): .+; the same command continues",
                     stderr), stderr
    assert not (out / "predict.json").exists()
    assert json.loads((out / ".dlsuite-predict").read_text())["job"]["checkpoint"] == str(
        threshold_model)
    other = run_cli("predict", str(run), str(inputs), "-o", str(out), "--scheduler", address,
                    "--tile-size", "64", timeout=TIMEOUT)
    assert other.returncode == 2, other.stderr
    assert "holds predictions made with other checkpoint, tiling" in other.stderr
    again = run_cli(*command[3:], timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr
    summary = json.loads((out / "predict.json").read_text())
    assert len(summary["inputs"]) == N_KILL
    assert any(r.get("skipped") for r in summary["inputs"])
    single = api.predict_folder(run, inputs, tmp_path / "single", quiet=True,
                                weights=str(threshold_model))
    _same_outputs(single.out_dir, out, [f"img_{k:02d}" for k in range(N_KILL)])


@pytest.mark.slow
def test_blockwise_prediction_shows_its_progress_on_a_terminal_and_quiet_hides_it(
        run, data, tmp_path):
    """A block-wise prediction takes minutes on a large image: a bar per stage (blocks done
    of all) on a terminal (FORCE_COLOR makes rich take the pipe for one); nothing with -q."""
    env = {"FORCE_COLOR": "1", "COLUMNS": "150"}
    proc = run_cli("predict", str(run), str(data["big"]), "-o", str(tmp_path / "shown"),
                   "--block-size", "32", env=env, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stderr)
    for stage in ("probabilities", "labels", "merging labels"):
        assert f"raw_000: {stage}" in shown, shown
    assert "9/9" in shown, shown  # 96 x 96 pixels in blocks of 32
    proc = run_cli("predict", str(run), str(data["big"]), "-o", str(tmp_path / "quiet"),
                   "--block-size", "32", "-q", env=env, timeout=TIMEOUT)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert (tmp_path / "quiet" / "raw_000.ome.zarr").is_dir()


@pytest.mark.slow
def test_cli_scheduler_address_and_bad_scheduler(run, data, threshold_model, cluster,
                                                 tmp_path):
    out = tmp_path / "cli"
    proc = run_cli("predict", str(run), str(data["inputs"]), "-o", str(out), "--weights",
                   str(threshold_model), "--scheduler", cluster.scheduler.address, "--quiet",
                   timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert len(list((out / "labels").glob("*.tif"))) == 6
    proc = run_cli("predict", str(run), str(data["inputs"]), "-o", str(tmp_path / "bad"),
                   "--scheduler", "nowhere", timeout=TIMEOUT)
    assert proc.returncode == 2 and "--scheduler 'nowhere'" in proc.stderr
    assert not (tmp_path / "bad").exists()
    # nothing listens on the port: refused at once, not after the client's 60 s of retries
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = run_cli("predict", str(run), str(data["inputs"]), "-o", str(tmp_path / "bad"),
                   "--scheduler", f"tcp://127.0.0.1:{port}", timeout=TIMEOUT)
    assert proc.returncode == 2 and "the connection is refused" in proc.stderr, proc.stderr
    assert not (tmp_path / "bad").exists()  # refused before the output folder is claimed
    # something listens but never answers as a scheduler: after DLSUITE_SCHEDULER_TIMEOUT,
    # with the output folder (plain and block-wise) still not claimed
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = "tcp://127.0.0.1:%d" % silent.getsockname()[1]
        for extra in ([], ["--block-size", "64"]):
            proc = run_cli("predict", str(run), str(data["inputs"]), "-o", str(tmp_path / "bad"),
                           "--scheduler", address, *extra,
                           env={"DLSUITE_SCHEDULER_TIMEOUT": "2"}, timeout=TIMEOUT)
            assert proc.returncode == 2, proc.stderr
            assert f"--scheduler {address}: no Dask scheduler answers" in proc.stderr
            assert not (tmp_path / "bad").exists()
    proc = run_cli("predict", str(run), str(data["inputs"]), "-o", str(tmp_path / "bad"),
                   "--scheduler", "local:1", env={"DLSUITE_SCHEDULER_TIMEOUT": "soon"},
                   timeout=TIMEOUT)
    assert proc.returncode == 2 and "DLSUITE_SCHEDULER_TIMEOUT='soon'" in proc.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_a_scheduler_without_workers_or_with_too_little_memory_is_refused(run, data, tmp_path):
    """A real scheduler on 127.0.0.1 without workers: its tasks would wait for ever (the
    prediction hung, silent, until killed); refused after DLSUITE_SCHEDULER_TIMEOUT, plain
    and block-wise. Its worker with a 900 MiB limit (Dask pauses it at 80 %, 720 MiB: less
    than TensorFlow and a model need): the worker paused and the prediction hung; refused
    naming the limit. Nothing written either time."""
    from distributed import LocalCluster

    out = tmp_path / "out"
    with LocalCluster(n_workers=0, threads_per_worker=1, processes=True, host="127.0.0.1",
                      scheduler_port=0, dashboard_address=None, memory_limit="900MiB",
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local:
        address = local.scheduler_address
        for extra in ([], ["--block-size", "64"]):
            proc = run_cli("predict", str(run), str(data["inputs"]), "-o", str(out), *extra,
                           "--scheduler", address, env={"DLSUITE_SCHEDULER_TIMEOUT": "3"},
                           timeout=TIMEOUT)
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.splitlines()[-1] == (
                f"error: --scheduler {address}: the scheduler has no workers (none joined "
                "within 3 s; DLSUITE_SCHEDULER_TIMEOUT sets how long to wait); start some "
                f"with: dask worker {address}")
            assert not out.exists()
        local.scale(1)
        local.wait_for_workers(1, timeout=TIMEOUT)
        for extra in ([], ["--block-size", "64"]):
            proc = run_cli("predict", str(run), str(data["inputs"]), "-o", str(out), *extra,
                           "--scheduler", address, timeout=TIMEOUT)
            assert proc.returncode == 2, proc.stderr
            assert (f"error: --scheduler {address}: its smallest worker can use 0.7 GiB (Dask "
                    "pauses a worker at 80% of its memory limit, 0.9 GiB); TensorFlow and a "
                    "model alone need about 0.8 GiB") in proc.stderr, proc.stderr
            assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("blockwise", [False, True])
def test_a_job_whose_workers_all_left_stops_naming_the_scheduler(monkeypatch, blockwise):
    """Every worker gone mid-job (SLURM jobs at their wall time; here the cluster scaled to
    0): the tasks would wait for ever; after DLSUITE_SCHEDULER_TIMEOUT without a worker,
    one line naming the scheduler and how to resume (a block-wise prediction's runner: with
    --resume). Results that finished came first."""
    from distributed import Client, LocalCluster

    from dlsuite.scale.blocks import Runner

    monkeypatch.setenv("DLSUITE_SCHEDULER_TIMEOUT", "3")
    rerun = "run the same command with --resume (the blocks predicted are kept)"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      scheduler_port=0, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local, \
            Client(local) as client:
        seen, start = [], time.monotonic()

        def first_in(i: int) -> None:
            seen.append(i)
            local.scale(0)  # the first result is in: every worker leaves

        runner = Runner(client, rerun=rerun if blockwise else None)
        with pytest.raises(DlsuiteInputError) as caught:
            runner.map(time.sleep, [(0,), (600,)], on_result=first_in)
        assert seen == [0] and time.monotonic() - start < 60
    way = rerun if blockwise else "run the same command again (finished outputs are kept)"
    assert str(caught.value) == (
        f"--scheduler {local.scheduler_address}: every worker left and none came back within "
        f"3 s (DLSUITE_SCHEDULER_TIMEOUT), 1 task(s) not done; start workers, then {way}")


def test_an_input_larger_than_the_smallest_workers_memory_is_refused(tmp_path):
    from dlsuite.scale.batch import _check_worker_memory

    item = type("Item", (), {"path": tmp_path / "big.tif"})()
    _check_worker_memory([(item, (1000, 1000))], True, 3 * 2**30, 4 * 2**30)
    with pytest.raises(DlsuiteInputError) as caught:
        _check_worker_memory([(item, (6000, 6000))], True, 3 * 2**30, 4 * 2**30)
    assert str(caught.value).startswith(
        f"{tmp_path / 'big.tif'}: 6000x6000 pixels need about 4.0 GiB to predict in one piece, "
        "3.0 GiB of memory can be used by the smallest worker (Dask pauses a worker at 75% of "
        "its memory limit, 4.0 GiB); predict it block by block")


@pytest.mark.slow
def test_cli_ctc_on_the_cluster_equals_single_process(run, data, threshold_model, cluster,
                                                      tmp_path):
    """``dlsuite predict --ctc --scheduler``: each video tracked after its prediction into
    ctc/NN_RES, numbered and written as single-process ``--ctc`` does (masks and
    res_track.txt byte for byte, sequences.csv); a 2D input among them gets no sequence; a
    rerun on the same folder predicts nothing and tracks the videos again."""
    import shutil

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(data["video"], inputs / "clip.tif")
    video = tifffile.imread(data["video"])
    tifffile.imwrite(inputs / "clip2.tif", video[::-1].copy(), photometric="minisblack")
    shutil.copy(next(data["inputs"].iterdir()), inputs / "frame.tif")
    single = api.predict_folder(run, inputs, tmp_path / "single", quiet=True, ctc=True,
                                weights=str(threshold_model))
    out = tmp_path / "dist"
    proc = run_cli("predict", str(run), str(inputs), "-o", str(out), "--weights",
                   str(threshold_model), "--ctc", "--scheduler", cluster.scheduler.address,
                   "--quiet", timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    (out / "ctc" / "01_RES" / "res_track.txt").unlink()  # as if stopped while tracking
    again = _bounded(api.predict_folder, run, inputs, out, quiet=True, ctc=True,
                     weights=str(threshold_model), scheduler=cluster.scheduler.address)
    assert all(r.get("skipped") for r in again.rows)  # resumed: tracked again, not predicted
    _same_outputs(single.out_dir, out, ["clip", "clip2", "frame"])
    files = sorted(p.relative_to(single.ctc_dir) for p in single.ctc_dir.rglob("*")
                   if p.is_file())
    assert [str(f) for f in files if f.parent.name.endswith("_RES")][:1] == ["01_RES/mask000.tif"]
    assert files == sorted(p.relative_to(out / "ctc") for p in (out / "ctc").rglob("*")
                           if p.is_file())
    for rel in files:
        assert (out / "ctc" / rel).read_bytes() == (single.ctc_dir / rel).read_bytes(), rel
    assert len(tifffile.imread(single.ctc_dir / "01_RES" / "mask000.tif").nonzero()[0]) > 0
    summary = json.loads((out / "predict.json").read_text())
    assert summary["ctc"] is True
    sequences = {r["name"]: r["sequence"] for r in summary["inputs"]}
    assert sequences == {r["name"]: r["sequence"] for r in single.rows}
    assert sorted(map(str, sequences.values())) == ["01", "02", "None"] and \
        sequences["frame"] is None


# --------------------------------------------------------------------------------------------
# OME-Zarr and block-wise prediction


def test_prepare_omezarr_refuses_colour_and_damaged_tiffs_with_one_line(data, run, tmp_path):
    """A TIFF whose third axis holds colour samples (a grey image saved as RGB) would become
    a video of 3-pixel-wide frames; a truncated TIFF failed part-way with an unexpected
    error and tifffile's own log lines. Both: exit 2, one line naming the file, nothing
    written."""
    frame = tifffile.imread(sorted(data["inputs"].iterdir())[0])
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([frame] * 3, -1), photometric="rgb")
    whole = (tmp_path / "rgb.tif").read_bytes()
    tifffile.imwrite(tmp_path / "plain.tif", frame)
    cut = (tmp_path / "plain.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(cut[: len(cut) // 2])
    for name, words in (("rgb.tif", "(axes YXS): a colour or channel axis"),
                        ("cut.tif", "damaged or truncated TIFF")):
        out = tmp_path / f"out-{name}"
        proc = run_cli("prepare", "ome-zarr", str(tmp_path / name), str(out))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[0].startswith(f"error: {tmp_path / name}") and words in proc.stderr, lines
        assert all(not line.startswith("error:") for line in lines[1:]), lines  # one error
        assert not out.exists()
        with pytest.raises(DataError, match=re.escape(words)):  # nor predicted block-wise
            api.predict_folder(run, tmp_path / name, tmp_path / f"p-{name}",
                               block_size=32, quiet=True)
    assert (tmp_path / "rgb.tif").read_bytes() == whole


def test_prepare_tiffs_to_omezarr_and_back_round_trip(data, tmp_path):
    """``dlsuite prepare ome-zarr`` / ``prepare tiff``: 2D and 2D+t TIFFs to OME-Zarr (axes,
    pixel size) and back, pixel for pixel."""
    from dlsuite.scale.omezarr import open_source

    src = tmp_path / "tiffs"
    src.mkdir()
    frame = tifffile.imread(sorted(data["inputs"].iterdir())[0])
    tifffile.imwrite(src / "frame.tif", frame, resolution=(1 / 0.5, 1 / 0.5))
    video = tifffile.imread(data["video"])
    tifffile.imwrite(src / "video.tif", video, photometric="minisblack")
    proc = run_cli("prepare", "ome-zarr", str(src), str(tmp_path / "zarr"))
    assert proc.returncode == 0, proc.stderr
    image = open_source(tmp_path / "zarr" / "frame.ome.zarr")
    assert image.shape == frame.shape and image.pixel_size == (0.5, 0.5)
    assert open_source(tmp_path / "zarr" / "video.ome.zarr").shape == video.shape
    proc = run_cli("prepare", "tiff", str(tmp_path / "zarr"), str(tmp_path / "back"), "-q")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert np.array_equal(tifffile.imread(tmp_path / "back" / "frame.tif"), frame)
    assert np.array_equal(tifffile.imread(tmp_path / "back" / "video.tif"), video)
    with tifffile.TiffFile(tmp_path / "back" / "frame.tif") as tif:
        x = tif.pages[0].tags["XResolution"].value
        assert x[1] / x[0] == pytest.approx(0.5)
    proc = run_cli("prepare", "ome-zarr", str(src), str(tmp_path / "zarr"))
    assert proc.returncode == 2  # the destination holds a conversion: --overwrite needed
    # one TIFF as SRC (a stitched image on its own): that file alone
    proc = run_cli("prepare", "ome-zarr", str(src / "video.tif"), str(tmp_path / "one"), "-q")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert [p.name for p in (tmp_path / "one").iterdir() if not p.name.startswith(".")] == [
        "video.ome.zarr"]
    assert np.array_equal(open_source(tmp_path / "one" / "video.ome.zarr").dask().compute(),
                          video)
    proc = run_cli("prepare", "ome-zarr", str(src / "nothing.tif"), str(tmp_path / "none"))
    assert proc.returncode == 2 and f"{src / 'nothing.tif'}: no such file or folder" in proc.stderr
    assert not (tmp_path / "none").exists()


def test_prepare_ome_zarr_of_a_dataset_folder_names_the_folders_to_convert(tmp_path):
    """A dataset folder holds its TIFFs in inputs/ and labels/: the error says so."""
    for sub in ("inputs", "labels"):
        (tmp_path / "set" / sub).mkdir(parents=True)
        tifffile.imwrite(tmp_path / "set" / sub / "a.tif", np.zeros((8, 8), np.uint16))
    proc = run_cli("prepare", "ome-zarr", str(tmp_path / "set"), str(tmp_path / "zarr"))
    assert proc.returncode == 2
    assert (f"{tmp_path / 'set'}: nothing to convert directly in this folder; its folders "
            "inputs/, labels/ hold some") in proc.stderr, proc.stderr
    assert not (tmp_path / "zarr").exists()


def test_prepare_ome_zarr_names_the_images_it_does_not_convert(tmp_path, caplog):
    """PNG and JPEG files beside the TIFFs used to be left out without a word, and a folder
    of them alone was "nothing to convert": both name them."""
    import logging

    import imageio.v3 as iio

    from dlsuite import api

    src = tmp_path / "src"
    src.mkdir()
    iio.imwrite(src / "b.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(src / "c.jpg", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError) as info:
        api.prepare_omezarr(src, tmp_path / "none")
    assert str(info.value).startswith(f"{src}: no TIFF to convert, only 2 image file(s) in "
                                      "other formats: b.png, c.jpg; convert them to TIFF")
    assert not (tmp_path / "none").exists()
    tifffile.imwrite(src / "a.tif", np.zeros((8, 8), np.uint16))
    with caplog.at_level(logging.WARNING, logger="dlsuite"):
        written = api.prepare_omezarr(src, tmp_path / "zarr")
    assert [p.name for p in written] == ["a.ome.zarr"]
    assert (f"{src}: 2 image file(s) that are not TIFFs are not converted: b.png, c.jpg"
            in caplog.text)


INTERRUPTED_CONVERSION = """
import os, signal, sys
from dlsuite.scale import omezarr
from dlsuite.scale.convert import tiffs_to_omezarr

signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest-xdist ignores it
def read_then_ctrl_c(self, *args):
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the first block is copied
    return real_read(self, *args)

real_read, omezarr.Source.read = omezarr.Source.read, read_then_ctrl_c
try:
    tiffs_to_omezarr(sys.argv[1], sys.argv[2])
except KeyboardInterrupt:
    print("interrupted")
"""


def test_an_interrupted_conversion_leaves_no_half_written_image(tmp_path):
    import subprocess
    import sys

    src = tmp_path / "tiffs"
    src.mkdir()
    tifffile.imwrite(src / "frame.tif", np.zeros((40, 50), np.uint16))
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_CONVERSION, str(src),
                           str(tmp_path / "zarr")], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["interrupted"], proc.stderr
    left = [p.name for p in (tmp_path / "zarr").iterdir()]
    assert not [n for n in left if n.endswith(".ome.zarr")], left  # neither .tmp-* nor whole


def _discs() -> np.ndarray:
    """A 90x94 uint16 image of bright discs (area > the chain's min_size 150) on a noisy
    background, several across the borders of 32-pixel blocks, two touching each other."""
    rng = np.random.default_rng(0)
    image = rng.normal(100, 5, (90, 94))
    yy, xx = np.mgrid[:90, :94]
    for cy, cx in [(32, 32), (10, 64), (50, 12), (64, 70), (80, 30), (45, 52), (16, 16),
                   (75, 85), (75, 62)]:  # the last two touch
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 8 ** 2] = 1000 + rng.normal(0, 5)
    return image.clip(0, 65535).astype(np.uint16)


@pytest.mark.slow
def test_blockwise_equals_untiled_and_labels_are_merged(run, data, threshold_model, cluster,
                                                        tmp_path):
    """OME-Zarr in, OME-Zarr out: probabilities block by block (blocks of 32 px, the run's
    halo) equal the untiled prediction within 1e-4; labels live under labels/instances with
    the pixel size; objects cut by block borders carry one id, ids are unique (1..N) and the
    objects are those of single-process prediction."""
    import zarr

    from dlsuite.scale.omezarr import write_image

    big = _discs()  # 90x94: not a multiple of the block size
    image = write_image(tmp_path / "in" / "big.ome.zarr", big, pixel_size=(0.25, 0.25),
                        unit="micrometer", chunk=40)
    untiled = api.predict(run, big, tile_size=None)
    blockwise = _bounded(api.predict, run, image, scheduler=cluster.scheduler.address,
                         block_size=32)
    assert blockwise.shape == untiled.shape
    np.testing.assert_allclose(blockwise, untiled, atol=1e-4)
    # the same through predict_folder into OME-Zarr, with labels, in this process
    out = tmp_path / "out"
    summary = api.predict_folder(run, image, out, weights=str(threshold_model), block_size=32,
                                 quiet=True)
    (tmp_path / "crop").mkdir()
    tifffile.imwrite(tmp_path / "crop" / "big.tif", big)
    single = api.predict_folder(run, tmp_path / "crop", tmp_path / "single", quiet=True,
                                weights=str(threshold_model), tile_size=None)
    root = zarr.open_group(str(out / "big.ome.zarr"), mode="r")
    meta = root.attrs.asdict().get("ome", root.attrs.asdict())
    scale = meta["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [1.0, 0.25, 0.25]
    labels = np.asarray(zarr.open_array(str(out / "big.ome.zarr" / "labels" / "instances" / "0"),
                                        mode="r")[...])
    truth = tifffile.imread(single.rows[0]["labels"])
    ids = np.unique(labels[labels > 0])
    assert summary.rows[0]["objects"] == len(ids) > 1 and list(ids) == list(
        range(1, len(ids) + 1))
    crossing = 0
    for value in ids:  # one block-wise id per object, the same pixels as single-process
        mask = labels == value
        ys, xs = np.nonzero(mask)
        crossing += (ys.min() // 32 != ys.max() // 32) or (xs.min() // 32 != xs.max() // 32)
        same = np.unique(truth[mask])
        assert len(same) == 1 and same[0] > 0 and np.array_equal(mask, truth == same[0])
    assert len(ids) == len(np.unique(truth[truth > 0]))
    assert crossing > 0, "no object crosses a block border: the test proves nothing"
    probs = np.asarray(zarr.open_array(str(out / "big.ome.zarr" / "0"), mode="r")[...])
    assert probs.shape == (2, 90, 94) and probs.dtype == np.float32
    # one block larger than the image: its chunks are the image's size, not the block's
    # (a 10^5-pixel block once made zarr allocate 112 GiB for the first chunk)
    whole = api.predict_folder(run, image, tmp_path / "whole", weights=str(threshold_model),
                               block_size=10**5, quiet=True)
    array = zarr.open_array(str(tmp_path / "whole" / "big.ome.zarr" / "0"), mode="r")
    assert tuple(array.chunks) == (2, 90, 94)
    assert whole.rows[0]["objects"] == summary.rows[0]["objects"]
    assert np.array_equal(np.asarray(zarr.open_array(str(
        tmp_path / "whole" / "big.ome.zarr" / "labels" / "instances" / "0"), mode="r")[...]) > 0,
        labels > 0)


@pytest.mark.slow
def test_chain_and_set_on_the_cluster_and_blockwise_as_in_one_process(
        run, data, threshold_model, cluster, tmp_path):
    """``--postprocess CHAIN.json`` and ``--set`` on the Dask and block-wise paths: the
    labels of single-process prediction with the same choice, recorded in predict.json; an
    override prediction may not change is exit 2 naming it, before anything is written."""
    from dlsuite.scale.omezarr import write_image

    chain = tmp_path / "chain.json"  # no fill_holes; the run's own chain has one
    chain.write_text(json.dumps(["argmax", {"name": "remove_small_objects", "min_size": 150},
                                 "label"]))
    keep_large = "postprocess[1].min_size=250"  # only the two touching discs stay (~400 px)
    big = _discs()
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "big.tif", big)
    single = api.predict_folder(run, tmp_path / "in", tmp_path / "single", quiet=True,
                                weights=str(threshold_model), tile_size=None,
                                postprocess=str(chain), overrides=[keep_large])
    assert single.rows[0]["objects"] == 1
    out = tmp_path / "dist"
    proc = run_cli("predict", str(run), str(tmp_path / "in"), "-o", str(out), "--weights",
                   str(threshold_model), "--tile-size", "none", "--postprocess", str(chain),
                   "--set", keep_large, "--scheduler", cluster.scheduler.address, "--quiet",
                   timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    _same_outputs(single.out_dir, out, ["big"])
    summary = json.loads((out / "predict.json").read_text())
    assert summary["chain"]["file"] == str(chain.resolve())
    assert [s["name"] for s in summary["chain"]["steps"]] == [
        "argmax", "remove_small_objects", "label"]
    assert summary["chain"]["steps"][1]["min_size"] == 250
    assert summary["overrides"] == {"postprocess[1].min_size": 250}
    with pytest.raises(DlsuiteInputError, match="other chain, overrides"):  # resume: same choice
        api.predict_folder(run, tmp_path / "in", out, weights=str(threshold_model),
                           tile_size=None, postprocess=str(chain), quiet=True,
                           scheduler=cluster.scheduler.address)
    # block-wise, OME-Zarr in and out, blocks of 32 px: the same object
    image = write_image(tmp_path / "zarr" / "big.ome.zarr", big, chunk=40)
    blocks = api.predict_folder(run, image, tmp_path / "blocks", weights=str(threshold_model),
                                block_size=32, quiet=True, postprocess=str(chain),
                                overrides=[keep_large])
    import zarr

    labels = np.asarray(zarr.open_array(str(tmp_path / "blocks" / "big.ome.zarr" / "labels" /
                                            "instances" / "0"), mode="r")[...])
    truth = tifffile.imread(single.rows[0]["labels"])
    assert blocks.rows[0]["objects"] == 1 and np.array_equal(labels > 0, truth > 0)
    assert json.loads((tmp_path / "blocks" / "predict.json").read_text())["overrides"] == {
        "postprocess[1].min_size": 250}
    proc = run_cli("predict", str(run), str(tmp_path / "in"), "-o", str(tmp_path / "bad"),
                   "--set", "model.n_filters=8", "--scheduler", cluster.scheduler.address,
                   timeout=TIMEOUT)
    assert proc.returncode == 2 and "model.n_filters" in proc.stderr, proc.stderr
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    """A tiny temporal run (unet_lstm, windows of 2 frames) and a 5-frame video."""
    from dlsuite.data.example import write_example_videos

    root = tmp_path_factory.mktemp("scale-lstm")
    videos = write_example_videos(root, n_videos=2, frames=5, size=48, seed=2)
    cfg = {**TINY, "name": "lstm", "output_dir": str(root / "run"),
           "model": {"name": "unet_lstm", "n_filters": 4, "pools": 2, "time_windows": 2},
           "data": {"train": str(videos["videos"]), "val": str(videos["videos"]), "test": None}}
    run_dir = Path(api.train(cfg, quiet=True).run_dir)
    return run_dir, tifffile.imread(videos["inputs"][0])


@pytest.mark.slow
def test_temporal_model_blockwise_equals_untiled(lstm_run, cluster, tmp_path, monkeypatch):
    """A 2D+t OME-Zarr video and a temporal model, blocks of 16 px in y/x: on the cluster
    (each block over the whole time axis) and in this process with runs of 2 frames per task
    (each reading the frame before as the window's context), the probabilities equal untiled
    single-process prediction within 1e-4; labels are written per frame."""
    import zarr

    from dlsuite.scale import blocks
    from dlsuite.scale.omezarr import write_image

    run_dir, video = lstm_run
    video = video[:, 3:43, 2:46]  # 40x44: not a multiple of the block size
    image = write_image(tmp_path / "in" / "clip.ome.zarr", video, chunk=24)
    untiled = api.predict(run_dir, video, tile_size=None)
    assert untiled.shape == (5, 40, 44, 2)
    on_cluster = _bounded(api.predict, run_dir, image, scheduler=cluster.scheduler.address,
                          block_size=16)
    np.testing.assert_allclose(on_cluster, untiled, atol=1e-4)
    monkeypatch.setattr(blocks, "FRAMES_PER_TASK", 2)
    summary = api.predict_folder(run_dir, image, tmp_path / "out", block_size=16, quiet=True)
    assert summary.rows[0]["blocks"] == 5 * 3 * 3
    out = tmp_path / "out" / "clip.ome.zarr"
    probs = np.asarray(zarr.open_array(str(out / "0"), mode="r")[...])  # t, c, y, x
    np.testing.assert_allclose(np.moveaxis(probs, 1, -1), untiled, atol=1e-4)
    labels = np.asarray(zarr.open_array(str(out / "labels" / "instances" / "0"), mode="r")[...])
    assert labels.shape == (5, 40, 44) and labels.dtype == np.uint32


# --------------------------------------------------------------------------------------------
# docs/scale.md


def _doc_commands() -> list[str]:
    """The command lines of the ```bash blocks of docs/scale.md."""
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "scale.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_blockwise_and_cluster_outputs_are_checked_apart_from_the_input_first(run, data,
                                                                             tmp_path):
    """Block-wise and cluster prediction check ``-o`` in the single-process order, before
    the run is opened: an ``-o`` that is the input folder is named as the input (not as a
    folder dlsuite did not write), and nothing is written into it."""
    import shutil

    folder = tmp_path / "inputs"
    shutil.copytree(data["inputs"], folder)
    before = sorted(p.name for p in folder.iterdir())
    for options in ({"block_size": 32}, {"scheduler": "local:1"}):
        with pytest.raises(DlsuiteInputError, match=re.escape(str(folder)) + ".* is the input"):
            api.predict_folder(run, folder, folder, quiet=True, **options)
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.slow
def test_docs_scale_bash_blocks_run_as_written(run, data, tmp_path):
    """Every ```bash block of docs/scale.md, with its placeholders replaced by real paths, in
    a CLI subprocess (``--scheduler local:2`` starts its own cluster)."""
    import shlex

    commands = _doc_commands()
    assert len(commands) >= 4 and all(c.startswith("dlsuite ") for c in commands)
    tiffs = tmp_path / "tiffs"
    tiffs.mkdir()
    tifffile.imwrite(tiffs / "big.tif", tifffile.imread(data["big"]))
    places = {"RUN_DIR": str(run), "IMAGES": str(data["inputs"]), "TIFFS": str(tiffs),
              "ZARR": str(tmp_path / "zarr"), "OUT": str(tmp_path / "out")}
    for command in commands:
        args = [places.get(a.split("/")[0], a.split("/")[0]) + a[len(a.split("/")[0]):]
                for a in shlex.split(command)[1:]]
        proc = run_cli(*args, timeout=TIMEOUT)
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
    out = tmp_path / "out"
    assert len(list(out.glob("labels/*.tif"))) == 6  # the --scheduler local:2 block
    assert (out / "tiffs" / "big.tif").is_file()
    assert (out / "pred" / "big.ome.zarr" / "labels" / "instances").is_dir()


USIIGACI = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "usiigaci_t98g_phc"


@pytest.mark.benchmark
@pytest.mark.skipif(not (USIIGACI / "annotated").is_dir(), reason=f"real data {USIIGACI} absent")
def test_scale_benchmark_tiny_budget_reports_every_figure(tmp_path):
    """``benchmarks/scale.py`` on 4 real frames and a 2048² OME-Zarr image (minutes)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "scale.py"
    proc = subprocess.run([sys.executable, str(script), "--frames", "4", "--sizes", "2048",
                           "--work", str(tmp_path / "work"), "--json", str(tmp_path / "f.json")],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["a_throughput"]["labels_identical"] is True
    assert figures["a_throughput"]["dask2_img_s"] > 0
    memory = figures["b_memory"]["2048"]
    assert memory["client_peak_gb"] > 0 and len(memory["worker_peak_gb"]) == 2
    assert "load average" in figures["uptime_start"]
