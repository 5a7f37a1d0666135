"""The record of what a run's test prediction wrote (:mod:`dlsuite.run_predictions`): the
next prediction removes exactly that, a user's file there is refused (never deleted), and a
folder of an older dlsuite, without a record, is replaced as before. Real files; no
TensorFlow."""

from __future__ import annotations

import pytest

from dlsuite import run_predictions
from dlsuite.errors import DlsuiteInputError


def _files(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("_RES"):
            path.mkdir()
            (path / "mask000.tif").write_bytes(b"x")
        else:
            path.write_bytes(b"x")


def _left(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_recorded_predictions_are_replaced_and_a_users_file_is_refused_and_kept(tmp_path):
    root = tmp_path / "test" / "best"
    run_predictions.record(root, ["labels/a.tif", "probabilities/a.tif", "ctc/01_RES"])
    _files(root, "labels/a.tif", "probabilities/a.tif", "ctc/01_RES", "labels/notes.txt")
    run_predictions.refuse_foreign(root)  # only recorded outputs and a non-TIFF: fine
    _files(root, "labels/a_corrected.tif", "ctc/my_RES")
    with pytest.raises(DlsuiteInputError, match=r"labels/a_corrected.tif: in the run's "
                       r"prediction folder but not written by dlsuite \(2 such entries\)"):
        run_predictions.refuse_foreign(root)
    removed = run_predictions.remove_earlier(root)
    assert sorted(p.relative_to(root).as_posix() for p in removed) == [
        "ctc/01_RES", "labels/a.tif", "probabilities/a.tif"]
    assert _left(root) == [".dlsuite-written", "ctc/my_RES/mask000.tif",
                           "labels/a_corrected.tif", "labels/notes.txt"]
    run_predictions.record(root, ["labels/b.tif"])  # the record starts again
    assert (root / ".dlsuite-written").read_text().count(".tif") == 1


def test_a_folder_without_a_record_is_replaced_as_before(tmp_path):
    root = tmp_path / "predictions"
    _files(root, "labels/a.tif", "labels/b.TIFF", "probabilities/a.tif", "ctc/01_RES",
           "labels/notes.txt")
    run_predictions.refuse_foreign(root)  # nothing known to tell a user's file by
    run_predictions.remove_earlier(root)
    assert _left(root) == ["labels/notes.txt"]


def test_a_damaged_record_is_named(tmp_path):
    (tmp_path / ".dlsuite-written").write_text("{not json")
    with pytest.raises(DlsuiteInputError, match=r"\.dlsuite-written: damaged record"):
        run_predictions.refuse_foreign(tmp_path)
