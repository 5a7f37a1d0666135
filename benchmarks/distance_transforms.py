"""Exact Euclidean distance transforms on training-patch-sized label images: which library?

Times, per 304x304 patch (256 + 2 x 24 context, what the training pipeline hands the target
plugin), the two distance jobs of the targets:

- ``per-instance outside`` (``weight_map``): for every instance, the squared distance from
  each pixel of its bounding box grown by 20 px to the instance (the U-Net separation term);
  scipy ``distance_transform_edt`` (distances, and the feature transform the weight map used
  before), ``edt.edtsq`` and OpenCV ``distanceTransform(DIST_L2, DIST_MASK_PRECISE)``;
- ``per-instance inside`` (``distance``): every instance pixel's distance to the nearest
  pixel of another label (background or another instance): scipy per instance (StarDist's
  ``edt_prob`` way), OpenCV per instance, and ``edt.edt`` on the whole label image in one
  multi-label pass.

Each result is checked equal to scipy (max abs difference printed). Patches: crops of the
DSB 2018 nuclei labels (``../shared/data``; ~45 nuclei per patch) and synthetic patches of
30 touching discs. Usage: ``python benchmarks/distance_transforms.py [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

DSB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dsb2018_nuclei_2d" / "mask2d.tif"
SIZE = 304
REACH = 20


def patches() -> list[tuple[str, np.ndarray]]:
    """Label patches to time: DSB crops (when present) and synthetic discs."""
    out = []
    rng = np.random.default_rng(0)
    if DSB.is_file():
        import tifffile

        lab = tifffile.imread(DSB).astype(np.int32)
        for y, x in ((0, 0), (208, 208), (0, 208), (208, 0)):
            out.append(("dsb", lab[y:y + SIZE, x:x + SIZE].copy()))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for _ in range(4):
        lab = np.zeros((SIZE, SIZE), np.int32)
        for k in range(1, 31):
            cy, cx, r = *rng.uniform(10, SIZE - 10, 2), rng.uniform(12, 24)
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
        out.append(("discs", lab))
    return out


def boxes(labels: np.ndarray, reach: int):
    H, W = labels.shape
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None:
            continue
        yield i + 1, (slice(max(sl[0].start - reach, 0), min(sl[0].stop + reach, H)),
                      slice(max(sl[1].start - reach, 0), min(sl[1].stop + reach, W)))


# ---- per-instance outside: squared distance to the instance on its grown box
def out_scipy_ft(labels):
    res = []
    for k, b in boxes(labels, REACH):
        crop = labels[b] != k
        ft = ndimage.distance_transform_edt(crop, return_distances=False, return_indices=True)
        d = ft - np.indices(crop.shape)
        res.append((d * d).sum(0))
    return res


def out_scipy(labels):
    return [np.rint(ndimage.distance_transform_edt(labels[b] != k) ** 2)
            for k, b in boxes(labels, REACH)]


def out_edt(labels):
    import edt

    return [edt.edtsq(np.ascontiguousarray(labels[b] != k), black_border=False)
            for k, b in boxes(labels, REACH)]


def out_cv2(labels):
    import cv2

    res = []
    for k, b in boxes(labels, REACH):
        src = (labels[b] != k).astype(np.uint8)
        d = cv2.distanceTransform(src, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        res.append(np.rint(d.astype(np.float64) ** 2))
    return res


# ---- per-instance inside: distance to the nearest pixel of another label
def in_scipy(labels):
    out = np.zeros(labels.shape, np.float64)
    for k, b in boxes(labels, 1):
        m = labels[b] == k
        out[b][m] = ndimage.distance_transform_edt(m)[m]
    return out


def in_cv2(labels):
    import cv2

    out = np.zeros(labels.shape, np.float64)
    H, W = labels.shape
    for k, b in boxes(labels, 1):
        m = labels[b] == k
        # the image edge is not background: pad the box with 1 where it touches the edge
        pads = ((int(b[0].start == 0), int(b[0].stop == H)), (int(b[1].start == 0), int(b[1].stop == W)))
        big = max(H, W)
        src = np.pad(m, [(p[0] * big, p[1] * big) for p in pads], constant_values=True) \
            if any(any(p) for p in pads) else m
        d = cv2.distanceTransform(src.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        d = d[pads[0][0] * big: d.shape[0] - pads[0][1] * big,
              pads[1][0] * big: d.shape[1] - pads[1][1] * big]
        out[b][m] = d[m]
    return out


def in_edt(labels):
    import edt

    return edt.edt(np.ascontiguousarray(labels), black_border=False).astype(np.float64)


def timeit(fn, data, repeats: int) -> float:
    fn(data[0][1])  # warm up (imports, JIT-free but first-call caches)
    t0 = time.perf_counter()
    for _ in range(repeats):
        for _, lab in data:
            fn(lab)
    return (time.perf_counter() - t0) / (repeats * len(data)) * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    data = patches()
    counts = [int(np.unique(lab).size - 1) for _, lab in data]
    print(f"{len(data)} patches {SIZE}x{SIZE}, {min(counts)}-{max(counts)} instances each")
    jobs = {
        "outside (weight_map)": (out_scipy_ft, {"scipy feature transform": out_scipy_ft,
                                                 "scipy distances": out_scipy,
                                                 "edt.edtsq": out_edt,
                                                 "cv2 DIST_MASK_PRECISE": out_cv2}),
        "inside (distance)": (in_scipy, {"scipy per instance": in_scipy,
                                         "cv2 per instance": in_cv2,
                                         "edt multi-label": in_edt}),
    }
    for job, (ref, candidates) in jobs.items():
        print(f"\n{job}")
        for name, fn in candidates.items():
            err = 0.0
            for _, lab in data:
                a, b = ref(lab), fn(lab)
                pairs = zip(a, b) if isinstance(a, list) else [(a, b)]
                err = max(err, max(float(np.abs(np.asarray(x, float) - np.asarray(y, float)).max())
                                   for x, y in pairs))
            print(f"  {name:<26}{timeit(fn, data, args.repeats):8.2f} ms/patch   "
                  f"max |diff| vs scipy {err:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
