"""``dlsuite predict RUN_DIR IMAGE.ome.zarr`` (or ``--block-size N``): images larger than
memory predicted block by block into OME-Zarr, in this process or on a Dask cluster; and
``api.predict(..., scheduler=...)`` for one image or video.

The client never loads the model nor holds the image: it reads the run's config, computes the
normalization statistics in one streaming pass (:mod:`.normalize`), creates the output
OME-Zarr (:class:`~.omezarr.Target`) and runs the block tasks (:mod:`.blocks`). Outputs per
input ``<name>``: ``OUT/<name>.ome.zarr`` (probabilities ``(t,) c, y, x`` with the input's
pixel size; labels under its ``labels/instances``) and ``OUT/predict.json``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, DlsuiteInputError
from ..signal_handlers import signal_behind
from ..fileio import write_json_atomic
from ..predict import FROM_CONFIG
from ..predict_output import (SUMMARY_FILE, PredictSummary, _prepare_output, claim_or_resume,
                              default_output_dir, output_lock, record_job, refuse_early,
                              same_job)
from .blocks import Runner, block_size_for, predict_blocks
from .omezarr import Source, Target, is_omezarr, open_source
from .progress import PROGRESS_FOLDER, BlockProgress, input_mtime
from .run_options import worker_run

__all__ = ["DEFAULT_BLOCK", "list_sources", "predict_blockwise", "predict_array"]

#: Output pixels per block edge when ``--block-size`` is not given.
DEFAULT_BLOCK = 1024

log = logging.getLogger("dlsuite")


def list_sources(path: str | os.PathLike) -> list[Source]:
    """The images of ``path``: an OME-Zarr image, a TIFF file, or a folder holding OME-Zarr
    images and/or TIFF files (natural order). DataError naming the path when none."""
    p = Path(path).expanduser()
    if p.is_file() or is_omezarr(p):
        return [open_source(p)]
    if not p.is_dir():
        raise DataError(f"{p}: input not found")
    from ..data.layouts import natural_key

    found = [c for c in sorted(p.iterdir(), key=lambda c: natural_key(c.name))
             if is_omezarr(c) or (c.is_file() and c.suffix.lower() in (".tif", ".tiff"))]
    if not found:
        raise DataError(f"{p}: no OME-Zarr image or TIFF file to predict block-wise")
    sources = [open_source(c) for c in found]
    names = [s.name for s in sources]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise DataError(f"{p}: several inputs would be written as {sorted(dup)[0]}.ome.zarr; "
                        "rename one")
    return sources


def describe_task(model_key: tuple) -> dict:
    """Worker side: what the client needs to know of the run's model (no pixels)."""
    from ..steps import probabilities
    from .cluster import worker_predictor

    pred, chain, lock = worker_predictor(*model_key)
    cfg = pred.ctx.config
    choice = cfg.datagen.normalization
    entry = pred.ctx.registry.resolve(choice.kind, choice.name)
    params = choice.params if choice.params is not None else entry.spec.params()
    side = 2 * int(pred.tiles.size_multiple)
    with lock:  # the channels of the probabilities, whatever the model's heads
        n_classes = int(probabilities(pred.model, np.zeros((side, side), np.float32),
                                      pred.tiles, None).shape[-1])
    return {"halo": int(pred.tiles.halo), "size_multiple": int(pred.tiles.size_multiple),
            "temporal": bool(pred.tiles.temporal), "n_classes": n_classes,
            "time_windows": int(pred.tiles.time_windows) if pred.tiles.temporal else 1,
            "normalizer": choice.name, "params": params, "labels": chain is not None,
            "model": cfg.model.name}


def _normalizer(info: dict, source: Source, block: int, notes: list):
    from .blocks import block_grid
    from .normalize import global_normalizer

    height, width = source.shape[-2:]
    grid = block_grid(source.frames, height, width, block)

    def frame_blocks(t):
        for b in grid:
            if t is None or b.t == t:
                yield source.read(b.t, b.y0, b.y1, b.x0, b.x1)

    return global_normalizer(info["normalizer"], info["params"], source.frames, frame_blocks,
                             source.dtype, height * width, notes)


def _cluster_client(scheduler: str | None):
    """:func:`dlsuite.scale.cluster.connect_when_needed`, or a function returning None (run
    in this process) without a scheduler."""
    if scheduler is None:
        return contextlib.nullcontext(lambda: None)
    from .cluster import connect_when_needed

    return connect_when_needed(scheduler)


@contextlib.contextmanager
def _stage_progress(quiet: bool):
    """An ``on_done(stage, done, total)`` drawing a progress bar per stage on stderr (a
    block-wise prediction takes minutes), removed when done; None when ``quiet``."""
    if quiet:
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        shown: dict[str, int] = {}

        def on_done(stage: str, done: int, total: int) -> None:
            if stage not in shown:
                shown[stage] = bar.add_task(stage, total=total)
            bar.update(shown[stage], completed=done)

        yield on_done


@contextlib.contextmanager
def _runner(scheduler: str | None):
    if scheduler is None:
        yield Runner(None)
        return
    from .cluster import connect

    with connect(scheduler) as client:
        yield Runner(client)


def predict_blockwise(run_dir, input_path, out_dir=None, *, scheduler: str | None = None,
                      block_size: int | None = None, weights: str | None = None,
                      tile_size=FROM_CONFIG, halo=None, batch_size: int | None = None,
                      postprocess=True, overrides=None, ctc: bool = False,
                      as_video: bool = False, overwrite: bool = False, resume: bool = False,
                      quiet: bool = False, registry=None) -> PredictSummary:
    """Predict every image of ``input_path`` (:func:`list_sources`) block by block into
    ``out_dir/<name>.ome.zarr`` (module docstring), on the cluster ``scheduler`` when given.
    Output folder rules as :func:`dlsuite.predict.predict_folder`. ``ctc`` / ``as_video``
    are refused (block-wise prediction writes OME-Zarr, no CTC folders). ``postprocess``
    (True, False or another chain) and ``overrides`` (``--set``) as in single-process
    prediction (:func:`dlsuite.scale.run_options.worker_run`). ``resume``: go on with a
    stopped prediction into ``out_dir`` (:mod:`.progress`): blocks whose probabilities are
    written and images that are complete are not predicted again (an input changed since is
    predicted again); refused when it used another run, checkpoint, input, tiling, block
    size, chain or overrides. Stopped, it warns how much is kept and that ``--resume``
    goes on."""
    from ..registry import get_registry
    from .cluster import parse_scheduler, probe_scheduler, require_scale

    if scheduler is not None:
        kind, address = parse_scheduler(scheduler)
        if kind == "address":
            probe_scheduler(address)  # before anything is written
    require_scale("block-wise prediction (OME-Zarr)")
    if ctc or as_video:
        raise DlsuiteInputError(f"{'--ctc' if ctc else '--as-video'}: not available for "
                                "block-wise (OME-Zarr) prediction")
    if block_size is not None and int(block_size) < 1:
        raise DlsuiteInputError(f"--block-size {block_size}: must be >= 1")
    sources = list_sources(input_path)
    # before the run is opened
    refuse_early(out_dir, input_path, overwrite=overwrite, resume=resume)
    root = Path(run_dir).expanduser()
    registry = registry or get_registry()
    chosen = worker_run(root, registry, weights=weights, tile_size=tile_size, halo=halo,
                        batch_size=batch_size, postprocess=postprocess, overrides=overrides)
    cfg, model_key, checkpoint = chosen.config, chosen.key, chosen.checkpoint
    if cfg.data.scale != 1:  # blocks and their halo are cut on the original pixel grid
        raise DlsuiteInputError(f"{root}: block-wise (OME-Zarr) prediction does not resize; "
                                f"the run has data.scale {cfg.data.scale:g}: predict whole "
                                "images (with or without --scheduler) instead")
    out = Path(out_dir).expanduser() if out_dir is not None else default_output_dir(
        run_dir, input_path, cfg.inference.output_folder)
    job = {**chosen.job(input_path, postprocess is not False),
           "block_size": int(block_size or DEFAULT_BLOCK)}
    planned = [SUMMARY_FILE, PROGRESS_FOLDER] + [f"{s.name}.ome.zarr" for s in sources]
    rows, notes, current = [], [], []
    # a scheduler address answers before the output folder is claimed
    lock = output_lock(out)  # taken once the folder passed its checks
    try:
        with _cluster_client(scheduler) as cluster_client, _stage_progress(quiet) as on_done:
            if resume:
                same_job(out, job)
                resumed = claim_or_resume(out, input_path, planned, overwrite=False,
                                          before_write=lock.acquire)
            else:
                resumed = False
                _prepare_output(out, input_path, planned, overwrite, before_write=lock.acquire)
            record_job(out, job)  # before the first block: what --resume compares
            started = time.perf_counter()
            runner = Runner(cluster_client(), on_done, rerun="run the same command with "
                            "--resume (the blocks predicted are kept)")
            info = runner.map(describe_task, [(model_key,)])[0]
            block = block_size_for(block_size or DEFAULT_BLOCK, info["size_multiple"])
            finished = _finished_rows(out) if resumed else {}
            for source in sources:
                rows.append(finished.get(source.name) or _predict_source(
                    runner, model_key, info, source, out, block, resumed, notes, current))
            skipped = sum(bool(r.get("skipped")) for r in rows)
            if skipped:
                notes.insert(0, f"resumed: {skipped} of {len(rows)} image(s) already "
                                f"complete in {out}")
        write_json_atomic(out / SUMMARY_FILE, {
            **job, "blockwise": True, "block_size": block, "scheduler": scheduler,
            "ctc": False, "seconds": round(time.perf_counter() - started, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "inputs": rows, "notes": notes})
        shutil.rmtree(out / PROGRESS_FOLDER, ignore_errors=True)
        return PredictSummary(out, rows, Path(checkpoint), None, notes)
    except BaseException as exc:
        kept = rows or any(p.done for p in current)
        if out.is_dir() and (kept or signal_behind(exc) is not None):  # how to go on
            log.warning(_stopped_note(out, sources, rows, current))
        raise
    finally:
        lock.release()


def _finished_rows(out: Path) -> dict[str, dict]:
    """The rows of the images a finished earlier prediction into ``out`` wrote (its
    ``predict.json``; being resumed, it used the same job), by name; not those of an input
    changed since."""
    import json

    summary = out / SUMMARY_FILE
    try:
        rows = json.loads(summary.read_text())["inputs"]
        written = summary.stat().st_mtime_ns
        return {r["name"]: {**r, "skipped": True} for r in rows
                if Path(r["output"]).exists() and input_mtime(r["input"]) <= written}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _predict_source(runner: Runner, model_key: tuple, info: dict, source: Source, out: Path,
                    block: int, resumed: bool, notes: list, current: list) -> dict:
    """Predict ``source`` into ``out/<name>.ome.zarr``, going on from what a stopped
    prediction finished when ``resumed``; its ``predict.json`` row. Its progress record
    is appended to ``current`` (for the note of a stop)."""
    path = out / f"{source.name}.ome.zarr"
    mtime = input_mtime(source.path) if source.kind != "memory" else 0
    progress = BlockProgress(out, source.name)
    current.append(progress)
    target = None
    if resumed:
        progress.load(block, mtime)
        if progress.row is not None and path.exists():
            return {**progress.row, "skipped": True}
        kept = progress.normalizer()
        target = kept and Target.reopen(path, source, info["n_classes"], block, info["labels"])
    if target:
        norm, its_notes = kept
        notes.extend(its_notes)
        notes.append(f"{source.name}: resumed, {len(progress.done)} block(s) already "
                     "predicted")
    else:
        its_notes = []
        norm = _normalizer(info, source, block, its_notes)
        notes.extend(its_notes)
        target = Target.create(path, source, info["n_classes"], block, info["labels"])
        progress.start(block, mtime, norm, its_notes)
    done = predict_blocks(runner, model_key, source, norm, target, block, info["halo"],
                          info["labels"], info["time_windows"], progress=progress)
    row = {"name": source.name, "input": source.path, "shape": list(source.shape),
           "pixel_size": source.pixel_size, "output": target.path,
           "objects": done["objects"], "blocks": done["blocks"], "sequence": None}
    progress.complete(row)
    return row


def _stopped_note(out: Path, sources: list[Source], rows: list[dict],
                  current: list) -> str:
    """The warning of a block-wise prediction stopped part-way: what ``out`` keeps."""
    where = ""
    if len(rows) < len(sources) and current and current[-1].header is not None:
        progress = current[-1]
        where = f"; {len(progress.done)} block(s) of {sources[len(rows)].name} predicted"
    return (f"stopped after {len(rows)} of {len(sources)} image(s){where}: {out} keeps them; "
            "the same command with --resume goes on from there")


def predict_array(run_dir, image, *, scheduler: str, block_size: int | None = None,
                  weights: str | None = None, tile_size=FROM_CONFIG, halo=None,
                  batch_size: int | None = None, registry=None) -> np.ndarray:
    """:func:`dlsuite.predict.predict` of a run on the Dask cluster ``scheduler``: ``image``
    (an ndarray ``(H, W)`` / ``(T, H, W)``, or the path of an OME-Zarr image or TIFF, read
    lazily) cut into blocks (``block_size``; each frame a task by default), predicted on the
    workers with the model loaded once per worker; returns the float32 probabilities
    ``(H, W, C)`` / ``(T, H, W, C)`` (equal to single-process within 1e-4)."""
    from ..registry import get_registry
    from .blocks import Block, block_grid, probs_task, probs_tasks

    registry = registry or get_registry()
    chosen = worker_run(run_dir, registry, weights=weights, tile_size=tile_size, halo=halo,
                        batch_size=batch_size, postprocess=False)
    model_key = chosen.key
    if isinstance(image, (str, os.PathLike)):
        source = open_source(image)
    else:
        image = np.asarray(image)
        if image.ndim not in (2, 3) or image.size == 0:
            raise DataError(f"predict: expected a 2D image (H, W) or a video (T, H, W), got "
                            f"shape {image.shape}")
        source = Source("memory", "<array>", image.shape, str(image.dtype), "array",
                        array=image)
    height, width = source.shape[-2:]
    with _runner(scheduler) as runner:
        info = runner.map(describe_task, [(model_key,)])[0]
        size = block_size_for(block_size or max(height, width), info["size_multiple"])
        norm = _normalizer(info, source, size, [])
        shared = runner.client.scatter(source, broadcast=True) if (
            runner.client is not None and source.kind == "memory") else source
        blocks = block_grid(source.frames, height, width, size)
        tasks = probs_tasks(model_key, shared, norm, blocks, None, info["time_windows"])
        parts = runner.map(probs_task, tasks)
    probs = np.zeros((source.frames, height, width, info["n_classes"]), dtype=np.float32)
    for task, part in zip(tasks, parts):
        for b, core in zip([task[3]] if isinstance(task[3], Block) else task[3], part):
            probs[b.t, b.y0:b.y1, b.x0:b.x1] = core
    return probs if len(source.shape) == 3 else probs[0]
