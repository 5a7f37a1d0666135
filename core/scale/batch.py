"""``dlsuite predict RUN_DIR INPUT --scheduler ADDRESS``: the inputs as tasks on a Dask cluster.

The client checks the inputs, the run and the output folder exactly as single-process
``dlsuite predict`` does (:func:`dlsuite.predict.predict_folder`), records every file about to
be written in the folder's marker, then submits one task per input (an image, a video, a CTC
sequence). A task runs on a worker: the run's model is loaded once per worker process
(:func:`dlsuite.scale.cluster.worker_predictor`, keyed by run dir + checkpoint), the input is
predicted by the same :func:`dlsuite.predict.predict_input` as in one process, and the worker
writes its files as soon as they are ready, each atomically (temporary file + rename) and only
when absent: a task rerun after its worker was killed never leaves half a file, and a file is
never written twice; the temporary file a killed worker left is deleted once the job's tasks
are done. The client collects the rows as tasks finish and writes ``predict.json``.

Restart: rerunning the same command on the same output folder (its ``.dlsuite-predict`` marker
present, no ``--overwrite``) skips the inputs whose files are all there; a file about to be
written that exists but is not recorded in the marker was not written by dlsuite and is
refused, never replaced.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from ..data.ctc import RES_FILES
from ..errors import DlsuiteInputError
from ..signal_handlers import signal_behind
from ..fileio import write_json_atomic, write_text_atomic
from ..inference.outputs import prediction_paths
from ..ownership import OwnedFolder
from ..predict import FROM_CONFIG, predict_input
from ..predict_inputs import InputItem, list_inputs
from ..predict_output import (SUMMARY_FILE, PredictSummary, _planned, claim_or_resume,
                              complete_row, count_objects, default_output_dir, output_lock,
                              record_job, refuse_early, remove_leftovers, same_job,
                              stopped_note)
from .cluster import completed, connect_when_needed, pause_note
from .run_options import worker_run

__all__ = ["predict_folder_on_cluster", "predict_task", "track_task"]

log = logging.getLogger("dlsuite")

#: Seconds a whole distributed prediction may wait for one result before giving up.
RESULT_TIMEOUT = float(os.environ.get("DLSUITE_TASK_TIMEOUT", 24 * 3600))


def _write_missing(out: Path, name: str, probs, labels) -> dict:
    """Write the probabilities and labels of input ``name`` that are not on disk yet
    (atomic); returns ``{kind: path}`` of both, written now or before."""
    from ..inference import write_predictions

    paths = prediction_paths(f"{name}.tif")
    done = {}
    for kind, value in (("probabilities", probs), ("labels", labels)):
        if value is None:
            continue
        target = out / paths[kind]
        if not target.exists():
            write_predictions(out, f"{name}.tif",
                              **{"probs" if kind == "probabilities" else "labels": value})
        done[kind] = str(target)
    return done


def predict_task(run_dir: str, options: tuple, postprocess: bool, item: InputItem,
                 out: str) -> dict:
    """Worker side: predict ``item`` with the cached model of the run, write its missing
    outputs under ``out``; returns its row for ``predict.json`` (plus ``worker``: the pid)."""
    from .cluster import worker_predictor

    pred, chain, lock = worker_predictor(run_dir, options, postprocess)
    with lock:
        shape, probs, labels = predict_input(pred, item, chain)
    row = {"name": item.name, "input": str(item.path), "shape": list(shape),
           "objects": None if labels is None else count_objects(labels), "sequence": None}
    row.update(_write_missing(Path(out), item.name, probs, labels))
    row["worker"] = os.getpid()
    return row


def track_task(run_dir: str, options: tuple, out: str, name: str, res_dir: str) -> list[str]:
    """Worker side: track the instance labels ``out/labels/<name>.tif`` of a video with the
    run's tracking settings (:func:`dlsuite.steps.write_tracked`, as single-process
    ``--ctc``) into the CTC folder ``res_dir``; returns tracking's notes (laptrack missing)."""
    import tifffile

    from ..steps import write_tracked
    from .cluster import worker_predictor

    pred, _, _ = worker_predictor(run_dir, options, True)
    labels = tifffile.imread(Path(out) / prediction_paths(f"{name}.tif")["labels"])
    write_tracked(pred.ctx, Path(res_dir), labels)
    return [note for note in pred.ctx.notes if "laptrack" in note]


def _is_video(item: InputItem) -> bool:
    """True when ``item`` is a video (from the file header; no pixels read)."""
    from ..data.io import read_info

    return item.ctc_sequence or bool(item.frames) or len(read_info(item.path).shape) == 3


def _sequence_numbers(items: list[InputItem]) -> dict[str, str]:
    """The CTC sequence number of every video among ``items``, as single-process ``--ctc``
    numbers them: a CTC sequence keeps its numeric name, other videos count 01, 02, ..."""
    numbers: dict[str, str] = {}
    for item in items:
        if _is_video(item):
            numbers[item.name] = (item.name if item.ctc_sequence and item.name.isdigit()
                                  else f"{len(numbers) + 1:02d}")
    return numbers


def _check_memory(shapes: list, postprocess: bool, available: int | None = None,
                  what: str = "of memory is available") -> None:
    """DlsuiteInputError for the first input (``(item, shape)`` pairs) whose prediction in
    one piece needs more than ``available`` bytes (default: this machine's free memory)."""
    from ..predict_memory import available_bytes, memory_problem

    available = available_bytes() if available is None else available
    for item, shape in shapes:
        too_big = shape and memory_problem(str(item.path), shape, postprocess=postprocess,
                                           available=available, what=what)
        if too_big:
            raise DlsuiteInputError(too_big)


def _check_worker_memory(shapes: list, postprocess: bool, usable: int, limit: int) -> None:
    """DlsuiteInputError when the prediction of one of the inputs needs more than the
    smallest worker's ``usable`` bytes (of its ``limit``; :func:`~.cluster.worker_memory`)."""
    _check_memory(shapes, postprocess, usable,
                  f"of memory can be used by the smallest worker ({pause_note(usable, limit)})")


def predict_folder_on_cluster(run_dir, input_path, out_dir=None, *, scheduler: str,
                              weights: str | None = None, tile_size=FROM_CONFIG, halo=None,
                              batch_size: int | None = None, postprocess=True,
                              overrides=None, ctc: bool = False, as_video: bool = False,
                              overwrite: bool = False, quiet: bool = False,
                              registry=None) -> PredictSummary:
    """:func:`dlsuite.predict.predict_folder` with every input a task on the Dask cluster
    ``scheduler`` (``local[:N]`` or an address, :func:`dlsuite.scale.cluster.connect`):
    the same files, identical contents; restartable (module docstring). With ``ctc``, each
    video is tracked as a task of its own once its labels are written (one worker reads the
    whole label video), into ``ctc/NN_RES`` numbered as single-process ``--ctc`` does, and
    ``ctc/sequences.csv`` is written at the end. ``postprocess`` (True, False or another
    chain) and ``overrides`` (``--set``) as in single-process prediction, checked on the
    client before anything is written (:func:`dlsuite.scale.run_options.worker_run`)."""
    from ..data.checks import check_inputs
    from ..registry import get_registry
    from .cluster import parse_scheduler, probe_scheduler, require_scale, worker_memory

    kind, address = parse_scheduler(scheduler)
    require_scale("--scheduler")
    if kind == "address":
        probe_scheduler(address)  # before the output folder is claimed
    if ctc and postprocess is False:
        raise DlsuiteInputError("--ctc needs instance labels: drop --no-postprocess")
    items = list_inputs(input_path, as_video=as_video)
    # a folder with predictions is resumed here (restart), not refused
    refuse_early(out_dir, input_path, overwrite=overwrite, resume=True)  # before the run is opened
    shapes = [(item, item.check()) for item in items]
    if kind == "local":  # a local cluster's workers share this machine's memory
        _check_memory(shapes, postprocess is not False)
    registry = registry or get_registry()
    chosen = worker_run(run_dir, registry, weights=weights, tile_size=tile_size, halo=halo,
                        batch_size=batch_size, postprocess=postprocess, overrides=overrides)
    cfg, checkpoint = chosen.config, chosen.checkpoint
    postprocess = postprocess is not False
    check_inputs(items, cfg.data.nonfinite_pixels)
    out = Path(out_dir).expanduser() if out_dir is not None else default_output_dir(
        run_dir, input_path, cfg.inference.output_folder)
    job = chosen.job(input_path, postprocess)
    if not overwrite:
        same_job(out, job)
    numbers = _sequence_numbers(items) if ctc else {}
    # a scheduler address answers before the output folder is claimed (a local cluster
    # starts only when there is work)
    lock = output_lock(out)  # taken once the folder passed its checks
    try:
        with connect_when_needed(scheduler) as cluster_client:
            memory = worker_memory(cluster_client()) if kind == "address" else None
            if memory is not None:  # what the smallest worker may use, before anything is written
                _check_worker_memory(shapes, postprocess, *memory)
            resumed = claim_or_resume(out, input_path, _planned(items, postprocess, ctc),
                                      overwrite, before_write=lock.acquire)
            record_job(out, job)  # before any task: a rerun after a stop compares it
            options = chosen.key[1]
            rows: dict[str, dict] = {}
            todo = []
            for item in items:
                row = complete_row(out, item, postprocess) if resumed else None
                if row is not None:
                    rows[item.name] = row
                else:
                    todo.append(item)
            notes = []
            if resumed:
                notes.append(f"resumed: {len(rows)} of {len(items)} input(s) already complete "
                             f"in {out}")
            log.info("predicting %d input(s) on %s into %s", len(todo), scheduler, out)
            started = time.perf_counter()
            if todo or numbers:
                run_key = chosen.key[0]
                tracking = []

                def track(client, name: str) -> None:
                    """Track video ``name`` once its labels are on disk (every video again on a
                    resumed folder: the CTC folders are rewritten, recorded before as ours)."""
                    if name not in numbers:
                        return
                    OwnedFolder(out, "predict").record(
                        [f"ctc/{numbers[name]}_RES/{f}" for f in RES_FILES])
                    rows[name]["sequence"] = numbers[name]
                    tracking.append(client.submit(track_task, run_key, options, str(out.resolve()),
                                                  name, str((out / "ctc" / f"{numbers[name]}_RES")
                                                            .resolve()),
                                                  key=f"dlsuite-track-{numbers[name]}", pure=False))

                client = cluster_client()
                futures = [client.submit(predict_task, run_key, options, postprocess,
                                         item, str(out.resolve()), key=f"dlsuite-predict-{i}-"
                                         f"{item.name}", pure=False)
                           for i, item in enumerate(todo)]
                for name in list(rows):  # complete before: their videos are tracked now
                    track(client, name)
                try:
                    for future in completed(client, futures, timeout=RESULT_TIMEOUT):
                        row = future.result()
                        rows[row["name"]] = row
                        track(client, row["name"])
                        if not quiet:
                            log.info("done %s (%d/%d)", row["name"], len(rows), len(items))
                except BaseException as exc:
                    if signal_behind(exc) is not None:  # Ctrl-C, SIGTERM: say how to go on
                        log.warning(stopped_note(len(rows), len(items), out,
                                                 "the same command continues"))
                    raise
                for future in completed(client, tracking, timeout=RESULT_TIMEOUT):
                    notes.extend(n for n in future.result() if n not in notes)
        remove_leftovers(out, items)
        ordered = [rows[item.name] for item in items]
        workers = sorted({r.pop("worker") for r in ordered if "worker" in r})
        ctc_dir = None
        if ctc and numbers:
            ctc_dir = out / "ctc"
            write_text_atomic(ctc_dir / "sequences.csv", "sequence,input\n" + "".join(
                f"{numbers[item.name]},{item.name}\n" for item in items if item.name in numbers))
        elif ctc:
            notes.append("--ctc: no video among the inputs; CTC results are written for videos "
                         "only")
        write_json_atomic(out / SUMMARY_FILE, {
            **job, "scheduler": scheduler, "workers": len(workers),
            "seconds": round(time.perf_counter() - started, 3), "ctc": ctc,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "inputs": ordered, "notes": notes})
        return PredictSummary(out, ordered, checkpoint, ctc_dir, notes)
    finally:
        lock.release()
