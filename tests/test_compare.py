"""Comparing runs (issue 15): ``dlsuite sweep`` (W&B sweep format, trials as ordinary runs
in one W&B group, interrupted and resumed), ``dlsuite compare`` (table, ``--json``,
``--plot``) and ``dlsuite test`` (a finished run evaluated without training).

The slow tests share one real sweep: a 2x2 grid of tiny runs, interrupted by SIGINT during
its second trial and resumed."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dlsuite import api
from dlsuite.errors import DlsuiteInputError
from dlsuite.sweep import load_sweep, plan_trials
from dlsuite.threads import share_of_cores
from conftest import run_cli, sigint_default

SWEEP_NAME = "h12grid"
GRID = f"""
name: {SWEEP_NAME}
method: grid
metric: {{name: val_jaccard, goal: maximize}}
base: base.json
parameters:
  model:
    parameters:
      n_filters: {{values: [2, 3]}}
  loss: {{values: [sparse_cce, dice]}}
"""


def _base(folder: Path, *, epochs: int = 3, test: bool = True) -> Path:
    from dlsuite.data.example import write_example_videos

    data = write_example_videos(folder / "data", n_videos=1, frames=2, size=32)["videos"]
    cfg = {"name": "base", "output_dir": "unused", "seed": 3,
           "data": {"train": str(data), "val": str(data), **({"test": str(data)} if test else {})},
           "model": {"name": "unet", "n_filters": 2, "pools": 1},
           "datagen": {"patch_size": [32, 32], "batch_size": 1, "steps_per_epoch": 2},
           "train": {"epochs": epochs, "tensorboard": {"enabled": False}},
           "wandb": {"mode": "offline", "project": "h12-sweep-test", "log_model": False,
                     "n_images": 0}}
    path = folder / "base.json"
    path.write_text(json.dumps(cfg))
    return path


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------
# sweep files and plans (no TensorFlow)


@pytest.mark.parametrize("text, message", [
    ("base: b.json\nmethod: bayes\nparameters: {seed: {values: [1]}}", "method: 'bayes'"),
    ("base: b.json\nparameters: {seed: {min: 1, max: 3}}",
     "parameters.seed: a grid sweep needs value or values"),
    ("base: b.json\nmethod: random\nparameters: {seed: {values: [1]}}",
     "run_cap: a random sweep needs run_cap"),
    ("base: b.json\nparamters: {}", "paramters: unknown key"),
    ("parameters: {seed: {values: [1]}}", "base: missing"),
    ("base: b.json\nparameters: {'a..b': {values: [1]}}", "parameters.a..b: not a config path"),
    ("base: b.json\nparameters: {seed: 3}", "parameters.seed: expected value, values"),
    ("base: b.json\nmethod: random\nrun_cap: 2\nparameters:\n"
     "  optimizer.learning_rate: {distribution: log_uniform_values, min: 0, max: 1}",
     "needs min > 0"),
    # silently ignored: the sweep sets them for each trial; a name that is a folder
    ("base: b.json\nparameters: {output_dir: {values: [a, b]}}",
     "parameters.output_dir: set by the sweep for each trial"),
    ("base: b.json\nname: '..'\nparameters: {seed: {values: [1]}}",
     "name: expected a name without '/' (not . or ..)"),
    # these were unexpected errors (TypeError, ValueError, ZeroDivisionError), exit 1
    *(("base: b.json\nmethod: random\nrun_cap: 1\nparameters:\n"
       f"  model.n_filters: {{values: [4, 8], probabilities: {probs}}}",
       "parameters.model.n_filters: probabilities must be a list of numbers >= 0")
      for probs in ("[a, b]", "[.nan, .nan]", "[-1, 2]")),
    *(("base: b.json\nmethod: random\nrun_cap: 1\nparameters:\n"
       f"  optimizer.learning_rate: {{distribution: q_uniform, min: 0.001, max: 0.01, q: {q}}}",
       "parameters.optimizer.learning_rate: q must be a number > 0")
      for q in ("0", "x")),
])
def test_bad_sweep_files_are_named(tmp_path, text, message):
    path = _write(tmp_path, "sweep.yaml", text)
    with pytest.raises(DlsuiteInputError) as exc:
        load_sweep(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value)


def test_grid_and_random_plans(tmp_path):
    sweep = load_sweep(_write(tmp_path, "s.yaml", GRID))
    assert sweep.name == SWEEP_NAME and sweep.base == (tmp_path / "base.json").resolve()
    assert list(sweep.parameters) == ["model.n_filters", "loss"]  # nested block flattened
    assert [t.overrides for t in plan_trials(sweep)] == [
        {"model.n_filters": 2, "loss": "sparse_cce"}, {"model.n_filters": 2, "loss": "dice"},
        {"model.n_filters": 3, "loss": "sparse_cce"}, {"model.n_filters": 3, "loss": "dice"}]
    assert [t.name for t in plan_trials(sweep)] == [f"trial-{k:03d}" for k in range(4)]
    random_sweep = load_sweep(_write(tmp_path, "r.json", json.dumps({
        "method": "random", "run_cap": 5, "base": "base.json", "parameters": {
            "optimizer.learning_rate": {"distribution": "log_uniform_values",
                                        "min": 1e-4, "max": 1e-2},
            "model.n_filters": {"min": 2, "max": 8}, "seed": {"value": 7},
            "loss": {"values": ["dice", "sparse_cce"], "probabilities": [1.0, 0.0]}}})))
    trials = plan_trials(random_sweep, seed=1)
    assert len(trials) == 5 and trials == plan_trials(random_sweep, seed=1)  # reproducible
    for t in trials:
        assert 1e-4 <= t.overrides["optimizer.learning_rate"] <= 1e-2
        assert isinstance(t.overrides["model.n_filters"], int)
        assert 2 <= t.overrides["model.n_filters"] <= 8
        assert t.overrides["seed"] == 7 and t.overrides["loss"] == "dice"
    capped = load_sweep(_write(tmp_path, "c.yaml", GRID + "run_cap: 3\n"))
    assert len(plan_trials(capped)) == 3


def test_a_bad_parameter_stops_the_sweep_before_anything_is_written(tmp_path):
    _base(tmp_path)
    path = _write(tmp_path, "s.yaml", GRID.replace("n_filters:", "n_filtres:"))
    proc = run_cli("sweep", str(path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "trial-000" in proc.stderr
    assert "override model.n_filtres=2: unknown key; did you mean n_filters?" in proc.stderr
    assert not (tmp_path / "out").exists()
    # every failing trial is reported at once, each with all its problems
    path = _write(tmp_path, "t.yaml", GRID.replace("[2, 3]", "[2, 0]").replace(
        "[sparse_cce, dice]", "[sparse_cce, no_such_loss]"))
    proc = run_cli("sweep", str(path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "3 of 4 trial(s) have config errors" in proc.stderr
    lines = {line.split(" (")[0].strip(): line for line in proc.stderr.splitlines()
             if line.strip().startswith("trial-")}
    assert sorted(lines) == ["trial-001", "trial-002", "trial-003"]
    assert "override model.n_filters=0: must be > 0" in lines["trial-002"]
    assert "unknown loss 'no_such_loss'" in lines["trial-001"]
    assert ("override model.n_filters=0" in lines["trial-003"]
            and "unknown loss 'no_such_loss'" in lines["trial-003"])
    assert not (tmp_path / "out").exists()
    # what only the data can tell (too few samples for the batch, a patch far over the
    # frames) is found before the first trial too: such trials used to fail one by one
    # after the others had trained
    path = _write(tmp_path, "d.yaml", GRID.replace("n_filters: {values: [2, 3]}",
                                                   "n_filters: {values: [2]}").replace(
        "loss: {values: [sparse_cce, dice]}", "datagen:\n    parameters:\n"
        "      batch_size: {values: [1, 2]}\n      patch_size: {values: [[32, 32], [128, 128]]}"))
    proc = run_cli("sweep", str(path), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "3 of 4 trial(s) have config errors" in proc.stderr, proc.stderr
    lines = {line.split(" (")[0].strip(): line for line in proc.stderr.splitlines()
             if line.strip().startswith("trial-")}
    assert sorted(lines) == ["trial-001", "trial-002", "trial-003"]
    assert "$.datagen.patch_size: [128, 128] is over 2 times the largest training frame " \
        "(32 x 32" in lines["trial-001"]
    assert "$.datagen.batch_size: 2 training samples per batch" in lines["trial-002"]
    assert not (tmp_path / "out").exists()
    # a metric no trial records (misspelt; a test score without a test set): every trial
    # ran, then "no run has it" and exit 0
    for metric in ("val_jacard", "test/SEGG"):
        path = _write(tmp_path, "m.yaml", GRID.replace("val_jaccard", metric))
        proc = run_cli("sweep", str(path), "-o", str(tmp_path / "out"))
        assert proc.returncode == 2, proc.stderr
        assert f"m.yaml: metric: '{metric}' is not a value the trials record; choose one " \
            "of val_jaccard/best, val_jaccard/final, test/foreground_jaccard" in \
            " ".join(proc.stderr.split()), proc.stderr
        assert not (tmp_path / "out").exists()
    # an output folder the user filled is refused, untouched
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    proc = run_cli("sweep", _write(tmp_path, "g.yaml", GRID).as_posix(), "-o",
                   str(tmp_path / "mine"))
    assert proc.returncode == 2 and "was not written by dlsuite" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


# --------------------------------------------------------------------------------------------
# compare on run folders (their files written as a run writes them)


def _fake_run(folder: Path, n_filters: int, best: float, seg: float | None) -> Path:
    folder.mkdir(parents=True)
    config = {"name": folder.name, "output_dir": str(folder), "seed": 1,
              "model": {"name": "unet", "n_filters": n_filters, "pools": 2},
              "loss": {"name": "dice", "smooth": 1.0}, "wandb": {"group": "g", "tags": []}}
    (folder / "config.json").write_text(json.dumps(
        {"config": config, "overrides": {"model.n_filters": n_filters}}))
    (folder / "history.csv").write_text(f"epoch,loss,val_jaccard\n1,0.9,{best / 2}\n"
                                        f"2,0.8,{best}\n3,0.7,{best * 0.9}\n")
    metrics = {"train": {"epochs": 3, "monitor": "val_jaccard", "mode": "max", "best": best,
                         "best_epoch": 2}}
    if seg is not None:
        metrics["test"] = {"SEG": seg, "DET": None, "f1": seg / 2}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_every_run_of_a_plot_has_its_own_colour_and_style(tmp_path):
    """Eleven runs: matplotlib's ten default colours drew the first and the eleventh alike
    and the legend covered bars; now each run's colour is in the picture and no two runs
    share a style, up to many runs."""
    from skimage.io import imread

    from dlsuite.compare import run_styles

    for n in (3, 11, 25, 45):
        assert len({(c, m, h) for c, m, h in run_styles(n)}) == n
    for k in range(11):
        _fake_run(tmp_path / "s" / f"run{k:02d}", 4 + k, 0.2 + 0.05 * k, 0.1 + 0.05 * k)
    api.compare([tmp_path / "s"], plot=tmp_path / "many.png")
    pixels = imread(tmp_path / "many.png")[..., :3].reshape(-1, 3).astype(int)
    for colour, _, _ in run_styles(11):
        rgb = np.round(np.array(colour[:3]) * 255).astype(int)
        assert (np.abs(pixels - rgb).max(axis=1) <= 2).sum() > 20, rgb


def test_compare_lists_differing_keys_and_sorts_by_the_metric(tmp_path):
    _fake_run(tmp_path / "s" / "a", 4, 0.5, 0.2)
    _fake_run(tmp_path / "s" / "b", 8, 0.7, 0.1)
    _fake_run(tmp_path / "s" / "c", 8, 0.6, None)
    (tmp_path / "s" / "not-a-run").mkdir()
    data = api.compare([tmp_path / "s"]).to_json()
    assert set(data) >= {"runs", "differing_keys", "metrics"}
    assert data["differing_keys"] == ["model.n_filters"]  # names and output_dir not listed
    assert [r["name"] for r in data["runs"]] == ["b", "c", "a"]  # val_jaccard max: best first
    assert data["metrics"]["b"]["val_jaccard/best"] == 0.7
    assert data["metrics"]["b"]["val_jaccard/final"] == pytest.approx(0.63)
    assert data["runs"][0]["config"] == {"model.n_filters": 8}
    assert data["runs"][0]["overrides"] == {"model.n_filters": 8}
    by_seg = api.compare([tmp_path / "s" / n for n in "abc"], metric="seg").to_json()
    assert by_seg["sort_by"] == "test/SEG"
    assert [r["name"] for r in by_seg["runs"]] == ["a", "b", "c"]  # no SEG: last
    with pytest.raises(DlsuiteInputError, match="--metric TRA: no run has it"):
        api.compare([tmp_path / "s"], metric="TRA")
    with pytest.raises(DlsuiteInputError, match="not-a-run: neither a run directory"):
        api.compare([tmp_path / "s" / "not-a-run"])


def test_a_damaged_run_is_named_and_one_data_folder_is_one_value(tmp_path):
    """A history.csv that is not text and a config.json whose overrides are not an object
    were unexpected errors (exit 1); each is named now. The same data folder written
    relative to two configs' folders (``d/frames``, ``sub/../d/frames``) is one value, not
    a difference."""
    from dlsuite.config.loader import load_config

    for name, damage in (("history", lambda run: (run / "history.csv").write_bytes(
                             b"\xff\xfe\x00binary")),
                         ("overrides", lambda run: (run / "config.json").write_text(
                             json.dumps({"config": {"name": "x"}, "overrides": [1, 2]})))):
        run = _fake_run(tmp_path / name, 4, 0.5, 0.2)
        damage(run)
        with pytest.raises(DlsuiteInputError, match=re.escape(str(run)) + ".*(damaged history"
                           "|overrides\" is not an object)"):
            api.compare([run])
    (tmp_path / "d" / "frames").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    paths = []
    for folder, data in ((tmp_path, "d/frames"), (tmp_path / "sub", "../d/frames")):
        config = folder / "c.json"
        config.write_text(json.dumps({"data": {"train": data, "val": data}}))
        paths.append(load_config(config, check_paths=False).config.data.train)
    assert paths[0] == paths[1] == str(tmp_path / "d" / "frames")


def test_compare_cli_json_and_plot(tmp_path):
    _fake_run(tmp_path / "a", 4, 0.5, 0.2)
    _fake_run(tmp_path / "b", 8, 0.7, 0.1)
    plot = tmp_path / "cmp.png"
    proc = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json",
                   "--plot", str(plot), "--metric", "SEG")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["name"] for r in data["runs"]] == ["a", "b"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DlsuiteInputError, match="exists; dlsuite compare does not replace an existing file"):
        api.compare([tmp_path / "a"], plot=plot)  # never overwritten (exit 2 in the CLI)
    table = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"),
                    env={"COLUMNS": "200"})
    assert table.returncode == 0 and "model.n_filters" in table.stdout
    assert "test/SEG" in table.stdout and "val_jaccard/best" in table.stdout


def test_data_paths_that_differ_below_a_common_folder_are_shown_relative_to_it(tmp_path):
    """Runs trained on datasets side by side: each long absolute path folded mid-word in its
    18-character column; the column now names the common folder and each row its own part."""
    common = tmp_path / "a-rather-long-project-folder" / "datasets"
    for name, dataset in (("a", "phase-contrast-2024"), ("b", "fluorescence-nuclei")):
        folder = _fake_run(tmp_path / name, 4, 0.5, 0.2)
        record = json.loads((folder / "config.json").read_text())
        record["config"]["data"] = {"train": str(common / dataset / "train")}
        (folder / "config.json").write_text(json.dumps(record))
    table = run_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), env={"COLUMNS": "120"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    head = lines[2:next(i for i, line in enumerate(lines) if line.startswith("┡"))]
    cell = "".join(line.split("┃")[2] for line in head).replace(" ", "")  # its column, unfolded
    assert cell == f"data.train(in{common}/)".replace(" ", ""), head
    for dataset in ("phase-contrast-2024/train", "fluorescence-nuclei/train"):
        assert dataset in table.stdout, table.stdout  # whole, on one line


def test_runs_still_training_are_compared_by_their_history(tmp_path):
    """A run without metrics.json (training, or interrupted: a sweep's running trial) has
    its config's monitor at its best so far from history.csv, not an empty row."""
    _fake_run(tmp_path / "done", 4, 0.5, 0.2)
    running = _fake_run(tmp_path / "running", 8, 0.7, None)
    (running / "metrics.json").unlink()
    data = api.compare([tmp_path / "done", running]).to_json()
    assert data["sort_by"] == "val_jaccard/best"
    assert [r["name"] for r in data["runs"]] == ["running", "done"]
    assert data["metrics"]["running"]["val_jaccard/best"] == 0.7  # max, from the history
    assert data["metrics"]["running"]["val_jaccard/final"] == pytest.approx(0.63)
    # a loss monitor is at its best when smallest
    config = json.loads((running / "config.json").read_text())
    config["config"]["train"] = {"monitor": "loss"}
    (running / "config.json").write_text(json.dumps(config))
    assert api.compare([running]).to_json()["metrics"]["running"]["loss/best"] == 0.7
    # nothing to show yet: one line saying so, not a title wrapped word by word
    (running / "history.csv").unlink()
    proc = run_cli("compare", str(running))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("1 run(s); none has metrics yet (no history.csv or metrics.json)\n"
                           "stopped: stopped before its first epoch ended (nothing to resume)"
                           "\n")


def test_compare_says_which_runs_did_not_finish(tmp_path):
    """A run killed before its first epoch ended (e.g. for want of memory) used to be a row
    of dashes like any other: its status says so, and so do those of a run another process
    is writing and of one ``--resume`` continues; the table shows the column only then."""
    from test_folder_lock import HOLDER

    from dlsuite.rundir import RunDir

    done = _fake_run(tmp_path / "done", 4, 0.5, 0.2)
    killed = _fake_run(tmp_path / "killed", 8, 0.7, None)
    for name in ("metrics.json", "history.csv"):
        (killed / name).unlink()
    resumable = _fake_run(tmp_path / "resumable", 16, 0.6, None)
    (resumable / "metrics.json").unlink()
    state = RunDir(resumable).resume_state
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    proc = run_cli("compare", str(done), str(killed), str(resumable), env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in proc.stdout.splitlines() if line.startswith("│")}
    assert rows == {"resumable": "resumable", "done": "finished", "killed": "stopped"}
    assert ("stopped: stopped before its first epoch ended (nothing to resume)"
            in proc.stderr), proc.stderr
    assert "resumable: stopped with a saved state: dlsuite run CONFIG --resume" in proc.stderr
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(killed)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        runs = api.compare([done, killed]).to_json()["runs"]
        assert {r["name"]: r["status"] for r in runs} == {"done": "finished",
                                                         "killed": "running"}
    finally:
        holder.kill()
        holder.wait(timeout=30)
    table = run_cli("compare", str(done), env={"COLUMNS": "200"})
    assert "status" not in table.stdout and table.stderr == ""


# --------------------------------------------------------------------------------------------
# one real sweep: 2x2 grid, interrupted in its second trial, resumed


def _history_rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.is_file() else 0


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    _base(folder)
    sweep_file = _write(folder, "grid.yaml", GRID)
    out = folder / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("WANDB_MODE", None)
    cmd = [sys.executable, "-m", "dlsuite.cli", "sweep", str(sweep_file), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=sigint_default)
    deadline = time.monotonic() + 600
    while _history_rows(out / "trial-001" / "history.csv") < 1:
        assert proc.poll() is None, f"sweep ended early: {proc.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, "trial-001 did not start training in time"
        time.sleep(0.05)
    first_done = (out / "trial-000" / "metrics.json").stat().st_mtime_ns
    proc.send_signal(signal.SIGINT)
    _, interrupted_err = proc.communicate(timeout=300)
    state = json.loads((out / "sweep.json").read_text())
    statuses = {r["name"]: r["status"] for r in api.compare([out]).to_json()["runs"]}
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env,
                             timeout=1200)
    return {"folder": folder, "out": out, "interrupted_rc": proc.returncode,
            "interrupted_err": interrupted_err, "state_after_signal": state,
            "resumed": resumed, "first_done": first_done, "statuses_after_signal": statuses}


@pytest.mark.slow
def test_sweep_interrupted_then_resumed(grid_sweep):
    out = grid_sweep["out"]
    assert grid_sweep["interrupted_rc"] == 130, grid_sweep["interrupted_err"][-3000:]
    assert "--resume" in grid_sweep["interrupted_err"]
    statuses = [t["status"] for t in grid_sweep["state_after_signal"]["trials"]]
    assert statuses == ["finished", "interrupted", "pending", "pending"]
    # compare says which trial --resume continues (trial-002 and -003 were not started)
    assert grid_sweep["statuses_after_signal"] == {"trial-000": "finished",
                                                   "trial-001": "resumable"}
    resumed = grid_sweep["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = json.loads((out / "sweep.json").read_text())
    assert [t["status"] for t in final["trials"]] == ["finished"] * 4
    assert "best: trial-" in resumed.stderr and "val_jaccard/best=" in resumed.stderr
    # the finished trial was skipped, the interrupted one continued from its saved state
    assert (out / "trial-000" / "metrics.json").stat().st_mtime_ns == grid_sweep["first_done"]
    second = json.loads((out / "trial-001" / "config.json").read_text())
    assert len(second["resumed"]) == 1
    assert _history_rows(out / "trial-001" / "history.csv") == 3  # epochs 1..3, none twice


@pytest.mark.slow
def test_sweep_trials_are_runs_in_one_wandb_group(grid_sweep):
    out = grid_sweep["out"]
    trials = sorted(p.name for p in out.iterdir() if (p / "config.json").is_file())
    assert trials == ["trial-000", "trial-001", "trial-002", "trial-003"]
    seen = set()
    for name in trials:
        written = json.loads((out / name / "config.json").read_text())
        cfg = written["config"]
        assert cfg["wandb"]["group"] == SWEEP_NAME
        assert cfg["output_dir"] == str(out / name)
        params = {k: v for k, v in written["overrides"].items()
                  if k in ("model.n_filters", "loss")}
        assert cfg["wandb"]["tags"] == [f"{k}={v}" for k, v in params.items()]
        seen.add((cfg["model"]["n_filters"], cfg["loss"]["name"]))
        # the offline W&B run files carry the group too
        runs = list((out / name / "wandb").glob("offline-run-*/run-*.wandb"))
        assert runs and all(SWEEP_NAME.encode() in r.read_bytes() for r in runs)
    assert seen == {(2, "sparse_cce"), (2, "dice"), (3, "sparse_cce"), (3, "dice")}


@pytest.mark.slow
def test_compare_the_sweep(grid_sweep, tmp_path):
    plot = tmp_path / "sweep.png"
    proc = run_cli("compare", str(grid_sweep["out"]), "--json", "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert sorted(r["name"] for r in data["runs"]) == [f"trial-{k:03d}" for k in range(4)]
    assert {r["status"] for r in data["runs"]} == {"finished"}
    assert data["differing_keys"] == ["loss.name", "model.n_filters"]
    for name, metrics in data["metrics"].items():
        assert metrics["val_jaccard/best"] is not None, name
        assert metrics["test/SEG"] is not None, name
    best = [data["metrics"][r["name"]]["val_jaccard/best"] for r in data["runs"]]
    assert best == sorted(best, reverse=True)
    assert plot.stat().st_size > 1000


@pytest.mark.slow
def test_dlsuite_test_evaluates_a_finished_run(grid_sweep):
    run = grid_sweep["out"] / "trial-002"
    # W&B's own service logs (wandb/*/logs/debug*.log) may still be flushed by the trial's
    # wandb-core process after it exited: not files of the run, left out
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")
              if p.is_file() and p.parent.name != "logs"}
    proc = run_cli("test", str(run), "--weights", "last", "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout)
    assert metrics["weights"] == "last" and metrics["checkpoint"].endswith("last.keras")
    assert set(metrics["test"]) >= {"SEG", "f1", "foreground_jaccard"}
    written = json.loads((run / "test" / "last" / "metrics.json").read_text())
    assert written["test"] == metrics["test"]
    assert list((run / "test" / "last" / "labels").glob("*.tif"))
    # nothing that was there changed (but the bookkeeping: the marker records the new folder,
    # the lock file names the process that held the run last)
    bookkeeping = {".dlsuite-run", ".dlsuite-lock"}
    assert {p: p.stat().st_mtime_ns for p in before if p.name not in bookkeeping} == \
        {p: t for p, t in before.items() if p.name not in bookkeeping}, "a file was rewritten"
    assert "test" in json.loads((run / ".dlsuite-run").read_text())["written"]
    # no training happened: the history is as the sweep left it
    assert _history_rows(run / "history.csv") == 3
    # a W&B `evaluate` run in the trial's group holds the test summary and image table
    from wandb_records import offline_runs

    (wb,) = offline_runs(run / "test" / "last").values()
    assert wb["run"]["job_type"] == "evaluate" and wb["run"]["group"] == SWEEP_NAME
    assert wb["run"]["name"] == f"{SWEEP_NAME}-trial-002-test-last"
    assert wb["summary"]["test/SEG"] == metrics["test"]["SEG"]
    assert wb["summary"]["test/images"]["nrows"] >= 1
    # a folder that is no run is refused
    bad = run_cli("test", str(grid_sweep["folder"]))
    assert bad.returncode == 2 and "not a dlsuite run directory" in bad.stderr


@pytest.mark.slow
def test_dlsuite_test_of_a_copied_runs_config_tests_the_copy_and_quiet_prints_nothing(
        grid_sweep, tmp_path):
    """The config.json a run wrote names the run's first place (output_dir): given the copy's
    config.json, the copy is tested (the original run got the results). ``-q`` prints no
    table (the metrics are in the results folder)."""
    import shutil

    original = grid_sweep["out"] / "trial-001"
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns(".dlsuite-lock"))
    before = sorted(p.relative_to(original) for p in original.rglob("*")
                    if "wandb" not in p.parts)
    proc = run_cli("test", str(copy / "config.json"), "--quiet")
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr[-3000:]
    written = json.loads((copy / "test" / "best" / "metrics.json").read_text())
    assert written["checkpoint"] == str(copy / "checkpoints" / "best.keras")
    assert sorted(p.relative_to(original) for p in original.rglob("*")
                  if "wandb" not in p.parts) == before


@pytest.mark.slow
def test_dlsuite_test_of_another_test_set_replaces_the_earlier_predictions(grid_sweep, tmp_path):
    """A test of two videos, then of the run's own one-video test set: the second test's
    folder holds its own predictions only (the other video's labels and CTC folder, left
    beside them, made evaluation skip as 'unpaired')."""
    import shutil

    from dlsuite.data.example import write_example_videos

    copy = tmp_path / "copy"
    shutil.copytree(grid_sweep["out"] / "trial-001", copy,
                    ignore=shutil.ignore_patterns(".dlsuite-lock"))
    two = write_example_videos(tmp_path / "two", n_videos=2, frames=2, size=32)["videos"]
    first = run_cli("test", str(copy / "config.json"), "--set", f"data.test={two}", "-q")
    assert first.returncode == 0, first.stderr[-3000:]
    results = copy / "test" / "best"
    assert sorted(p.name for p in (results / "labels").iterdir()) == ["cells_00.tif",
                                                                      "cells_01.tif"]
    assert sorted(p.name for p in (results / "ctc").glob("*_RES")) == ["01_RES", "02_RES"]
    (results / "labels" / "notes.txt").write_text("mine")  # a user's file: it stays
    second = run_cli("test", str(copy / "config.json"), "-q", "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    metrics = json.loads(second.stdout)
    assert not [n for n in metrics["notes"] if "evaluation skipped" in n], metrics["notes"]
    assert metrics["test"]["SEG"] is not None
    assert sorted(p.name for p in (results / "labels").iterdir()) == ["cells_00.tif",
                                                                      "notes.txt"]
    assert sorted(p.name for p in (results / "ctc").glob("*_RES")) == ["01_RES"]
    assert len(list((results / "wandb").glob("offline-run-*"))) == 2  # both tests' kept
    # a hand-corrected label image saved beside the predictions: neither deleted nor
    # evaluated as one; the next test refuses the folder before any work, naming it
    corrected = results / "labels" / "cells_00_corrected.tif"
    shutil.copy(results / "labels" / "cells_00.tif", corrected)
    third = run_cli("test", str(copy / "config.json"), "-q")
    assert third.returncode == 2, third.stderr[-3000:]
    assert f"{corrected}: in the run's prediction folder but not written by dlsuite" in \
        " ".join(third.stderr.split())
    assert corrected.read_bytes() == (results / "labels" / "cells_00.tif").read_bytes()
    assert len(list((results / "wandb").glob("offline-run-*"))) == 2  # no work started


@pytest.mark.slow
def test_random_sweep_in_parallel(tmp_path):
    _base(tmp_path, epochs=1, test=False)
    sweep_file = _write(tmp_path, "random.yaml", """
method: random
run_cap: 2
base: base.json
parameters:
  optimizer.learning_rate: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
""")
    proc = run_cli("sweep", str(sweep_file), "-o", str(tmp_path / "out"), "--parallel", "2",
                   "--quiet", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert [t["status"] for t in state["trials"]] == ["finished", "finished"]
    rates = []
    for t in state["trials"]:
        written = json.loads((tmp_path / "out" / t["name"] / "config.json").read_text())
        rates.append(written["config"]["optimizer"]["learning_rate"])
        assert rates[-1] == t["overrides"]["optimizer.learning_rate"]
        assert written["config"]["wandb"]["group"] == "random"  # the file's stem
    assert all(1e-4 <= r <= 1e-2 for r in rates) and rates[0] != rates[1]
    # side by side, the trials share the cores instead of each taking them all
    share = share_of_cores(2)
    for t in state["trials"]:
        log = (tmp_path / "out" / t["name"] / "run.log").read_text()
        assert f"threads: {share} intra-op, {share} inter-op (DLSUITE_THREADS)" in log
