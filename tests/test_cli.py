"""The CLI in real subprocesses: exit codes, messages, and no TensorFlow import."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import run_cli

PROBE = ("import runpy, sys\n"
         "sys.argv = ['dlsuite'] + sys.argv[1:]\n"
         "try:\n"
         "    runpy.run_module('dlsuite.cli', run_name='__main__')\n"
         "finally:\n"
         "    print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'TF-NOT-IMPORTED',"
         " file=sys.stderr)\n")


def run_probe(tmp_path, *args):
    import subprocess

    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def five_mistakes(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({
        "model": {"name": "unet", "n_filtres": 4},
        "seed": "seven",
        "datagen": {"batch_size": 0.5},
        "wandb": {"mode": "ofline"},
        "evaluaton": {},
    }))
    return path


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["plugins"], ["plugins", "--json"],
                                  ["plugins", "--kind", "architectures"],
                                  ["config", "schema"], ["config", "validate", "{good}"],
                                  ["config", "show", "{good}"]])
def test_fast_commands_do_not_import_tensorflow(tmp_path, args):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"model": {"name": "unet", "n_filters": 4}}))
    args = [a.format(good=good) for a in args]
    proc = run_probe(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert "TF-NOT-IMPORTED" in proc.stderr


def test_version():
    proc = run_cli("--version")
    from dlsuite import __version__

    assert proc.returncode == 0 and __version__ in proc.stdout


def test_validate_reports_five_mistakes_with_paths_and_exit_2(five_mistakes):
    proc = run_cli("config", "validate", str(five_mistakes))
    assert proc.returncode == 2
    err = proc.stderr
    for needle in ("$.model.n_filtres: unknown key; did you mean n_filters?",
                   "$.seed: expected an integer", "$.datagen.batch_size: expected an integer",
                   "$.wandb.mode: expected one of", "$.evaluaton: unknown key; did you mean evaluation?"):
        assert needle in err
    assert "5 config error(s)" in err
    assert "Traceback" not in err


def test_debug_shows_traceback(five_mistakes):
    proc = run_cli("--debug", "config", "validate", str(five_mistakes))
    assert proc.returncode == 2 and "Traceback" in proc.stderr


@pytest.mark.parametrize("content, needle", [(None, "config file not found"),
                                             ("{not json", "not valid JSON"),
                                             ("fifo", "not a regular file (a device or a pipe)")])
def test_missing_or_broken_file_exit_2(tmp_path, content, needle):
    path = tmp_path / "c.json"
    if content == "fifo":  # read, it would block until a writer comes: refused at once
        os.mkfifo(path)
    elif content is not None:
        path.write_text(content)
    proc = run_cli("config", "validate", str(path))
    assert proc.returncode == 2 and needle in proc.stderr and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_error_exit_2():
    proc = run_cli("config", "validate")
    assert proc.returncode == 2


def test_show_prints_resolved_config_with_defaults(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"name": "unet", "n_filters": 4}}))
    proc = run_cli("config", "show", str(path))
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["model"]["n_filters"] == 4 and "pools" in shown["model"]
    assert shown["schema_version"] == 1 and shown["train"]["epochs"] >= 1


def test_plugins_json_lists_builtins_with_distribution():
    proc = run_cli("plugins", "--json")
    assert proc.returncode == 0
    data = json.loads(proc.stdout)
    builtins = {p["plugin"]: p for p in data["plugins"] if p["dist"] == "dlsuite"}
    assert set(builtins) >= {"dlsuite.architectures", "dlsuite.losses", "dlsuite.datagen",
                             "dlsuite.postprocess"}
    assert "unet" in builtins["dlsuite.architectures"]["contributes"]["architectures"]
    unet = [e for e in data["kinds"]["architectures"] if e["name"] == "unet"][0]
    assert unet["distribution"] == "dlsuite" and unet["parameters"]


@pytest.mark.parametrize("args", [["plugins"], ["plugins", "--kind", "postprocessors"]])
def test_plugin_tables_show_every_name_whole_in_a_narrow_terminal(args):
    """A name longer than its column folds onto the next line; it is never cut to
    ``categorical_unet_transp…`` (the name a user copies into a config)."""
    proc = run_cli(*args, env={"COLUMNS": "60"})
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    names = json.loads(run_cli("plugins", "--json").stdout)["kinds"]
    cells = "".join(line.strip("│┃ ") for line in proc.stdout.splitlines())
    kinds = ["architectures"] if args == ["plugins"] else ["postprocessors"]
    for kind in kinds:
        for entry in names[kind]:
            assert entry["name"] in cells.replace(" ", "").replace("│", ""), entry["name"]
    if args == ["plugins"]:  # the list: one block per plugin, each name whole on one line
        words = {w.strip(",;") for line in proc.stdout.splitlines() for w in line.split()}
        for kind in ("architectures", "losses", "postprocessors", "targets"):
            assert {e["name"] for e in names[kind]} <= words, kind
        assert max(len(line.rstrip()) for line in proc.stdout.splitlines()) <= 60


def test_plugins_validate_imports_factories():
    proc = run_cli("plugins", "--validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all factories import" in proc.stdout


def test_third_party_plugin_shows_up_and_broken_one_is_reported(fake_site):
    fake_site("broken-dist", "0.1", {"broken_mod": "broken_mod"},
              {"broken_mod": "raise RuntimeError('boom at import')\n"})
    env = {"PYTHONPATH": str(fake_site.site)}
    proc = run_cli("plugins", "--json", env=env)
    assert proc.returncode == 0
    broken = json.loads(proc.stdout)["broken"]
    assert broken[0]["plugin"] == "broken_mod" and "boom at import" in broken[0]["error"]
    proc = run_cli("plugins", env=env)
    assert "broken_mod" in proc.stdout and "boom at import" in proc.stdout


LEGACY = {"cnn_name": "mobilenet_mobileunet_lstm_", "OUTPUTPATH": "out", "model_n_filters": 16,
          "model_pools": 3, "model_mobile_alpha": 0.35, "model_time_windows": 5, "model_lr": 1e-4,
          "model_train_decoder_only": 0, "model_seed_initializer": "None",
          "train_seed_initializer": "None", "train_max_epochs": 10,
          "train_pretrained_weights": "None", "callbacks_save_best_only": 1,
          "datagen_dim_size": [256, 256], "datagen_sigma": 1, "normalization": "PERCENTILE"}


def test_legacy_config_validates_after_printing_the_migration(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(LEGACY))
    proc = run_cli("config", "validate", str(path), "--verbose", env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "$.model.n_filters" in proc.stderr and "datagen_sigma" in proc.stderr
    assert "obsolete" in proc.stderr


def test_migrate_writes_a_new_config_that_validates(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(LEGACY))
    proc = run_cli("config", "migrate", str(old), "-o", str(new))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(new.read_text())
    assert data["model"]["name"] == "mobilenet_mobileunet_lstm" and data["seed"] is None
    assert data["model"]["train_decoder_only"] is False
    assert run_cli("config", "validate", str(new)).returncode == 0


def test_migrate_to_another_folder_keeps_the_data_it_names(tmp_path):
    """Relative paths of a legacy config are read against its folder: written elsewhere by
    ``-o``, the new config names the same data (validated with its data paths), its run
    folder too; a file beside the old one keeps them as they were."""
    from dlsuite.data.example import write_example_frames

    frames = write_example_frames(tmp_path / "data", n=2, size=128, seed=1)["frames"]
    (tmp_path / "legacy").mkdir()
    old = tmp_path / "legacy" / "old.json"
    rel = os.path.relpath(frames, tmp_path / "legacy")  # ../data/frames
    old.write_text(json.dumps({**LEGACY, "TRAINPATH": rel, "OUTPUTPATH": "runs/x"}))
    (tmp_path / "configs" / "new").mkdir(parents=True)
    new = tmp_path / "configs" / "new" / "new.json"
    proc = run_cli("config", "migrate", str(old), "-o", str(new))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(new.read_text())
    assert (new.parent / data["data"]["train"]).resolve() == frames.resolve()
    assert (new.parent / data["output_dir"]).resolve() == (tmp_path / "legacy/runs/x").resolve()
    assert f"data.train: {rel} -> {data['data']['train']}" in proc.stderr
    proc = run_cli("config", "validate", str(new))  # data paths checked
    assert proc.returncode == 0, proc.stderr
    beside = tmp_path / "legacy" / "beside.json"
    assert run_cli("config", "migrate", str(old), "-o", str(beside)).returncode == 0
    assert json.loads(beside.read_text())["data"]["train"] == rel


def test_migrate_to_stdout_says_where_its_relative_paths_point(tmp_path):
    """Printed, the config keeps the legacy file's relative paths: run from another folder,
    a note names the folder they are read against and -o; from that folder, no note. At 80
    columns the mapping is one block per legacy key, not a table folding every note."""
    (tmp_path / "legacy").mkdir()
    old = tmp_path / "legacy" / "old.json"
    old.write_text(json.dumps({**LEGACY, "TRAINPATH": "../data/train"}))
    proc = run_cli("config", "migrate", "legacy/old.json", cwd=tmp_path,
                   env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["data"]["train"] == "../data/train"
    note = " ".join(proc.stderr.split())
    assert "note: its relative paths name places in legacy/ (the legacy file's folder)" in note
    assert "use -o FILE" in note
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("note:")]
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("datagen_sigma: 1 -> obsolete") for line in lines)
    assert any(line.startswith("TRAINPATH: ../data/train -> $.data.train") for line in lines)
    assert len(lines) < 4 * len(LEGACY)  # a row and a few note lines per key
    here = run_cli("config", "migrate", "old.json", cwd=tmp_path / "legacy")
    assert here.returncode == 0 and "note:" not in here.stderr


@pytest.mark.parametrize("command", ["train", "run"])
def test_bad_config_fails_before_importing_tensorflow(tmp_path, five_mistakes, command):
    proc = run_probe(tmp_path, command, str(five_mistakes))
    assert proc.returncode == 2, proc.stderr
    assert "5 config error(s)" in proc.stderr and "Traceback" not in proc.stderr
    assert "TF-NOT-IMPORTED" in proc.stderr


def test_messages_and_paths_are_printed_as_they_are(tmp_path):
    """Rich markup is off: a path holding ``[bold]`` keeps it, and text holding ``[/x]`` (an
    override here) is one error line with exit 2, not a MarkupError traceback with exit 1."""
    config = Path(__file__).parents[1] / "examples" / "quickstart" / "config.json"
    proc = run_cli("config", "validate", str(config), "--no-paths", "--set", "foo[/x]=1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "override foo[/x]=1: not a config path" in proc.stderr
    assert "optional [index]" in proc.stderr
    folder = tmp_path / "[bold]set"
    folder.mkdir()
    proc = run_cli("evaluate", str(folder / "res"), str(folder))
    assert proc.returncode == 2 and f"{folder / 'res'}: result path not found" in proc.stderr
