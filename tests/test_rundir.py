"""The run directory's reuse rule and the marker of what dlsuite wrote (issue 13): a folder
dlsuite did not write is never reused or emptied, ``--overwrite`` removes only what a run
recorded, a resume lists the changed config keys and refuses those that cannot change. Real
folders and files; no TensorFlow."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from dlsuite.errors import DataError, DlsuiteInputError
from dlsuite.ownership import MARKERS, OwnedFolder
from dlsuite.rundir import (PERIODIC_ENTRY, RUN_ENTRIES, RunDir, prepare_run_dir, resume_changes,
                            run_dir_refusal, write_run_config)


@contextlib.contextmanager
def read_only_folder(path: Path):
    """``path`` created and made unwritable for this process: mode 0555, or for root (whom
    modes do not stop) the immutable attribute; skips the test when neither is possible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        undo = lambda: path.chmod(0o755)  # noqa: E731
    else:
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot make a folder read-only as root: {proc.stderr.strip()}")
        undo = lambda: subprocess.run(["chattr", "-i", str(path)], check=True)  # noqa: E731
    try:
        yield path
    finally:
        undo()


def _user_files(folder: Path) -> dict[str, str]:
    """The user's own files, written into ``folder``; returns {relative path: content}."""
    files = {"config.json": '{"mine": true}', "notes.txt": "my notes",
             "images/cell.tif": "pixels", "checkpoints/mine.txt": "not dlsuite's"}
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return files


def _still_there(folder: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        assert (folder / rel).read_text() == text, rel


# --------------------------------------------------------------------------------------------
# the reuse rule


def test_a_folder_of_user_files_is_refused_even_with_overwrite(tmp_path):
    files = _user_files(tmp_path / "mine")
    for flags in ({}, {"overwrite": True}):
        with pytest.raises(DlsuiteInputError, match="not written by dlsuite") as info:
            prepare_run_dir(tmp_path / "mine", **flags)
        assert str(tmp_path / "mine") in str(info.value)
        assert "--resume" not in str(info.value)  # the user's config.json is not a run
    _still_there(tmp_path / "mine", files)
    assert not (tmp_path / "mine" / MARKERS["run"]).exists()


def test_new_and_empty_folders_become_runs_with_a_marker(tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("new/nested", "empty"):
        run = prepare_run_dir(tmp_path / name)
        marker = json.loads((run.root / ".dlsuite-run").read_text())
        assert marker["kind"] == "run" and len(marker["id"]) == 32
        assert marker["written"] == list(RUN_ENTRIES)
        assert run.checkpoints.is_dir()


def test_overwrite_removes_only_what_the_run_recorded(tmp_path):
    run = prepare_run_dir(tmp_path / "r")
    run.config_json.write_text("{}")
    # training records each periodic checkpoint by name before writing it
    OwnedFolder(run.root, "run").record([PERIODIC_ENTRY.format(epoch=3)])
    run.periodic(3).write_text("old checkpoint")
    (run.root / "wandb" / "offline-run-x").mkdir(parents=True)
    (run.root / "notes.txt").write_text("mine")  # the user's, added beside the run
    (run.root / "analysis").mkdir()
    (run.root / "analysis" / "plot.png").write_text("mine")
    first = json.loads((run.root / ".dlsuite-run").read_text())["id"]
    with pytest.raises(DlsuiteInputError, match="already holds a run; it stopped before its "
                                                "first epoch ended.*--overwrite"):
        prepare_run_dir(run.root)
    for path in (run.best, run.last, run.resume_state, run.checkpoints / ".tmp-last-ab12.keras"):
        path.write_text("the run's")
    (run.resume_dir / "epoch_0003").mkdir()
    (run.resume_dir / "epoch_0003" / "model.weights.h5").write_text("the run's")
    # the user's copies of a good model, saved beside the checkpoints (one named like a
    # periodic checkpoint, which the run did not write), and notes in resume/: they stay
    (run.checkpoints / "my_good_model.keras").write_text("mine")
    (run.checkpoints / "epoch_1_good_one.keras").write_text("mine")
    (run.checkpoints / "epoch_0005.keras").write_text("mine")
    (run.resume_dir / "NOTES.txt").write_text("mine")
    again = prepare_run_dir(run.root, overwrite=True)
    assert not again.config_json.exists() and not again.periodic(3).exists()
    assert sorted(p.name for p in again.checkpoints.iterdir()) == [
        "epoch_0005.keras", "epoch_1_good_one.keras", "my_good_model.keras", "resume"]
    assert [p.name for p in again.resume_dir.iterdir()] == ["NOTES.txt"]
    assert not (run.root / "wandb").exists()
    assert (run.root / "notes.txt").read_text() == "mine"
    assert (run.root / "analysis" / "plot.png").read_text() == "mine"
    assert json.loads((run.root / ".dlsuite-run").read_text())["id"] != first


def test_overwrite_removes_the_tuned_values_of_the_earlier_model(tmp_path):
    run = prepare_run_dir(tmp_path / "r")
    (run.root / "postprocess.json").write_text('{"steps": []}')
    prepare_run_dir(run.root, overwrite=True)
    assert not (run.root / "postprocess.json").exists()


def test_marker_entries_outside_the_folder_are_never_removed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    run = prepare_run_dir(tmp_path / "r")
    marker = json.loads((run.root / ".dlsuite-run").read_text())
    marker["written"] += ["../outside.txt", str(outside), "..", "/"]
    (run.root / ".dlsuite-run").write_text(json.dumps(marker))
    prepare_run_dir(run.root, overwrite=True)
    assert outside.read_text() == "keep"


def test_a_broken_marker_is_named_and_nothing_is_removed(tmp_path):
    run = prepare_run_dir(tmp_path / "r")
    run.config_json.write_text("{}")
    (run.root / ".dlsuite-run").write_text("{not json")
    with pytest.raises(DlsuiteInputError, match=r"\.dlsuite-run: unreadable"):
        prepare_run_dir(run.root, overwrite=True)
    assert run.config_json.exists()


def test_a_predict_folder_is_not_a_run(tmp_path):
    folder = OwnedFolder(tmp_path / "p", "predict")
    folder.create(["labels/a.tif"])
    with pytest.raises(DlsuiteInputError, match="not written by dlsuite"):
        prepare_run_dir(tmp_path / "p", overwrite=True)
    assert folder.read().written == ("labels/a.tif",)


def test_a_read_only_location_is_bad_input_naming_it(tmp_path):
    with read_only_folder(tmp_path / "ro") as ro:
        with pytest.raises(DlsuiteInputError, match="cannot write here") as info:
            prepare_run_dir(ro / "run")
        assert str(ro / "run") in str(info.value)
        with pytest.raises(DlsuiteInputError, match="cannot write here"):
            OwnedFolder(ro, "predict").create(["x"])
    assert list(ro.iterdir()) == []


def test_owned_folder_records_ahead_and_removes_patterns(tmp_path):
    folder = OwnedFolder(tmp_path / "d", "prepare")
    folder.create(["inputs/raw_*.tif"])
    folder.record(["inputs/raw_*.tif", "videos2im_relation.csv"])
    assert folder.read().written == ("inputs/raw_*.tif", "videos2im_relation.csv")
    (tmp_path / "d" / "inputs").mkdir()
    for name in ("raw_000.tif", "raw_001.tif", "mine.tif"):
        (tmp_path / "d" / "inputs" / name).write_text("x")
    removed = folder.remove_written()
    assert sorted(p.name for p in removed) == ["raw_000.tif", "raw_001.tif"]
    assert [p.name for p in (tmp_path / "d" / "inputs").iterdir()] == ["mine.tif"]
    assert [p.name for p in folder.foreign()] == []  # inputs/ holds recorded entries


def test_a_folder_holding_only_the_marker_is_claimed_again_without_overwrite(tmp_path):
    """A writer killed after claiming and before writing leaves only its marker: the next
    claim takes the folder as empty; once anything is in it, --overwrite is needed again."""
    folder = OwnedFolder(tmp_path / "out", "predict")
    first = folder.claim(overwrite=False, written=["labels/a.tif"], holds="predictions",
                         hint="pass --overwrite")
    second = folder.claim(overwrite=False, written=["labels/b.tif"], holds="predictions",
                          hint="pass --overwrite")
    assert second.id != first.id and second.written == ("labels/b.tif",)
    for path in (tmp_path / "out" / "labels" / "b.tif", tmp_path / "out" / "mine.txt"):
        path.parent.mkdir(exist_ok=True)
        path.write_text("x")
        with pytest.raises(DlsuiteInputError, match="already holds predictions"):
            folder.claim(overwrite=False, written=["labels/c.tif"], holds="predictions",
                         hint="pass --overwrite")
        path.unlink()
    assert folder.claim(overwrite=False, written=[], holds="predictions", hint="")  # empty
    assert (tmp_path / "out" / "labels").is_dir()  # subfolders: nothing to lose, kept


# --------------------------------------------------------------------------------------------
# resume


def _loaded(tmp_path: Path, **changes):
    from dlsuite.config import parse_config
    from dlsuite.registry import get_registry

    cfg = {"output_dir": str(tmp_path / "r"), "seed": 1,
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "optimizer": {"learning_rate": 0.001}, "train": {"epochs": 2}}
    for key, value in changes.items():
        section, _, leaf = key.partition("__")
        if leaf:
            cfg.setdefault(section, {})[leaf] = value
        else:
            cfg[section] = value
    return parse_config(cfg, get_registry(), check_paths=False), get_registry()


def _resumable_run(tmp_path: Path) -> RunDir:
    loaded, registry = _loaded(tmp_path)
    run = prepare_run_dir(tmp_path / "r", loaded=loaded, registry=registry)
    write_run_config(run, loaded, registry, seed=1, resumed=False)
    run.resume_state.write_text(json.dumps({"epoch": 1, "iterations": 2, "folder": "epoch_0001"}))
    return run


def test_resume_refuses_a_changed_model_with_one_message_listing_it(tmp_path):
    run = _resumable_run(tmp_path)
    loaded, registry = _loaded(tmp_path, model={"name": "unet", "n_filters": 8, "pools": 2},
                               datagen__target={"name": "contours"})
    with pytest.raises(DlsuiteInputError) as info:
        prepare_run_dir(run.root, resume=True, loaded=loaded, registry=registry)
    message = str(info.value)
    assert "model.n_filters 4 -> 8" in message and "connectivity" not in message
    assert 'datagen.target.name "binary" -> "contours"' in message
    assert "--overwrite" in message and len(message.splitlines()) == 1


def test_resume_lists_the_changed_keys_it_applies_and_those_it_keeps(tmp_path, caplog):
    run = _resumable_run(tmp_path)
    loaded, registry = _loaded(tmp_path, optimizer={"learning_rate": 0.01}, seed=7,
                               train={"epochs": 5}, output_dir=str(tmp_path / "r"))
    with caplog.at_level("WARNING", logger="dlsuite"):
        prepare_run_dir(run.root, resume=True, loaded=loaded, registry=registry)
    text = caplog.text
    assert "optimizer.learning_rate 0.001 -> 0.01" in text and "train.epochs 2 -> 5" in text
    assert "not applied on resume" in text and "seed 1 -> 7" in text
    assert "config_hash" not in text
    changes = resume_changes(run, loaded, registry)
    assert set(changes) == {"optimizer.learning_rate", "train.epochs", "seed"}
    # config.json records the change when the resumed run writes it
    data = write_run_config(run, loaded, registry, seed=1, resumed=True)
    [entry] = data["resume_changes"]
    assert entry["after_epoch"] == 1
    assert entry["changes"]["optimizer.learning_rate"] == [0.001, 0.01]
    assert entry["not_applied"] == ["seed"]
    assert json.loads(run.config_json.read_text())["resume_changes"] == data["resume_changes"]


def test_resume_adopts_an_unmarked_run_and_removes_stale_temporaries(tmp_path):
    run = _resumable_run(tmp_path)
    (run.root / ".dlsuite-run").unlink()
    stale = run.checkpoints / ".tmp-last-abc.keras"
    stale.write_text("half")
    (run.resume_dir / "epoch_0002").mkdir()
    half = run.resume_dir / "epoch_0002" / ".tmp-model-x.weights.h5"
    half.write_text("half")
    prepare_run_dir(run.root, resume=True)
    assert not stale.exists() and not half.exists()
    assert json.loads((run.root / ".dlsuite-run").read_text())["written"] == list(RUN_ENTRIES)


def test_resume_without_a_state_names_it(tmp_path):
    prepare_run_dir(tmp_path / "r")
    with pytest.raises(DlsuiteInputError, match="nothing to resume.*state.json"):
        prepare_run_dir(tmp_path / "r", resume=True)


# --------------------------------------------------------------------------------------------
# prepare


def test_prepare_overwrite_never_deletes_frames_it_did_not_write(tmp_path):
    from dlsuite.data.example import write_example_videos
    from dlsuite.data.prepare import frames_to_videos, videos_to_frames

    src = write_example_videos(tmp_path / "src", n_videos=1, frames=2, size=16)["videos"]
    dst = tmp_path / "dst"
    (dst / "inputs").mkdir(parents=True)
    (dst / "inputs" / "raw_000.tif").write_text("the user's own frame")
    with pytest.raises(DataError, match="not written by dlsuite prepare"):
        videos_to_frames(src, dst, overwrite=True)
    assert (dst / "inputs" / "raw_000.tif").read_text() == "the user's own frame"
    (dst / "inputs" / "raw_000.tif").unlink()
    videos_to_frames(src, dst)
    (dst / "inputs" / "mine.tif").write_text("mine")
    videos_to_frames(src, dst, overwrite=True)  # its own frames are replaced
    assert (dst / "inputs" / "mine.tif").read_text() == "mine"
    # rebuilding videos never replaces a video file it did not write
    out = tmp_path / "videos"
    (out / "inputs").mkdir(parents=True)
    video = (out / "inputs" / "cells_00.tif")
    video.write_text("the user's video")
    with pytest.raises(DataError, match="cells_00.tif: exists and was not written"):
        frames_to_videos(dst, out, dst / "videos2im_relation.csv")
    assert video.read_text() == "the user's video"


def test_a_file_named_like_dlsuites_added_later_is_never_taken_for_one(tmp_path):
    """The marker recorded ``inputs/raw_*.tif``: a frame the user added later, named like
    dlsuite's, was deleted by ``prepare --overwrite`` and by simply writing the example data
    again. Each file is recorded by name now: such a file is refused and kept; so is a
    non-empty folder dlsuite did not write."""
    from dlsuite.data.example import write_example_frames, write_example_videos
    from dlsuite.data.prepare import videos_to_frames

    ex = write_example_frames(tmp_path / "ex", n=2, size=16)["frames"]
    marker = json.loads((ex / MARKERS["prepare"]).read_text())["written"]
    assert "inputs/raw_001.tif" in marker and "inputs/raw_*.tif" not in marker
    src = write_example_videos(tmp_path / "src", n_videos=1, frames=3, size=16)["videos"]
    dst = videos_to_frames(src, tmp_path / "dst")
    for folder, write_again in ((ex, lambda: write_example_frames(tmp_path / "ex", n=2,
                                                                  size=16)),
                                (dst, lambda: videos_to_frames(src, dst, overwrite=True))):
        mine = folder / "inputs" / "raw_500.tif"
        mine.write_text("my own annotated frame")
        with pytest.raises(DataError, match="raw_500.tif: exists and was not written"):
            write_again()
        assert mine.read_text() == "my own annotated frame"
        mine.unlink()
        write_again()  # without it, its own files are replaced
    (tmp_path / "mine" / "frames").mkdir(parents=True)
    (tmp_path / "mine" / "frames" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="frames is not empty and was not written by dlsuite"):
        write_example_frames(tmp_path / "mine", n=2, size=16)
    assert [p.name for p in (tmp_path / "mine" / "frames").iterdir()] == ["notes.txt"]


def test_config_changes_compare_json_values_and_skip_the_output_dir():
    from dlsuite.rundir import config_changes

    assert config_changes({"a": {"b": (1, 2)}, "c": 1.0}, {"a": {"b": [1, 2]}, "c": 1}) == {}
    assert config_changes({"a": [1]}, {"a": [1, 2], "output_dir": "x"}) == {"a": ([1], [1, 2])}


def test_removal_never_follows_a_link_out_of_the_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.tif").write_text("keep")
    folder = OwnedFolder(tmp_path / "out", "predict")
    folder.create(["labels/a.tif", "probabilities/*.tif", "*.json"])
    (folder.root / "labels").symlink_to(elsewhere)  # labels/ now points outside the folder
    (folder.root / "probabilities").symlink_to(elsewhere)
    assert folder.remove_written() == []
    assert (elsewhere / "a.tif").read_text() == "keep"
    folder.record(["*"])  # "*" stands for the links themselves, never for the marker
    assert sorted(p.name for p in folder.remove_written()) == ["labels", "probabilities"]
    assert (elsewhere / "a.tif").read_text() == "keep" and folder.marker_path.is_file()


def test_a_runs_config_json_is_read_as_the_config_it_ran(tmp_path):
    """The record a run writes (config under "config", beside its hash and versions) is a
    config for dlsuite config validate / show / run, not ten unknown-key errors."""
    from conftest import run_cli

    from dlsuite.config import load_config
    from dlsuite.config.converter import unstructure_config

    run = _resumable_run(tmp_path)
    loaded, registry = _loaded(tmp_path)
    again = load_config(run.config_json, registry, check_paths=False)
    assert unstructure_config(again.config, registry) == unstructure_config(loaded.config,
                                                                            registry)
    proc = run_cli("config", "show", str(run.config_json), "--set", "model.n_filters=6")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["model"]["n_filters"] == 6 and shown["name"] == loaded.config.name
    assert "config_hash" not in shown


def test_an_output_folder_naming_a_users_folder_in_the_run_is_refused(tmp_path):
    """``inference.output_folder`` naming a folder the user made in an existing run was
    adopted (recorded as the run's), and the next ``--overwrite`` deleted it with its files.
    Refused, before anything is written, for a new, an overwritten and a resumed run; a
    folder the run itself wrote there is fine."""
    loaded, registry = _loaded(tmp_path)
    run = prepare_run_dir(tmp_path / "r", loaded=loaded, registry=registry)
    (run.root / "notes").mkdir()
    (run.root / "notes" / "important.txt").write_text("precious")
    (run.resume_state).write_text("{}")
    mine, _ = _loaded(tmp_path, inference__output_folder="notes")
    for flags in ({"overwrite": True}, {"resume": True}):
        assert "inference.output_folder names an existing folder dlsuite did not write" in \
            run_dir_refusal(run.root, output_folder="notes", **flags)
        with pytest.raises(DlsuiteInputError, match=r"r/notes: inference.output_folder"):
            prepare_run_dir(run.root, loaded=mine, registry=registry, **flags)
    assert (run.root / "notes" / "important.txt").read_text() == "precious"
    assert "notes" not in json.loads((run.root / ".dlsuite-run").read_text())["written"]
    nested, _ = _loaded(tmp_path, inference__output_folder="predictions/again")
    assert run_dir_refusal(run.root, overwrite=True, output_folder="predictions/again") is None
    prepare_run_dir(run.root, overwrite=True, loaded=nested, registry=registry)
