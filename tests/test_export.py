"""``dlsuite export`` / ``dlsuite.api.export`` (issue 16): a trained run's model leaves dlsuite.

A tiny U-Net trained for one epoch is exported; the ``.keras`` file is loaded in a subprocess
where importing ``dlsuite`` or ``dlsuite_plugins`` raises ImportError; the SavedModel's
``serve`` signature runs at two sizes; the ONNX file runs in ONNX Runtime on a real image.
Every built-in architecture (tiny) goes through plain Keras + SavedModel (+ ONNX).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA, run_cli
from dlsuite.errors import DlsuiteInputError
from dlsuite.testing import TINY_ARCHITECTURES

TINY_RUN = {"model": {"name": "unet", "n_filters": 4, "pools": 2},
            "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
            "train": {"epochs": 1}, "wandb": {"mode": "disabled"}, "seed": 0,
            "export": {"authors": [{"name": "A. Researcher", "affiliation": "Cell Lab"}],
                       "license": "MIT"}}
REAL_IMAGE = SHARED_DATA / "usiigaci_t98g_phc" / "annotated" / "set1" / "raw.tif"
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
#: The weights of a bioimage.io package (ONNX when its exporter is installed).
PACKAGE_WEIGHTS = {"keras_v3", "tensorflow_saved_model_bundle"} | (
    {"onnx"} if HAS_ONNX else set())
HAS_BIOIMAGEIO = all(importlib.util.find_spec(m) for m in ("bioimageio",)) and all(
    importlib.util.find_spec(m) for m in ("bioimageio.spec", "bioimageio.core"))

def assert_bioimageio_test_passes(test_model, package, tmp_path, monkeypatch) -> None:
    """bioimageio.core's model test of ``package`` passes for every weight format."""
    monkeypatch.chdir(tmp_path)  # bioimageio.core unzips the SavedModel into the cwd
    # bioimageio.core sets os.environ["KERAS_BACKEND"] (default "torch") when it runs Keras
    # weights: keep TensorFlow, and let monkeypatch restore the environment afterwards
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    summary = test_model(package)
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details
              if d.status == "failed"]
    assert summary.status == "passed", failed
    names = " ".join(d.name for d in summary.details)
    assert all(f"({w})" in names for w in PACKAGE_WEIGHTS), names


# a subprocess in which dlsuite and its plugins cannot be imported: loads every .keras file
# given and saves its outputs on the matching input (.npy) beside it
PLAIN_LOADER = textwrap.dedent("""
    import sys, importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("dlsuite", "dlsuite_plugins"):
                raise ImportError(f"blocked: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np, keras
    for path in sys.argv[1:]:
        model = keras.models.load_model(path, compile=False)
        out = model.predict(np.load(path + ".in.npy"), verbose=0)
        outs = out if isinstance(out, list) else [out]
        np.savez(path + ".out.npz", *outs)
    try:
        import dlsuite
    except ImportError as exc:
        print("dlsuite", exc)
""")


def load_plain(*paths: Path) -> list[list[np.ndarray]]:
    """Outputs of each ``.keras`` file (on ``<path>.in.npy``) computed in a subprocess
    without dlsuite."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run([sys.executable, "-c", PLAIN_LOADER, *map(str, paths)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "blocked: dlsuite" in proc.stdout
    result = []
    for path in paths:
        with np.load(str(path) + ".out.npz") as npz:
            result.append([npz[k] for k in sorted(npz.files, key=lambda k: int(k.split("_")[1]))])
    return result


def _outputs(model, x) -> list[np.ndarray]:
    out = model.predict(x, verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


@pytest.fixture(scope="module")
def run_result(tmp_path_factory):
    """``dlsuite run`` of a unet trained for one epoch of two steps on generated 64 x 64
    videos (larger than the bioimage.io package's minimum input, twice the halo), its
    post-processing tuned for a few seconds, W&B offline, exporting a bioimage.io package
    at its end (``export.formats``) when the export extra is installed."""
    from dlsuite import api
    from dlsuite.data.example import write_example_videos

    root = tmp_path_factory.mktemp("export-run")
    data = write_example_videos(root / "data", n_videos=2, frames=4, size=64, seed=0)["videos"]
    cfg = {**TINY_RUN, "name": "tiny", "output_dir": str(root / "run"),
           "data": {"train": str(data), "val": str(data)},
           "evaluation": {"tune_seconds": 3},
           # objects even from a barely trained model, so equal labels mean something
           "postprocess": [{"name": "threshold", "threshold": 0.4}, {"name": "label"}],
           "export": {**TINY_RUN["export"],
                      "formats": ["bioimageio"] if HAS_BIOIMAGEIO else []},
           "wandb": {"mode": "offline", "project": "dlsuite-tests"}}
    return api.run(cfg, quiet=True)


@pytest.fixture(scope="module")
def run(run_result):
    return Path(run_result.run_dir)


def _run_model(run_dir: Path):
    from dlsuite.inference.checkpoint import choose_checkpoint, load_checkpoint
    from dlsuite.rundir import RunDir, load_run_config

    cfg = load_run_config(run_dir).config
    return load_checkpoint(choose_checkpoint(RunDir(run_dir), "best"), cfg)


def _image(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1, h, w, 1)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the run's export


@pytest.mark.slow
def test_keras_export_loads_without_dlsuite_and_gives_the_same_logits(run, tmp_path):
    from dlsuite import api

    result = api.export(run, "keras")
    assert result.path == run.resolve() / "export" / "tiny.keras" and result.path.is_file()
    assert result.size_multiple == 4 and result.input_shape == (None, None, None, 1)
    assert result.normalization["name"] == "percentile"
    marker = json.loads((run / ".dlsuite-run").read_text())
    assert "export" in marker["written"]  # --overwrite of the run removes it
    x = _image(1, 48, 64)
    np.save(str(result.path) + ".in.npy", x)
    (plain,) = load_plain(result.path)
    expected = _outputs(_run_model(run), x)
    assert plain[0].shape == (1, 48, 64, 2)
    assert np.max(np.abs(plain[0] - expected[0])) <= 1e-5


@pytest.mark.slow
def test_savedmodel_serves_any_multiple_of_the_size_multiple(run, tmp_path):
    import tensorflow as tf

    from dlsuite import api

    out = tmp_path / "sm"
    result = api.export(run, "savedmodel", out, weights="last")
    assert result.checkpoint.name == "last.keras"
    loaded = tf.saved_model.load(str(out))
    serve = loaded.signatures["serve"]
    model = _run_model(run)
    for h, w in ((32, 32), (48, 80)):
        x = _image(h, h, w)
        got = list(serve(tf.constant(x)).values())[0].numpy()
        assert got.shape == (1, h, w, 2)
        assert np.max(np.abs(got - _outputs(model, x)[0])) <= 1e-5


def _real_input(run_dir: Path) -> np.ndarray:
    """The real usiigaci image, cropped to a multiple of 4 (128 x 192 px), normalized by the
    run's normalizer: ``(1, H, W, 1)``."""
    import tifffile

    from dlsuite.data.pipeline import make_normalizer
    from dlsuite.registry import get_registry
    from dlsuite.rundir import load_run_config

    image = tifffile.imread(REAL_IMAGE)
    image = image if image.ndim == 2 else image[0]
    crop = image[:128, :192]
    cfg = load_run_config(run_dir).config
    norm = make_normalizer(cfg, get_registry())(crop[np.newaxis])[0]
    return norm[np.newaxis, ..., np.newaxis].astype(np.float32)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="tf2onnx/onnx/onnxruntime not installed "
                                         "(pip install 'dlsuite[export]')")
@pytest.mark.skipif(not REAL_IMAGE.is_file(), reason=f"real image {REAL_IMAGE} is absent")
def test_onnx_export_equals_keras_on_a_real_image(run, tmp_path):
    import onnxruntime as ort

    proc = run_cli("export", str(run), "--format", "onnx", "-o", str(tmp_path / "m.onnx"))
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = _real_input(run)
    assert [i.name for i in session.get_inputs()] == ["input"]
    got = session.run(None, {"input": x})[0]
    expected = _outputs(_run_model(run), x)[0]
    assert got.shape == expected.shape == (1, 128, 192, 2)
    assert np.max(np.abs(got - expected)) <= 1e-4


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec/bioimageio.core not installed "
                                               "(pip install 'dlsuite[export]')")
def test_bioimageio_package_passes_bioimageio_core_model_test(run, tmp_path, monkeypatch):
    import zipfile

    import yaml
    from bioimageio.core import test_model

    from dlsuite import api

    out = tmp_path / "tiny.bioimageio.zip"
    result = api.export(run, "bioimageio", out)
    assert result.path == out
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
    assert {"rdf.yaml", "model.keras", "tf_saved_model.zip", "test_input.npy",
            "test_output.npy", "cover.png", "README.md"} <= names
    assert rdf["format_version"].startswith("0.5")
    (inp,), (outp,) = rdf["inputs"], rdf["outputs"]
    assert [a["type"] for a in inp["axes"]] == ["batch", "space", "space", "channel"]
    assert inp["axes"][1]["size"] == {"min": 52, "step": 4}  # > 2 x halo 24, step 4
    scale = next(p for p in inp["preprocessing"] if p["id"] == "scale_range")["kwargs"]
    assert (scale["min_percentile"], scale["max_percentile"]) == (0.1, 99.1)  # the run's
    assert any(p["id"] == "clip" for p in inp["preprocessing"])
    assert [p["id"] for p in outp["postprocessing"]][0] == "softmax"  # then ensure_dtype
    assert outp["axes"][1]["halo"] == 24
    assert set(rdf["weights"]) == PACKAGE_WEIGHTS
    # who made it: the config's export section; citations: its default
    assert rdf["authors"] == [{"name": "A. Researcher", "affiliation": "Cell Lab"}]
    assert rdf["license"] == "MIT" and "U-Net" in rdf["cite"][0]["text"]
    assert_bioimageio_test_passes(test_model, out, tmp_path, monkeypatch)


# --------------------------------------------------------------------------------------------
# bad input: exit 2, nothing written or replaced


@pytest.mark.slow
def test_existing_output_is_refused_and_left_alone(run, tmp_path):
    mine = tmp_path / "mine.keras"
    mine.write_text("not dlsuite's")
    proc = run_cli("export", str(run), "--format", "keras", "-o", str(mine))
    assert proc.returncode == 2
    assert "already exists" in proc.stderr and str(mine) in proc.stderr
    assert mine.read_text() == "not dlsuite's"


def test_overwrite_replaces_only_an_export_dlsuite_wrote(run, tmp_path):
    """``--overwrite`` replaces an export dlsuite wrote: at the default path in a run's
    ``export/`` and, by the run's metadata it carries, a SavedModel or ONNX file written
    elsewhere (the new export complete, then moved in: the SavedModel folder holds only the
    new files). A user's file or folder at ``-o``, or a file added to a SavedModel folder,
    stays untouched, exit 2, also with ``--overwrite``."""
    import shutil

    import keras

    from dlsuite import api

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export", "wandb"))
    default = copy / "export" / "tiny.keras"
    api.export(copy, "keras")
    first = default.stat().st_ino
    proc = run_cli("export", str(copy), "--format", "keras")
    assert proc.returncode == 2 and "pass --overwrite" in proc.stderr
    assert default.stat().st_ino == first
    proc = run_cli("export", str(copy), "--format", "keras", "--overwrite", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert default.stat().st_ino != first
    keras.models.load_model(default)
    formats = ["savedmodel"] + (["onnx"] if HAS_ONNX else [])
    for fmt in formats:
        out = tmp_path / "elsewhere" / ("model.onnx" if fmt == "onnx" else "model_sm")
        api.export(copy, fmt, out)
        stale = out / "variables" / "variables.data-00001-of-00002"  # an earlier export's
        if out.is_dir():
            stale.write_text("a shard of an earlier, larger export")
            notes = out / "assets" / "NOTES.txt"  # a user's file added to the export
            notes.write_text("mine")
            with pytest.raises(DlsuiteInputError, match=f"{notes}: not written by dlsuite "
                               "export .* not even with --overwrite"):
                api.export(copy, fmt, out, overwrite=True)
            assert notes.read_text() == "mine" and stale.exists()
            notes.unlink()
        with pytest.raises(DlsuiteInputError, match="pass --overwrite"):
            api.export(copy, fmt, out)
        api.export(copy, fmt, out, overwrite=True)
        if out.is_dir():
            assert not stale.exists()
            assert (out / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == sorted(
        "model.onnx" if f == "onnx" else "model_sm" for f in formats)
    mine = tmp_path / "mine.keras"
    mine.write_text("not dlsuite's")
    folder = tmp_path / "mine_savedmodel"
    folder.mkdir()
    (folder / "saved_model.pb").write_text("someone else's model")
    proc = run_cli("export", str(copy), "--format", "keras", "-o", str(mine), "--overwrite")
    assert proc.returncode == 2
    assert f"{mine}: exists and is not a keras export dlsuite wrote" in proc.stderr
    with pytest.raises(DlsuiteInputError, match="exists and is not a savedmodel export "
                                                "dlsuite wrote"):
        api.export(copy, "savedmodel", folder, overwrite=True)
    assert mine.read_text() == "not dlsuite's"
    assert [p.name for p in folder.iterdir()] == ["saved_model.pb"]


def test_tune_warns_of_exports_and_scores_made_with_other_post_processing_values(run,
                                                                               tmp_path):
    """An export carries the run's tuned post-processing values, test scores were computed
    with them; ``dlsuite tune`` that changes them warns naming the stale exports and score
    files and the commands that update them; after the export command nothing is stale."""
    import shutil

    from dlsuite import api
    from dlsuite.tune_step import stale_exports

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export", "wandb", "test",
                                                             "postprocess.json"))
    api.export(copy, "keras")
    assert stale_exports(copy, "tiny") == []  # untuned, as the run is
    config = json.loads((copy / "config.json").read_text())["config"]
    config["output_dir"], config["data"]["test"] = str(copy), config["data"]["val"]
    api.test_run(config, quiet=True)
    proc = run_cli("tune", str(copy), "--seconds", "2")
    assert proc.returncode == 0, proc.stderr
    assert (copy / "postprocess.json").is_file()
    assert ("warning: test/best/metrics.json: test scores computed with the earlier "
            f"post-processing values; dlsuite test {copy} scores the test set with the new "
            "ones") in proc.stderr
    assert (f"warning: {copy / 'export'}: tiny.keras still carries the earlier "
            "post-processing values; export again: dlsuite export "
            f"{copy} --format keras --overwrite") in proc.stderr
    assert run_cli("export", str(copy), "--format", "keras", "--overwrite",
                   "--quiet").returncode == 0
    assert stale_exports(copy, "tiny") == []


@pytest.mark.parametrize("name, stem", [("tiny", "tiny"), ("../../escaped x", "escaped-x"),
                                        ("team/run 1", "team-run-1"), ("..", "model")])
def test_a_run_name_that_looks_like_a_path_exports_inside_export(run, tmp_path, name, stem):
    """The name is free text (a W&B run name); the default export file is always one file in
    RUN_DIR/export, never a path the name makes up (``../../x`` wrote beside the run)."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export", "wandb"))
    written = json.loads((copy / "config.json").read_text())
    written["config"]["name"] = name
    (copy / "config.json").write_text(json.dumps(written))
    proc = run_cli("export", str(copy), "--format", "keras")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (copy / "export").iterdir()) == [f"{stem}.keras"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_export_output_is_dlsuite_lines_only_and_quiet_prints_nothing(run, tmp_path):
    """TensorFlow's native log lines (absl preamble, oneDNN notice) never reach the user;
    ``--quiet`` prints nothing at all on success."""
    from dlsuite.logging.console import is_native_log_line

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "export", str(run), "--format",
                           "keras", "-o", str(tmp_path / "a.keras")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {tmp_path / 'a.keras'}\n"
    assert not any(is_native_log_line(line) for line in proc.stderr.splitlines()), proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("checkpoint ")
    proc = subprocess.run([sys.executable, "-m", "dlsuite.cli", "export", str(run), "--format",
                           "keras", "-o", str(tmp_path / "b.keras"), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert (tmp_path / "b.keras").is_file()


def test_an_output_name_the_format_cannot_have_is_refused_before_any_work(run, tmp_path):
    """Keras saves only .keras files (-o m.model was 'unexpected error', exit 1) and a
    package is a .zip (predict and bioimage.io tools know it by that): exit 2 naming -o,
    nothing written. A good name with --quiet prints nothing, also for onnx (whose exporter
    in Keras asks NumPy for np.object and warned about it)."""
    for fmt, name in (("keras", "m.model"), ("keras", "m.KERAS"), ("bioimageio", "m.bioimageio")):
        proc = run_cli("export", str(run), "--format", fmt, "-o", str(tmp_path / "out" / name))
        assert proc.returncode == 2, (fmt, name, proc.stderr)
        assert f"{tmp_path / 'out' / name}: a {fmt} export is a" in proc.stderr, proc.stderr
        assert "give -o a name ending in" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run_cli("export", str(run), "--format", "onnx", "-o", str(tmp_path / "m.bin"),
                   "--quiet")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert (tmp_path / "m.bin").stat().st_size > 0  # onnx: any name


def test_an_unwritable_location_is_exit_2_naming_the_export_before_the_model_loads(run,
                                                                                   tmp_path):
    """A folder that refuses writes: one line naming the export (it named the temporary
    folder, ``.m.keras.abc123``), found before the checkpoint is read (this one is broken,
    and the location is what the user hears about), nothing written."""
    from test_rundir import read_only_folder

    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with read_only_folder(tmp_path / "ro") as ro:
        for fmt, name in (("keras", "m.keras"), ("savedmodel", "m_savedmodel")):
            proc = run_cli("export", str(run), "--format", fmt, "-o", str(ro / name),
                           "--weights", str(broken))
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.startswith(f"error: {ro / name}: "), proc.stderr
            assert "(check the permissions and free space of that location)" in proc.stderr
        assert list(ro.iterdir()) == []


def test_a_weights_path_that_is_no_checkpoint_is_refused_naming_it(run, tmp_path):
    """Keras' answer for /etc/passwd was a paragraph on legacy SavedModels."""
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    for weights, message in ((notes, "not a Keras checkpoint"), (tmp_path, "is a folder, not a checkpoint")):
        proc = run_cli("export", str(run), "--format", "keras", "-o", str(tmp_path / "m.keras"),
                       "--weights", str(weights))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == (f"error: {weights}: {message} (weights names a .keras file, "
                               "or best, last)\n"), proc.stderr
    assert not (tmp_path / "m.keras").exists()


def test_bad_run_format_and_checkpoint(tmp_path):
    from dlsuite import api

    with pytest.raises(DlsuiteInputError, match="run directory not found"):
        api.export(tmp_path / "nope", "keras")
    with pytest.raises(DlsuiteInputError, match="unknown export format 'tflite'"):
        api.export(tmp_path, "tflite")
    proc = run_cli("export", str(tmp_path / "nope"), "--format", "keras")
    assert proc.returncode == 2 and "run directory not found" in proc.stderr
    proc = run_cli("export", str(tmp_path), "--format", "pt")
    assert proc.returncode == 2 and "'pt' is not one of" in proc.stderr


def test_cli_format_choices_are_the_export_formats():
    from dlsuite.cli.export import FORMAT_NAMES  # the CLI module must not import the core
    from dlsuite.export import FORMATS

    assert tuple(FORMATS) == FORMAT_NAMES


# --------------------------------------------------------------------------------------------
# every built-in architecture (tiny)

ARCH_TINY = TINY_ARCHITECTURES


def _tiny_model(name: str):
    """The architecture ``name`` (a key of ARCH_TINY) built tiny: 2D models with open
    height and width, temporal ones at 32 x 32 with T = 3; and an input for it."""
    from dlsuite.registry import get_registry

    entry = get_registry().resolve("architectures", name.split()[0])
    params = entry.spec.params(**ARCH_TINY[name])
    shape = (3, 32, 32, 1) if entry.spec.temporal else (None, None, 1)
    model = entry.load()(params, n_classes=3, input_shape=shape)
    lead = (2, 3) if entry.spec.temporal else (2,)
    x = np.random.default_rng(0).normal(size=(*lead, 32, 32, 1)).astype(np.float32)
    return model, x


def test_architecture_table_covers_the_builtins():
    from dlsuite.registry import get_registry

    builtin = {e.name for e in get_registry().entries("architectures")
               if e.builtin}
    assert builtin <= {name.split()[0] for name in ARCH_TINY}


@pytest.mark.slow
def test_every_builtin_architecture_exports_to_plain_keras_and_savedmodel(tmp_path):
    import keras
    import tensorflow as tf

    from dlsuite.export import FORMATS
    from dlsuite.export.plain_keras import custom_layers, to_plain_keras

    expected, files, customs = {}, [], {}
    for name in ARCH_TINY:
        model, x = _tiny_model(name)
        customs[name] = custom_layers(model)
        plain = to_plain_keras(model)
        assert custom_layers(plain) == []
        stem = name.replace(" ", "_")
        path = tmp_path / f"{stem}.keras"
        FORMATS["keras"].write(plain, path)
        np.save(str(path) + ".in.npy", x)
        files.append(path)
        expected[name] = _outputs(model, x)
        sm = tmp_path / f"{stem}_sm"
        FORMATS["savedmodel"].write(model, sm)
        got = list(tf.saved_model.load(str(sm)).signatures["serve"](tf.constant(x)).values())
        assert np.max(np.abs(got[0].numpy() - expected[name][0])) <= 1e-5, name
        keras.backend.clear_session()
    # the custom layer of unet_lstm is really there and really replaced
    assert any("TemporalReduce" in c for c in customs["unet_lstm mean"])
    assert any("TemporalReduce" in c for c in customs["unet_lstm last"])
    assert customs["unet"] == []
    for name, plain in zip(ARCH_TINY, load_plain(*files)):
        for got, want in zip(plain, expected[name]):
            assert got.shape == want.shape, name
            assert np.max(np.abs(got - want)) <= 1e-5, name


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ONNX, reason="tf2onnx/onnx/onnxruntime not installed "
                                         "(pip install 'dlsuite[export]')")
def test_every_builtin_architecture_exports_to_onnx(tmp_path):
    import keras
    import onnxruntime as ort

    from dlsuite.export import FORMATS

    failures = {}
    for name in ARCH_TINY:
        model, x = _tiny_model(name)
        path = tmp_path / f"{name.replace(' ', '_')}.onnx"
        FORMATS["onnx"].write(model, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x})
        diff = float(np.max(np.abs(got[0] - _outputs(model, x)[0])))
        if diff > 1e-4:
            failures[name] = diff
        keras.backend.clear_session()
    assert failures == {}


@pytest.mark.skipif(not HAS_ONNX, reason="tf2onnx/onnx/onnxruntime not installed "
                                         "(pip install 'dlsuite[export]')")
def test_onnx_export_of_operations_onnx_does_not_know_is_refused_naming_them(tmp_path):
    """tf2onnx writes an operation it cannot convert (here an FFT, as a third-party
    architecture might use) into the file as it is, and the file fails wherever it is
    opened: the export is refused naming the operations, and a bioimage.io package leaves
    the ONNX weights out, saying why."""
    import keras
    from keras import layers, ops

    from dlsuite.export import FORMATS
    from dlsuite.export.bioimageio import _onnx_weights

    class Spectrum(layers.Layer):
        def call(self, x):
            x = ops.transpose(x, (0, 3, 1, 2))
            re, im = ops.fft2((x, ops.zeros_like(x)))
            return ops.transpose(ops.sqrt(re * re + im * im + 1e-6), (0, 2, 3, 1))

    inputs = keras.Input((None, None, 1))
    x = layers.Conv2D(2, 3, padding="same")(inputs)
    model = keras.Model(inputs, layers.Concatenate()([x, Spectrum()(x)]))
    with pytest.raises(DlsuiteInputError) as err:
        FORMATS["onnx"].write(model, tmp_path / "m.onnx")
    message = str(err.value)
    assert "cannot be exported to ONNX" in message and "FFT2D" in message
    assert "savedmodel or keras" in message
    reason = _onnx_weights(model, tmp_path / "p.onnx")
    assert isinstance(reason, str) and "FFT2D" in reason
    # the same model without the FFT exports and passes the check
    plain = keras.Model(inputs, x)
    FORMATS["onnx"].write(plain, tmp_path / "plain.onnx")
    assert (tmp_path / "plain.onnx").stat().st_size > 0


# --------------------------------------------------------------------------------------------
# round trip: dlsuite predict with the exported model in place of RUN_DIR


def _predict_input(run_dir: Path, folder: Path) -> Path:
    """A folder with one input: a crop of the real image (else a generated video frame)."""
    import tifffile

    if REAL_IMAGE.is_file():
        image = tifffile.imread(REAL_IMAGE)
        image = (image if image.ndim == 2 else image[0])[:96, :120]
    else:
        cfg = json.loads((run_dir / "config.json").read_text())
        video = sorted(Path(cfg["data"]["train"]).rglob("*.tif"))[0]
        image = tifffile.imread(video)[0][:60, :60]
    folder.mkdir()
    tifffile.imwrite(folder / "cells.tif", image)
    return folder


def _read_prediction(out: Path) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    return (tifffile.imread(out / "probabilities" / "cells.tif"),
            tifffile.imread(out / "labels" / "cells.tif"))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed "
                                               "(pip install 'dlsuite[export]')")
def test_predict_with_exported_models_gives_the_labels_of_the_run(run, tmp_path):
    import zipfile

    from dlsuite import api

    assert (run / "postprocess.json").is_file()  # tuned values: the exports must carry them
    images = _predict_input(run, tmp_path / "in")
    api.predict_folder(run, images, tmp_path / "from_run", quiet=True)
    probs, labels = _read_prediction(tmp_path / "from_run")
    assert probs.std() > 0 and labels.max() > 0  # a real prediction, with objects
    package = api.export(run, "bioimageio", tmp_path / "m.bioimageio.zip").path
    saved = api.export(run, "savedmodel", tmp_path / "m_savedmodel").path
    plain = api.export(run, "keras", tmp_path / "m.keras").path
    unzipped = tmp_path / "package"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(unzipped)

    # the CLI with the zip; the API with the unzipped folder, the SavedModel and the .keras
    # file (each carrying the run's config and tuned values), and the .keras file with the
    # run's config.json as --config
    proc = run_cli("predict", str(package), str(images), "-o", str(tmp_path / "zip"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    for name, model, options in (("zip", None, {}), ("folder", unzipped, {}),
                                 ("savedmodel", saved, {}), ("keras", plain, {}),
                                 ("keras_config", plain, {"config": run / "config.json"})):
        if model is not None:
            summary = api.predict_folder(model, images, tmp_path / name, quiet=True, **options)
            assert summary.checkpoint == Path(model)
        got_probs, got_labels = _read_prediction(tmp_path / name)
        assert np.max(np.abs(got_probs - probs)) <= 1e-5, name
        assert np.array_equal(got_labels, labels), name
    # api.predict on an array: the package's probabilities are the run's
    image = np.asarray(__import__("tifffile").imread(images / "cells.tif"))
    assert np.max(np.abs(api.predict(package, image) - api.predict(run, image))) <= 1e-5
    # by default the predictions go beside the model, never into the package
    summary = api.predict_folder(package, images, quiet=True)
    assert summary.out_dir == tmp_path / "predictions" / "in"


@pytest.mark.slow
def test_plain_keras_file_without_config_predicts_with_defaults_and_says_so(run, tmp_path):
    import zipfile

    from dlsuite import api

    images = _predict_input(run, tmp_path / "in")
    exported = api.export(run, "keras", tmp_path / "exported.keras").path
    plain = tmp_path / "m.keras"  # the same model as another tool writes it: Keras' own entries
    with zipfile.ZipFile(exported) as source, zipfile.ZipFile(plain, "w") as copy:
        assert "dlsuite.json" in source.namelist()
        for entry in source.namelist():
            if entry != "dlsuite.json":
                copy.writestr(entry, source.read(entry))
    summary = api.predict_folder(plain, images, tmp_path / "out", quiet=True, halo=8)
    assert any("no normalization recorded" in n for n in summary.notes)
    probs, labels = _read_prediction(tmp_path / "out")
    assert probs.shape[1:] == labels.shape
    proc = run_cli("predict", str(plain), str(images), "-o", str(tmp_path / "o2"),
                   "--weights", "last")
    assert proc.returncode == 2 and "--weights" in proc.stderr
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("name, content, message", [
    ("broken.bioimageio.zip", b"not a zip", "not a readable zip file"),
    ("other.zip", None, "no rdf.yaml in this zip"),
    ("model.keras", b"garbage", "cannot load"),
    ("weights.h5", b"garbage", "not a run directory, nor"),
])
def test_a_bad_exported_model_exits_2_naming_it_before_writing(tmp_path, name, content,
                                                               message):
    import zipfile

    import tifffile

    bad = tmp_path / name
    if content is None:
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("readme.txt", "hello")
    else:
        bad.write_bytes(content)
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((16, 16), np.uint8))
    out = tmp_path / "out"
    proc = run_cli("predict", str(bad), str(tmp_path / "x.tif"), "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and message in lines[0], proc.stderr
    assert not out.exists() and not (tmp_path / "predictions").exists()


def test_a_package_dlsuite_cannot_predict_with_is_refused(tmp_path):
    import zipfile

    import yaml

    from dlsuite.export.reopen import open_export

    rdf = {"type": "model", "format_version": "0.5.4",
           "inputs": [{"id": "raw", "axes": [{"type": "batch"}, {"type": "channel"},
                                              {"type": "space", "id": "y"},
                                              {"type": "space", "id": "x"}]}],
           "outputs": [{"id": "p", "axes": []}], "weights": {}}
    package = tmp_path / "torch.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
    with pytest.raises(DlsuiteInputError, match="input axes .* batch, y, x, channel"):
        open_export(package)
    rdf["inputs"][0]["axes"] = [{"type": "batch"}, {"type": "space", "id": "y"},
                                {"type": "space", "id": "x"}, {"type": "channel"}]
    rdf["outputs"][0]["axes"] = rdf["inputs"][0]["axes"]
    rdf["outputs"][0]["postprocessing"] = [{"id": "softmax"}]
    rdf["inputs"][0]["preprocessing"] = [{"id": "zero_mean_unit_variance"}]
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(DlsuiteInputError, match="preprocessing .*zero_mean_unit_variance"):
        open_export(tmp_path / "folder")
    rdf["inputs"][0]["preprocessing"] = []
    rdf["weights"] = {"pytorch_state_dict": {"source": "w.pt"}}
    (tmp_path / "folder" / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(DlsuiteInputError, match="no keras_v3 .* pytorch_state_dict"):
        open_export(tmp_path / "folder")


# --------------------------------------------------------------------------------------------
# dlsuite run exports at its end (export.formats)


def test_unknown_export_format_is_refused_by_config_validate(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"export": {"formats": ["keras", "tflite"]}}))
    proc = run_cli("config", "validate", str(config))
    assert proc.returncode == 2
    assert "$.export.formats[1]" in proc.stderr and "'tflite'" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed "
                                               "(pip install 'dlsuite[export]')")
def test_a_stop_while_the_run_exports_keeps_its_scores(tmp_path):
    """A stop (Ctrl-C, or SIGTERM from a job scheduler) while ``dlsuite run`` exported its
    model at the end (slow formats take minutes) used to leave metrics.json without the
    test scores the run had printed: the scores and the report are written before the
    exports now. SIGTERM is sent (pytest-xdist workers ignore SIGINT, and so would the run)
    when the first export (savedmodel) starts; the bioimage.io package after it takes
    seconds more, so the stop lands during the exports even on a loaded machine."""
    import signal
    import time

    from dlsuite.data.example import write_example_videos

    data = write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=64,
                                seed=0)["videos"]
    run_dir = tmp_path / "run"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        **TINY_RUN, "name": "tiny", "output_dir": str(run_dir),
        "data": {"train": str(data), "val": str(data), "test": str(data)},
        "postprocess": [{"name": "threshold", "threshold": 0.4}, {"name": "label"}],
        "export": {**TINY_RUN["export"], "formats": ["savedmodel", "bioimageio"]}}))
    proc = subprocess.Popen([sys.executable, "-m", "dlsuite.cli", "run", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        # the first export's scratch folder (made before the model loads): exports under way
        while not list((run_dir / "export").glob(".tiny_savedmodel.*")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the export did not start in time"
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["SEG"] is not None and "f1" in metrics["test"], metrics
    assert list((run_dir / "report").glob("*.png"))
    left = sorted(p.name for p in (run_dir / "export").iterdir())
    assert left in ([], ["tiny_savedmodel"]), left  # whole exports only, no scratch


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed "
                                               "(pip install 'dlsuite[export]')")
def test_an_export_that_fails_after_the_scores_is_a_note_of_metrics_json(tmp_path):
    """The scores are written before the exports; a format that then fails (images smaller
    than a bioimage.io package's minimum input) is added to metrics.json's notes, and the
    other formats are still written."""
    from dlsuite import api
    from dlsuite.data.example import write_example_videos

    data = write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32,
                                seed=0)["videos"]
    result = api.run({**TINY_RUN, "name": "tiny", "output_dir": str(tmp_path / "run"),
                      "data": {"train": str(data), "val": str(data), "test": str(data)},
                      "export": {**TINY_RUN["export"], "formats": ["bioimageio", "keras"]}},
                     quiet=True)
    metrics = json.loads((Path(result.run_dir) / "metrics.json").read_text())
    assert "SEG" in metrics["test"]
    assert [n for n in metrics["notes"] if n.startswith("export bioimageio failed: ")] \
        == [n for n in result.metrics["notes"] if n.startswith("export bioimageio failed: ")]
    assert len([n for n in metrics["notes"] if "bioimageio" in n]) == 1
    assert [p.name for p in (Path(result.run_dir) / "export").iterdir()] == ["tiny.keras"]


BAD_METADATA = {"license": "NOTALICENSE",
                "authors": [{"name": "A", "orcid": "123"}, {"name": "B", "email": "nope"}],
                "cite": [{"text": "no link"}, {"text": "x", "doi": "not-a-doi"}]}
BAD_METADATA_PATHS = ["$.export.authors[0].orcid", "$.export.authors[1].email",
                      "$.export.cite[0]", "$.export.cite[1].doi", "$.export.license"]


def _error_paths(stderr: str) -> list[str]:
    return [line.split(":")[0].strip() for line in stderr.splitlines()[1:] if "$." in line]


@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed "
                                               "(pip install 'dlsuite[export]')")
def test_bioimageio_metadata_a_package_cannot_hold_is_refused_before_training(tmp_path):
    """A bad ORCID iD, e-mail, DOI or licence with ``export.formats`` bioimageio: config
    validate and dlsuite run name each at its JSON path (exit 2; the run used to train to the
    end, then fail with exit 1); without that format the section is not checked."""
    from conftest import tiny_training_config

    config = tiny_training_config(tmp_path)
    cfg = json.loads(config.read_text())
    cfg["export"] = {**BAD_METADATA, "formats": ["bioimageio"]}
    config.write_text(json.dumps(cfg))
    checked = run_cli("config", "validate", str(config), "--no-pixels")
    assert checked.returncode == 2 and f"{config}: 5 config error(s)" in checked.stderr
    assert _error_paths(checked.stderr) == BAD_METADATA_PATHS, checked.stderr
    assert "'NOTALICENSE' is not a licence bioimage.io accepts" in checked.stderr
    assert "'123 is not a valid ORCID iD" in checked.stderr
    run = run_cli("run", str(config))
    assert run.returncode == 2 and _error_paths(run.stderr) == BAD_METADATA_PATHS, run.stderr
    assert not Path(cfg["output_dir"]).exists()
    assert run_cli("config", "validate", str(config), "--no-pixels", "--set",
                   "export.formats=[]").returncode == 0


@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed "
                                               "(pip install 'dlsuite[export]')")
def test_export_bioimageio_refuses_bad_metadata_before_the_model_loads_and_takes_any_name(
        run, tmp_path):
    """``dlsuite export --format bioimageio`` of a run whose config holds metadata a package
    cannot hold: exit 2 naming the keys, nothing written. A run name with characters
    bioimage.io does not allow in a model's name (it used to end in exit 1) is exported
    under a name it allows."""
    import shutil
    import zipfile

    import yaml

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export", "wandb"))
    record = json.loads((copy / "config.json").read_text())
    good = dict(record["config"]["export"])
    record["config"]["export"] = {**good, **BAD_METADATA}
    (copy / "config.json").write_text(json.dumps(record))
    out = tmp_path / "bad.zip"
    proc = run_cli("export", str(copy), "--format", "bioimageio", "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    assert f"{copy / 'config.json'}: 5 config error(s)" in proc.stderr
    assert _error_paths(proc.stderr) == BAD_METADATA_PATHS
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    record["config"]["export"] = good
    record["config"]["name"] = "rün_é/1"
    (copy / "config.json").write_text(json.dumps(record))
    proc = run_cli("export", str(copy), "--format", "bioimageio", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as package:
        assert yaml.safe_load(package.read("rdf.yaml"))["name"] == "run e-1"


@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed")
@pytest.mark.parametrize("name, expected", [("rün 1", "run 1"), ("ab", "dlsuite ab"),
                                            ("x" * 200, "x" * 128), ("a_b_c_d", "a b c d"),
                                            ("日本", "dlsuite --")])
def test_package_names_are_what_bioimageio_allows(name, expected):
    from bioimageio.spec.model import v0_5
    from pydantic import TypeAdapter

    from dlsuite.export.metadata import package_name

    field = v0_5.ModelDescr.model_fields["name"]
    from typing import Annotated

    assert package_name(name) == expected
    TypeAdapter(Annotated[(str, *field.metadata[:3])]).validate_python(package_name(name))


def _md5_b64(path: Path) -> bytes:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(path.read_bytes()).digest())


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed "
                                               "(pip install 'dlsuite[export]')")
def test_run_exports_at_its_end_and_the_wandb_artifact_carries_the_package(run_result):
    run_dir = run_result.run_dir
    package = run_dir / "export" / "tiny.bioimageio.zip"
    assert package.is_file()
    assert not [n for n in run_result.metrics["notes"] if "export" in n]
    assert "export" in json.loads((run_dir / ".dlsuite-run").read_text())["written"]
    # the offline W&B run's model artifact lists the checkpoint and the package, with the
    # digests of the files written
    (folder,) = (run_dir / "wandb").glob(f"offline-run-*-{run_result.wandb_run_id}")
    records = (folder / f"run-{run_result.wandb_run_id}.wandb").read_bytes()
    assert b"model-tiny" in records
    for path in (package, run_dir / "checkpoints" / "best.keras"):
        assert path.name.encode() in records, path.name
        assert _md5_b64(path) in records, path.name


# --------------------------------------------------------------------------------------------
# temporal models: a bioimage.io package with a time axis


@pytest.fixture(scope="module")
def temporal_run(tmp_path_factory):
    """``dlsuite run`` of a unet_lstm (T = 3) trained for one epoch of two steps on 32 x 32
    patches of generated 96 x 96 videos (larger than the package's minimum, twice the halo
    32 px), exporting a bioimage.io package at its end when the export extra is installed;
    and a 6-frame video (cropped to 96 x 88) to predict."""
    import tifffile

    from dlsuite import api
    from dlsuite.data.example import write_example_videos

    root = tmp_path_factory.mktemp("export-temporal")
    data = write_example_videos(root / "data", n_videos=2, frames=4, size=96, seed=0)["videos"]
    cfg = {"name": "tinyt", "output_dir": str(root / "run"), "seed": 0,
           "model": {"name": "unet_lstm", "n_filters": 4, "pools": 2, "time_windows": 3},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
           "train": {"epochs": 1}, "data": {"train": str(data), "val": str(data)},
           "postprocess": [{"name": "threshold", "threshold": 0.4}, {"name": "label"}],
           "export": {"formats": ["bioimageio"] if HAS_BIOIMAGEIO else []},
           "wandb": {"mode": "disabled"}}
    result = api.run(cfg, quiet=True)
    video = tifffile.imread(data / "inputs" / "cells_00.tif")
    (root / "in").mkdir()
    tifffile.imwrite(root / "in" / "cells.tif", np.concatenate([video, video[2:0:-1]])[..., :88])
    return Path(result.run_dir), root / "in"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec/bioimageio.core not installed "
                                               "(pip install 'dlsuite[export]')")
def test_temporal_bioimageio_package_passes_bioimageio_core_model_test(temporal_run, tmp_path,
                                                                       monkeypatch):
    import zipfile

    import yaml
    from bioimageio.core import test_model

    run_dir, _ = temporal_run
    package = run_dir / "export" / "tinyt.bioimageio.zip"  # written by the run's end
    assert package.is_file()
    with zipfile.ZipFile(package) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        with zf.open("test_input.npy") as f:
            test_input = np.load(f)
        with zf.open("test_output.npy") as f:
            test_output = np.load(f)
    (inp,), (outp,) = rdf["inputs"], rdf["outputs"]
    assert [a["type"] for a in inp["axes"]] == ["batch", "time", "space", "space", "channel"]
    assert inp["axes"][1]["size"] == 3  # the run's time window
    assert [a["size"] for a in inp["axes"][2:4]] == [96, 96]  # fixed: ConvLSTM is static
    assert test_input.shape == (1, 3, 96, 96, 1) and test_output.shape == (1, 96, 96, 2)
    assert [a["type"] for a in outp["axes"]] == ["batch", "space", "space", "channel"]
    assert outp["axes"][1]["halo"] == 32 and "last frame" in outp["description"]
    scale = next(p for p in inp["preprocessing"] if p["id"] == "scale_range")["kwargs"]
    assert sorted(scale["axes"]) == ["time", "x", "y"]  # per: video (the default)
    assert rdf["config"]["dlsuite"]["temporal"] is True
    assert set(rdf["weights"]) == PACKAGE_WEIGHTS
    assert_bioimageio_test_passes(test_model, package, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BIOIMAGEIO, reason="bioimageio.spec not installed "
                                               "(pip install 'dlsuite[export]')")
def test_predict_with_a_temporal_package_gives_the_labels_of_the_run(temporal_run, tmp_path):
    import tifffile

    from dlsuite import api

    run_dir, videos = temporal_run
    package = run_dir / "export" / "tinyt.bioimageio.zip"
    api.predict_folder(run_dir, videos, tmp_path / "from_run", quiet=True)
    proc = run_cli("predict", str(package), str(videos), "-o", str(tmp_path / "from_package"),
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    got = {}
    for name in ("from_run", "from_package"):
        got[name] = [tifffile.imread(tmp_path / name / kind / "cells.tif")
                     for kind in ("probabilities", "labels")]
    (probs, labels), (pkg_probs, pkg_labels) = got["from_run"], got["from_package"]
    assert probs.shape == (6, 2, 96, 88) and labels.shape == (6, 96, 88)
    assert probs.std() > 0 and labels.max() > 0  # a real prediction, with objects
    assert np.max(np.abs(pkg_probs - probs)) <= 1e-5
    assert np.array_equal(pkg_labels, labels)


@pytest.mark.slow
def test_a_temporal_savedmodel_predicts_at_its_fixed_size_or_is_refused_before_writing(
        temporal_run, tmp_path):
    import tifffile

    from dlsuite import api

    run_dir, videos = temporal_run
    saved = api.export(run_dir, "savedmodel", tmp_path / "t_savedmodel").path
    out = tmp_path / "out"
    # the run's halo (32 px) leaves no core in its fixed 32 x 32 input: refused, nothing written
    proc = run_cli("predict", str(saved), str(videos), "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    assert str(saved) in proc.stderr and "fixed 32 x 32 px input" in proc.stderr
    assert not out.exists()
    proc = run_cli("predict", str(saved), str(videos), "-o", str(out), "--halo", "8",
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    probs = tifffile.imread(out / "probabilities" / "cells.tif")
    assert probs.shape == (6, 2, 96, 88) and probs.std() > 0
    # its tiles: cores of 32 - 2 x 8 px, recorded and said so (it recorded the run's size)
    record = json.loads((out / "predict.json").read_text())
    assert record["tiles"]["tile_size"] == 16 and record["tiles"]["halo"] == 8
    assert any("fixed 32 x 32 px input" in n and "tiles of 16 px" in n
               for n in record["notes"]), record["notes"]
