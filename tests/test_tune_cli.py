"""``dlsuite tune RUN_DIR`` (``api.tune``): a real tiny distance-target run trained without
its tuning step, tuned afterwards in a CLI subprocess; what it writes, what ``dlsuite
predict`` then uses, and the bad inputs it refuses (exit 2, nothing predicted or written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def untuned(tmp_path_factory):
    """A unet run on the distance target, 1 epoch, ``evaluation.tune_postprocess`` false."""
    from dlsuite import api
    from dlsuite.data.example import write_example_frames

    root = tmp_path_factory.mktemp("tune")
    frames = write_example_frames(root / "data", n=2, size=32, seed=1)["frames"]
    cfg = {"name": "tune", "output_dir": str(root / "run"), "seed": 2,
           "data": {"train": str(frames), "val": str(frames), "test": None},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2,
                       "target": "distance"},
           "loss": "class_distance",
           "postprocess": [{"name": "distance_watershed", "min_size": 250}],
           "evaluation": {"tune_postprocess": False, "tune_metric": "f1"},
           "train": {"epochs": 1}, "inference": {"tile_size": None},
           "wandb": {"mode": "disabled"}}
    run = Path(api.train(cfg, quiet=True).run_dir)
    assert not (run / "postprocess.json").exists()
    return {"run": run, "frames": frames, "cfg": cfg, "root": root}


def test_tune_writes_postprocess_json_that_predict_uses(untuned, tmp_path):
    from dlsuite.predict import open_run

    run = untuned["run"]
    proc = run_cli("tune", str(run), "--metric", "SEG", "--seconds", "60", "--json")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    written = json.loads((run / "postprocess.json").read_text())
    assert printed == written
    assert written["metric"] == "SEG" and written["score"] >= written["default_score"]
    assert set(written["tuned"]) >= {"0.distance_watershed.threshold",
                                     "0.distance_watershed.min_size"}
    params = open_run(run).ctx.config.postprocess[0].params
    assert params.min_size == written["steps"][0]["params"]["min_size"]
    # a second tuning does not silently replace the first
    before = (run / "postprocess.json").read_bytes()
    proc = run_cli("tune", str(run))
    assert proc.returncode == 2 and "postprocess.json: exists" in proc.stderr
    assert "--overwrite" in proc.stderr and (run / "postprocess.json").read_bytes() == before
    proc = run_cli("tune", str(run), "--overwrite", "--weights", "last", "--seconds", "30",
                   "--quiet")
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    again = json.loads((run / "postprocess.json").read_text())
    assert again["metric"] == "f1"  # the run's evaluation.tune_metric


def test_tune_refuses_bad_input_before_predicting(untuned, tmp_path):
    from dlsuite import api
    from dlsuite.errors import DlsuiteInputError

    proc = run_cli("tune", str(untuned["frames"]))
    assert proc.returncode == 2 and "not a dlsuite run directory" in proc.stderr
    proc = run_cli("tune", str(untuned["run"]), "--seconds", "0")
    assert proc.returncode == 2 and "--seconds" in proc.stderr
    # a run whose chain has nothing to tune: named, nothing written
    cfg = {**untuned["cfg"], "output_dir": str(tmp_path / "plain"),
           "datagen": {**untuned["cfg"]["datagen"], "target": "binary"}, "loss": "sparse_cce",
           "postprocess": ["argmax", "label"]}
    plain = Path(api.train(cfg, quiet=True).run_dir)
    with pytest.raises(DlsuiteInputError, match="no step of the post-processing chain"):
        api.tune(plain)
    assert not (plain / "postprocess.json").exists()


def test_tune_another_chain_into_a_chain_file_that_predict_reads(untuned, tmp_path):
    """``--postprocess CHAIN.json --output TUNED.json``: the given chain is tuned and written
    as a chain file (the run's postprocess.json untouched) that ``predict --postprocess``
    takes; it is replaced only with --overwrite, and a file dlsuite did not write never."""
    from dlsuite.predict import open_run

    run = untuned["run"]
    kept = run / "postprocess.json"
    before = kept.read_bytes() if kept.exists() else None
    chain = tmp_path / "chain.json"
    chain.write_text(json.dumps([{"name": "distance_watershed", "min_size": 5,
                                  "threshold": 0.6}]))
    tuned = tmp_path / "tuned.json"
    proc = run_cli("tune", str(run), "--postprocess", str(chain))
    assert proc.returncode == 2 and "--postprocess needs --output" in proc.stderr
    proc = run_cli("tune", str(run), "--postprocess", str(chain), "-o", str(tuned),
                   "--metric", "SEG", "--seconds", "30", "--json")
    assert proc.returncode == 0, proc.stderr
    printed, written = json.loads(proc.stdout), json.loads(tuned.read_text())
    assert set(written) == {"postprocess", "tuning"}
    tuning = written["tuning"]
    assert tuning["written_by"] == "dlsuite tune" and tuning["chain"] == str(chain)
    assert tuning["score"] == printed["score"] and tuning["tuned"] == printed["tuned"]
    (step,) = written["postprocess"]
    assert step == {"name": "distance_watershed", **printed["steps"][0]["params"]}
    assert (kept.read_bytes() if kept.exists() else None) == before
    params = open_run(run, chain=tuned).ctx.config.postprocess[0].params
    assert (params.threshold, params.min_size) == (step["threshold"], step["min_size"])
    out = tmp_path / "pred"
    proc = run_cli("predict", str(run), str(untuned["frames"]), "--postprocess", str(tuned),
                   "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "predict.json").read_text())["chain"] is not None
    # tuned before: replaced only with --overwrite; a file dlsuite did not write: never
    proc = run_cli("tune", str(run), "--postprocess", str(chain), "-o", str(tuned))
    assert proc.returncode == 2 and "exists (written by dlsuite tune before)" in proc.stderr
    proc = run_cli("tune", str(run), "-o", str(tuned), "--overwrite", "--seconds", "20",
                   "--quiet")
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    assert json.loads(tuned.read_text())["tuning"]["chain"] == "run"
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}\n')
    proc = run_cli("tune", str(run), "-o", str(notes), "--overwrite")
    assert proc.returncode == 2 and "not written by dlsuite tune" in proc.stderr
    assert notes.read_text() == '{"mine": 1}\n'
    plain = tmp_path / "plain.json"
    plain.write_text('["argmax", "label"]')
    proc = run_cli("tune", str(run), "--postprocess", str(plain), "-o", str(tmp_path / "x"))
    assert proc.returncode == 2 and f"{plain}: no step of the post-processing chain" in \
        proc.stderr and not (tmp_path / "x").exists()


def test_a_runs_postprocess_json_is_a_chain_predict_takes_for_another_run(untuned, tmp_path):
    """One run's tuned values tried on another run's predictions: ``predict --postprocess
    RUN_A/postprocess.json`` (was refused: 'expected a post-processing chain ... got
    dict')."""
    import shutil

    from dlsuite import api

    other = tmp_path / "other"
    shutil.copytree(untuned["run"], other, ignore=shutil.ignore_patterns("postprocess.json"))
    api.tune(other, metric="SEG", seconds=20, quiet=True)
    record = json.loads((other / "postprocess.json").read_text())
    out = tmp_path / "pred"
    proc = run_cli("predict", str(untuned["run"]), str(untuned["frames"]), "--postprocess",
                   str(other / "postprocess.json"), "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    chain = json.loads((out / "predict.json").read_text())["chain"]
    assert chain["file"] == str(other / "postprocess.json")
    assert chain["steps"] == [{"name": s["name"], **s["params"]} for s in record["steps"]]


def test_overwrite_of_a_tuned_run_removes_its_postprocess_json(untuned, tmp_path):
    """The tuned values belong to the model they were searched with: a run retrained with
    ``--overwrite`` (tuning off) must not keep, and ``predict`` must not apply, the old ones."""
    from dlsuite.predict import open_run

    cfg = dict(untuned["cfg"], output_dir=str(tmp_path / "run"))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cfg))
    assert run_cli("train", str(config), "--quiet").returncode == 0
    proc = run_cli("tune", str(tmp_path / "run"), "--seconds", "20", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "postprocess.json").is_file()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    proc = run_cli("train", str(config), "--overwrite", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "run" / "postprocess.json").exists()
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    params = open_run(tmp_path / "run").ctx.config.postprocess[0].params
    assert params.min_size == 250  # the config's value, not a stale tuned one
