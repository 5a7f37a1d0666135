"""``dlsuite predict`` and ``dlsuite.api.predict``: new images and videos with a trained run
(Inference items 1 and 4). Real tiny training runs, real TIFFs, real CLI subprocesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import run_cli
from dlsuite.errors import DataError, DlsuiteInputError

TINY = {"model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
        "train": {"epochs": 1}, "inference": {"tile_size": 16, "halo": 8},
        "wandb": {"mode": "disabled"}, "seed": 0}


def _train(data: dict, out: Path, *, test: Path | None = None, **extra) -> Path:
    """Train a tiny run (and with ``test``, also predict/evaluate it as ``dlsuite run``)."""
    from dlsuite import api

    cfg = {**TINY, "name": out.name, "output_dir": str(out),
           "data": {"train": str(data["videos"]), "val": str(data["videos"]),
                    "test": None if test is None else str(test)}, **extra}
    return Path((api.run if test is not None else api.train)(cfg, quiet=True).run_dir)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from dlsuite.data.example import write_example_frames, write_example_videos

    root = tmp_path_factory.mktemp("predict-data")
    videos = write_example_videos(root, n_videos=2, frames=4, size=32, seed=0)
    frames = write_example_frames(root, n=2, size=32, seed=0)
    big = write_example_frames(root / "big", n=1, size=64, seed=3)["inputs"][0]
    odd = root / "odd" / "odd_30x45.tif"  # not divisible by 2**pools
    odd.parent.mkdir()
    tifffile.imwrite(odd, tifffile.imread(big)[:30, :45])
    return {"videos": videos["videos"], "ctc": videos["ctc"], "frames": frames["frames"],
            "frame_files": frames["inputs"], "video_files": videos["inputs"], "big": big,
            "odd": odd}


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A unet run trained once for this module (1 epoch, 2 steps); ``dlsuite run`` also
    predicted its test set (the CTC sequences) into ``predictions/``."""
    return _train(data, tmp_path_factory.mktemp("unet-run") / "run", test=data["ctc"])


def _probs(path: Path) -> np.ndarray:
    """Written probabilities (class axis first on disk) as (..., H, W, C)."""
    return np.moveaxis(tifffile.imread(path), -3, -1)


# --------------------------------------------------------------------------------------------
# CLI in a fresh process


@pytest.mark.slow
def test_cli_predicts_folder_of_frames_and_api_matches(run, data, tmp_path):
    from dlsuite import api
    from dlsuite.data.io import read_image

    out = tmp_path / "out"
    proc = run_cli("predict", str(run), str(data["frames"] / "inputs"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 prediction(s)" in proc.stdout
    names = sorted(p.name for p in (out / "probabilities").iterdir())
    assert names == ["raw_000.tif", "raw_001.tif"]
    assert sorted(p.name for p in (out / "labels").iterdir()) == names
    for path in data["frame_files"]:
        probs = tifffile.imread(out / "probabilities" / path.name)
        assert probs.dtype == np.float32 and probs.shape == (2, 32, 32)  # CYX
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
        labels = tifffile.imread(out / "labels" / path.name)
        assert labels.shape == (32, 32) and labels.dtype.kind == "u"
        # api.predict on the ndarray and on the path equal the CLI's file
        image = read_image(path)
        mine = api.predict(run, image)
        assert mine.dtype == np.float32 and mine.shape == (32, 32, 2)
        np.testing.assert_allclose(mine, _probs(out / "probabilities" / path.name), atol=1e-5)
        np.testing.assert_allclose(api.predict(run, path), mine, atol=1e-6)


@pytest.mark.slow
def test_cli_errors_exit_2_naming_the_path(run, data, tmp_path):
    missing = tmp_path / "no-such-run"
    proc = run_cli("predict", str(missing), str(data["frames"]))
    assert proc.returncode == 2 and str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("predict", str(run), str(empty))
    assert proc.returncode == 2 and str(empty) in proc.stderr
    assert "Traceback" not in proc.stderr
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff")
    proc = run_cli("predict", str(run), str(broken), "-o", str(tmp_path / "o"))
    assert proc.returncode == 2 and str(broken) in proc.stderr
    assert "Traceback" not in proc.stderr
    # a truncated checkpoint: Keras called it "File not found"
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes((run / "checkpoints" / "best.keras").read_bytes()[:5000])
    proc = run_cli("predict", str(run), str(data["frames"]), "-o", str(tmp_path / "o2"),
                   "--weights", str(truncated))
    assert proc.returncode == 2, proc.stderr
    assert (f"{truncated}: cannot load the model: not a .keras archive (5000 bytes, no zip "
            "directory): truncated") in proc.stderr, proc.stderr
    assert not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_cli_ctc_with_weights_path_writes_valid_tracks(run, data, threshold_model, tmp_path):
    from dlsuite.evaluation.readers import read_track_file
    from dlsuite.tracking import check_tracks

    out = tmp_path / "ctc-out"
    proc = run_cli("predict", str(run), str(data["ctc"]), "-o", str(out), "--ctc",
                   "--weights", str(threshold_model), "--quiet")
    assert proc.returncode == 0, proc.stderr
    for seq in ("01", "02"):  # CTC input: sequence names kept
        probs = tifffile.imread(out / "probabilities" / f"{seq}.tif")
        assert probs.shape == (4, 2, 32, 32) and probs.dtype == np.float32
        labels = tifffile.imread(out / "labels" / f"{seq}.tif")
        assert labels.shape == (4, 32, 32) and labels.max() > 0
        res = out / "ctc" / f"{seq}_RES"
        masks = np.stack([tifffile.imread(res / f"mask{t:03d}.tif") for t in range(4)])
        assert masks.dtype == np.uint16 and masks.max() > 0
        tracks = read_track_file(res / "res_track.txt")
        assert len(tracks) > 0 and check_tracks(masks, tracks) == []
        # the tracked masks hold the same objects as the label video
        np.testing.assert_array_equal(masks > 0, labels > 0)
    assert (out / "ctc" / "sequences.csv").read_text().splitlines() == [
        "sequence,input", "01,01", "02,02"]


# --------------------------------------------------------------------------------------------
# in-process: folders, overrides, API


def test_videos_dataset_folder_default_output_and_overwrite(run, data):
    from dlsuite.predict import predict_folder

    summary = predict_folder(run, data["videos"], quiet=True)
    out = run / "predictions" / "videos"
    assert summary.out_dir == out
    for path in data["video_files"]:  # labels/ of the dataset are not needed nor predicted
        probs = tifffile.imread(out / "probabilities" / path.name)
        assert probs.dtype == np.float32 and probs.shape == (4, 2, 32, 32)  # TCYX
        labels = tifffile.imread(out / "labels" / path.name)
        assert labels.shape == (4, 32, 32) and labels.dtype.kind == "u"
    assert not (out / "ctc").exists()
    record = json.loads((out / "predict.json").read_text())
    assert record["checkpoint"] == str(run / "checkpoints" / "best.keras")
    assert record["tiles"]["tile_size"] == 16 and record["tiles"]["halo"] == 8
    assert [r["name"] for r in record["inputs"]] == ["cells_00", "cells_01"]
    with pytest.raises(DlsuiteInputError, match=str(out)):
        predict_folder(run, data["videos"], quiet=True)
    mine = out / "labels" / "mine.tif"  # a file the user added: not dlsuite's to delete
    mine.write_bytes(b"x")
    predict_folder(run, data["videos"], quiet=True, overwrite=True, postprocess=False)
    # --no-postprocess: probabilities only; the earlier labels went, the user's file stayed
    assert [p.name for p in (out / "labels").iterdir()] == ["mine.tif"]
    assert len(list((out / "probabilities").iterdir())) == 2


def test_output_folder_is_apart_from_the_input_and_never_a_foreign_folder(run, data, tmp_path):
    from dlsuite.predict import predict_folder

    dataset = tmp_path / "dataset"  # a dataset with its ground truth
    shutil.copytree(data["videos"], dataset)
    truth = {p.name: p.read_bytes() for p in (dataset / "labels").iterdir()}
    for out, why in ((dataset, "is the input"), (dataset / "predictions", "inside it"),
                     (tmp_path, "holds the input")):
        for overwrite in (False, True):
            with pytest.raises(DlsuiteInputError, match=why):
                predict_folder(run, dataset, out, quiet=True, overwrite=overwrite)
    assert {p.name: p.read_bytes() for p in (dataset / "labels").iterdir()} == truth
    assert not (dataset / ".dlsuite-predict").exists() and not (dataset / "predictions").exists()
    # a folder of the user's own files is not replaced, not even with --overwrite
    foreign = tmp_path / "foreign"
    (foreign / "labels").mkdir(parents=True)
    (foreign / "labels" / "cells_00.tif").write_bytes(b"mine")
    with pytest.raises(DlsuiteInputError, match="not written by dlsuite.*not even with"):
        predict_folder(run, dataset, foreign, quiet=True, overwrite=True)
    assert [p.name for p in foreign.rglob("*")] == ["labels", "cells_00.tif"]


def test_an_input_named_like_the_runs_own_predictions_gets_its_own_default_folder(
        run, data, tmp_path):
    """The default output RUN/predictions/<input name> of an input folder named ``labels``
    is not the run's own predictions/labels (the test set's): it is labels-predicted."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    own = {p.name: p.read_bytes() for p in (copy / "predictions" / "labels").iterdir()}
    inputs = tmp_path / "labels"
    shutil.copytree(data["frames"] / "inputs", inputs)
    proc = run_cli("predict", str(copy), str(inputs), "-q")
    assert proc.returncode == 0, proc.stderr
    written = copy / "predictions" / "labels-predicted"
    assert sorted(p.name for p in (written / "labels").iterdir()) == sorted(
        p.name for p in inputs.iterdir())
    assert {p.name: p.read_bytes() for p in (copy / "predictions" / "labels").iterdir()} == own


def test_predict_records_what_it_writes_and_never_replaces_other_files(run, data, tmp_path):
    from dlsuite.predict import predict_folder

    out = tmp_path / "out"
    predict_folder(run, data["ctc"], out, quiet=True, postprocess=False)
    marker = json.loads((out / ".dlsuite-predict").read_text())
    assert marker["written"] == ["predict.json", "probabilities/01.tif", "probabilities/02.tif"]
    # the user put a file where the next prediction's labels go: it is not replaced
    (out / "labels").mkdir()
    (out / "labels" / "01.tif").write_bytes(b"mine")
    with pytest.raises(DlsuiteInputError, match="01.tif: exists and was not written"):
        predict_folder(run, data["ctc"], out, quiet=True, overwrite=True, ctc=True)
    assert (out / "labels" / "01.tif").read_bytes() == b"mine"
    assert (out / "probabilities" / "01.tif").is_file()  # refused before removing anything
    (out / "labels" / "01.tif").unlink()
    predict_folder(run, data["ctc"], out, quiet=True, overwrite=True, ctc=True)
    written = json.loads((out / ".dlsuite-predict").read_text())["written"]
    assert {"labels/01.tif", "ctc/01_RES/mask*.tif", "ctc/01_RES/res_track.txt",
            "ctc/02_RES/mask*.tif", "ctc/sequences.csv"} <= set(written)
    (out / "ctc" / "notes.txt").write_text("mine")
    (out / "ctc" / "01_RES" / "notes.txt").write_text("mine too")  # inside a result folder
    predict_folder(run, data["ctc"], out, quiet=True, overwrite=True, postprocess=False)
    assert sorted(p.name for p in (out / "ctc").iterdir()) == ["01_RES", "notes.txt"]
    assert [p.name for p in (out / "ctc" / "01_RES").iterdir()] == ["notes.txt"]
    assert not (out / "labels").exists()


def test_same_probabilities_as_the_runs_own_test_prediction(run, data, tmp_path):
    from dlsuite.predict import predict_folder

    predict_folder(run, data["ctc"], tmp_path / "o", quiet=True)
    for seq in ("01", "02"):
        mine = tifffile.imread(tmp_path / "o" / "probabilities" / f"{seq}.tif")
        theirs = tifffile.imread(run / "predictions" / "probabilities" / f"{seq}.tif")
        np.testing.assert_allclose(mine, theirs, atol=1e-6)
        np.testing.assert_array_equal(
            tifffile.imread(tmp_path / "o" / "labels" / f"{seq}.tif"),
            tifffile.imread(run / "predictions" / "labels" / f"{seq}.tif"))


def test_odd_sized_image_and_single_file_input(run, data, tmp_path):
    from dlsuite import api
    from dlsuite.predict import predict_folder

    summary = predict_folder(run, data["odd"], tmp_path / "o", quiet=True)
    probs = tifffile.imread(tmp_path / "o" / "probabilities" / "odd_30x45.tif")
    assert probs.shape == (2, 30, 45) and np.isfinite(probs).all()
    assert tifffile.imread(tmp_path / "o" / "labels" / "odd_30x45.tif").shape == (30, 45)
    assert summary.rows[0]["shape"] == [30, 45]
    np.testing.assert_allclose(api.predict(run, data["odd"]), np.moveaxis(probs, 0, -1),
                               atol=1e-5)


def test_ctc_sequence_folder_is_one_video(run, data, tmp_path):
    from dlsuite.predict import list_inputs, predict_folder

    items = list_inputs(data["ctc"] / "02")
    assert [(i.name, i.ctc_sequence) for i in items] == [("02", True)]
    predict_folder(run, data["ctc"] / "02", tmp_path / "o", quiet=True, ctc=True)
    assert tifffile.imread(tmp_path / "o" / "probabilities" / "02.tif").shape == (4, 2, 32, 32)
    assert (tmp_path / "o" / "ctc" / "02_RES" / "res_track.txt").is_file()


def test_as_video_stacks_a_folder_of_frames(run, data, tmp_path):
    from dlsuite import api
    from dlsuite.data.io import read_image
    from dlsuite.predict import predict_folder

    video = read_image(data["video_files"][0])
    folder = tmp_path / "timelapse"
    folder.mkdir()
    for t in (0, 1, 2, 10):  # natural order: frame_2 before frame_10
        tifffile.imwrite(folder / f"frame_{t}.tif", video[min(t, 3)])
    summary = predict_folder(run, folder, tmp_path / "o", quiet=True, as_video=True, ctc=True)
    assert [r["name"] for r in summary.rows] == ["timelapse"]
    probs = _probs(tmp_path / "o" / "probabilities" / "timelapse.tif")
    np.testing.assert_allclose(probs, api.predict(run, video), atol=1e-5)
    assert (tmp_path / "o" / "ctc" / "01_RES" / "res_track.txt").is_file()
    tifffile.imwrite(folder / "frame_11.tif", video[0][:16])
    with pytest.raises(DataError, match="differ in shape"):
        predict_folder(run, folder, tmp_path / "o2", quiet=True, as_video=True)


def test_tile_size_override_equals_whole_image(run, data):
    from dlsuite import api
    from dlsuite.data.io import read_image

    image = read_image(data["big"])  # 64 x 64
    whole = api.predict(run, image, tile_size=None, halo="auto")
    tiled = api.predict(run, image, tile_size=16, halo="auto", batch_size=3)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    # the overrides do take effect: no context around 8-pixel tiles changes the result
    cut = api.predict(run, image, tile_size=8, halo=0)
    assert np.abs(cut - whole).max() > 1e-3


def test_api_predict_with_keras_model(run, data):
    import keras

    from dlsuite import api
    from dlsuite.data.io import read_image
    from dlsuite.data.pipeline import make_normalizer
    from dlsuite.rundir import load_run_config

    model = keras.models.load_model(run / "checkpoints" / "best.keras", compile=False)
    normalize = make_normalizer(load_run_config(run).config, api.plugins())
    image = read_image(data["frame_files"][0])
    expected = api.predict(run, image)
    # normalization given as a callable: same result as the run (size multiple inferred)
    got = api.predict(model, image, normalize=normalize, tile_size=16, halo=8)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # no normalization unless asked: the raw uint16 pixels give something else
    raw = api.predict(model, image, tile_size=16, halo=8)
    assert raw.shape == (32, 32, 2) and np.abs(raw - expected).max() > 1e-3
    # a video: one probability map per frame
    video = read_image(data["video_files"][0])
    probs = api.predict(model, video, normalize=normalize, tile_size=None)
    assert probs.shape == (4, 32, 32, 2) and probs.dtype == np.float32


def test_size_multiple_inferred_from_strides(run):
    import keras

    from dlsuite.predict import model_tile_settings

    model = keras.models.load_model(run / "checkpoints" / "best.keras", compile=False)
    assert model_tile_settings(model).size_multiple == 4  # pools 2
    assert model_tile_settings(model, size_multiple=8).size_multiple == 8


def test_bad_inputs_name_the_path(run, data, tmp_path):
    from dlsuite import api
    from dlsuite.predict import predict_folder

    not_run = tmp_path / "not-a-run"
    not_run.mkdir()
    with pytest.raises(DlsuiteInputError, match="not-a-run.*config.json"):
        predict_folder(not_run, data["frames"], quiet=True)
    no_ckpt = tmp_path / "no-ckpt"
    no_ckpt.mkdir()
    shutil.copy(run / "config.json", no_ckpt / "config.json")
    with pytest.raises(DlsuiteInputError, match="no-ckpt.*best.keras"):
        api.predict(no_ckpt, np.zeros((32, 32)))
    with pytest.raises(DlsuiteInputError, match="nope.keras"):
        api.predict(run, np.zeros((32, 32)), weights=str(tmp_path / "nope.keras"))
    broken = tmp_path / "broken" / "img.tif"
    broken.parent.mkdir()
    broken.write_bytes(b"not a tiff")
    with pytest.raises(DataError, match="img.tif"):
        predict_folder(run, broken.parent, tmp_path / "o1", quiet=True)
    assert not (tmp_path / "o1").exists()  # checked before anything is written
    with pytest.raises(DataError, match="missing-input"):
        predict_folder(run, tmp_path / "missing-input", quiet=True)
    with pytest.raises(DataError, match="shape"):
        api.predict(run, np.zeros((2, 3, 4, 5)))
    with pytest.raises(DlsuiteInputError, match="--ctc"):
        predict_folder(run, data["videos"], tmp_path / "o2", postprocess=False, ctc=True)


# --------------------------------------------------------------------------------------------
# temporal run with a plugin's custom layer, loaded in a fresh process


@pytest.mark.slow
def test_temporal_run_with_custom_layer_in_fresh_process(data, tmp_path):
    from dlsuite import api
    from dlsuite.data.io import read_image

    run = _train(data, tmp_path / "lstm",
                 model={"name": "unet_lstm", "n_filters": 4, "pools": 2, "time_windows": 2})
    out = tmp_path / "out"
    proc = run_cli("predict", str(run), str(data["videos"] / "inputs"), "-o", str(out),
                   "--ctc", "--quiet")
    assert proc.returncode == 0, proc.stderr  # TemporalReduce is registered by the plugin
    for path in data["video_files"]:
        written = _probs(out / "probabilities" / path.name)
        assert written.shape == (4, 32, 32, 2)
        np.testing.assert_allclose(api.predict(run, read_image(path)), written, atol=1e-5)
    assert sorted(p.name for p in (out / "ctc").iterdir()) == ["01_RES", "02_RES",
                                                                "sequences.csv"]


def test_predict_and_pipeline_stand_on_shared_steps_without_tensorflow():
    """``dlsuite predict`` and ``dlsuite run`` share dlsuite.steps and dlsuite.inference
    instead of importing each other, and none of them imports TensorFlow when imported (the
    CLI catches TrainingInterrupted before any TF import)."""
    import ast
    import subprocess
    import sys

    import dlsuite

    core = Path(dlsuite.__file__).parent
    for module, other in (("pipeline", "predict"), ("predict", "pipeline")):
        tree = ast.parse((core / f"{module}.py").read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module is None
                     for alias in node.names}
        assert other not in imported and f"dlsuite.{other}" not in imported, module
    code = ("import sys, dlsuite.pipeline, dlsuite.predict, dlsuite.steps, dlsuite.inference\n"
            "from dlsuite.pipeline import TrainingInterrupted\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_cli_predict_quiet_prints_only_warnings_and_errors(run, data, tmp_path):
    out = tmp_path / "quiet"
    proc = run_cli("predict", str(run), str(data["frames"] / "inputs"), "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert all(line.startswith(("warning:", "error:")) for line in lines), proc.stderr
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["raw_000.tif", "raw_001.tif"]


def test_predict_records_a_wandb_predict_run_in_its_output_folder(run, data, tmp_path,
                                                                  monkeypatch):
    """With W&B on (here offline through WANDB_MODE; the module's run has it disabled), a
    prediction is a W&B run of job type ``predict`` in OUT/wandb, recorded as written: the
    run's group and config, the inputs and objects in the summary, a table of the first
    inputs with their predicted masks, the run's model artifact named as its input."""
    from dlsuite.predict import predict_folder
    from wandb_records import offline_runs

    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "out"
    summary = predict_folder(run, data["frames"], out, quiet=True)
    (wb,) = offline_runs(out).values()
    assert wb["run"]["job_type"] == "predict" and wb["run"]["name"] == f"{run.name}-predict"
    assert wb["config"]["model.n_filters"] == 4
    assert wb["config"]["model_artifact"] == f"model-{run.name}:best"
    assert wb["summary"]["predict/inputs"] == len(summary.rows) == 2
    assert wb["summary"]["predict/objects"] == sum(r["objects"] for r in summary.rows)
    assert wb["summary"]["predict/images"]["nrows"] == 2
    assert "wandb" in json.loads((out / ".dlsuite-predict").read_text())["written"]


def test_a_folder_of_images_names_its_subfolders_of_images_that_are_not_predicted(
        tmp_path, caplog):
    """Only the images directly in a folder are inputs; subfolders holding images too are
    named in a warning (they used to be left out silently), hidden ones and empty ones not."""
    import logging

    from dlsuite.predict_inputs import list_inputs

    image = np.zeros((16, 16), np.uint8)
    for rel in ("top.tif", "day1/a.tif", "day2/b.tif", ".cache/c.tif"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / rel, image)
    (tmp_path / "empty").mkdir()
    with caplog.at_level(logging.WARNING, logger="dlsuite"):
        items = list_inputs(tmp_path)
    assert [i.name for i in items] == ["top"]
    assert (f"{tmp_path}: the images directly in it are predicted, not those of its "
            "subfolder(s) day1, day2: predict each folder on its own") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dlsuite"):
        list_inputs(tmp_path / "day1")
    assert caplog.text == ""


def test_images_in_formats_dlsuite_does_not_read_are_named_not_skipped(tmp_path, caplog):
    """JPEG (or vendor) files beside TIFFs used to be left out without a word, and a folder
    of them only was "no dataset layout": predict, track and the dataset checks name them
    and say how to convert them."""
    import logging

    import imageio.v3 as iio

    from dlsuite import api
    from dlsuite.data.layouts import check_dataset
    from dlsuite.predict_inputs import list_inputs

    image = np.zeros((16, 16), np.uint16)
    image[4:8, 4:8], image[10:14, 2:6] = 1, 2  # a label image: one id per object
    photos, mixed = tmp_path / "photos", tmp_path / "mixed"
    for folder in (photos, mixed):
        folder.mkdir()
        iio.imwrite(folder / "cells.jpg", image.astype(np.uint8) * 30)
    (photos / "notes.txt").write_text("not an image: never named")
    tifffile.imwrite(mixed / "video.tif", np.stack([image] * 4), photometric="minisblack")
    convert = "convert them to TIFF (e.g. Fiji: File > Save As > Tiff)"
    with pytest.raises(DataError) as info:
        list_inputs(photos)
    assert str(info.value) == (f"{photos}: no TIFF/PNG image to predict, only 1 file(s) in a "
                               f"format dlsuite does not read: cells.jpg; {convert}")
    with pytest.raises(DataError, match="no TIFF/PNG video to track, only 1 file"):
        api.track(photos, tmp_path / "tracked")
    assert not (tmp_path / "tracked").exists()
    with caplog.at_level(logging.WARNING, logger="dlsuite"):
        assert [i.name for i in list_inputs(mixed)] == ["video"]
        assert api.track(mixed, tmp_path / "tracked")[0]["video"] == "video.tif"
    assert (f"{mixed}: 1 file(s) in a format dlsuite does not read are not predicted: "
            f"cells.jpg; {convert}") in caplog.text
    assert "are not tracked: cells.jpg" in caplog.text
    # a training set whose input is a JPEG: its label is named, and so is the JPEG
    data = tmp_path / "train"
    for sub in ("inputs", "labels"):
        (data / sub).mkdir(parents=True)
    iio.imwrite(data / "inputs" / "raw_001.jpg", image.astype(np.uint8))
    tifffile.imwrite(data / "inputs" / "raw_002.tif", image)
    for k in (1, 2):
        tifffile.imwrite(data / "labels" / f"instance_ids_{k:03d}.tif", image)
    assert check_dataset(data, "frames") == [
        f"{data / 'inputs'}: no input for 1 label file(s): instance_ids_001.tif; it holds 1 "
        f"file(s) in a format dlsuite does not read: raw_001.jpg; {convert}"]
    (data / "inputs" / "raw_002.tif").unlink()
    assert check_dataset(data, "auto") == [
        f"{data / 'inputs'}: no input images (.tif, .tiff, .png) found; it holds 1 file(s) in "
        f"a format dlsuite does not read: raw_001.jpg; {convert}"]
