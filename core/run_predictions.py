"""What a run's test prediction wrote into its prediction folder (``inference.output_folder``
for ``dlsuite run``, ``test/<weights>`` for ``dlsuite test``), so that the next one replaces
exactly that.

The label and probability TIFFs and CTC ``NN_RES`` folders are recorded in the folder's
``.dlsuite-written`` before they are written. A file the user put there (a hand-corrected
label image saved beside the predicted ones) is then neither deleted by the next prediction
nor evaluated as one: ``dlsuite test`` and ``dlsuite run --resume`` refuse such a folder
before any work, naming the file. A folder written before this record existed holds no
record: its TIFFs and ``NN_RES`` folders are taken as earlier predictions, as they always
were. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .errors import DlsuiteInputError
from .fileio import write_json_atomic

__all__ = ["WRITTEN_FILE", "record", "refuse_foreign", "remove_earlier"]

#: The record of the prediction files written into a run's prediction folder.
WRITTEN_FILE = ".dlsuite-written"
_FILE_FOLDERS = ("labels", "probabilities")  # of TIFFs, one per test input
_CTC_FOLDER = "ctc"  # of NN_RES folders


def _outputs(root: Path) -> list[str]:
    """The prediction outputs in ``root`` (``/``-separated, relative): the TIFFs of its label
    and probability folders and the ``NN_RES`` folders in ``ctc/``."""
    found = []
    for kind in _FILE_FOLDERS:
        folder = root / kind
        if folder.is_dir() and not folder.is_symlink():
            found += sorted(f"{kind}/{p.name}" for p in folder.iterdir()
                            if p.is_file() and p.suffix.lower() in (".tif", ".tiff"))
    ctc = root / _CTC_FOLDER
    if ctc.is_dir() and not ctc.is_symlink():
        found += sorted(f"{_CTC_FOLDER}/{p.name}" for p in ctc.iterdir()
                        if p.is_dir() and p.name.upper().endswith("_RES"))
    return found


def _recorded(root: Path) -> set[str] | None:
    """The entries recorded in ``root`` (None: no record, a folder of an older dlsuite)."""
    path = root / WRITTEN_FILE
    if not path.is_file():
        return None
    try:
        return set(json.loads(path.read_text(encoding="utf-8"))["written"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DlsuiteInputError(f"{path}: damaged record of the predictions dlsuite wrote "
                                "there; move the folder aside to predict again") from None


def record(root: str | os.PathLike, entries: list[str]) -> None:
    """Add ``entries`` (paths relative to ``root``) to its record; call before writing them."""
    root = Path(root)
    known = _recorded(root) or set()
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / WRITTEN_FILE, {"written": sorted(known | set(entries))})


def refuse_foreign(root: str | os.PathLike) -> None:
    """DlsuiteInputError naming the first prediction-like file in ``root`` that no earlier
    prediction recorded: it would be evaluated as a prediction, so it is refused before the
    work (nothing is deleted). Nothing to refuse without a record (an older folder)."""
    root = Path(root)
    recorded = _recorded(root)
    if recorded is None:
        return
    foreign = [e for e in _outputs(root) if e not in recorded]
    if foreign:
        raise DlsuiteInputError(
            f"{root / foreign[0]}: in the run's prediction folder but not written by dlsuite "
            f"({len(foreign)} such entr{'y' if len(foreign) == 1 else 'ies'}); it would be "
            f"evaluated as a prediction and is not replaced: move it out of {root}")


def remove_earlier(root: str | os.PathLike) -> list[Path]:
    """Remove what earlier predictions recorded in ``root`` (without a record: every TIFF of
    its label and probability folders and every ``NN_RES`` folder, as before the record
    existed) and empty the record; returns what was removed. Other files stay."""
    root = Path(root)
    recorded = _recorded(root)
    removed = []
    for entry in _outputs(root):
        if recorded is not None and entry not in recorded:
            continue
        path = root / entry
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    if recorded is not None:
        write_json_atomic(root / WRITTEN_FILE, {"written": []})
    return removed
