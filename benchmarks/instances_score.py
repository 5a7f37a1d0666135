"""The one scorer of ``benchmarks/instances.py`` and ``benchmarks/video_instances.py``.

:func:`score` takes reference and result label images (matched by name) and returns

- ``SEG``: the CTC SEG measure exactly as ``dlsuite evaluate`` computes it
  (:func:`dlsuite.evaluation.seg_score`, mean over every reference object of every image);
- ``F1@0.5``, ``AP@0.5``, ``AP@0.75``: one-to-one matching of reference and result objects at
  IoU >= t (the pairing with the most pairs, then the largest IoU sum: Hungarian assignment),
  counts summed over all images before the scores are computed; F1 = 2TP / (2TP + FP + FN),
  AP = TP / (TP + FP + FN) (the DSB 2018 "average precision", StarDist's ``accuracy``).

The matching comes from ``dlsuite.evaluation.matching`` when that module exists (it is being
added to dlsuite); until then from :func:`match_counts` below, which gives the numbers of
``stardist.matching.matching_dataset(..., by_image=False)`` (``tests/test_benchmarks_smoke.py``
compares them when StarDist is installed). ``matcher`` in the result says which one ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

THRESHOLDS = (0.5, 0.75)


def read_labels(folder: Path) -> dict[str, np.ndarray]:
    """``{stem: label image}`` of the ``*.tif`` files in ``folder`` (natural order)."""
    import tifffile

    return {p.stem: np.asarray(tifffile.imread(p)) for p in sorted(Path(folder).glob("*.tif"))}


def _iou_matrix(gt: np.ndarray, res: np.ndarray) -> np.ndarray:
    """IoU of every (reference object, result object) pair, ``(n_gt, n_res)``."""
    from skimage.segmentation import relabel_sequential

    g = relabel_sequential(np.asarray(gt).astype(np.int64))[0]
    r = relabel_sequential(np.asarray(res).astype(np.int64))[0]
    ng, nr = int(g.max()), int(r.max())
    inter = np.bincount((g * (nr + 1) + r).ravel(), minlength=(ng + 1) * (nr + 1))
    inter = inter.reshape(ng + 1, nr + 1)
    area_g, area_r = inter.sum(axis=1), inter.sum(axis=0)
    union = area_g[1:, None] + area_r[None, 1:] - inter[1:, 1:]
    return inter[1:, 1:] / np.maximum(union, 1)


def match_counts(gt: np.ndarray, res: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of the one-to-one matching at IoU >= ``threshold`` (most pairs, then
    largest IoU sum)."""
    from scipy.optimize import linear_sum_assignment

    iou = _iou_matrix(gt, res)
    n_gt, n_res = iou.shape
    ok = iou >= threshold
    tp = 0
    if ok.any():
        rows, cols = np.flatnonzero(ok.any(axis=1)), np.flatnonzero(ok.any(axis=0))
        sub, sub_ok = iou[np.ix_(rows, cols)], ok[np.ix_(rows, cols)]
        # a pair counts 1; its IoU (scaled below 1 in total) only breaks ties
        cost = -(sub_ok.astype(float) + sub_ok * sub / (2 * min(sub.shape)))
        ri, ci = linear_sum_assignment(cost)
        tp = int(sub_ok[ri, ci].sum())
    return tp, n_res - tp, n_gt - tp


def _dlsuite_matching():
    try:
        from dlsuite.evaluation.matching import matching_dataset
    except ImportError:
        return None
    return matching_dataset


def score(gt: Mapping[str, np.ndarray], res: Mapping[str, np.ndarray]) -> dict:
    """SEG, F1@0.5, AP@0.5, AP@0.75 (see the module docstring) of ``res`` against ``gt``,
    both ``{name: label image}``; every name of ``gt`` must be in ``res`` (KeyError naming the
    missing ones otherwise). Also ``n_gt``, ``n_res`` and ``matcher``."""
    from dlsuite.evaluation import seg_score

    names = sorted(gt)
    missing = [n for n in names if n not in res]
    if missing:
        raise KeyError(f"no result for {missing}")
    seg = seg_score({i: gt[n] for i, n in enumerate(names)},
                    {i: res[n] for i, n in enumerate(names)})
    out = {"SEG": float(seg),
           "n_gt": int(sum(np.unique(gt[n]).size - (gt[n] == 0).any() for n in names)),
           "n_res": int(sum(np.unique(res[n]).size - (res[n] == 0).any() for n in names))}
    dl_matching = _dlsuite_matching()
    if dl_matching is not None:
        entries = dl_matching([gt[n] for n in names], [res[n] for n in names], THRESHOLDS)
        by_t = {round(e["iou"], 6): e for e in entries}
        counts = {t: (by_t[t]["tp"], by_t[t]["fp"], by_t[t]["fn"]) for t in THRESHOLDS}
        out["matcher"] = "dlsuite.evaluation.matching"
    else:
        counts = {}
        for t in THRESHOLDS:
            per = [match_counts(gt[n], res[n], t) for n in names]
            counts[t] = tuple(int(sum(c[k] for c in per)) for k in range(3))
        out["matcher"] = "benchmarks/instances_score.py"
    for t, (tp, fp, fn) in counts.items():
        if t == 0.5:
            out["F1@0.5"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        out[f"AP@{t:g}"] = tp / (tp + fp + fn) if tp else 0.0
    return out


def score_folder(gt_dir: Path, res_dir: Path, rename=None) -> dict:
    """:func:`score` of the label TIFFs of ``res_dir`` against those of ``gt_dir``; ``rename``
    maps a reference stem to the result stem (default: same stem)."""
    gt = read_labels(gt_dir)
    res_files = read_labels(res_dir)
    rename = rename or (lambda s: s)
    res = {n: res_files[rename(n)] for n in gt if rename(n) in res_files}
    return score(gt, res)
