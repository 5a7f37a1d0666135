"""Video on real frames: a temporal model and the 2D recipe, side by side (issue 12, item 7).

Data (``../shared/data/usiigaci_t98g_phc``): the real T98G phase-contrast time-lapse
``video_T98G_sample/20180101ef002xy01tTT.tif`` and its tracked instance labels
``video_T98G_sample_tracked/20180101ef002xy01tTT_ids.png`` for frames 1-25 (silver: the
Usiigaci pipeline's output, not manual). Both models train on frames 1-18 and predict
frames 19-25:

- ``2d``: the recommended 2D config ``examples/usiigaci-instances/config.json`` trained on
  frames 1-18 as 18 images (frames layout), predicting each frame on its own;
- ``temporal``: the same recipe (its target, post-processing and ``data.scale``) with a small
  ``unet_lstm`` (8 filters, 3 poolings, windows of 3 frames) trained on the 18-frame video
  (videos layout, batch 1 video x 8 patches); it predicts frame t from frames t-2..t, so
  frames 17-18 give the context of frame 19 (inputs only, never labels).

Each trains for ``--minutes`` wall clock (default 10) exactly as ``instances.py`` does (the
``dlsuite train`` subprocess gets SIGINT at the deadline); there is no validation set, so
the last checkpoint predicts. The 25-frame input video is predicted and frames 19-25 are
kept, linked over time by ``dlsuite track`` (default tracking settings) and scored by
``dlsuite evaluate`` against the silver labels of frames 19-25 (exported with ``dlsuite
prepare ctc --kind GT``): CTC SEG, DET, TRA, and the temporal stability (mean foreground
Jaccard of consecutive frames) of each result next to that of the silver labels. Also
F1@0.5 / AP@0.5 over the 7 frames (``instances_score.py``).

Usage: ``python benchmarks/video_instances.py [--minutes 10] [--models 2d,temporal]
[--work DIR] [--json FILE]``. ``--frames A,B,C`` (train up to A, predict B..C; default
18,19,25), ``--crop N`` and ``--steps-per-epoch N`` shrink it for smoke tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SOURCE = REPO.parent / "shared" / "data" / "usiigaci_t98g_phc"
EXAMPLE = REPO / "examples" / "usiigaci-instances" / "config.json"
MODELS = ("2d", "temporal")
NAME = "t98g"

sys.path.insert(0, str(HERE))
from instances_dlsuite import _env, dlsuite_command, recipe_config, train_for  # noqa: E402
from instances_score import score  # noqa: E402

#: The temporal model replacing the recipe's 2D U-Net (the rest of the recipe is kept): small,
#: as its ConvLSTM encoder costs several times a 2D U-Net per patch.
TEMPORAL_MODEL = {"name": "unet_lstm", "n_filters": 8, "pools": 3, "time_windows": 3}


def read_frames(source: Path, last: int, crop: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Input frames 1..``last`` (T, H, W) uint16 and the tracked labels of the same frames
    (uint16), optionally cropped to the top-left ``crop`` pixels."""
    import tifffile
    from PIL import Image

    x, y = [], []
    for t in range(1, last + 1):
        x.append(tifffile.imread(source / "video_T98G_sample" / f"20180101ef002xy01t{t:02d}.tif"))
        y.append(np.asarray(Image.open(source / "video_T98G_sample_tracked"
                                       / f"20180101ef002xy01t{t:02d}_ids.png")))
    x, y = np.stack(x).astype(np.uint16), np.stack(y).astype(np.uint16)
    if crop:
        x, y = x[:, :crop, :crop], y[:, :crop, :crop]
    return x, y


def write_data(root: Path, x: np.ndarray, y: np.ndarray, n_train: int) -> dict[str, Path]:
    """Training data in both layouts, the input video to predict and the GT label video."""
    import tifffile

    def save(path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, array, compression="zlib", photometric="minisblack",
                         metadata={"axes": "TYX" if array.ndim == 3 else "YX"})

    for t in range(n_train):
        save(root / "frames" / "train" / "inputs" / f"raw_{t + 1:03d}.tif", x[t])
        save(root / "frames" / "train" / "labels" / f"instance_ids_{t + 1:03d}.tif", y[t])
    save(root / "videos" / "train" / "inputs" / f"{NAME}.tif", x[:n_train])
    save(root / "videos" / "train" / "labels" / f"{NAME}.tif", y[:n_train])
    save(root / "predict" / f"{NAME}.tif", x)
    save(root / "gt_videos" / f"{NAME}.tif", y[n_train:])
    return {"frames": root / "frames" / "train", "videos": root / "videos" / "train",
            "predict": root / "predict" / f"{NAME}.tif", "gt_videos": root / "gt_videos"}


def config_for(model: str, paths: dict, run_dir: Path, seed: int,
               steps_per_epoch: int | None = None) -> dict:
    """The recipe for the 2D model, or the recipe with :data:`TEMPORAL_MODEL` on videos."""
    cfg = recipe_config(EXAMPLE, paths["frames"].parent, run_dir, seed, epochs=100_000)
    cfg["data"] = {**cfg["data"], "train": str(paths["frames"]), "val": None, "test": None,
                   "layout": "frames"}  # the recipe's other data keys (scale) kept
    if model == "temporal":
        cfg["model"] = dict(TEMPORAL_MODEL)
        cfg["data"] = {**cfg["data"], "train": str(paths["videos"]), "layout": "videos"}
        cfg["datagen"] = {**cfg["datagen"], "batch_size": 1,
                          "patches_per_image": 8}
        cfg["inference"] = {**cfg.get("inference", {}), "batch_size": 1}
    if steps_per_epoch:
        cfg["datagen"]["steps_per_epoch"] = steps_per_epoch
    return cfg


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-4:])} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    return done.stdout


def evaluate_model(run_dir: Path, paths: dict, work: Path, first: int, gt_ctc: Path) -> dict:
    """Predict the input video with the last checkpoint, keep frames ``first``.. (0-based),
    track them and evaluate SEG, DET, TRA and temporal stability against ``gt_ctc``."""
    import tifffile

    start = time.monotonic()
    _run(dlsuite_command() + ["predict", str(run_dir), str(paths["predict"]), "-o",
                              str(work / "pred"), "--weights", "last", "--quiet",
                              "--overwrite"])
    predict_s = time.monotonic() - start
    labels = np.asarray(tifffile.imread(work / "pred" / "labels" / f"{NAME}.tif"))[first:]
    (work / "res_videos").mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(work / "res_videos" / f"{NAME}.tif", labels.astype(np.int32),
                     compression="zlib", photometric="minisblack", metadata={"axes": "TYX"})
    _run(dlsuite_command() + ["track", str(work / "res_videos"), str(work / "ctc"),
                              "--overwrite"])
    out = json.loads(_run(dlsuite_command() + [
        "evaluate", str(work / "ctc"), str(gt_ctc), "--json",
        "--metrics", "SEG,DET,TRA,temporal_stability,temporal_stability_gt"]))
    metrics = out.get("metrics", out)
    gt = np.asarray(tifffile.imread(paths["gt_videos"] / f"{NAME}.tif"))
    matched = score({str(i): gt[i] for i in range(len(gt))},
                    {str(i): labels[i] for i in range(len(labels))})
    return {**{k: metrics.get(k) for k in ("SEG", "DET", "TRA", "temporal_stability",
                                            "temporal_stability_gt")},
            "F1@0.5": matched["F1@0.5"], "AP@0.5": matched["AP@0.5"],
            "n_res": matched["n_res"], "n_gt": matched["n_gt"],
            "predict_s": round(predict_s, 1)}


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def table(results: dict, frames: tuple[int, int, int], minutes: float) -> str:
    """The side-by-side table as text."""
    cols = ("SEG", "DET", "TRA", "F1@0.5", "AP@0.5", "temporal_stability")
    head = f"{'model':<10}" + "".join(f"{c if c != 'temporal_stability' else 'stability':>10}"
                                      for c in cols) + f"{'train min':>11}{'epochs':>8}"
    lines = [f"train frames 1-{frames[0]}, predict {frames[1]}-{frames[2]} (silver labels), "
             f"budget {minutes:g} min per model", head, "-" * len(head)]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:<10}  FAILED: {r['error']}")
            continue
        lines.append(f"{name:<10}" + "".join(f"{_fmt(r.get(c)):>10}" for c in cols)
                     + f"{r['train_s'] / 60:>11.1f}{_fmt(r.get('epochs_done')):>8}")
    gt = next((r.get("temporal_stability_gt") for r in results.values()
               if r.get("temporal_stability_gt") is not None), None)
    if gt is not None:
        lines.append(f"temporal stability of the silver labels themselves: {gt:.3f}")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="wall-clock training budget per model (default 10)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--frames", default="18,19,25", help=argparse.SUPPRESS)
    ap.add_argument("--crop", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--steps-per-epoch", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not args.models or any(m not in MODELS for m in args.models):
        ap.error(f"--models: choose from {','.join(MODELS)}")
    try:
        args.frames = tuple(int(v) for v in args.frames.split(","))
        a, b, c = args.frames
    except ValueError:
        ap.error("--frames: three integers A,B,C")
    if not (1 <= a and b == a + 1 and b <= c <= 25):
        ap.error("--frames: need 1 <= A, B = A + 1, B <= C <= 25")
    if args.minutes <= 0:
        ap.error("--minutes must be > 0")
    if not (args.source / "video_T98G_sample_tracked").is_dir():
        ap.error(f"--source: {args.source / 'video_T98G_sample_tracked'} not found")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    n_train, first, last = args.frames
    work = args.work or Path(tempfile.mkdtemp(prefix="dlsuite-video-"))
    work.mkdir(parents=True, exist_ok=True)
    x, y = read_frames(args.source, last, args.crop)
    paths = write_data(work / "data", x, y, n_train)
    gt_ctc = work / "data" / "gt_ctc"
    _run(dlsuite_command() + ["prepare", "ctc", str(paths["gt_videos"]), str(gt_ctc),
                              "--kind", "GT", "--overwrite"])
    print(f"work: {work}", flush=True)
    results: dict[str, dict] = {}
    for model in args.models:
        print(f"{model}: training for {args.minutes:g} min ...", flush=True)
        try:
            run_dir = work / model / "run"
            facts = train_for(config_for(model, paths, run_dir, args.seed, args.steps_per_epoch), work / model,
                              args.minutes, [])
            if not (run_dir / "checkpoints" / "last.keras").is_file():
                raise RuntimeError(f"no checkpoint written (see {facts['log']})")
            results[model] = {**evaluate_model(run_dir, paths, work / model, n_train,
                                               gt_ctc), **facts}
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            results[model] = {"error": str(exc)}
    text = table(results, args.frames, args.minutes)
    print()
    print(text)
    out = args.json or work / "results.json"
    out.write_text(json.dumps({"minutes": args.minutes, "frames": args.frames,
                               "crop": args.crop, "results": results}, indent=1) + "\n")
    print(f"\nwrote {out}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
