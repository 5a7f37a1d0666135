"""Training steps/s with ``train.distribute.strategy: mirrored`` on 2 logical CPU devices vs
``none`` (issue 17, 4c; ``benchmarks/scale.py`` includes it). For the record on this CPU-only
machine, where both replicas share the same cores; on a GPU host the same code measures
real scaling when the devices are GPUs (``--devices GPU:0 GPU:1``).

What is timed: ``model.fit`` of dlsuite's ``unet`` (default parameters but for the patch
size) compiled as ``dlsuite train`` compiles it (``dlsuite.training.compile_model``: Adam,
the configured loss and metrics; under the strategy the replica-scaled loss), on one fixed
global batch repeated (so the input pipeline costs nothing), after a warm-up fit that traces
the step. Model, optimizer and metrics are built inside the strategy's scope. Both
strategies run in one child process (logical devices must be set before TensorFlow starts)
and alternate ``--rounds`` times; the best steps/s of each is kept, with the process CPU
seconds per step.

Run: python benchmarks/_scale_mirrored.py [--steps 6] [--batch 4] [--patch 128] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _config(batch: int, patch: int, strategy: str, devices: list[str]):
    from dlsuite.config import parse_config

    return parse_config({"datagen": {"patch_size": [patch, patch], "batch_size": batch},
                         "train": {"distribute": {"strategy": strategy, "devices": devices}},
                         "wandb": {"mode": "disabled"}}).config


def _fit_rate(config, strategy, batch: int, patch: int, steps: int) -> tuple[float, float]:
    """(steps/s, CPU s/step) of ``steps`` fit steps after a 2-step warm-up."""
    import numpy as np
    import tensorflow as tf

    from dlsuite.registry import get_registry
    from dlsuite.training import build_model, compile_model

    registry = get_registry()
    scope = strategy.scope() if strategy is not None else _null()
    with scope:
        model, _ = build_model(config, registry, n_classes=2)
        compile_model(model, config, registry, n_classes=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, patch, patch, 1)).astype("float32")
    y = (rng.random((batch, patch, patch, 1)) > 0.5).astype("float32")
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return steps / wall, cpu / steps


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _child(args) -> dict:
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    if all(d.upper().startswith("CPU") for d in args.devices):
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in args.devices])
    from dlsuite.distribute import start_distribution

    best: dict[str, tuple[float, float]] = {}
    runs = {}
    for kind in ("none", "mirrored"):
        config = _config(args.batch, args.patch, kind, args.devices if kind == "mirrored" else [])
        runs[kind] = (config, start_distribution(config))
    for _ in range(args.rounds):
        for kind, (config, dist) in runs.items():
            rate, cpu = _fit_rate(config, dist.strategy, args.batch, args.patch, args.steps)
            if kind not in best or rate > best[kind][0]:
                best[kind] = (rate, cpu)
    return {
        "replicas": runs["mirrored"][1].replicas,
        "devices": list(runs["mirrored"][1].devices),
        "global_batch": args.batch, "patch": args.patch, "steps": args.steps,
        "rounds": args.rounds,
        "none_steps_per_s": round(best["none"][0], 3),
        "mirrored_steps_per_s": round(best["mirrored"][0], 3),
        "none_cpu_s_per_step": round(best["none"][1], 3),
        "mirrored_cpu_s_per_step": round(best["mirrored"][1], 3),
        "mirrored_vs_none": round(best["mirrored"][0] / best["none"][0], 3),
    }


def measure_mirrored(steps: int = 6, batch: int = 4, patch: int = 128, rounds: int = 2,
                     devices: tuple[str, ...] = ("CPU:0", "CPU:1"),
                     timeout: float = 1800) -> dict:
    """Steps/s of ``mirrored`` on ``devices`` (2 logical CPU devices by default) vs ``none``,
    measured in a child process; also the load average before and after."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--steps", str(steps),
           "--batch", str(batch), "--patch", str(patch), "--rounds", str(rounds),
           "--devices", *devices]
    load_before = os.getloadavg()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"mirrored benchmark failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_avg_before"] = [round(v, 2) for v in load_before]
    result["load_avg_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--devices", nargs="+", default=["CPU:0", "CPU:1"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    result = measure_mirrored(args.steps, args.batch, args.patch, args.rounds,
                              tuple(args.devices))
    for key, value in result.items():
        print(f"{key:26s} {value}")


if __name__ == "__main__":
    main()
