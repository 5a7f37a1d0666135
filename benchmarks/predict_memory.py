"""Peak memory of whole-image ``dlsuite predict`` beside the estimate that refuses inputs too
large for memory (``dlsuite.predict_memory.prediction_bytes``), in one run.

For each input (2D images of ``--sizes`` tiled from the quickstart's real test image, and a
video of ``--video`` frames of 1024 x 1024) a fresh ``dlsuite predict`` process runs with and
without post-processing; its peak resident memory (``ru_maxrss`` of the child) is printed
beside the estimate and their ratio (estimate / measured: above 1, the check refuses only
inputs that would need even more than measured).

Without ``--run`` the quickstart config is trained for one epoch into a temporary folder (the
model's weights do not change the memory).

Run: python benchmarks/predict_memory.py [--run RUN_DIR] [--sizes 2048,4096] [--video 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart"

PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)")


def dlsuite(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlsuite.cli", *args]


def trained_run(work: Path) -> Path:
    out = work / "run"
    subprocess.run(dlsuite("run", str(QUICKSTART / "config.json"), "--quiet",
                           "--set", f"output_dir={out}", "--set", "train.epochs=1",
                           "--set", "datagen.steps_per_epoch=2",
                           "--set", "evaluation.tune_postprocess=false",
                           "--set", "wandb.mode=disabled"), check=True)
    return out


def inputs(work: Path, sizes: list[int], frames: int) -> list[Path]:
    import tifffile

    source = tifffile.imread(sorted((QUICKSTART / "data" / "test" / "inputs").glob("*.tif"))[0])
    made = []
    for n in sizes:
        reps = (n // source.shape[0] + 1, n // source.shape[1] + 1)
        path = work / f"image_{n}.tif"
        tifffile.imwrite(path, np.tile(source, reps)[:n, :n])
        made.append(path)
    if frames:
        frame = np.tile(source, (3, 3))[:1024, :1024]
        path = work / f"video_{frames}x1024.tif"
        tifffile.imwrite(path, np.stack([np.roll(frame, 3 * t, axis=1) for t in range(frames)]),
                         metadata={"axes": "TYX"})
        made.append(path)
    return made


def peak_bytes(command: list[str]) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK, *command], check=True,
                         capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained run (default: train one)")
    parser.add_argument("--sizes", default="2048,4096")
    parser.add_argument("--video", type=int, default=20, help="frames of the video (0: none)")
    args = parser.parse_args()

    import tifffile

    from dlsuite.predict_memory import prediction_bytes

    gib = 2**30
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = args.run or trained_run(work)
        rows = []
        for path in inputs(work, [int(s) for s in args.sizes.split(",")], args.video):
            shape = tifffile.TiffFile(path).series[0].shape
            for chain in (True, False):
                out = work / f"out_{path.stem}_{chain}"
                extra = [] if chain else ["--no-postprocess"]
                measured = peak_bytes(dlsuite("predict", str(run), str(path), "-o", str(out),
                                              "--quiet", *extra))
                estimate = prediction_bytes(tuple(shape), postprocess=chain)
                rows.append((path.stem, "x".join(map(str, shape)), chain, measured, estimate))
    print(f"{'input':<18} {'shape':<16} {'chain':<6} {'measured GiB':>13} "
          f"{'estimate GiB':>13} {'estimate/measured':>18}")
    for name, shape, chain, measured, estimate in rows:
        print(f"{name:<18} {shape:<16} {str(chain):<6} {measured / gib:>13.2f} "
              f"{estimate / gib:>13.2f} {estimate / measured:>18.2f}")
    print(json.dumps({"config": str(QUICKSTART / "config.json"), "run": str(args.run or "trained")}))


if __name__ == "__main__":
    main()
