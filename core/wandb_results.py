"""What a dlsuite run records in W&B besides its per-epoch history, under stable names.

Summary keys (``run.summary``; the same names ``dlsuite compare`` uses where it has them):

* ``best/monitor`` (the monitored metric's name, e.g. ``val_loss``), ``best/mode``
  (``min``/``max``), ``best/value``, ``best/epoch`` (1-based), ``<monitor>/best`` (the same
  value under the metric's own name, e.g. ``val_loss/best``) and ``epochs`` (epochs trained):
  :func:`best_summary`, written by training. W&B's own ``<monitor>.min``/``.max`` is kept too
  (``define_metric``).
* ``test/<metric>``: each numeric test metric (``test/SEG``, ``test/DET``, ``test/TRA``,
  ``test/f1``, ``test/foreground_jaccard``, ``test/foreground_dice``, ...):
  :func:`test_summary`, written by ``dlsuite run`` and ``dlsuite test``.
* ``test/images``: a ``wandb.Table`` with one row per annotated test frame (at most
  :data:`TABLE_ROWS`), columns :data:`TABLE_COLUMNS`: the sample, the frame, the image with
  the ground-truth and predicted foreground as W&B masks, the frame's SEG and foreground
  Jaccard and the object counts, so runs can be compared image by image (W&B joins tables of
  runs on ``sample`` and ``frame``).

``dlsuite predict`` records a W&B run of job type ``predict`` (:func:`record_prediction`):
summary ``predict/inputs`` and ``predict/objects``, the table ``predict/images``.

Everything goes through :class:`dlsuite.logging.WandbRun`, so nothing here raises into a run.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .logging.wandb_run import WandbRun

__all__ = ["best_summary", "test_summary", "image_rows", "log_test_results", "frame_seg",
           "record_prediction", "TABLE_KEY", "TABLE_COLUMNS", "TABLE_ROWS", "CLASS_LABELS",
           "PREDICT_TABLE_KEY", "PREDICT_COLUMNS"]

log = logging.getLogger("dlsuite")

TABLE_KEY = "test/images"
TABLE_COLUMNS = ("sample", "frame", "image", "SEG", "foreground_jaccard", "objects_true",
                 "objects_predicted")
#: Most rows of the test-image table (images are uploaded: a test set of thousands of
#: frames would make a slow table).
TABLE_ROWS = 100
CLASS_LABELS = {0: "background", 1: "cell"}


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def best_summary(monitor: str, mode: str, best: float | None, best_epoch: int | None,
                 epochs: int) -> dict:
    """The training summary under the stable names of the module docstring."""
    return {"best/monitor": monitor, "best/mode": mode, "best/value": _number(best),
            "best/epoch": best_epoch, f"{monitor}/best": _number(best), "epochs": epochs}


def test_summary(metrics: Mapping[str, Any]) -> dict:
    """``{"test/<name>": value}`` of the finite numeric test ``metrics``."""
    return {f"test/{k}": float(v) for k, v in metrics.items()
            if not isinstance(v, bool) and _number(v) is not None}


def frame_seg(truth: np.ndarray, labels: np.ndarray) -> float | None:
    """The CTC SEG of one frame: the mean Jaccard of the reference objects with their
    matching result object (0 when none covers more than half of it); None when the frame
    has no reference object."""
    from .evaluation.seg import seg_frame

    jaccard = seg_frame(truth, labels)["jaccard"]
    return float(np.mean(jaccard)) if jaccard.size else None


def _objects(labels: np.ndarray) -> int:
    ids = np.unique(labels)
    return int(np.count_nonzero(ids))


def image_rows(run: WandbRun, samples: Sequence[Any], limit: int = TABLE_ROWS) -> list[list]:
    """Rows of the test-image table (:data:`TABLE_COLUMNS`) for ``samples`` (objects with
    ``name``, ``image``, ``truth``, ``annotated`` and ``labels``, all ``(T, H, W)``): every
    annotated frame (frame 0 of a sample without ground truth, metrics None), at most
    ``limit`` rows. Empty when the run is inactive."""
    from .evaluation.frame_metrics import foreground_jaccard

    if not run.active:
        return []
    rows: list[list] = []
    for s in samples:
        frames = [int(t) for t in np.asarray(s.annotated, dtype=int)] if s.truth is not None \
            else [0]
        for t in frames or [0]:
            if len(rows) >= limit:
                return rows
            truth = None if s.truth is None else np.asarray(s.truth[t])
            pred = np.asarray(s.labels[t])
            image = run.image(s.image[t], truth=None if truth is None else truth > 0,
                              prediction=pred > 0, class_labels=CLASS_LABELS,
                              caption=f"{s.name} frame {t}")
            if image is None:
                return rows
            seg = None if truth is None else frame_seg(truth, pred)
            jac = None if truth is None else float(foreground_jaccard(truth, pred))
            rows.append([str(s.name), t, image, seg, jac,
                         None if truth is None else _objects(truth), _objects(pred)])
    return rows


def log_test_results(run: WandbRun, samples: Sequence[Any], metrics: Mapping[str, Any],
                     n_images: int = 4) -> None:
    """Put the test metrics in the summary (:func:`test_summary`), log the test-image table
    (:func:`image_rows`) and, as before, ``n_images`` images under ``test/samples``."""
    if not run.active:
        return
    run.summary(test_summary(metrics))
    try:
        rows = image_rows(run, samples)
    except Exception as exc:  # noqa: BLE001 - a bad frame must not stop the run's report
        log.warning("W&B test-image table skipped: %s: %s", type(exc).__name__, exc)
        rows = []
    run.log_table(TABLE_KEY, TABLE_COLUMNS, rows)
    images = []
    for s in list(samples)[:n_images]:  # the first annotated frame of each
        t = int(s.annotated[0]) if len(s.annotated) else 0
        img = run.image(s.image[t], truth=None if s.truth is None else (s.truth[t] > 0),
                        prediction=s.labels[t] > 0, caption=f"{s.name} frame {t}",
                        class_labels=CLASS_LABELS)
        if img is not None:
            images.append(img)
    run.log_images("test/samples", images)


#: The table of ``dlsuite predict``'s W&B run: the first ``wandb.n_images`` inputs.
PREDICT_TABLE_KEY = "predict/images"
PREDICT_COLUMNS = ("input", "image", "objects")


def record_prediction(ctx: Any, out: Any, rows: Sequence[dict],
                      shown: Sequence[tuple], *, linked_alias: str | None,
                      before_writing: Callable[[], Any] = lambda: None) -> str | None:
    """The W&B run (job type ``predict``, files in ``out/wandb``) of a ``dlsuite predict``
    into ``out`` with the run of ``ctx`` (a :class:`dlsuite.steps.RunContext`): the run's
    config and group, summary ``predict/inputs`` and ``predict/objects``, the table
    ``predict/images`` of ``shown`` (``(name, 2D image, 2D labels or None)``) with the
    predicted foreground as a mask and, with ``linked_alias``, the run's model artifact of
    that alias as input. Nothing when the run's W&B mode is disabled; else
    ``before_writing()`` is called first (to record ``out/wandb`` as written). Returns the
    W&B run id (None when there is none). Never raises."""
    from .config.converter import unstructure_config
    from .logging.wandb_run import JOB_PREDICT, resolve_mode

    cfg = ctx.config
    if resolve_mode(cfg.wandb.mode) == "disabled":
        return None
    try:
        config = unstructure_config(cfg, ctx.registry)
    except Exception as exc:  # noqa: BLE001 - W&B must never stop a prediction
        log.warning("W&B predict run skipped: %s: %s", type(exc).__name__, exc)
        return None
    before_writing()
    run = WandbRun.start(wandb_config=cfg.wandb, run_dir=out, name=f"{cfg.name}-predict",
                         config=config, job_type=JOB_PREDICT,
                         overrides=getattr(ctx.loaded, "overrides", None))
    run_id = run.id
    try:
        if linked_alias and cfg.wandb.log_model:
            run.use_model(cfg.name, alias=linked_alias)
        objects = [r.get("objects") for r in rows if r.get("objects") is not None]
        run.summary({"predict/inputs": len(rows),
                     "predict/objects": int(sum(objects)) if objects else None})
        table = []
        for name, image, labels in shown:
            img = run.image(image, prediction=None if labels is None else labels > 0,
                            class_labels=CLASS_LABELS, caption=str(name))
            if img is not None:
                table.append([str(name), img, None if labels is None else _objects(labels)])
        run.log_table(PREDICT_TABLE_KEY, PREDICT_COLUMNS, table)
    finally:
        run.finish()
    return run_id
