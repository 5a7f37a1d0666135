"""Issue 17 benchmarks, side by side in one run (a tiny model trained here first):

(a) images/s of ``dlsuite predict`` on 40 real 1022x1024 phase-contrast frames
    (``../shared/data/usiigaci_t98g_phc/annotated/set*/raw.tif``): one process vs a local Dask
    cluster of 2 single-threaded worker processes (``--scheduler local:2``). Steady state:
    both warmed up first (model loaded; workers started and holding the model), then the 40
    frames timed. Goal: >= 1.6x.
(b) peak RSS of the client and of each worker while predicting an OME-Zarr image block by
    block on ``local:2`` (16384x16384 and 8192x8192 uint16, tiled from the real frames),
    measured in a fresh client process (``ru_maxrss``; workers report theirs before the
    cluster closes). Goal: < 3 GB each, independent of the image size.
(c) ``benchmarks/_scale_mirrored.py``'s ``measure_mirrored() -> dict`` (tf.distribute
    figures, another helper's part), included when that file exists.

The machine is shared: ``uptime`` is printed with the figures.

Run: python benchmarks/scale.py [--frames 40] [--sizes 8192 16384] [--work DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "usiigaci_t98g_phc" / "annotated"
TINY = {"model": {"name": "unet", "n_filters": 8, "pools": 2},
        "datagen": {"patch_size": [128, 128], "batch_size": 4, "steps_per_epoch": 4,
                    "normalization": {"name": "percentile", "low": 0.1, "high": 99.9}},
        "train": {"epochs": 1}, "inference": {"tile_size": 512, "halo": "auto"},
        "wandb": {"mode": "disabled"}, "seed": 0}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def frames(n: int, work: Path) -> Path:
    """``work/frames/raw_NN.tif``: links to the first ``n`` real annotated frames."""
    sets = sorted(DATA.glob("set*/raw.tif"), key=lambda p: int(p.parent.name[3:]))[:n]
    if len(sets) < n:
        sys.exit(f"{DATA}: {len(sets)} frames found, {n} needed (../shared/data is absent?)")
    folder = work / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    for k, src in enumerate(sets):
        link = folder / f"raw_{k:02d}.tif"
        if not link.exists():
            link.symlink_to(src)
    return folder


def train(work: Path) -> Path:
    """A tiny unet trained for 1 epoch of 4 steps on 8 real frames (frames layout)."""
    import tifffile

    from dlsuite import api

    data = work / "train"
    if not (data / "inputs").is_dir():
        (data / "inputs").mkdir(parents=True)
        (data / "labels").mkdir(parents=True)
        for k, src in enumerate(sorted(DATA.glob("set*/raw.tif"))[:8]):
            import imageio.v3 as iio

            tifffile.imwrite(data / "inputs" / f"raw_{k:03d}.tif", tifffile.imread(src))
            labels = iio.imread(src.parent / "instances_ids.png")
            tifffile.imwrite(data / "labels" / f"instance_ids_{k:03d}.tif",
                             labels.astype(np.uint16))
    cfg = {**TINY, "name": "scale-bench", "output_dir": str(work / "run"),
           "data": {"train": str(data), "val": str(data), "test": None, "layout": "frames"}}
    if (work / "run" / "checkpoints").is_dir():
        return work / "run"
    return Path(api.train(cfg, quiet=True).run_dir)


def throughput(run: Path, inputs: Path, work: Path) -> dict:
    """(a): steady-state images/s, one process vs local:2."""
    from dlsuite import api
    from distributed import get_task_stream

    from dlsuite.scale.cluster import connect, worker_settings

    n = len(list(inputs.iterdir()))
    warm = work / "warm"
    warm.mkdir(exist_ok=True)
    for p in sorted(inputs.iterdir())[:2]:
        if not (warm / p.name).exists():
            (warm / p.name).symlink_to(p.resolve())

    def usage(client) -> np.ndarray:
        """(user s, system s, minor page faults) of this process or summed over the workers."""
        if client is None:
            return np.asarray(_usage())
        return np.sum([np.asarray(u) for u in client.run(_usage).values()], axis=0)

    machine_cores: dict = {}  # cores the whole machine kept busy during each timed run

    def timed(out: str, client=None, **kw) -> tuple[float, float, np.ndarray]:
        """(wall seconds, CPU seconds, (user, sys, faults)) of this process or the workers."""
        shutil.rmtree(work / out, ignore_errors=True)
        before, machine = usage(client), _machine_busy_s()
        start = time.perf_counter()
        api.predict_folder(run, inputs, work / out, quiet=True, **kw)
        wall = time.perf_counter() - start
        used = usage(client) - before
        machine_cores[out] = round((_machine_busy_s() - machine) / wall, 2)
        return wall, float(used[0] + used[1]), used

    shutil.rmtree(work / "warm-out", ignore_errors=True)
    api.predict_folder(run, warm, work / "warm-out", quiet=True)  # model loaded, TF warm
    single, single_cpu, single_use = timed("single")
    started = time.perf_counter()
    with connect("local:2") as client:
        client.wait_for_workers(2)
        cluster_start = time.perf_counter() - started
        address = client.scheduler.address
        shutil.rmtree(work / "warm-out2", ignore_errors=True)
        api.predict_folder(run, warm, work / "warm-out2", quiet=True, scheduler=address)
        client.run(lambda: None)
        with get_task_stream(client=client) as stream:
            dist, dist_cpu, dist_use = timed("dist", client, scheduler=address)
        settings = list(client.run(worker_settings).values())
    tasks = _task_busy(stream.data, dist)
    identical = all(
        np.array_equal(*(_read(work / d / "labels" / p.name) for d in ("single", "dist")))
        for p in sorted(inputs.iterdir()))
    return {"frames": n, "single_s": round(single, 2), "single_img_s": round(n / single, 3),
            "dask2_s": round(dist, 2), "dask2_img_s": round(n / dist, 3),
            "speedup": round(single / dist, 2), "goal": ">= 1.6",
            # CPU seconds per image and cores kept busy (CPU / wall): on a machine whose
            # cores are taken by others, both modes get the same share and the speedup shows
            # the load, not the parallelism
            "single_cpu_s_per_img": round(single_cpu / n, 2),
            "dask2_cpu_s_per_img": round(dist_cpu / n, 2),
            "single_cores_used": round(single_cpu / single, 2),
            "dask2_cores_used": round(dist_cpu / dist, 2),
            # user / system CPU-s and page faults per image: the nanny's malloc setting showed
            # as 3x the faults and system time (docs/scale.md)
            "single_user_sys_faults_per_img": [round(float(v) / n, 3) for v in single_use],
            "dask2_user_sys_faults_per_img": [round(float(v) / n, 3) for v in dist_use],
            "dask2_worker_settings": settings,
            "cluster_start_s": round(cluster_start, 1), "labels_identical": identical,
            "machine_cores_used": machine_cores,
            # Dask's task stream: where the workers' wall time went
            **tasks}


def _task_busy(records: list, wall: float) -> dict:
    """From Dask task-stream records of the timed run: seconds per task (mean), the share
    of ``wall`` each worker spent computing tasks, and the time before the first task
    started and after the last one ended (the client's own part of the run)."""
    spans = [(r["worker"], ss["start"], ss["stop"]) for r in records
             for ss in r.get("startstops", ()) if ss.get("action") == "compute"]
    if not spans:
        return {"dask2_tasks": 0}
    first, last = min(s for _, s, _ in spans), max(e for _, _, e in spans)
    busy: dict = {}
    for worker, start, stop in spans:
        busy[worker] = busy.get(worker, 0.0) + stop - start
    return {"dask2_tasks": len(spans),
            "dask2_task_s_mean": round(sum(e - s for _, s, e in spans) / len(spans), 3),
            "dask2_worker_busy_share": [round(b / wall, 2) for b in sorted(busy.values())],
            "dask2_tasks_span_s": round(last - first, 2),
            "dask2_outside_tasks_s": round(wall - (last - first), 2)}


def _usage() -> tuple[float, float, int]:
    """User and system CPU seconds of this process (all its threads), minor page faults."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent outside idle and iowait since boot
    (``/proc/stat``): with the per-process figures it shows who else used the cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _read(path: Path):
    import tifffile

    return tifffile.imread(path)


def make_big(path: Path, size: int, inputs: Path) -> Path:
    """An OME-Zarr ``size``x``size`` uint16 image tiled from the real frames, written block by
    block (never whole in memory)."""
    import tifffile
    import zarr

    from dlsuite.scale.omezarr import _create_image

    if path.exists():
        return path
    tiles = [tifffile.imread(p)[:1016, :1016] for p in sorted(inputs.iterdir())[:8]]
    root = zarr.open_group(str(path), mode="w")
    arr = _create_image(root, "yx", (size, size), (1016, 1016), "uint16", (0.65, 0.65),
                        "micrometer", path.name)
    k = 0
    for y in range(0, size, 1016):
        for x in range(0, size, 1016):
            tile = tiles[k % len(tiles)]
            k += 1
            arr[y:y + 1016, x:x + 1016] = tile[:min(1016, size - y), :min(1016, size - x)]
    return path


_RSS_CHILD = r"""
import json, resource, sys, time
from dlsuite.scale.cluster import connect
from dlsuite import api
run, image, out, labels = sys.argv[1:5]
def peak():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if __name__ == "__main__":
    with connect("local:2") as client:
        client.wait_for_workers(2)
        start = time.perf_counter()
        summary = api.predict_folder(run, image, out, quiet=True, block_size=1024,
                                     scheduler=client.scheduler.address,
                                     postprocess=labels == "True")
        seconds = time.perf_counter() - start
        workers = sorted(client.run(peak).values())
    print(json.dumps({"client_peak_bytes": peak(), "worker_peak_bytes": workers,
                      "seconds": round(seconds, 1), "objects": summary.rows[0]["objects"],
                      "blocks": summary.rows[0]["blocks"]}))
"""


def _peak_rss(p) -> int:
    """Peak RSS in bytes of a psutil process so far: Linux's VmHWM, else the current RSS."""
    try:
        with open(f"/proc/{p.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return p.memory_info().rss


def _tree_rss(proc) -> dict:
    """Peak RSS so far in bytes of ``proc`` and every descendant, by pid (psutil, a
    distributed dependency)."""
    import psutil

    out = {}
    try:
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                if "resource_tracker" not in " ".join(p.cmdline()):
                    out[p.pid] = (_peak_rss(p), " ".join(p.cmdline()[:3]))
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return out


def memory(run: Path, inputs: Path, work: Path, sizes, budget: float, labels: bool) -> dict:
    """(b): peak RSS of the client and each worker, per image size, in fresh processes: the
    processes report ``ru_maxrss`` at the end; their peak RSS (VmHWM) is also read every
    0.5 s, so a run stopped at ``budget`` seconds still gives its peaks so far (partial)."""
    script = work / "rss_child.py"
    script.write_text(_RSS_CHILD)
    out = {}
    gb = 1024 ** 3
    for size in sizes:
        image = make_big(work / f"big{size}.ome.zarr", size, inputs)
        dest = work / f"big{size}-out"
        shutil.rmtree(dest, ignore_errors=True)
        cmd = [sys.executable, str(script), str(run), str(image), str(dest), str(labels)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peaks: dict = {}
        start = time.monotonic()
        while proc.poll() is None and time.monotonic() - start < budget:
            for pid, (rss, cmdline) in _tree_rss(proc).items():
                old = peaks.get(pid, (0, ""))[0]
                peaks[pid] = (max(old, rss), cmdline)
            time.sleep(0.5)
        partial = proc.poll() is None
        if partial:
            import psutil

            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
        stdout, stderr = proc.communicate()
        workers = [rss for pid, (rss, cmd) in peaks.items() if pid != proc.pid
                   and "-c" in cmd.split()]  # multiprocessing spawn children
        chunks = dest / image.name / "0" / "c"
        done = sum(1 for c in chunks.rglob("*") if c.is_file()) if chunks.exists() else 0
        entry = {"sampled_client_peak_gb": round(peaks.get(proc.pid, (0, ""))[0] / gb, 2),
                 "sampled_worker_peak_gb": [round(b / gb, 2) for b in sorted(workers)],
                 "seconds": round(time.monotonic() - start, 1), "labels": labels,
                 "goal": "< 3 GB each"}
        if partial:
            entry["partial"] = (f"stopped at the {budget:.0f} s budget with {done} of "
                                f"{-(-size // 1024) ** 2} probability blocks written")
        elif proc.returncode:
            entry["error"] = stderr.strip().splitlines()[-1:]
        else:
            res = json.loads(stdout.strip().splitlines()[-1])
            entry.update({"client_peak_gb": round(res["client_peak_bytes"] / gb, 2),
                          "worker_peak_gb": [round(b / gb, 2) for b in res["worker_peak_bytes"]],
                          "blocks": res["blocks"], "objects": res["objects"]})
        out[size] = entry
        shutil.rmtree(dest, ignore_errors=True)
    return out


def mirrored() -> dict | None:
    """(c): the tf.distribute figures of ``benchmarks/_scale_mirrored.py``, if present."""
    path = HERE / "_scale_mirrored.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_scale_mirrored", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.measure_mirrored()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="*", default=[8192, 16384])
    parser.add_argument("--work", type=Path, default=None, help="work folder (kept)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c"])
    parser.add_argument("--budget", type=float, default=3600,
                        help="seconds per (b) image before it is stopped (peaks so far kept)")
    parser.add_argument("--no-labels", action="store_true",
                        help="(b): probabilities only (no post-processing, no label merge)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dlsuite-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    figures = {"uptime_start": uptime(), "cpus": os.cpu_count()}
    inputs = frames(args.frames, work)
    t = time.perf_counter()
    run = train(work)
    figures["train_s"] = round(time.perf_counter() - t, 1)
    if "a" not in args.skip:
        figures["a_throughput"] = throughput(run, inputs, work)
        print(json.dumps({"a_throughput": figures["a_throughput"]}), flush=True)
    if "b" not in args.skip:
        figures["b_memory"] = memory(run, inputs, work, args.sizes, args.budget,
                                     not args.no_labels)
        print(json.dumps({"b_memory": figures["b_memory"]}), flush=True)
    if "c" not in args.skip:
        figures["c_mirrored"] = mirrored()
    figures["uptime_end"] = uptime()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
