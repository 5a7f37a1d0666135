"""The output folder of ``dlsuite predict``: where it lies by default, the check that it is
apart from the input, the files planned in it, claiming it (:mod:`dlsuite.ownership`) or
resuming it, and :class:`PredictSummary`, what was written there.

Resuming (``--resume``; a Dask job always resumes): the folder's marker records the job (run,
checkpoint, input, tiling, chain, overrides) before the first prediction, so a folder a
stopped job left is continued only with the same job (:func:`same_job`), and the inputs whose
files are all there are skipped (:func:`complete_row`). ``predict.json`` is written when a
prediction finishes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import attrs
import numpy as np

from .data.test_videos import TEST_VIDEOS
from .errors import DlsuiteInputError
from .fileio import leftover_temporaries
from .ownership import OwnedFolder, check_apart
from .predict_inputs import InputItem, _stem

log = logging.getLogger("dlsuite")

#: Folders :func:`predict_folder` writes inside its output folder.
OUTPUT_SUBFOLDERS = ("probabilities", "labels", "ctc")
#: What was predicted how (run, checkpoint, tiling, inputs), written beside them.
SUMMARY_FILE = "predict.json"
#: Folders a run writes into its own ``inference.output_folder`` (the test set's
#: predictions): a default output folder never takes their names.
_RUN_PREDICTIONS = (*OUTPUT_SUBFOLDERS, TEST_VIDEOS)


def default_output_dir(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                       output_folder: str) -> Path:
    """``RUN_DIR/<output_folder>/<input name>`` (a file's name without its suffix;
    ``<name>-predicted`` when the name is one of the run's own prediction folders, e.g. an
    input folder named ``labels``); for an exported model (a package, SavedModel or
    ``.keras`` file) the folder holding it stands for RUN_DIR, so nothing is written into the
    export."""
    from .export.reopen import exported_kind

    src = Path(input_path).expanduser().resolve()
    name = _stem(src) if src.is_file() else src.name
    base = Path(run_dir).expanduser()
    if exported_kind(base) is not None:
        base = base.resolve().parent
    if name in _RUN_PREDICTIONS:  # an input named "labels" would land in the run's own
        name = f"{name}-predicted"
    return base / output_folder / name


def _check_apart(out: Path, input_path: str | os.PathLike) -> None:
    """Refuse an output folder that is the input, inside it, or holds it (``--overwrite``
    could replace the inputs, e.g. a dataset's ``labels/``)."""
    check_apart(out, input_path, what="predictions", option="-o")


#: How a refusal of a folder holding predictions names them, and what it advises.
HOLDS, HINT = "predictions", "pass --overwrite to replace them, or choose another -o"


def _planned(items: list[InputItem], postprocess: bool, ctc: bool) -> list[str]:
    """The files :func:`predict_folder` is about to write, relative to its output folder
    (CTC result folders are recorded when written: their numbers follow the inputs)."""
    from .inference.outputs import prediction_paths

    entries = [SUMMARY_FILE]
    for item in items:
        paths = prediction_paths(f"{item.name}.tif")
        entries.append(paths["probabilities"])
        if postprocess:
            entries.append(paths["labels"])
    if ctc:
        entries.append("ctc/sequences.csv")
    return entries


def _prepare_output(out: Path, input_path: str | os.PathLike, planned: list[str],
                    overwrite: bool, before_write: Callable[[], None] | None = None
                    ) -> OwnedFolder:
    """Claim ``out`` for predictions (:meth:`dlsuite.ownership.OwnedFolder.claim`: a
    non-empty folder not written by ``dlsuite predict`` is refused, ``overwrite`` removes
    only what an earlier prediction wrote) after checking that ``out`` and the input are
    apart and that no file about to be written exists unrecorded. ``before_write`` (e.g.
    taking the folder's lock, :func:`output_lock`) runs once the folder passed its checks,
    before anything in it is removed or written."""
    _check_apart(out, input_path)
    folder = OwnedFolder(out, "predict")
    marker = folder.read()
    if marker is not None and overwrite:
        recorded = {p for entry in marker.written for p in folder.matches(entry)}
        for entry in planned:
            target = out / entry
            if target.exists() and not ({target, *target.parents} & recorded):
                raise DlsuiteInputError(
                    f"{target}: exists and was not written by dlsuite predict; it is not "
                    "replaced: move it, or choose another -o")
    folder.claim(overwrite=overwrite, written=planned, holds=HOLDS, hint=HINT,
                 before_write=before_write)
    return folder


def count_objects(labels: np.ndarray) -> int:
    """Objects summed over frames (a 2D label image is one frame)."""
    frames = labels.reshape((-1,) + labels.shape[-2:])
    return int(sum(len(np.unique(f[f > 0])) for f in frames))


def refuse_early(out_dir, input_path, *, overwrite: bool, resume: bool = False) -> None:
    """Refuse (DlsuiteInputError), before any model is loaded, an ``-o`` that
    :func:`_prepare_output` would refuse once TensorFlow started, in its order: not apart
    from ``input_path``, not a folder, a folder dlsuite did not write, predictions there
    without ``overwrite``, or a folder another dlsuite process is writing (the message of
    :func:`output_lock`). With ``resume`` only the first and the last are checked here (what
    may be resumed depends on the run). Nothing to check without ``out_dir`` (the default
    folder is known once the run is open)."""
    from .folder_lock import in_use

    if out_dir is None:
        return
    out = Path(out_dir).expanduser()
    _check_apart(out, input_path)
    if resume:
        refusal = in_use(out, "-o")
    else:
        refusal = OwnedFolder(out, "predict").refusal(
            overwrite=overwrite, holds=HOLDS, hint=HINT, in_use=lambda: in_use(out, "-o"))
    if refusal:
        raise DlsuiteInputError(refusal)


def output_lock(out: Path):
    """The lock of the output folder ``out`` (:class:`dlsuite.folder_lock.LazyLock`): taken
    as ``before_write`` of the claim, so a second ``dlsuite predict`` into the same folder
    (``--overwrite`` would delete the first one's outputs, ``--resume`` write them twice) is
    refused naming the first; release it when the prediction ends."""
    from .folder_lock import LazyLock

    return LazyLock(out, "-o")


def claim_or_resume(out: Path, input_path, planned: list[str], overwrite: bool,
                    before_write: Callable[[], None] | None = None) -> bool:
    """Claim ``out`` as :func:`_prepare_output` does, except that a folder dlsuite predict
    wrote is resumed (no ``overwrite``): True when resuming. Refused when a file about to be
    written exists but is not recorded in the marker."""
    folder = OwnedFolder(out, "predict")
    marker = folder.read() if out.is_dir() else None
    if marker is None or overwrite:
        _prepare_output(out, input_path, planned, overwrite, before_write)
        return False
    _check_apart(out, input_path)
    recorded = {p for entry in marker.written for p in folder.matches(entry)}
    for entry in planned:
        target = out / entry
        if target.exists() and not ({target, *target.parents} & recorded):
            raise DlsuiteInputError(f"{target}: exists and was not written by dlsuite predict; "
                                    "it is not replaced: move it, or choose another -o")
    if before_write is not None:
        before_write()
    folder.record(planned)
    return True


def same_job(out: Path, job: dict) -> None:
    """Refuse to resume a folder whose earlier prediction (finished or stopped: the job its
    marker records, or its ``predict.json``) used another run, checkpoint, input, tiling,
    chain or overrides, or was block-wise where this one is not (or the reverse): the
    outputs would mix. Only the keys both records hold are compared."""
    import json

    marker = OwnedFolder(out, "predict").read() if out.is_dir() else None
    before = marker.job if marker is not None else None
    path = out / SUMMARY_FILE
    if before is None and path.is_file():
        try:
            before = json.loads(path.read_text())
        except (OSError, ValueError):
            before = None
    if not isinstance(before, dict):
        return
    if ("block_size" in before) != ("block_size" in job):  # only block-wise jobs record it
        how = "block by block (OME-Zarr)" if "block_size" in before else "whole (TIFF)"
        raise DlsuiteInputError(f"{out}: holds predictions made {how}; pass --overwrite to "
                                "replace them, or choose another -o")
    differs = [k for k, v in job.items() if k in before and before[k] != v]
    if differs:
        raise DlsuiteInputError(f"{out}: holds predictions made with other {', '.join(differs)}"
                                "; pass --overwrite to replace them, or choose another -o")


def record_job(out: Path, job: dict) -> None:
    """Record ``job`` (the prediction's settings) in ``out``'s marker before the first
    output is written: what :func:`same_job` compares when a stopped job is resumed
    (``predict.json`` is written only when a prediction finishes)."""
    OwnedFolder(out, "predict").record_job(job)


def _input_mtime(item: InputItem) -> int:
    """When the input last changed (ns): its file, or the newest of its frames or of the
    files of its CTC sequence folder."""
    if item.frames:
        files = list(item.frames)
    elif item.path.is_dir():
        files = [p for p in item.path.iterdir() if p.is_file()]
    else:
        files = [item.path]
    return max((p.stat().st_mtime_ns for p in files), default=0)


def complete_row(out: Path, item: InputItem, postprocess: bool) -> dict | None:
    """The ``predict.json`` row of an input whose outputs are all on disk and newer than
    the input (read back; marked ``skipped``), else None: an input replaced after its
    prediction was written is predicted again."""
    import tifffile

    from .data.io import tifffile_damage
    from .inference.outputs import prediction_paths

    paths = prediction_paths(f"{item.name}.tif")
    kinds = ("probabilities", "labels") if postprocess else ("probabilities",)
    if not all((out / paths[k]).is_file() for k in kinds):
        return None
    changed = _input_mtime(item)
    if any((out / paths[k]).stat().st_mtime_ns < changed for k in kinds):
        return None
    try:  # a damaged output (a copy cut short, a disk error) is predicted again
        with tifffile_damage(out / paths["probabilities"]), \
                tifffile.TiffFile(out / paths["probabilities"]) as tif:
            shape = tif.series[0].shape
            tif.series[0].asarray()  # every byte there
        labels = None
        if postprocess:
            with tifffile_damage(out / paths["labels"]):
                labels = tifffile.imread(out / paths["labels"])
    except MemoryError:  # not a damaged file
        raise
    except Exception:  # noqa: BLE001 - tifffile raises many types for damaged files
        log.warning("%s: its outputs in %s are damaged: predicted again", item.name, out)
        return None
    shape = list(shape[:-3] + shape[-2:])  # class axis dropped: the input's shape
    row = {"name": item.name, "input": str(item.path), "shape": shape, "objects": None,
           "sequence": None, "skipped": True}
    if labels is not None:
        row["objects"] = count_objects(labels)
    row.update({k: str(out / paths[k]) for k in kinds})
    return row


def stopped_note(done: int, total: int, out: Path, how: str) -> str:
    """The warning of a prediction stopped (Ctrl-C, SIGTERM, a full disk) after ``done`` of
    ``total`` inputs: what ``out`` keeps and ``how`` to go on."""
    return (f"stopped after {done} of {total} input(s): {out} keeps their predictions; {how} "
            "(inputs whose outputs are all there are skipped)")


def remove_leftovers(out: Path, items: list[InputItem]) -> None:
    """Delete the temporary files of output writes that were stopped mid-write (a killed
    worker, an interrupted command): called once nothing writes them any more."""
    from .inference.outputs import prediction_paths

    for item in items:
        for rel in prediction_paths(f"{item.name}.tif").values():
            for tmp in leftover_temporaries(out / rel):
                tmp.unlink(missing_ok=True)


@attrs.frozen
class PredictSummary:
    """What :func:`predict_folder` wrote: ``out_dir``, one row per input (``name``,
    ``input``, ``shape``, ``probabilities``, ``labels``, ``objects``, ``sequence``), the
    checkpoint used, the CTC folder (None when not written) and notes."""

    out_dir: Path
    rows: list
    checkpoint: Path
    ctc_dir: Path | None
    notes: list
