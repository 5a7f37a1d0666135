"""StarDist 2D contender of ``benchmarks/instances.py``, run as its own process.

``python benchmarks/instances_stardist.py DATA WORK --minutes M [--curve 5,10] [--seed S]
[--t0 EPOCH_SECONDS]`` trains StarDist 2D from scratch on ``DATA/train`` (frames layout),
validating on ``DATA/val``, with its recommended settings: 32 rays, grid (2, 2), the default
U-Net (depth 3, 32 base filters), patch 256, batch 4, 100 steps per epoch, learning rate 3e-4
with ReduceLROnPlateau, images normalised to their 1-99.8 percentiles, label holes filled, and
the augmentation of StarDist's 2D training notebook (random flips and 90-degree rotations,
intensity scale 0.6-2 and shift +-0.2, Gaussian noise up to sigma 0.02; re-implemented here).
Training stops at the end of the batch during which ``t0 + M minutes`` passes (``t0``: the
parent's start time, so interpreter and TensorFlow start-up count as for dlsuite); StarDist then
restores its best weights (lowest validation loss), optimises its probability and NMS
thresholds on the validation images (``optimize_thresholds``) and predicts them.

Writes ``WORK/pred/<input stem>.tif`` (int32 labels), ``WORK/result.json`` (timings,
thresholds, epochs) and, for each ``--curve`` minute, the best weights at that minute
(``WORK/curve/weights_best_at_<m>min.h5``), their thresholds and predictions
(``WORK/curve/pred_<m>min/``). Needs the ``bench`` extra (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

PERCENTILES = (1.0, 99.8)  # StarDist's notebooks


def load(split: Path, with_labels: bool = True):
    """Inputs (float32, percentile-normalised) and labels (holes filled) of a frames folder,
    with the input stems."""
    import tifffile
    from csbdeep.utils import normalize
    from stardist import fill_label_holes

    inputs = sorted((split / "inputs").glob("*.tif"))
    x = [normalize(tifffile.imread(p), *PERCENTILES, axis=(0, 1)).astype(np.float32)
         for p in inputs]
    if not with_labels:
        return x, None, [p.stem for p in inputs]
    labels = sorted((split / "labels").glob("*.tif"))
    y = [fill_label_holes(tifffile.imread(p).astype(np.int32)) for p in labels]
    return x, y, [p.stem for p in inputs]


def augmenter(x: np.ndarray, y: np.ndarray):
    """Random dihedral transform (axis swap + flips) of image and labels, then intensity
    scale/shift and Gaussian noise on the image."""
    if np.random.rand() < 0.5:
        x, y = x.T, y.T
    for axis in (0, 1):
        if np.random.rand() < 0.5:
            x, y = np.flip(x, axis), np.flip(y, axis)
    x = x * np.random.uniform(0.6, 2.0) + np.random.uniform(-0.2, 0.2)
    x = x + 0.02 * np.random.uniform() * np.random.normal(size=x.shape)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)


def callbacks(deadline: float, curve: list[float], t0: float, best: Path, out: Path):
    """Keras callbacks: stop at the deadline (end of batch); copy ``best`` at curve minutes."""
    import keras

    pending = sorted(curve)
    snapshots: dict[str, str] = {}

    class Deadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            now = time.time()
            while pending and now >= t0 + pending[0] * 60.0:
                m = pending.pop(0)
                if best.is_file():
                    dst = out / f"weights_best_at_{m:g}min.h5"
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(best, dst)
                    snapshots[f"{m:g}"] = str(dst)
            if now >= deadline:
                self.model.stop_training = True

    return Deadline(), snapshots


def predict(model, x: list, names: list[str], out: Path) -> None:
    """Predict every image with the model's current thresholds into ``out/<name>.tif``."""
    import tifffile

    out.mkdir(parents=True, exist_ok=True)
    for img, name in zip(x, names):
        labels, _ = model.predict_instances(img, show_tile_progress=False)
        tifffile.imwrite(out / f"{name}.tif", labels.astype(np.int32), compression="zlib")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--curve", default="", help="comma-separated minutes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--t0", type=float, default=None, help="start time (time.time())")
    ap.add_argument("--steps-per-epoch", type=int, default=100, help="(smoke tests: fewer)")
    args = ap.parse_args(argv)
    t0 = args.t0 if args.t0 is not None else time.time()
    deadline = t0 + args.minutes * 60.0
    curve = [float(m) for m in args.curve.split(",") if m.strip()]
    curve = [m for m in curve if m <= args.minutes]

    import keras
    from stardist.models import Config2D, StarDist2D

    keras.utils.set_random_seed(args.seed)
    x_tr, y_tr, _ = load(args.data / "train")
    x_va, y_va, names = load(args.data / "val")
    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    conf = Config2D(n_rays=32, grid=(2, 2), n_channel_in=1, train_patch_size=(256, 256),
                    train_batch_size=4, train_epochs=100_000, train_steps_per_epoch=args.steps_per_epoch,
                    train_tensorboard=False)
    model = StarDist2D(conf, name="stardist", basedir=str(args.work))
    model.prepare_for_training()
    best = args.work / "stardist" / "weights_best.h5"
    stop, snapshots = callbacks(deadline, curve, t0, best, args.work / "curve")
    model.callbacks.append(stop)
    history = model.train(x_tr, y_tr, validation_data=(x_va, y_va), augmenter=augmenter,
                          seed=args.seed)
    train_end = time.time()
    result = {"train_s": round(train_end - t0, 1),
              "epochs_done": len(history.history.get("loss", [])),
              "stopped_by": "deadline", "config": "Config2D(n_rays=32, grid=(2, 2), defaults)"}
    start = time.time()
    model.optimize_thresholds(x_va, y_va, save_to_json=False)
    result["thresholds_s"] = round(time.time() - start, 1)
    result["thresholds"] = {"prob": float(model.thresholds.prob),
                            "nms": float(model.thresholds.nms)}
    start = time.time()
    predict(model, x_va, names, args.work / "pred")
    result["predict_s"] = round(time.time() - start, 1)
    result["curve"] = {}
    for m, path in snapshots.items():
        model.keras_model.load_weights(path)
        model.optimize_thresholds(x_va, y_va, save_to_json=False)
        predict(model, x_va, names, args.work / "curve" / f"pred_{m}min")
        result["curve"][m] = {"thresholds": {"prob": float(model.thresholds.prob),
                                             "nms": float(model.thresholds.nms)}}
    (args.work / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
