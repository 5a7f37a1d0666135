"""Q2 benchmark: the dlsuite training input pipeline vs a straightforward per-sample Python
generator doing what the original suite did, on the same files, in one process, printed side by
side in one table.

(a) dlsuite (``build_datasets``, tf.data, 1 private thread), batch 2 (``batch_size`` 2,
    ``patches_per_image`` 1), ``foreground_pdf`` 500000, binary target (``--target``), full
    augmentation: affine (rotation 30, shift 0.2, zoom 0.2) + flip + intensity + noise:

    - patches/s of 256x256 patches from the 40 usiigaci T98G annotated frames (1022x1024 uint16
      + PNG instance labels, ``../shared/data``), linked into a frames-layout folder;
    - windows/s of 5x256x256 temporal windows from the real 37-frame 1022x1024 time-lapse,
      written as a videos-layout folder. The time-lapse has no labels: a stand-in label video
      (Gaussian smoothing, Otsu threshold, connected components; :func:`standin_labels`) gives
      the sampler and the target something real-sized to work on. It is not a segmentation.

    Without ``../shared/data``: 40 synthetic 1024x1024 frames and two synthetic 30-frame
    1024x1024 videos instead.

(b) the baseline, a per-sample generator written here after the original:

    - patches (its ``DataGeneratorWeights`` path): for every sample re-read the TIFF and the
      labels, scale and percentile-normalise the whole frame, augment the *whole frame* with
      ``scipy.ndimage.affine_transform`` (rotation 30 deg, shift 0.2, zoom 0.2, horizontal
      flip, reflect; labels bilinear then binarised, as Keras' ImageDataGenerator did), build
      the full ``sampling_pdf`` probability map, draw the centre with ``np.random.choice``, crop;
    - windows (its ``DataGeneratorLSTM``): for every sample re-read the *whole* video and its
      label video, normalise the whole video jointly, draw a frame ``t``, build the mirrored
      ``T``-frame window, apply the same whole-frame transform to every window frame and to the
      label frame, ``sampling_pdf``, crop.

    The baseline does no intensity/noise augmentation (the original had none), so it does less
    work than (a). Reference: the original suite's own generators measured 8.5 patches/s and
    0.92 windows/s on this machine with this data. Goal: a/b >= 20.

(c) seconds per training step of a U-Net (``unet``, 16 filters, 4 pools, 256x256, batch 2)
    fed by the patch pipeline vs fed one cached batch from memory. The two are interleaved
    (cached, pipeline, cached, pipeline, ...; ``--fit-rounds`` pairs of ``--fit`` steps, one
    model, warmed up on both); each run's time per step is the median interval between
    consecutive batch ends (its first step dropped); the reported ratio is the median of the
    per-pair ratios pipeline/cached. Goal: <= 1.10. The same ratio of CPU-seconds per step
    (process CPU time, all threads) is printed too: it is the pipeline's extra work per step
    and, unlike wall time, hardly depends on other processes loading the machine.

Wall-clock rates depend on what else runs on the machine; the table also gives the ratio of
rates per CPU-second of this process (all threads), which is less sensitive to other load.

Usage: ``python benchmarks/datagen.py [--patch 256] [--batches 60] [--baseline-batches 6]
[--fit 8] [--fit-rounds 5] [--synthetic]`` (``--fit 0`` skips (c)).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usiigaci_t98g_phc"
ANNOTATED = REAL / "annotated"
TIMELAPSE = REAL / "video_T98G_sample"
FULL_AUGMENTATION = [{"name": "affine", "rotation": 30, "shift": 0.2, "zoom": 0.2},
                     {"name": "flip", "horizontal": True, "vertical": True},
                     {"name": "intensity"}, {"name": "noise"}]
#: The original suite's own generators on this machine and data: patches/s, windows/s.
REFERENCE = (8.5, 0.92)


# ------------------------------------------------------------------------------------ data
def standin_labels(frame: np.ndarray) -> np.ndarray:
    """Stand-in instance labels of an unlabelled frame (benchmark/test use only): Gaussian
    smoothing (sigma 2), Otsu threshold, connected components; uint16, deterministic."""
    from skimage.filters import threshold_otsu

    smooth = ndimage.gaussian_filter(frame.astype(np.float32), 2.0)
    return ndimage.label(smooth > threshold_otsu(smooth))[0].astype(np.uint16)


def _paint_discs(labels: np.ndarray, centres, radii, first_id: int = 1) -> None:
    """Paint filled discs (ids from ``first_id``) into ``labels`` in place, locally."""
    H, W = labels.shape
    for k, ((cy, cx), r) in enumerate(zip(centres, radii)):
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, H)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, W)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        labels[y0:y1, x0:x1][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = first_id + k


def _synthetic_image(labels: np.ndarray, rng) -> np.ndarray:
    return ((labels > 0) * 3000 + rng.integers(0, 1500, labels.shape)).astype(np.uint16)


def make_frames(root: Path, n: int = 40, real: bool = True) -> str:
    """A frames-layout folder: links to the real annotated frames (when ``real`` and present),
    or synthetic frames."""
    from dlsuite.data.io import write_tiff

    (root / "inputs").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    sets = sorted(ANNOTATED.glob("set*"), key=lambda p: int(p.name[3:])) \
        if real and ANNOTATED.is_dir() else []
    if sets:
        for i, folder in enumerate(sets[:n], start=1):
            os.symlink(folder / "raw.tif", root / "inputs" / f"raw_{i:03d}.tif")
            os.symlink(folder / "instances_ids.png", root / "labels" / f"instance_ids_{i:03d}.png")
        return f"{min(n, len(sets))} real T98G frames 1022x1024"
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        lab = np.zeros((1024, 1024), np.uint16)
        _paint_discs(lab, rng.integers(20, 1004, (60, 2)), rng.integers(8, 20, 60))
        write_tiff(root / "inputs" / f"raw_{i:03d}.tif", _synthetic_image(lab, rng))
        write_tiff(root / "labels" / f"instance_ids_{i:03d}.tif", lab)
    return f"{n} synthetic frames 1024x1024"


def make_videos(root: Path, real: bool = True) -> str:
    """A videos-layout folder: the real time-lapse with stand-in labels (when ``real`` and
    present), or two synthetic 30-frame 1024x1024 videos of drifting discs."""
    from dlsuite.data.io import read_image, write_tiff

    (root / "inputs").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    files = sorted(TIMELAPSE.glob("*.tif")) if real and TIMELAPSE.is_dir() else []
    if files:
        video = np.stack([read_image(f) for f in files])
        write_tiff(root / "inputs" / "T98G.tif", video)
        write_tiff(root / "labels" / "T98G.tif", np.stack([standin_labels(f) for f in video]))
        return f"real {len(files)}-frame T98G time-lapse {video.shape[1]}x{video.shape[2]}"
    rng = np.random.default_rng(1)
    for name in ("synthetic_a", "synthetic_b"):
        centres = rng.uniform(40, 984, (60, 2))
        radii = rng.integers(8, 20, 60)
        drift = rng.normal(0, 2, (60, 2))
        labels = np.zeros((30, 1024, 1024), np.uint16)
        for t in range(30):
            _paint_discs(labels[t], centres + t * drift, radii)
        video = np.stack([_synthetic_image(lab, rng) for lab in labels])
        write_tiff(root / "inputs" / f"{name}.tif", video)
        write_tiff(root / "labels" / f"{name}.tif", labels)
    return "2 synthetic 30-frame videos 1024x1024"


# ------------------------------------------------------------------------------------ baseline
def _read(path: Path) -> np.ndarray:
    from dlsuite.data.io import read_image

    return read_image(path)


def _original_affine(shape, rng):
    """Keras ImageDataGenerator-like random transform: rotation, shift, zoom (output->input)."""
    theta = math.radians(rng.uniform(-30, 30))
    zy, zx = rng.uniform(0.8, 1.2, 2)
    ty, tx = rng.uniform(-0.2, 0.2, 2) * np.array(shape)
    c, s = math.cos(theta), math.sin(theta)
    m = np.array([[c, -s], [s, c]]) @ np.diag([zy, zx])
    centre = (np.array(shape) - 1) / 2
    return m, centre - m @ centre + np.array([ty, tx])


def _percentile_normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32) / 65535.0
    lo, hi = np.percentile(x, [0.1, 99.1])
    return np.clip((x - lo) / (hi - lo + 1e-50), 0, 1)


def _sampling_pdf_crop(frames: np.ndarray, y: np.ndarray, patch: int):
    """The original's ``sampling_pdf`` + ``random_crop`` on ``frames (K, H, W)``, ``y (H, W)``."""
    h = patch // 2
    w = np.where(y, 500000.0, 1.0)[h:-h, h:-h]
    pmf = (w / w.sum()).ravel()
    centre = np.random.choice(pmf.size, p=pmf)
    cy, cx = divmod(centre, w.shape[1])
    cy, cx = cy + h, cx + h
    return frames[:, cy - h:cy + h, cx - h:cx + h], y[cy - h:cy + h, cx - h:cx + h]


def _augment_whole(frames: np.ndarray, y: np.ndarray, rng):
    """One random transform applied to every whole frame and to the (binarised) label."""
    m, off = _original_affine(y.shape, rng)
    frames = np.stack([ndimage.affine_transform(f, m, off, order=1, mode="reflect")
                       for f in frames])
    y = ndimage.affine_transform(y.astype(np.float32), m, off, order=1, mode="reflect") > 0
    if rng.random() < 0.5:
        frames, y = frames[..., ::-1], y[:, ::-1]
    return frames, y


def baseline_patches(root: Path, patch: int, batch: int, seed: int = 0):
    """The original's per-sample 2D generator (see module docstring), infinite."""
    inputs = sorted((root / "inputs").iterdir())
    labels = sorted((root / "labels").iterdir())
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    while True:
        xs = np.empty((batch, patch, patch, 1), np.float32)
        ys = np.empty((batch, patch, patch, 1), np.float32)
        for b, i in enumerate(rng.integers(len(inputs), size=batch)):
            x = _percentile_normalise(_read(inputs[i]))[None]           # re-read, whole frame
            x, y = _augment_whole(x, _read(labels[i]), rng)             # augment whole frame
            x, y = _sampling_pdf_crop(x, y, patch)
            xs[b, ..., 0], ys[b, ..., 0] = x[0], y
        yield xs, ys


def baseline_windows(root: Path, patch: int, batch: int, T: int, seed: int = 0):
    """The original's per-sample video generator (see module docstring), infinite."""
    inputs = sorted((root / "inputs").iterdir())
    labels = sorted((root / "labels").iterdir())
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    while True:
        xs = np.empty((batch, T, patch, patch, 1), np.float32)
        ys = np.empty((batch, patch, patch, 1), np.float32)
        for b, i in enumerate(rng.integers(len(inputs), size=batch)):
            video = _percentile_normalise(_read(inputs[i]))          # whole video, every sample
            label_video = _read(labels[i])
            t = int(rng.integers(video.shape[0]))
            window = [t - T + 1 + f if t - T + 1 + f >= 0 else (T - t - 1 - f) % (t + 1)
                      for f in range(T)]                              # original's mirroring
            x, y = _augment_whole(video[window], label_video[t], rng)
            x, y = _sampling_pdf_crop(x, y, patch)
            xs[b, ..., 0], ys[b, ..., 0] = x, y
        yield xs, ys


# ------------------------------------------------------------------------------------ timing
def rate(iterator, n_batches: int, batch: int) -> tuple[float, float]:
    """Items per second of wall time and of process CPU time (all threads) over
    ``n_batches``, after one warm-up batch."""
    next(iterator)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_batches):
        next(iterator)
    n = n_batches * batch
    return n / (time.perf_counter() - wall), n / max(time.process_time() - cpu, 1e-9)


def dlsuite_rate(config, registry, temporal: bool, n_batches: int, batch: int):
    """``(rate wall, rate CPU, load seconds)`` of the dlsuite training dataset."""
    from dlsuite.data.pipeline import build_datasets

    start = time.perf_counter()
    data = build_datasets(config, registry, temporal=temporal, time_windows=5 if temporal else None)
    load = time.perf_counter() - start
    iterator = iter(data.train)
    wall, cpu = rate(iterator, n_batches, batch)
    del iterator
    return wall, cpu, load, data


def fit_times(data, registry, patch: int, steps: int, rounds: int) -> dict[str, float]:
    """Interleaved (c): medians of wall and CPU seconds per step, cached and pipeline, and the
    medians of the per-pair ratios pipeline/cached (wall and CPU)."""
    import keras
    import tensorflow as tf

    warnings.filterwarnings("ignore", message=".*shuffle=True.*")
    entry = registry.resolve("architectures", "unet")
    x, y = next(iter(data.train))
    cached = tf.data.Dataset.from_tensors((x, y)).repeat()

    class Intervals(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.wall, self.cpu = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())

    keras.utils.set_random_seed(0)
    model = entry.load()(entry.spec.params(n_filters=16, pools=4), n_classes=data.n_classes,
                         input_shape=(patch, patch, 1))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for ds in (cached, data.train):  # tracing and first-iterator costs out of the timing
        model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)

    def per_step(ds) -> tuple[float, float]:
        timer = Intervals()
        model.fit(ds, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[timer])
        return statistics.median(np.diff(timer.wall)), statistics.median(np.diff(timer.cpu))

    pairs = [(per_step(cached), per_step(data.train)) for _ in range(rounds)]
    med = statistics.median
    return {"cached": med(c[0] for c, _ in pairs), "pipeline": med(p[0] for _, p in pairs),
            "ratio": med(p[0] / c[0] for c, p in pairs),
            "cached_cpu": med(c[1] for c, _ in pairs), "pipeline_cpu": med(p[1] for _, p in pairs),
            "ratio_cpu": med(p[1] / c[1] for c, p in pairs)}


# ------------------------------------------------------------------------------------ main
def make_config(registry, root: Path, layout: str, patch: int, batch_size: int, ppi: int,
                target: str, temporal: bool):
    from dlsuite.config import parse_config

    raw = {"seed": 0, "data": {"train": str(root), "layout": layout},
           "datagen": {"patch_size": [patch, patch], "batch_size": batch_size,
                       "patches_per_image": ppi,
                       "sampling": {"name": "foreground_pdf", "pdf": 500000},
                       "normalization": {"name": "percentile"}, "target": {"name": target},
                       "augmentation": FULL_AUGMENTATION}}
    return parse_config(raw, registry, check_paths=False).config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--patches-per-image", type=int, default=1)
    ap.add_argument("--time-windows", type=int, default=5)
    ap.add_argument("--batches", type=int, default=60, help="batches timed for dlsuite")
    ap.add_argument("--baseline-batches", type=int, default=6,
                    help="batches timed for the baselines")
    ap.add_argument("--fit", type=int, default=8, help="U-Net steps per timed run in (c); 0: skip")
    ap.add_argument("--fit-rounds", type=int, default=5, help="cached/pipeline pairs in (c)")
    ap.add_argument("--target", default="binary",
                    help="target plugin of the dlsuite pipeline (the baseline is binary)")
    ap.add_argument("--synthetic", action="store_true",
                    help="use generated data even when ../shared/data is present")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)

    from dlsuite.registry import Registry

    registry = Registry.from_entry_points()
    batch = args.batch_size * args.patches_per_image
    T = args.time_windows
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        frames, videos = Path(tmp) / "frames", Path(tmp) / "videos"
        notes = [make_frames(frames, real=not args.synthetic),
                 make_videos(videos, real=not args.synthetic)]
        print(f"data: {notes[0]}; {notes[1]}")
        print(f"batch {batch}, patch {args.patch}, T {T}, foreground_pdf 500000, dlsuite target "
              f"{args.target}, augmentation affine+flip+intensity+noise", flush=True)

        base_p = rate(baseline_patches(frames, args.patch, batch), args.baseline_batches, batch)
        cfg = make_config(registry, frames, "frames", args.patch, args.batch_size,
                          args.patches_per_image, args.target, False)
        *ours_p, load_p, data = dlsuite_rate(cfg, registry, False, args.batches, batch)
        rows.append(("patches/s", f"{args.patch}x{args.patch}", ours_p, base_p, load_p))
        fit = (fit_times(data, registry, args.patch, args.fit, args.fit_rounds)
               if args.fit else None)
        del data

        base_w = rate(baseline_windows(videos, args.patch, batch, T), args.baseline_batches,
                      batch)
        cfg = make_config(registry, videos, "videos", args.patch, args.batch_size,
                          args.patches_per_image, args.target, True)
        *ours_w, load_w, data = dlsuite_rate(cfg, registry, True, args.batches, batch)
        rows.append(("windows/s", f"{T}x{args.patch}x{args.patch}", ours_w, base_w, load_w))
        del data

    print()
    head = (f"{'':<10}{'shape':>12}{'(a) dlsuite':>13}{'(b) baseline':>14}{'a/b wall':>10}"
            f"{'a/b CPU':>9}{'goal':>7}{'a/original':>12}{'load s':>8}")
    print(head)
    print("-" * len(head))
    for (what, shape, ours, base, load), ref in zip(rows, REFERENCE):
        print(f"{what:<10}{shape:>12}{ours[0]:>13.1f}{base[0]:>14.2f}{ours[0] / base[0]:>9.1f}x"
              f"{ours[1] / base[1]:>8.1f}x{'>=20x':>7}{ours[0] / ref:>11.1f}x{load:>8.1f}")
    if fit:
        print(f"(c) U-Net 16f/4 pools {args.patch}x{args.patch} batch {batch}, {args.fit_rounds} "
              f"interleaved pairs of {args.fit} steps: s/step cached {fit['cached']:.3f}, "
              f"pipeline {fit['pipeline']:.3f}; median pipeline/cached {fit['ratio']:.3f} wall, "
              f"{fit['ratio_cpu']:.3f} CPU (CPU-s/step {fit['cached_cpu']:.3f} vs "
              f"{fit['pipeline_cpu']:.3f}); goal <= 1.10")
    print("load average (1/5/15 min) at the end: "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores")
    print(f"a/original: (a) over the original suite's own generators measured on this machine "
          f"with this data ({REFERENCE[0]} patches/s, {REFERENCE[1]} windows/s); 'load s': "
          f"dlsuite's one-off read + normalise of the dataset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
