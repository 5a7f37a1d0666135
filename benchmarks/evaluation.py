"""Q6 benchmark: CTC SEG of dlsuite vs py-ctcmetrics on the same sequence, in one process.

Builds a 20-frame CTC sequence in a temporary folder: the manual labels of the usiigaci T98G
annotated images (1022x1024, 38-114 cells each; ../shared/data) as ``NN_GT/SEG`` (and
``NN_GT/TRA``, which py-ctcmetrics requires even for SEG), and perturbed copies (eroded,
dilated, shifted, relabelled in turn) as ``NN_RES``. Without the real data it draws synthetic
1024x1024 frames with ~100 cells. Then it times, from the files on disk:

- py-ctcmetrics ``evaluate_sequence(res, gt, ["SEG"], threads=1)`` (its own TIFF reading and
  sklearn confusion matrix per frame), and
- dlsuite ``evaluate_ctc(res, gt, ["SEG"])`` (TIFF reading + one bincount per frame),

and prints both times, the speed ratio and the largest absolute difference. Goal: ratio >= 5,
difference < 1e-6. Usage: ``python benchmarks/evaluation.py [--frames 20] [--repeats 3] [--synthetic]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usiigaci_t98g_phc" / "annotated"


def synthetic_labels(rng, size=1024, n_cells=100) -> np.ndarray:
    """A label image with ~n_cells non-overlapping round cells."""
    lab = np.zeros((size, size), np.uint16)
    yy, xx = np.mgrid[-14:15, -14:15]
    label = 0
    for _ in range(n_cells * 3):
        r = rng.integers(8, 14)
        y, x = rng.integers(16, size - 16, 2)
        disk = yy**2 + xx**2 <= r * r
        window = lab[y - 14:y + 15, x - 14:x + 15]
        if np.any(window[disk]):
            continue
        label += 1
        window[disk] = label
        if label == n_cells:
            break
    return lab


def perturb(lab: np.ndarray, k: int, rng) -> np.ndarray:
    """One of four realistic prediction errors, chosen by ``k``."""
    kind = k % 4
    if kind == 0:  # eroded boundaries
        lo, hi = ndimage.grey_erosion(lab, size=5), ndimage.grey_dilation(lab, size=5)
        return np.where(lo == hi, lab, 0).astype(lab.dtype)
    if kind == 1:  # dilated
        from skimage.segmentation import expand_labels

        return expand_labels(lab, 2).astype(lab.dtype)
    if kind == 2:  # shifted
        return np.roll(lab, (3, -4), axis=(0, 1))
    lut = np.zeros(int(lab.max()) + 1, lab.dtype)  # relabelled + one object dropped
    lut[1:] = rng.permutation(np.arange(1, lut.size))
    lut[1] = 0
    return lut[lab]


def build_sequence(root: Path, n_frames: int, synthetic: bool = False) -> str:
    """Write root/01_GT (SEG + TRA) and root/01_RES; returns a description of the data."""
    from dlsuite.data import ctc

    rng = np.random.default_rng(0)
    gt_dir, res_dir = ctc.gt_folder(root, "01"), ctc.res_folder(root, "01")
    seg_dir, tra_dir = ctc.seg_folder(gt_dir), ctc.tra_folder(gt_dir)
    for d in (seg_dir, tra_dir, res_dir):
        d.mkdir(parents=True)
    real = DATA.is_dir() and not synthetic
    if real:
        from dlsuite.data.io import read_image
    n_objects = 0
    for t in range(n_frames):
        if real:
            lab = read_image(DATA / f"set{t % 40 + 1}" / "instances_ids.png").astype(np.uint16)
        else:
            lab = synthetic_labels(rng)
        n_objects += len(np.unique(lab)) - 1
        # frame by frame (no whole video in memory); names from dlsuite.data.ctc
        tifffile.imwrite(seg_dir / ctc.frame_name("seg", t, n_frames), lab)
        tifffile.imwrite(tra_dir / ctc.frame_name("tra", t, n_frames), lab)
        tifffile.imwrite(res_dir / ctc.frame_name("res", t, n_frames), perturb(lab, t, rng))
    shape = lab.shape
    what = "usiigaci T98G manual labels" if real else "synthetic cells"
    return f"{n_frames} frames {shape[0]}x{shape[1]}, {n_objects} reference objects ({what})"


def time_best(fn, repeats: int) -> tuple[float, float]:
    """(best wall time in s, value) over ``repeats`` calls."""
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main(argv=None) -> int:
    """Run the benchmark and print the figures; exit status 1 when a goal is missed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--synthetic", action="store_true", help="use synthetic cells even if real data exist")
    args = ap.parse_args(argv)

    from ctc_metrics import evaluate_sequence

    from dlsuite.data.ctc import list_frames
    from dlsuite.evaluation import evaluate_ctc, seg_score
    from dlsuite.evaluation.readers import read_ctc_frame

    with tempfile.TemporaryDirectory(prefix="dlsuite_bench_eval_") as tmp:
        root = Path(tmp)
        print("data:", build_sequence(root, args.frames, args.synthetic))
        res, gt = root / "01_RES", root / "01_GT"

        def theirs():
            with contextlib.redirect_stdout(io.StringIO()):
                return evaluate_sequence(str(res), str(gt), ["SEG"], threads=1)["SEG"]

        def ours():
            return evaluate_ctc(res, gt, ["SEG"])["SEG"]

        gt_mem = {t: read_ctc_frame(p) for t, p in list_frames(gt / "SEG", "seg").items()}
        res_mem = {t: read_ctc_frame(p) for t, p in list_frames(res, "res").items()}

        ours()  # warm imports and caches for both sides
        theirs()
        t_theirs, v_theirs = time_best(theirs, args.repeats)
        t_ours, v_ours = time_best(ours, args.repeats)
        t_mem, v_mem = time_best(lambda: seg_score(gt_mem, res_mem), args.repeats)

    diff = max(abs(v_ours - v_theirs), abs(v_mem - v_theirs))
    ratio = t_theirs / t_ours
    print(f"py-ctcmetrics SEG (files, threads=1): {t_theirs:8.3f} s   SEG={v_theirs:.9f}")
    print(f"dlsuite SEG (files):                  {t_ours:8.3f} s   SEG={v_ours:.9f}")
    print(f"dlsuite SEG (in memory, no I/O):      {t_mem:8.3f} s   SEG={v_mem:.9f}")
    print(f"speed ratio (files): {ratio:.1f}x (goal >= 5x); in memory: {t_theirs / t_mem:.1f}x")
    print(f"largest absolute difference: {diff:.2e} (goal < 1e-6)")
    ok = ratio >= 5 and diff < 1e-6
    print("Q6:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
