"""Trainings side by side: every core each (TensorFlow's default) against the cores shared
(``DLSUITE_THREADS`` = cores / N, what ``dlsuite sweep --parallel N`` gives its trials).

Starts N ``dlsuite train`` processes of the quickstart config at once (no test set, no
tuning, W&B off), waits for all, and prints the wall time of each round side by side with the
ratio; the rounds alternate so a drift of the machine hits both. Needs the quickstart's
bundled data (examples/quickstart/data).
Run: python benchmarks/parallel_threads.py [--parallel 2] [--epochs 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"


def _config(folder: Path, epochs: int) -> Path:
    cfg = json.loads((QUICKSTART / "config.json").read_text())
    cfg["data"].update(train=str(QUICKSTART / "data" / "train"),
                       val=str(QUICKSTART / "data" / "val"), test=None)
    cfg["train"]["epochs"] = epochs
    cfg["evaluation"]["tune_postprocess"] = False
    cfg["wandb"] = {"mode": "disabled"}
    path = folder / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _round(config: Path, out: Path, parallel: int, threads: int | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "DLSUITE_THREADS"}
    if threads is not None:
        env["DLSUITE_THREADS"] = str(threads)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "dlsuite.cli", "train", str(config),
                               "--quiet", "--overwrite", "--set", f"output_dir={out / str(i)}"],
                              env=env, stderr=subprocess.PIPE, text=True)
             for i in range(parallel)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"training failed: {err[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from dlsuite.threads import share_of_cores

    share = share_of_cores(args.parallel)
    tmp = Path(tempfile.mkdtemp(prefix="dlsuite-threads-"))
    config = _config(tmp, args.epochs)
    times: dict[str, list[float]] = {"every core each": [], f"{share} thread(s) each": []}
    for _ in range(args.rounds):
        for label, threads in zip(times, (None, share)):
            times[label].append(_round(config, tmp / "runs", args.parallel, threads))
    print(f"{args.parallel} trainings of {args.epochs} epochs at once on "
          f"{share_of_cores(1)} core(s), {args.rounds} round(s):")
    for label, values in times.items():
        print(f"  {label:<18} " + "  ".join(f"{v:6.1f} s" for v in values)
              + f"   median {statistics.median(values):6.1f} s")
    (default, shared) = (statistics.median(v) for v in times.values())
    print(f"  shared / every core: {shared / default:.2f}")


if __name__ == "__main__":
    main()
