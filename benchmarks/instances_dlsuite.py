"""dlsuite contenders of ``benchmarks/instances.py``: train for a wall-clock budget, predict.

How the budget is enforced (honest and simple, no change to dlsuite): ``dlsuite train CONFIG``
runs in a subprocess with ``train.epochs`` as configured; when the budget is spent the
benchmark sends it SIGINT (once the first epoch has ended, so that a checkpoint exists even
for tiny smoke budgets), which dlsuite handles as a user's Ctrl-C: training stops at the end
of the current batch (the epoch cut short is not counted) and the checkpoints are written (``checkpoints/best.keras`` holds the
epoch with the best ``val_jaccard`` so far, validated on the 8 validation images). A run whose
epochs end earlier simply exits. The budget counts everything the process does (start-up,
loading and caching the images, every validation pass); the time to stop after the signal
(at most one batch and the checkpoint writes) is reported as ``stop_s``. Then
``dlsuite predict RUN_DIR VAL_INPUTS --weights best`` predicts the validation images with the
run's own tiling and post-processing, after the post-processing search that ``dlsuite run``
does after training (:func:`tune_on_validation`, on the validation images, as StarDist
optimises its thresholds on them; its time, ``tuning.tune_s``, and ``predict_s`` are outside
the budget).

``--curve``: while the run trains, ``best.keras`` is copied at each requested minute (dlsuite
writes it atomically), so each copy is exactly what a run stopped at that minute would
predict with (up to the epoch in progress); each copy is then predicted like the final one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from instances_score import score_folder

#: The legacy flat config of the original suite (issue 12): migrated on the fly by dlsuite.
#: Keys the issue does not fix keep the original's defaults (model_lr 1e-4, pdf 500000).
LEGACY_CONFIG = {
    "cnn_name": "mobilenet_mobileunet",
    "model_n_filters": 16,
    "model_pools": 4,
    "model_mobile_alpha": 0.35,
    "model_lr": 0.0001,
    "model_lossfunction": "sparse_cce",
    "model_seed_initializer": 1,
    "train_max_epochs": 40,
    "train_pretrained_weights": "None",
    "callbacks_save_best_only": 1,
    "datagen_type": "None",
    "datagen_batch_size": 4,
    "datagen_patch_batch": 4,
    "datagen_dim_size": [256, 256],
    "datagen_sampling_pdf": 500000,
    "normalization": "PERCENTILE",
    "PATH2VIDEOS": "None",
    "TESTPATH": "None",
}


def dlsuite_command() -> list[str]:
    """The ``dlsuite`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("dlsuite")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from dlsuite.cli import main; sys.exit(main())"]


def recipe_config(example: Path, data: Path, run_dir: Path, seed: int,
                  epochs: int | None = None) -> dict:
    """The example's recommended config pointed at ``data`` (train/val) and ``run_dir``;
    no test set (the benchmark predicts and scores the validation images itself), W&B off;
    ``epochs`` replaces ``train.epochs`` when given, unless the config decays the learning
    rate over its epochs (``train.cosine_decay``): that schedule keeps its length, and the
    budget still stops training if the epochs take longer."""
    cfg = json.loads(example.read_text())
    decays = cfg.get("train", {}).get("cosine_decay", {}).get("enabled", False)
    if epochs is not None and not decays:
        cfg["train"] = {**cfg.get("train", {}), "epochs": int(epochs)}
    cfg.update(name=run_dir.name, output_dir=str(run_dir), seed=seed)
    cfg["data"] = {**cfg.get("data", {}), "train": str(data / "train"),
                   "val": str(data / "val"), "test": None}
    cfg["wandb"] = {**cfg.get("wandb", {}), "mode": "disabled"}
    return cfg


def legacy_config(data: Path, run_dir: Path, seed: int, epochs: int) -> dict:
    """:data:`LEGACY_CONFIG` with its paths, seed and ``train_max_epochs`` filled in."""
    return {**LEGACY_CONFIG, "OUTPUTPATH": str(run_dir), "TRAINPATH": str(data / "train"),
            "VALPATH": str(data / "val"), "model_seed_initializer": seed,
            "train_max_epochs": epochs}


def _default_sigint() -> None:
    # a benchmark started in the background inherits SIGINT ignored; the child must see it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env() -> dict:
    # W&B off whatever the config says; one log line per epoch is enough
    return {**os.environ, "WANDB_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "2"}


def train_for(config: dict, work: Path, minutes: float, curve: list[float],
              log=print) -> dict:
    """Write ``config`` to ``work/config.json``, run ``dlsuite train`` on it for at most
    ``minutes`` (SIGINT at the deadline) and copy ``best.keras`` at each minute of ``curve``
    into ``work/curve/best_at_<m>min.keras``. Returns timing facts (``train_s``, ``stop_s``,
    ``stopped_by``, ``returncode``, ``epochs_done``, ``snapshots``)."""
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "config.json"
    cfg_path.write_text(json.dumps(config, indent=1))
    run_dir = Path(config.get("output_dir") or config["OUTPUTPATH"])
    best = run_dir / "checkpoints" / "best.keras"
    budget = minutes * 60.0
    pending = sorted(m for m in curve if m * 60.0 <= budget + 1e-9)
    snapshots: dict[str, str] = {}
    state = {"sent": None, "stopped_by": "epochs", "waiting": False}

    def watch(proc: subprocess.Popen, start: float) -> None:
        while proc.poll() is None:
            time.sleep(0.5)
            elapsed = time.monotonic() - start
            while pending and elapsed >= pending[0] * 60.0:
                m = pending.pop(0)
                if best.is_file():
                    dst = work / "curve" / f"best_at_{m:g}min.keras"
                    dst.parent.mkdir(exist_ok=True)
                    shutil.copy2(best, dst)
                    snapshots[f"{m:g}"] = str(dst)
            if state["sent"] is None and elapsed >= budget:
                if _epochs_done(run_dir):
                    proc.send_signal(signal.SIGINT)
                    state.update(sent=time.monotonic(), stopped_by="deadline")
                    log(f"  {work.name}: budget spent, SIGINT sent")
                elif not state["waiting"]:
                    state["waiting"] = True
                    log(f"  {work.name}: budget spent before the first epoch ended: waiting "
                        "for it (the training time will exceed the budget)")

    with open(work / "train.log", "w") as out:
        start = time.monotonic()
        proc = subprocess.Popen(dlsuite_command() + ["train", str(cfg_path), "--overwrite"],
                                stdout=out, stderr=subprocess.STDOUT, env=_env(),
                                preexec_fn=_default_sigint)
        try:
            watch(proc, start)
        except BaseException:
            proc.kill()  # never leave a training process behind
            raise
        end = time.monotonic()
    sent, stopped_by = state["sent"], state["stopped_by"]
    train_end = sent if sent is not None else end
    return {"train_s": round(train_end - start, 1),
            "stop_s": round(end - sent, 1) if sent is not None else 0.0,
            "stopped_by": stopped_by, "returncode": proc.returncode,
            "epochs_done": _epochs_done(run_dir), "snapshots": snapshots,
            "run_dir": str(run_dir), "log": str(work / "train.log")}


def _epochs_done(run_dir: Path) -> int | None:
    """Completed epochs: the rows of the run's ``history.csv`` (None when absent)."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    return max(0, len(path.read_text().strip().splitlines()) - 1)


#: Run in a subprocess: ``dlsuite run``'s own post-processing step
#: (:func:`dlsuite.tune_step.tune_step`) on the validation images, for checkpoint ``argv[2]``.
_TUNE = """
import json, sys, time
from pathlib import Path
from dlsuite.registry import get_registry
from dlsuite.rundir import RunDir, load_run_config
from dlsuite.steps import RunContext, TrainOutput
from dlsuite.tune_step import tune_step
root, ckpt = Path(sys.argv[1]), Path(sys.argv[2])
registry = get_registry()
ctx = RunContext(load_run_config(root, registry), registry, RunDir(root), quiet=True)
start = time.monotonic()
result = tune_step(ctx, TrainOutput(ckpt, [], {}, 0))
print(json.dumps({} if result is None else {
    "metric": result.metric, "score": result.score, "default_score": result.default_score,
    "tuned": result.tuned, "tune_s": round(time.monotonic() - start, 1)}))
"""


def tune_on_validation(run_dir: Path, checkpoint: Path) -> dict:
    """Search the run's tunable post-processing parameters on the validation images for
    ``checkpoint`` as ``dlsuite run`` does after training (the benchmark stops ``dlsuite
    train`` at the deadline, so the run never reaches that step) and write
    ``postprocess.json``, which ``dlsuite predict`` then uses. Returns the search's summary
    (``{}`` when the chain has nothing to tune)."""
    (run_dir / "postprocess.json").unlink(missing_ok=True)  # the benchmark's own file
    done = subprocess.run([sys.executable, "-c", _TUNE, str(run_dir), str(checkpoint)],
                          capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise RuntimeError(f"tuning failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def predict_and_score(run_dir: Path, data: Path, out: Path, weights: str = "best") -> dict:
    """``dlsuite predict`` of ``data/val/inputs`` with ``weights`` into ``out``, then
    :func:`score_folder` against ``data/val/labels`` (``raw_NNN`` <- ``instance_ids_NNN``)."""
    if out.exists():
        shutil.rmtree(out)
    start = time.monotonic()
    cmd = dlsuite_command() + ["predict", str(run_dir), str(data / "val" / "inputs"),
                               "-o", str(out), "--weights", weights, "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise RuntimeError(f"dlsuite predict failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    result = score_folder(data / "val" / "labels", out / "labels",
                          rename=lambda s: s.replace("instance_ids_", "raw_"))
    result["predict_s"] = round(time.monotonic() - start, 1)
    return result


def run_contender(config: dict, data: Path, work: Path, minutes: float, curve: list[float],
                  log=print) -> dict:
    """Train ``config`` for ``minutes`` (:func:`train_for`), predict and score the validation
    images with the best checkpoint (the last one when no best was written), and each curve
    snapshot. Returns the scores, the timing facts and ``curve`` ``{minute: scores}``."""
    facts = train_for(config, work, minutes, curve, log)
    run_dir = Path(facts["run_dir"])
    ckpt = run_dir / "checkpoints"
    weights = "best" if (ckpt / "best.keras").is_file() else "last"
    if not (ckpt / f"{weights}.keras").is_file():
        raise RuntimeError(f"no checkpoint written by the run (see {facts['log']})")
    return {**facts, **score_checkpoints(run_dir, data, work, weights, facts["snapshots"]),
            "weights": weights}


def score_checkpoints(run_dir: Path, data: Path, work: Path, weights: str,
                      snapshots: dict[str, str]) -> dict:
    """Each curve snapshot, then the final checkpoint ``weights``: post-processing tuned on
    the validation images for it (:func:`tune_on_validation`), then predicted and scored.
    Returns the final scores with ``tuning`` and ``curve`` ``{minute: scores}``."""
    curve = {}
    for m, path in snapshots.items():
        tuning = tune_on_validation(run_dir, Path(path))
        scores = predict_and_score(run_dir, data, work / "curve" / f"pred_{m}min", path)
        curve[m] = {k: scores[k] for k in ("SEG", "F1@0.5", "AP@0.5", "AP@0.75")}
        curve[m]["tuned"] = tuning.get("tuned")
    tuning = tune_on_validation(run_dir, run_dir / "checkpoints" / f"{weights}.keras")
    return {**predict_and_score(run_dir, data, work / "pred", weights), "tuning": tuning,
            "curve": curve}
