"""The output folder of ``dlsuite predict``: where it lies by default, the check that it is
apart from the input, the files planned in it, claiming it (:mod:`dlsuite.ownership`), and
:class:`PredictSummary`, what was written there.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from .data.test_videos import TEST_VIDEOS
from .errors import DlsuiteInputError
from .ownership import OwnedFolder, check_apart
from .predict_inputs import InputItem, _stem

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
                    overwrite: bool) -> OwnedFolder:
    """Claim ``out`` for predictions (:meth:`dlsuite.ownership.OwnedFolder.claim`: a
    non-empty folder not written by ``dlsuite predict`` is refused, ``overwrite`` removes
    only what an earlier prediction wrote) after checking that ``out`` and the input are
    apart and that no file about to be written exists unrecorded."""
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
    folder.claim(overwrite=overwrite, written=planned, holds="predictions",
                 hint="pass --overwrite to replace them, or choose another -o")
    return folder


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
