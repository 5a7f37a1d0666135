"""Single output files and ``dlsuite track``'s folder: a user's file is never replaced.

``dlsuite evaluate -o / --per-frame``, ``config schema FILE`` and ``config migrate -o`` used to
write over whatever was at the path (``config migrate old.json -o old.json`` replaced the
legacy config itself), and ``dlsuite track`` wrote into any folder, over a user's
``sequences.csv``, and left stale masks of an earlier, longer video beside new ones. Through
the real CLI: an existing file not written by the command is refused (exit 2, one line naming
it, unchanged), one it wrote is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from conftest import run_cli


def _error_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def labels(tmp_path):
    """A result and a reference folder of one 2D label image each."""
    gt = np.zeros((48, 48), np.uint16)
    gt[4:20, 4:20], gt[26:44, 26:44] = 1, 2
    for side, image in (("gt", gt), ("res", np.where(gt == 2, 0, gt))):
        (tmp_path / side).mkdir()
        tifffile.imwrite(tmp_path / side / "a.tif", image.astype(np.uint16))
    return tmp_path / "res", tmp_path / "gt"


def test_evaluate_outputs_never_replace_a_users_file(labels, tmp_path):
    res, gt = labels
    users_json, users_csv = tmp_path / "notes.json", tmp_path / "table.csv"
    users_json.write_text('{"mine": 1}')
    users_csv.write_text("a,b\n1,2\n")
    for option, path in (("-o", users_json), ("--per-frame", users_csv)):
        for extra in ((), ("--overwrite",)):
            line = _error_line(run_cli("evaluate", str(res), str(gt), option, str(path), *extra))
            assert str(path) in line and "not written by dlsuite evaluate" in line
    assert users_json.read_text() == '{"mine": 1}' and users_csv.read_text() == "a,b\n1,2\n"

    out, frames = tmp_path / "m.json", tmp_path / "frames.csv"
    args = ("evaluate", str(res), str(gt), "-o", str(out), "--per-frame", str(frames))
    assert run_cli(*args).returncode == 0
    assert json.loads(out.read_text())["metrics"]["SEG"] == pytest.approx(0.5)
    # its own files: refused without --overwrite, replaced with it (here with new values)
    assert "pass --overwrite" in _error_line(run_cli(*args))
    (res / "a.tif").unlink()
    tifffile.imwrite(res / "a.tif", tifffile.imread(gt / "a.tif"))
    proc = run_cli(*args, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["metrics"]["SEG"] == pytest.approx(1.0)
    assert frames.read_text().startswith("sequence,frame,")
    line = _error_line(run_cli("evaluate", str(res), str(gt), "-o",
                               str(tmp_path / "no" / "m.json")))
    assert "does not exist" in line


def test_an_output_path_that_is_not_a_regular_file_is_refused_without_reading_it(labels,
                                                                                  tmp_path):
    """Recognising an existing output file as the command's own read it first: a FIFO there
    hung the command, /dev/zero filled the memory. Refused at once, exit 2, one line."""
    import os

    res, gt = labels
    fifo, zero = tmp_path / "pipe", tmp_path / "zero.json"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    for path in (fifo, zero):
        for args in (("config", "schema", str(path)),
                     ("evaluate", str(res), str(gt), "-o", str(path), "--overwrite"),
                     ("evaluate", str(res), str(gt), "--per-frame", str(path))):
            line = _error_line(run_cli(*args, timeout=60))
            assert f"{path}: exists and is not a regular file" in line, args


def test_config_schema_and_migrate_never_replace_a_users_file(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"schema_version": 1}')
    for extra in ((), ("--overwrite",)):
        line = _error_line(run_cli("config", "schema", str(config), *extra))
        assert str(config) in line and "not written by dlsuite config schema" in line
    assert config.read_text() == '{"schema_version": 1}'
    schema = tmp_path / "schema.json"
    assert run_cli("config", "schema", str(schema)).returncode == 0
    assert "pass --overwrite" in _error_line(run_cli("config", "schema", str(schema)))
    schema.write_text(schema.read_text().replace('"title": "dlsuite config"',
                                                 '"title": "dlsuite config", "x": 1'))
    assert run_cli("config", "schema", str(schema), "--overwrite").returncode == 0
    assert "x" not in json.loads(schema.read_text())

    legacy = tmp_path / "legacy.json"
    legacy.write_text('{"cnn_name": "unet", "model_n_filters": 8}')
    line = _error_line(run_cli("config", "migrate", str(legacy), "-o", str(legacy)))
    assert str(legacy) in line and "does not replace an existing file" in line
    assert json.loads(legacy.read_text()) == {"cnn_name": "unet", "model_n_filters": 8}
    assert run_cli("config", "migrate", str(legacy), "-o", str(tmp_path / "new.json")
                   ).returncode == 0


def _videos(folder, lengths):
    folder.mkdir(exist_ok=True)
    for i, n in enumerate(lengths):
        video = np.zeros((n, 32, 32), np.uint16)
        video[:, 8:16, 8:16] = 1
        tifffile.imwrite(folder / f"v{i}.tif", video)


def test_track_output_folder_follows_the_reuse_rule(tmp_path):
    _videos(tmp_path / "in", [8, 8])
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "sequences.csv").write_text("mine\n")
    for extra in ((), ("--overwrite",)):
        line = _error_line(run_cli("track", str(tmp_path / "in"), str(foreign), *extra))
        assert str(foreign) in line and "not written by dlsuite" in line
    assert [p.name for p in foreign.iterdir()] == ["sequences.csv"]
    assert (foreign / "sequences.csv").read_text() == "mine\n"

    out = tmp_path / "tracks"
    assert run_cli("track", str(tmp_path / "in"), str(out)).returncode == 0
    # the lock file of the folder (one track at a time) is dlsuite's own too
    assert sorted(p.name for p in out.iterdir()) == [".dlsuite-lock", ".dlsuite-track",
                                                      "01_RES", "02_RES", "sequences.csv"]
    assert "--overwrite" in _error_line(run_cli("track", str(tmp_path / "in"), str(out)))
    (out / "mine.txt").write_text("kept")
    (out / "02_RES" / "notes.txt").write_text("kept too")  # added inside a result folder
    # one shorter video now: nothing of the earlier results may linger beside the new ones
    for p in (tmp_path / "in").iterdir():
        p.unlink()
    _videos(tmp_path / "in", [5])
    proc = run_cli("track", str(tmp_path / "in"), str(out), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [".dlsuite-lock", ".dlsuite-track",
                                                      "01_RES", "02_RES", "mine.txt",
                                                      "sequences.csv"]
    assert sorted(p.name for p in (out / "01_RES").iterdir()) == [
        *(f"mask{t:03d}.tif" for t in range(5)), "res_track.txt"]
    assert [p.name for p in (out / "02_RES").iterdir()] == ["notes.txt"]
    assert "kept 2 file(s) dlsuite did not write" in proc.stderr
    assert "mine.txt, 02_RES/notes.txt" in " ".join(proc.stderr.split())
    assert (out / "sequences.csv").read_text() == "sequence,video\n01,v0.tif\n"


def test_prepare_names_a_users_file_before_asking_for_overwrite(tmp_path):
    """A user's file where ``prepare`` would write is named at once: asking for --overwrite
    first led to a second refusal."""
    (tmp_path / "videos").mkdir()
    _videos(tmp_path / "videos" / "labels", [4])
    dst = tmp_path / "ctc"
    dst.mkdir()
    (dst / "sequences.csv").write_text("mine\n")
    line = _error_line(run_cli("prepare", "ctc", str(tmp_path / "videos"), str(dst)))
    assert "sequences.csv" in line and "not written by dlsuite prepare" in line
    assert (dst / "sequences.csv").read_text() == "mine\n"
    # inside the sequence folders it writes: a note added there survives --overwrite (the
    # marker recorded whole NN_GT folders, and --overwrite removed them with the note)
    (dst / "sequences.csv").unlink()
    assert run_cli("prepare", "ctc", str(tmp_path / "videos"), str(dst), "-q").returncode == 0
    (dst / "01_GT" / "SEG" / "notes.txt").write_text("mine")
    proc = run_cli("prepare", "ctc", str(tmp_path / "videos"), str(dst), "-q", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert (dst / "01_GT" / "SEG" / "notes.txt").read_text() == "mine"
    assert list((dst / "01_GT" / "TRA").glob("man_track*.tif"))  # written again


@pytest.mark.parametrize("command, dst", [
    ("frames", "."), ("frames", "inputs"), ("ctc", "labels"), ("clips", "."),
])
def test_prepare_refuses_a_destination_in_its_source(tmp_path, command, dst):
    """``prepare frames SRC SRC`` wrote the 2D frames into SRC's own inputs/ and labels/,
    beside the videos, and broke the dataset for every later command."""
    from dlsuite.data.example import write_example_videos

    src = write_example_videos(tmp_path, n_videos=1, frames=4, size=32)["videos"]
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    extra = ("-T", "2") if command == "clips" else ()
    line = _error_line(run_cli("prepare", command, str(src), str(src / dst), *extra))
    assert "the output folder is the input" in line and "Choose a folder outside it" in line
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before
    # beside it: fine
    assert run_cli("prepare", command, str(src), str(tmp_path / "out"), *extra).returncode == 0
