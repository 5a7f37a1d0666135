"""Instance segmentation side by side: dlsuite's recipe, StarDist 2D and the legacy config.

On the 40 annotated Usiigaci T98G phase-contrast images (``../shared/data``; sets 1-32 train,
33-40 validation, full resolution 1022x1024, written by ``examples/usiigaci-instances/
make_data.py``), each contender trains for the same wall-clock budget on this machine, one
after the other, then predicts the 8 validation images, which are scored by one scorer
(``instances_score.py``: CTC SEG as ``dlsuite evaluate`` computes it, F1@0.5, AP@0.5 and
AP@0.75 with one-to-one IoU matching):

- ``dlsuite``: the recommended config ``examples/usiigaci-instances/config.json`` with
  ``train.epochs`` lifted so that the budget ends training (as for StarDist), unless the
  config decays its learning rate over its epochs (``train.cosine_decay``): then training
  ends at those epochs or at the budget, whichever comes first;
- ``stardist``: StarDist 2D from scratch, 32 rays, grid (2, 2), flips/rotations + intensity
  augmentation, thresholds optimised on the validation images (``instances_stardist.py``;
  needs the ``bench`` extra, skipped with a note when StarDist is not installed);
- ``legacy``: the original suite's flat config (``mobilenet_mobileunet``, 16 filters, 4 pools,
  alpha 0.35, patch 256, batch 4 x 4, 40 epochs of 8 steps, ``sparse_cce``, no pretrained
  weights), migrated on the fly; it stops at 40 epochs or at the budget, whichever is first
  (``--legacy-epochs`` to change).

How the budget is enforced is described in ``instances_dlsuite.py`` (dlsuite: SIGINT at the
deadline, then the best checkpoint predicts) and ``instances_stardist.py`` (a callback stops
at the deadline, then StarDist's best weights predict). Both select their checkpoint on the
validation images, and StarDist also tunes its thresholds on them, so the scores are
validation scores, not held-out test scores. The machine is shared: the budget is wall clock,
so other load on the machine costs every contender training steps.

Usage::

    python benchmarks/instances.py [--minutes 20] [--contenders dlsuite,stardist,legacy]
        [--curve 5,10,20,40,60,90,120] [--work DIR] [--json FILE] [--seed 1]

``--rescore`` (no training) tunes, predicts and scores again the dlsuite and legacy runs
already trained in ``--work`` and rewrites the table and JSON with the other results kept.

``--curve`` records the scores of each contender's best checkpoint at those minutes (all
must be <= ``--minutes``), e.g. ``--minutes 120 --curve 10,20,40,60,90,120`` for the curve of
SEG against minutes up to 2 hours. Goals (issue 12) on a 20-minute budget: the dlsuite
recipe's SEG >= 0.70 and >= StarDist's SEG + 0.10. The JSON (default ``WORK/results.json``)
holds every score, timing and the versions. ``--max-images N`` (per split), ``--crop N``
(top-left N x N pixels) and ``--steps-per-epoch N`` (dlsuite recipe and StarDist) shrink the
run for smoke tests only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SOURCE = REPO.parent / "shared" / "data" / "usiigaci_t98g_phc"
EXAMPLE = REPO / "examples" / "usiigaci-instances"
CONTENDERS = ("dlsuite", "stardist", "legacy")
COLUMNS = ("SEG", "F1@0.5", "AP@0.5", "AP@0.75")
UNTIL_BUDGET = 100_000  # epochs: the budget, not the epoch count, ends training

sys.path.insert(0, str(HERE))
from instances_dlsuite import (legacy_config, recipe_config, run_contender,  # noqa: E402
                               score_checkpoints)
from instances_score import score_folder  # noqa: E402


def _make_data_module():
    spec = importlib.util.spec_from_file_location("usiigaci_make_data", EXAMPLE / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(data: Path, source: Path, max_images: int | None = None,
            crop: int | None = None) -> Path:
    """The 32/8 split in ``data`` (reused when already written with the same split);
    ``max_images``/``crop`` shrink it for smoke runs."""
    make_data = _make_data_module()
    splits = dict(make_data.SPLITS)
    if max_images:
        splits = {k: v[:max_images] for k, v in splits.items()}
    if not make_data.is_written(data, splits, crop):
        make_data.write(source, data, splits, crop)
    return data


def stardist_available() -> bool:
    """True when ``stardist`` and ``csbdeep`` can be imported here."""
    return all(importlib.util.find_spec(m) is not None for m in ("stardist", "csbdeep"))


def run_stardist(data: Path, work: Path, minutes: float, curve: list[float], seed: int,
                 steps_per_epoch: int | None = None) -> dict:
    """Run ``instances_stardist.py`` as a subprocess and score its predictions."""
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cmd = [sys.executable, str(HERE / "instances_stardist.py"), str(data), str(work / "model"),
           "--minutes", str(minutes), "--seed", str(seed), "--t0", repr(t0),
           "--curve", ",".join(f"{m:g}" for m in curve)]
    if steps_per_epoch:
        cmd += ["--steps-per-epoch", str(steps_per_epoch)]
    with open(work / "train.log", "w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise RuntimeError(f"StarDist failed ({done.returncode}), see {work / 'train.log'}")
    facts = json.loads((work / "model" / "result.json").read_text())
    rename = lambda s: s.replace("instance_ids_", "raw_")  # noqa: E731
    result = {**score_folder(data / "val" / "labels", work / "model" / "pred", rename), **facts,
              "stop_s": 0.0, "log": str(work / "train.log")}
    for m in facts.get("curve", {}):
        scores = score_folder(data / "val" / "labels",
                              work / "model" / "curve" / f"pred_{m}min", rename)
        result["curve"][m].update({k: scores[k] for k in COLUMNS})
    return result


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def table(results: dict, minutes: float, val: str = "8 images (sets 33-40)") -> str:
    """The side-by-side table (one row per contender) and the curve, as text."""
    head = f"{'contender':<10}" + "".join(f"{c:>9}" for c in COLUMNS) + \
        f"{'objects':>9}{'train min':>11}{'epochs':>8}  note"
    lines = [f"validation: {val}, budget {minutes:g} min per contender", head,
             "-" * len(head)]
    for name, r in results.items():
        if "error" in r or "skipped" in r:
            lines.append(f"{name:<10}  {r.get('skipped') or 'FAILED: ' + r['error']}")
            continue
        note = f"stopped by {r['stopped_by']}"
        if (r.get("tuning") or {}).get("tuned"):
            note += ", tuned " + " ".join(f"{k.split('.')[-1]} {v:g}"
                                          for k, v in r["tuning"]["tuned"].items())
        if "thresholds" in r:
            note += f", thresholds prob {r['thresholds']['prob']:.2f} nms {r['thresholds']['nms']:.1f}"
        lines.append(f"{name:<10}" + "".join(f"{_fmt(r[c]):>9}" for c in COLUMNS)
                     + f"{r['n_res']:>9}{r['train_s'] / 60:>11.1f}{_fmt(r.get('epochs_done')):>8}"
                     f"  {note}")
    n_gt = next((r["n_gt"] for r in results.values() if "n_gt" in r), None)
    if n_gt is not None:
        lines.append(f"reference objects: {n_gt}")
    curves = {n: r["curve"] for n, r in results.items() if r.get("curve")}
    if curves:
        lines.append("")
        lines.append("SEG of the best checkpoint at each minute:")
        marks = sorted({m for c in curves.values() for m in c}, key=float)
        lines.append(f"{'contender':<10}" + "".join(f"{m + ' min':>9}" for m in marks))
        for name, c in curves.items():
            lines.append(f"{name:<10}" + "".join(
                f"{_fmt(c[m]['SEG']) if m in c else '-':>9}" for m in marks))
    return "\n".join(lines)


def _versions() -> dict:
    out = {"python": platform.python_version(), "machine": platform.platform()}
    for module in ("dlsuite", "tensorflow", "keras", "stardist", "csbdeep"):
        try:
            from importlib.metadata import version

            out[module] = version({"tensorflow": "tensorflow-cpu"}.get(module, module))
        except Exception:  # noqa: BLE001 - not installed (or another distribution name)
            try:
                out[module] = __import__(module).__version__
            except Exception:  # noqa: BLE001
                out[module] = None
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0,
                    help="wall-clock training budget per contender (default 20)")
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help=f"comma-separated subset of {','.join(CONTENDERS)}")
    ap.add_argument("--curve", default="", help="minutes at which to score the best "
                    "checkpoint, comma-separated (each <= --minutes)")
    ap.add_argument("--work", type=Path, default=None,
                    help="working folder (data split, runs, predictions); default: temporary")
    ap.add_argument("--data", type=Path, default=None, help="split folder [WORK/data]")
    ap.add_argument("--source", type=Path, default=SOURCE, help="usiigaci_t98g_phc folder")
    ap.add_argument("--json", type=Path, default=None, help="results JSON [WORK/results.json]")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rescore", action="store_true",
                    help="no training: tune, predict and score again the dlsuite and legacy "
                    "checkpoints (final and curve snapshots) already trained in --work, "
                    "keeping the rest of WORK/results.json (e.g. after a scoring change)")
    ap.add_argument("--legacy-epochs", type=int, default=40,
                    help="train_max_epochs of the legacy config (default 40, as the original)")
    # smoke tests only: fewer images, cropped to the top-left N x N pixels
    ap.add_argument("--max-images", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--crop", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--steps-per-epoch", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    bad = [c for c in names if c not in CONTENDERS]
    if bad or not names:
        ap.error(f"--contenders: unknown {bad}; choose from {','.join(CONTENDERS)}")
    args.contenders = names
    try:
        args.curve = sorted({float(m) for m in args.curve.split(",") if m.strip()})
    except ValueError:
        ap.error(f"--curve: not a list of minutes: {args.curve!r}")
    if args.minutes <= 0 or any(m <= 0 or m > args.minutes for m in args.curve):
        ap.error("--minutes must be > 0 and every --curve minute in (0, --minutes]")
    if not (args.source / "annotated").is_dir():
        ap.error(f"--source: {args.source / 'annotated'} not found (the shared Usiigaci data)")
    return args


def _rescore(out: Path, data: Path, work: Path, names: list[str]) -> dict:
    """The results in ``out`` with the trained dlsuite/legacy runs among ``names`` scored
    again (:func:`instances_dlsuite.score_checkpoints`); training facts are kept."""
    results = json.loads(out.read_text())["results"]
    for name in names:
        r = results.get(name, {})
        if name == "stardist" or "run_dir" not in r:
            continue
        print(f"{name}: scoring the trained checkpoints again ...", flush=True)
        r.update(score_checkpoints(Path(r["run_dir"]), data, work / name, r["weights"],
                                   r.get("snapshots", {})))
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="dlsuite-instances-"))
    work.mkdir(parents=True, exist_ok=True)
    data = prepare(args.data or work / "data", args.source, args.max_images, args.crop)
    print(f"data: {data}\nwork: {work}", flush=True)
    out = args.json or work / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}

    def save() -> None:  # after every contender, so a long run loses nothing finished
        out.write_text(json.dumps({"minutes": args.minutes, "seed": args.seed,
                                   "split": {"train": "set1-set32", "val": "set33-set40"}
                                   if not (args.max_images or args.crop) else
                                   f"smoke: max {args.max_images} images, crop {args.crop}",
                                   "versions": versions, "results": results}, indent=1) + "\n")

    versions = _versions()
    if args.rescore:
        results = _rescore(out, data, work, args.contenders)
        save()
    for name in ([] if args.rescore else args.contenders):
        print(f"{name}: training for {args.minutes:g} min ...", flush=True)
        start = time.monotonic()
        try:
            if name == "stardist" and not stardist_available():
                results[name] = {"skipped": "StarDist not installed (pip install -e '.[bench]')"}
            elif name == "stardist":
                results[name] = run_stardist(data, work / name, args.minutes, args.curve,
                                             args.seed, args.steps_per_epoch)
            else:
                run_dir = work / name / "run"
                if name == "dlsuite":
                    config = recipe_config(EXAMPLE / "config.json", data, run_dir, args.seed,
                                           epochs=UNTIL_BUDGET)
                    if args.steps_per_epoch:
                        config["datagen"]["steps_per_epoch"] = args.steps_per_epoch
                else:
                    config = legacy_config(data, run_dir, args.seed, args.legacy_epochs)
                results[name] = run_contender(config, data, work / name, args.minutes,
                                              args.curve)
        except (RuntimeError, OSError, KeyError, ValueError) as exc:
            results[name] = {"error": str(exc)}
        save()
        print(f"{name}: done in {(time.monotonic() - start) / 60:.1f} min", flush=True)
    n_val = len(list((data / "val" / "inputs").glob("*.tif")))
    text = table(results, args.minutes, f"{n_val} images" + (f" cropped to {args.crop} px"
                                                             if args.crop else ""))
    print()
    print(text)
    print(f"\nwrote {out}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
