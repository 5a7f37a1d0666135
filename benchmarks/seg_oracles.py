"""Where a prediction loses SEG: the foreground, or the separation of touching cells?

Usage (a ``dlsuite predict`` output folder of a run whose target is ``distance``, written with
its probabilities, and the reference label images of the same images)::

    python benchmarks/seg_oracles.py PRED_DIR GT_DIR [--json]

``PRED_DIR`` holds ``predict.json`` (the run and the post-processing chain it used) and
``probabilities/NAME.tif`` (channels first: the class probabilities, then the predicted
distance); ``GT_DIR`` holds one reference label image per image, paired by the number at the
end of the file name (``raw_033.tif`` with ``instance_ids_033.tif``) or by the same name.

The same chain (parameters as used) runs on the probabilities once per row below, with the
named channels replaced by the reference's own (the target the model was trained to give, as
the ``distance`` target computes it from the reference labels):

- ``predicted``: nothing replaced (the SEG of the prediction);
- ``reference distance``: the distance channel, i.e. where the seeds are and where touching
  cells part;
- ``reference foreground``: the class channels, i.e. which pixels are cell;
- ``reference foreground within N px``: the class channels only within N pixels of the
  nearest reference outline (N = 1, 3), i.e. the precision of the cells' outlines;
- ``reference both``: the chain's ceiling on these images.

The rows also give F1@0.5 and, for ``predicted``, how the reference objects fared: matched
(overlap > half the object) with IoU >= 0.5, matched below 0.5 (the result object is larger
than twice the overlap: merged or bled), unmatched; and the foreground's errors by distance
to the nearest reference boundary. A large gain from ``reference foreground`` and a small one
from ``reference distance`` mean the model's cell/background decision, not the splitting, is
what to improve (see examples/usiigaci-instances/README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from instances_score import score

#: distance to the nearest reference boundary (px), the bins of the foreground error table
BINS = (0, 1, 2, 3, 5, 8, np.inf)
#: the rings (px from the reference outline) where the reference foreground is put in alone
RINGS = (1, 3)


def _refuse(message: str) -> None:
    """Bad input: one line naming the file on stderr, exit 2 (as dlsuite's commands)."""
    print(message, file=sys.stderr)
    sys.exit(2)


def _number(name: str) -> str | None:
    found = re.search(r"(\d+)$", name)
    return found.group(1) if found else None


def pair_files(pred_dir: Path, gt_dir: Path) -> list[tuple[Path, Path]]:
    """``(probabilities, reference)`` file pairs, by trailing number or by equal name."""
    refs = sorted(gt_dir.glob("*.tif"))
    by_name = {p.stem: p for p in refs}
    by_number = {_number(p.stem): p for p in refs if _number(p.stem) is not None}
    pairs = []
    for prob in sorted((pred_dir / "probabilities").glob("*.tif")):
        ref = by_name.get(prob.stem) or by_number.get(_number(prob.stem))
        if ref is None:
            _refuse(f"{prob}: no reference label image in {gt_dir} with its name or number")
        pairs.append((prob, ref))
    if not pairs:
        _refuse(f"{pred_dir / 'probabilities'}: no probabilities (predict with them written)")
    return pairs


def load_chain(pred_dir: Path):
    """The post-processing chain ``predict.json`` records, built on its run's config, and
    the parameters of its ``distance_watershed`` step."""
    from dlsuite.inference.chain_choice import load_predict_config
    from dlsuite.inference.postprocess import build_postprocess
    from dlsuite.registry import get_registry

    if not (pred_dir / "predict.json").is_file():
        _refuse(f"{pred_dir / 'predict.json'}: not found (PRED_DIR must be a dlsuite predict "
                 "output folder)")
    record = json.loads((pred_dir / "predict.json").read_text())
    steps = record["chain"]["steps"]
    names = [s if isinstance(s, str) else s["name"] for s in steps]
    if "distance_watershed" not in names:
        _refuse(f"{pred_dir / 'predict.json'}: the chain {names} has no distance_watershed "
                 "step; this diagnostic needs a distance target")
    registry = get_registry()
    loaded = load_predict_config(record["run_dir"], registry, chain=steps).loaded
    chain = build_postprocess(loaded.config.postprocess, registry)
    return chain, chain.choices[names.index("distance_watershed")].params


def reference_channels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``distance`` target of ``labels``: (foreground 0/1, per-cell normalised distance)."""
    from dlsuite_plugins.datagen.distances import instance_distances

    return (labels > 0).astype(np.float32), instance_distances(labels, normalize=True)


def substituted(probs: np.ndarray, params, fg: np.ndarray | None,
                dist: np.ndarray | None) -> np.ndarray:
    """``probs`` ``(H, W, C)`` with the foreground (and background) or distance channel
    replaced."""
    out = probs.copy()
    if fg is not None:
        if params.background_channel is not None:  # cell classes together: 1 - background
            out[..., params.background_channel] = 1.0 - fg
        else:
            out[..., params.foreground_channel] = fg
            if out.shape[-1] == 3:  # background, foreground, distance
                out[..., 0] = 1.0 - fg
    if dist is not None:
        out[..., params.distance_channel] = dist
    return out


def foreground_probability(probs: np.ndarray, params) -> np.ndarray:
    """The probability the chain thresholds for its foreground."""
    if params.background_channel is not None:
        return 1.0 - probs[..., params.background_channel]
    return probs[..., params.foreground_channel]


def object_fates(gt: np.ndarray, res: np.ndarray) -> np.ndarray:
    """Per reference object: 2 matched with IoU >= 0.5, 1 matched below, 0 unmatched (CTC)."""
    from dlsuite.evaluation.seg import seg_frame

    detail = seg_frame(gt, res)
    fate = np.where(detail["res_labels"] > 0, 1, 0)
    fate[detail["jaccard"] >= 0.5] = 2
    return fate


def outline_distance(gt: np.ndarray) -> np.ndarray:
    """Each pixel's distance to the nearest pixel on the other side of the reference
    foreground's outline (>= 1 everywhere: 1 on both sides of it)."""
    from scipy import ndimage as ndi

    ref = gt > 0
    return np.where(ref, ndi.distance_transform_edt(ref), ndi.distance_transform_edt(~ref))


def foreground_errors(gt: np.ndarray, fg: np.ndarray, to_outline: np.ndarray) -> np.ndarray:
    """``(len(BINS) - 1, 2)`` counts of false-positive and false-negative foreground pixels by
    their distance ``to_outline`` (:func:`outline_distance` of ``gt``)."""
    ref = gt > 0
    out = np.zeros((len(BINS) - 1, 2))
    for k in range(len(BINS) - 1):
        ring = (to_outline > BINS[k]) & (to_outline <= BINS[k + 1])
        out[k] = (fg & ~ref & ring).sum(), (~fg & ref & ring).sum()
    return out


def diagnose(pred_dir: Path, gt_dir: Path) -> dict:
    """The rows (one per chain input), the fates of the reference objects and the foreground
    error table."""
    import tifffile

    chain, params = load_chain(pred_dir)
    # name: (reference foreground within this many px of the outlines (inf: everywhere),
    #        reference distance)
    variants = {"predicted": (0, False), "reference distance": (0, True),
                "reference foreground": (np.inf, False)}
    variants.update({f"reference foreground within {r} px": (r, False) for r in RINGS})
    variants["reference both"] = (np.inf, True)
    results = {name: {} for name in variants}
    refs, fates, errors = {}, [], np.zeros((len(BINS) - 1, 2))
    for prob_path, ref_path in pair_files(pred_dir, gt_dir):
        probs = np.moveaxis(np.asarray(tifffile.imread(prob_path), np.float32), 0, -1)
        gt = np.asarray(tifffile.imread(ref_path))
        refs[prob_path.stem] = gt
        fg, dist = reference_channels(gt)
        to_outline = outline_distance(gt)
        predicted_fg = foreground_probability(probs, params)
        for name, (ring, use_dist) in variants.items():
            p = substituted(probs, params,
                            np.where(to_outline <= ring, fg, predicted_fg) if ring else None,
                            dist if use_dist else None)
            results[name][prob_path.stem] = chain.frame_labels(p)
        fates.append(object_fates(gt, results["predicted"][prob_path.stem]))
        errors += foreground_errors(gt, predicted_fg > params.threshold, to_outline)
    fates = np.concatenate(fates)
    rows = {name: score(refs, res) for name, res in results.items()}
    return {"rows": {name: {k: r[k] for k in ("SEG", "F1@0.5")} for name, r in rows.items()},
            "reference_objects": {"n": int(fates.size),
                                  "matched_iou_at_least_0.5": int((fates == 2).sum()),
                                  "matched_iou_below_0.5": int((fates == 1).sum()),
                                  "unmatched": int((fates == 0).sum())},
            "foreground_errors": [{"distance_px": f"({BINS[k]:g}, {BINS[k + 1]:g}]",
                                   "false_positive": int(errors[k, 0]),
                                   "false_negative": int(errors[k, 1])}
                                  for k in range(len(BINS) - 1)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pred_dir", type=Path, help="a dlsuite predict output folder")
    parser.add_argument("gt_dir", type=Path, help="the reference label images")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    out = diagnose(args.pred_dir, args.gt_dir)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(name) for name in out["rows"]) + 2
    print(f"{'chain input':<{width}}{'SEG':>7}{'F1@0.5':>8}")
    for name, row in out["rows"].items():
        print(f"{name:<{width}}{row['SEG']:>7.3f}{row['F1@0.5']:>8.3f}")
    objects = out["reference_objects"]
    print(f"\nreference objects: {objects['n']}: IoU >= 0.5 {objects['matched_iou_at_least_0.5']}"
          f", matched below 0.5 {objects['matched_iou_below_0.5']}, unmatched "
          f"{objects['unmatched']}")
    total = sum(e["false_positive"] + e["false_negative"] for e in out["foreground_errors"])
    print("\nforeground errors by distance to the reference boundary (px):")
    for e in out["foreground_errors"]:
        share = (e["false_positive"] + e["false_negative"]) / max(total, 1)
        print(f"  {e['distance_px']:<10} false positive {e['false_positive']:>8}  "
              f"false negative {e['false_negative']:>8}  ({share:.0%} of all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
