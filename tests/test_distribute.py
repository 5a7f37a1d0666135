"""train.distribute: config checks, cluster discovery, per-worker shards, and real
distributed training on this CPU-only machine: MirroredStrategy over 2 logical CPU devices
(against a one-device run of the same global batch and seed) and MultiWorkerMirroredStrategy
with two worker processes on 127.0.0.1.

Training runs in subprocesses (tests/_distributed_worker.py): logical devices and the
collective runtime must be set up before TensorFlow starts, which would disturb other tests
in this process.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli
from dlsuite.config import parse_config
from dlsuite.errors import DlsuiteInputError

WORKER = Path(__file__).with_name("_distributed_worker.py")
#: |loss(mirrored) - loss(one device)| allowed per epoch, relative: the same rows and weights,
#: only the order of float32 sums differs (measured: ~1e-7).
LOSS_RTOL = 1e-5


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    from dlsuite.data.example import write_example_videos

    root = tmp_path_factory.mktemp("data")
    return write_example_videos(root, n_videos=2, frames=4, size=32, seed=0)["videos"]


def tiny(data: Path, out: Path, *, epochs: int = 1, batch: int = 2, **distribute) -> dict:
    """A base-4, 2-pool U-Net on 32x32 patches, 2 steps an epoch, no TensorBoard / W&B."""
    return {
        "name": "tiny", "output_dir": str(out), "seed": 3,
        "data": {"train": str(data), "val": str(data)},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": batch, "steps_per_epoch": 2},
        "train": {"epochs": epochs, "tensorboard": {"enabled": False},
                  "distribute": distribute or {"strategy": "none"}},
        "wandb": {"mode": "disabled"},
    }


def write(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config))
    return path


def history(run: Path) -> list[dict]:
    with (run / "history.csv").open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as fh:
        fh.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                      else None)
    return out


# ---- the config section (no TensorFlow) -----------------------------------------------------


def test_validate_refuses_a_batch_the_named_devices_do_not_divide(tmp_path, videos):
    config = write(tmp_path / "c.json", tiny(videos, tmp_path / "run", batch=3,
                                             strategy="mirrored", devices=["GPU:0", "GPU:1"]))
    proc = run_cli("config", "validate", str(config))
    assert proc.returncode == 2, proc.stderr
    assert "$.datagen.batch_size: 3 (the global batch) is not divisible by the 2 replicas" \
        in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("distribute, where, needle", [
    ({"strategy": "none", "devices": ["GPU:0"]}, "$.train.distribute.devices",
     "only strategy 'mirrored' uses"),
    ({"strategy": "mirrored", "devices": ["GPU:0", "TPU:1"]}, "$.train.distribute.devices[1]",
     "'TPU:1' is not a device name"),
    ({"strategy": "mirrored", "devices": ["gpu:0", "/device:GPU:0"]},
     "$.train.distribute.devices[1]", "named twice"),
    ({"strategy": "multi_gpu"}, "$.train.distribute.strategy", "multi_worker"),
])
def test_bad_distribute_sections_are_refused_at_their_path(tmp_path, videos, distribute, where,
                                                           needle):
    cfg = tiny(videos, tmp_path / "run")
    cfg["train"]["distribute"] = distribute
    with pytest.raises(DlsuiteInputError) as info:
        parse_config(cfg)
    assert "1 config error(s)" in str(info.value)
    assert where in str(info.value) and needle in str(info.value)


def test_a_divisible_batch_on_named_devices_is_valid(tmp_path, videos):
    parse_config(tiny(videos, tmp_path / "run", batch=2, strategy="mirrored",
                      devices=["GPU:0", "/gpu:1"]))


def test_cluster_source_reads_tf_config_or_slurm_and_refuses_anything_else():
    from dlsuite.distribute import cluster_source

    good = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert cluster_source({"TF_CONFIG": json.dumps(good)}) == "tf_config"
    assert cluster_source({"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2"}) == "slurm"
    with pytest.raises(DlsuiteInputError, match="needs a cluster: set TF_CONFIG.*srun"):
        cluster_source({})
    with pytest.raises(DlsuiteInputError, match="needs a cluster"):  # one task: no cluster
        cluster_source({"SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"})
    with pytest.raises(DlsuiteInputError, match="needs a cluster"):  # the batch script itself
        cluster_source({"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_JOB_ID": "7"})
    with pytest.raises(DlsuiteInputError, match="TF_CONFIG: not a usable cluster spec"):
        cluster_source({"TF_CONFIG": "{not json"})
    bad = {**good, "task": {"type": "worker", "index": 2}}
    with pytest.raises(DlsuiteInputError, match="task 'worker' 2 is not in the cluster"):
        cluster_source({"TF_CONFIG": json.dumps(bad)})


def test_multi_worker_outside_a_cluster_exits_2_before_writing(tmp_path, videos):
    out = tmp_path / "run"
    config = write(tmp_path / "c.json", tiny(videos, out, strategy="multi_worker"))
    env = {k: v for k, v in os.environ.items()
           if k != "TF_CONFIG" and not k.startswith("SLURM_")}
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "train", str(config)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "'multi_worker' needs a cluster" in proc.stderr
    assert not out.exists()


# ---- the data streams of the workers ----------------------------------------------------------


def test_worker_shards_draw_disjoint_samples_covering_the_data(tmp_path):
    """Each worker's training stream takes only its own samples; together all of them."""
    from dlsuite.data.example import write_example_videos
    from dlsuite.data.pipeline import PatchMaker, PatchSource, load_plugins, train_batches
    from dlsuite.registry import get_registry

    data = write_example_videos(tmp_path, n_videos=5, frames=2, size=32, seed=1)["videos"]
    config = parse_config(tiny(data, tmp_path / "run")).config
    plugins = load_plugins(config, get_registry())
    maker = PatchMaker(plugins, (32, 32), None)

    class Recording(PatchSource):
        def get(self, index):
            self.drawn.add(index)
            return super().get(index)

    drawn = []
    for k in range(2):
        source = Recording(str(data), "auto", plugins.normalizer, (32, 32))
        source.drawn = set()
        stream = train_batches(source, maker, 1, 1, seed=3, temporal=False, shard=(k, 2))
        for _ in range(12):
            next(stream)
        drawn.append(source.drawn)
    assert drawn[0] and drawn[1] and not drawn[0] & drawn[1]
    assert drawn[0] | drawn[1] == set(range(5))


def test_split_rows_cuts_each_batch_into_consecutive_replica_pieces():
    from dlsuite.data.distributed import split_rows

    batch = (np.arange(8).reshape(8, 1), -np.arange(8).reshape(8, 1))
    pieces = list(split_rows([batch], 4, first=2, count=2))
    assert [p[0].ravel().tolist() for p in pieces] == [[4, 5], [6, 7]]
    assert [p[1].ravel().tolist() for p in pieces] == [[-4, -5], [-6, -7]]


# ---- real distributed training ------------------------------------------------------------


def _train(*args: str, env: dict | None = None, cli: bool = False) -> subprocess.Popen:
    """``_distributed_worker.py ARGS`` (or, with ``cli``, ``dlsuite ARGS``) in a process."""
    full = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    full.pop("WANDB_MODE", None)
    program = ["-m", "dlsuite.cli"] if cli else [str(WORKER)]
    return subprocess.Popen([sys.executable, *program, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full)


def _finish(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int, str, str]]:
    out = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=timeout)
            out.append((proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return out


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_one_device_and_resumes(tmp_path, videos):
    """One epoch, then a resumed second one, with and without MirroredStrategy over 2 logical
    CPU devices: both log the same loss (LOSS_RTOL), the mirrored run logs 2 replicas."""
    one, two = tmp_path / "one", tmp_path / "two"
    mirrored = {"strategy": "mirrored", "devices": ["CPU:0", "CPU:1"]}
    configs = [write(tmp_path / "one1.json", tiny(videos, one)),
               write(tmp_path / "two1.json", tiny(videos, two, **mirrored)),
               write(tmp_path / "one2.json", tiny(videos, one, epochs=2)),
               write(tmp_path / "two2.json", tiny(videos, two, epochs=2, **mirrored))]
    proc = _train(str(configs[0]), str(configs[1]), f"resume:{configs[2]}",
                  f"resume:{configs[3]}", "--logical-cpus", "2")
    [(code, stdout, stderr)] = _finish([proc], timeout=900)
    assert code == 0, stderr[-3000:]
    assert stdout.count("finished:") == 4
    log = (two / "run.log").read_text()
    assert "distribution: mirrored, 2 replicas on CPU:0, CPU:1" in log
    assert "global batch 2 images, 1 per replica" in log
    assert "resumed from epoch 1" in log
    a, b = history(one), history(two)
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b] == [1, 2]
    for ra, rb in zip(a, b):
        for key in ("loss", "val_loss"):
            assert rb[key] == pytest.approx(ra[key], rel=LOSS_RTOL), (key, ra, rb)


@pytest.mark.slow
def test_ctrl_c_ends_a_worker_waiting_for_a_peer_that_never_starts(tmp_path, videos):
    """A TF_CONFIG of two workers with only one started: TensorFlow waits in C++ for the
    other, holding the GIL, where no Python handler runs; Ctrl-C did nothing. It now takes
    its default action there (exit by SIGINT; 130 if it comes before the wait), and nothing
    is written. (SIGTERM is still caught there by TensorFlow itself.)"""
    import signal
    import time

    from conftest import sigint_default

    out = tmp_path / "run"
    config = write(tmp_path / "c.json", tiny(videos, out, strategy="multi_worker"))
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                  "task": {"type": "worker", "index": 0}})}
    proc = subprocess.Popen([sys.executable, "-m", "dlsuite.cli", "train", str(config), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=sigint_default)
    try:
        time.sleep(20)  # TensorFlow imported, the cluster being waited for
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode in (-2, 130), proc.returncode
    assert not out.exists()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _workers(args: list[str], tmp_path: Path, scratch: Path, cli: bool) -> list[str]:
    """Two worker processes of one TF_CONFIG cluster on 127.0.0.1 (free ports): ``dlsuite
    ARGS`` (``cli``) or the worker script on ARGS saving its weights; both must finish with
    exit code 0; returns their stdout."""
    addresses = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        save = [] if cli else ["--save-weights", str(tmp_path / f"w{index}.weights.h5")]
        procs.append(_train(*args, *save, cli=cli,
                            env={"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)}))
    results = _finish(procs, timeout=900)
    for code, _stdout, stderr in results:
        assert code == 0, stderr[-3000:]
    return [stdout for _code, stdout, _stderr in results]


def _assert_same_weights(tmp_path: Path, out: Path, epoch: int) -> None:
    """The final weights the two workers of :func:`_workers` saved are identical, and equal
    to those the chief wrote in the resumable state of ``epoch``."""
    chief, other = (h5_arrays(tmp_path / f"w{i}.weights.h5") for i in (0, 1))
    written = h5_arrays(out / "checkpoints" / "resume" / f"epoch_{epoch:04d}" /
                        "model.weights.h5")
    assert chief.keys() == other.keys() and chief and set(written) & set(chief)
    for key in chief:
        np.testing.assert_array_equal(chief[key], other[key], err_msg=key)
        if key in written:
            np.testing.assert_array_equal(chief[key], written[key], err_msg=key)


@pytest.mark.slow
def test_two_workers_on_localhost_train_in_step_and_only_the_chief_writes(tmp_path, videos):
    """Two `dlsuite train` processes (as docs/scale.md shows) train epoch 1, then two new
    ones resume for epoch 2 and save their final weights."""
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    first = write(tmp_path / "c1.json", tiny(videos, out, strategy="multi_worker"))
    config = write(tmp_path / "c2.json", tiny(videos, out, epochs=2, strategy="multi_worker"))
    _workers(["train", str(first)], tmp_path, scratch, cli=True)
    assert list(scratch.iterdir()) == []  # the other worker's scratch run was removed
    assert [r["epoch"] for r in history(out)] == [1]
    for stdout in _workers([f"resume:{config}"], tmp_path, scratch, cli=False):
        assert f"finished: {out}" in stdout
    assert list(scratch.iterdir()) == []
    log = (out / "run.log").read_text()
    assert "distribution: multi_worker, 2 replicas, 2 workers, this is worker 0 (chief)" in log
    assert "resumed from epoch 1" in log
    assert [r["epoch"] for r in history(out)] == [1, 2]
    assert (out / "checkpoints" / "last.keras").is_file()
    _assert_same_weights(tmp_path, out, epoch=2)


@pytest.mark.slow
def test_two_workers_recover_from_a_collapse_together(tmp_path):
    """train.collapse_recovery under multi_worker: each worker keeps its own copy of the
    healthy weights and decides from the same all-reduced logs. A real 8-filter U-Net
    collapses when epoch 8 begins (tests/_dead_relus.py); both workers put back epoch 7 at
    half the rate, train on, and end with the same weights, which the chief wrote."""
    from _dead_relus import EPOCHS as epochs, KILLED_EPOCH as killed, LR as lr, collapse_config
    from test_lr_warmup import epoch_rates

    cfg = collapse_config(tmp_path, "collapse", distribute={"strategy": "multi_worker"})
    out, scratch = Path(cfg["output_dir"]), tmp_path / "scratch"
    scratch.mkdir()
    config = write(tmp_path / "c.json", cfg)
    for stdout in _workers([str(config), "--kill-relus-at", str(killed)], tmp_path, scratch,
                           cli=False):
        assert f"finished: {out}" in stdout
    jaccard = [float(r["jaccard"]) for r in history(out)]
    peak = max(jaccard[:killed - 1])
    assert peak >= 0.3 and jaccard[killed - 1] < 0.25 * peak, jaccard  # it collapsed
    assert min(jaccard[killed:]) >= 0.8 * peak, jaccard  # and trained on
    assert epoch_rates(out)[killed:] == pytest.approx([lr / 2] * (epochs - killed))
    log = (out / "run.log").read_text()
    assert log.count("recovery 1 of 3") == 1 and f"epoch {killed}: jaccard fell to" in log
    state = json.loads((out / "checkpoints/resume/state.json").read_text())
    assert state["callbacks"]["CollapseRecovery"] == {"recoveries": 1}
    _assert_same_weights(tmp_path, out, epoch=epochs)


@pytest.mark.slow
def test_two_workers_refuse_a_batch_their_replicas_do_not_divide_before_writing(tmp_path):
    """The replicas of multi_worker are known only once the cluster is up: both workers
    exit 2 naming datagen.batch_size, and neither writes anything."""
    from dlsuite.data.example import write_example_videos

    data = write_example_videos(tmp_path / "d", n_videos=3, frames=2, size=32, seed=0)["videos"]
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    config = write(tmp_path / "c.json", tiny(data, out, batch=3, strategy="multi_worker"))
    addresses = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = [_train("train", str(config), cli=True, env={
        "TMPDIR": str(scratch), "TF_CONFIG": json.dumps(
            {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    for code, _stdout, stderr in _finish(procs, timeout=600):
        assert code == 2, stderr[-3000:]
        assert ("$.datagen.batch_size: 3 (the global batch) is not divisible by the 2 replicas "
                "of train.distribute.strategy 'multi_worker'") in stderr
        assert "Traceback" not in stderr
    assert not out.exists() and list(scratch.iterdir()) == []


def test_multi_worker_is_refused_when_keras_lacks_what_the_workaround_patches(monkeypatch):
    """A Keras whose TF trainer no longer has the patched internals: a clear refusal naming
    the Keras issue, not a failure (or a hang) in the middle of fit."""
    import keras.src.backend.tensorflow.trainer as kt

    from dlsuite.distribute import patch_keras_for_multi_worker

    monkeypatch.delattr(kt, "_collective_all_reduce_multi_worker")
    with pytest.raises(DlsuiteInputError, match=r"keras-team/keras#20585.*use 'mirrored'"):
        patch_keras_for_multi_worker()
