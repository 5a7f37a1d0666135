"""Another post-processing chain on a trained run (``dlsuite predict --postprocess
CHAIN.json``, ``--set postprocess...``, ``api.predict_folder(postprocess=...)``) and the
provenance of every chosen plugin in the run's ``config.json``, ``metrics.json``, W&B config
and ``dlsuite compare`` (issue 14 items 3 and 6). One real tiny run, trained once, with the
pip-installed example plugin package's ``opening`` in its chain and W&B offline."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import run_cli
from dlsuite.errors import ConfigError, DlsuiteInputError

pytestmark = pytest.mark.slow

EXAMPLE = {"name": "opening", "plugin": "example", "distribution": "dlsuite-example",
           "version": "0.1.0"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A unet run (1 epoch of 2 steps, W&B offline) whose chain uses the example package's
    ``opening``; and a 32 x 32 image to predict."""
    from dlsuite import api
    from dlsuite.data.example import write_example_frames, write_example_videos

    root = tmp_path_factory.mktemp("chains")
    videos = write_example_videos(root / "data", n_videos=2, frames=3, size=32, seed=0)
    image = write_example_frames(root / "frames", n=1, size=32, seed=1)["inputs"][0]
    cfg = {"name": "chains", "output_dir": str(root / "run"), "seed": 0,
           "data": {"train": str(videos["videos"]), "val": str(videos["videos"])},
           "model": {"name": "unet", "n_filters": 4, "pools": 2},
           "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
           "train": {"epochs": 1, "tensorboard": {"enabled": False}},
           "inference": {"tile_size": None},
           "postprocess": ["threshold", {"name": "opening", "radius": 0}, "label"],
           "wandb": {"mode": "offline", "project": "dlsuite-tests"}}
    result = api.train(cfg, quiet=True)
    return {"run": Path(result.run_dir), "image": Path(image), "root": root}


def _labels(out: Path) -> np.ndarray:
    (path,) = (out / "labels").iterdir()
    return tifffile.imread(path)


# --------------------------------------------------------------------------------------------
# another chain on a trained run


def test_cli_postprocess_file_changes_the_labels_and_is_recorded(trained, tmp_path):
    run, image = trained["run"], trained["image"]
    chain = tmp_path / "everything.json"  # every pixel has P(cell) > 0: one object
    chain.write_text(json.dumps([{"name": "threshold", "threshold": 0.0}, "label"]))
    out = tmp_path / "out"
    proc = run_cli("predict", str(run), str(image), "-o", str(out), "--postprocess", str(chain))
    assert proc.returncode == 0, proc.stderr
    labels = _labels(out)
    assert labels.shape == (32, 32) and (labels == 1).all()
    summary = json.loads((out / "predict.json").read_text())
    assert summary["chain"]["file"] == str(chain.resolve())
    assert [s["name"] for s in summary["chain"]["steps"]] == ["threshold", "label"]
    assert summary["chain"]["steps"][0]["threshold"] == 0.0
    assert summary["inputs"][0]["objects"] == 1


def test_api_chain_list_and_set_overrides_change_the_labels(trained, tmp_path):
    from dlsuite import api

    run, image = trained["run"], trained["image"]
    nothing = api.predict_folder(run, image, tmp_path / "nothing", quiet=True,
                                 postprocess=[{"name": "threshold", "threshold": 1.0}, "label"])
    assert nothing.rows[0]["objects"] == 0 and not _labels(tmp_path / "nothing").any()
    # --set as the CLI passes it: the run's chain with one value changed
    api.predict_folder(run, image, tmp_path / "set", quiet=True,
                       overrides=["postprocess[0].threshold=0.0", "postprocess[1].radius=0"])
    assert (_labels(tmp_path / "set") == 1).all()
    summary = json.loads((tmp_path / "set" / "predict.json").read_text())
    assert summary["overrides"] == {"postprocess[0].threshold": 0.0, "postprocess[1].radius": 0}
    assert summary["chain"]["file"] is None


def test_a_chain_that_cannot_work_is_exit_2_before_anything_is_written(trained, tmp_path):
    from dlsuite import api

    run, image = trained["run"], trained["image"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"postprocess": ["argmax", "watershed_split"]}))
    out = tmp_path / "out"
    proc = run_cli("predict", str(run), str(image), "-o", str(out), "--postprocess", str(bad))
    assert proc.returncode == 2, proc.stderr
    assert str(bad) in proc.stderr
    assert ("$.postprocess[1]: postprocessor 'watershed_split' needs class 2, got a class map "
            "of classes 0, 1") in proc.stderr
    assert not out.exists()
    with pytest.raises(ConfigError, match=r"\$\.postprocess\[2\]: postprocessor 'argmax' "
                                          r"accepts probabilities, got labels"):
        api.predict_folder(run, image, out, postprocess=["threshold", "label", "argmax"])
    with pytest.raises(DlsuiteInputError, match="override model.n_filters=8: dlsuite predict "
                                                "can change only postprocess, inference"):
        api.predict_folder(run, image, out, overrides={"model.n_filters": 8})
    with pytest.raises(DlsuiteInputError, match="expected a post-processing chain"):
        bad.write_text('{"steps": []}')
        api.predict_folder(run, image, out, postprocess=bad)
    assert not out.exists()


def test_nan_pixels_are_refused_or_masked_with_set_data_nonfinite_pixels(trained, tmp_path):
    """The error's advice (set data.nonfinite_pixels to "mask") works for predict too (it
    refused every data key); the W&B picture of the masked image warned 'RuntimeWarning:
    invalid value encountered in cast'. Other data keys stay the run's own."""
    image = tifffile.imread(trained["image"]).astype(np.float32)
    image[3, 4] = np.nan
    nan = tmp_path / "nan.tif"
    tifffile.imwrite(nan, image)
    run, out = trained["run"], tmp_path / "out"
    proc = run_cli("predict", str(run), str(nan), "-o", str(out))
    assert proc.returncode == 2 and "1 NaN/Inf pixel(s) (first at y=3, x=4)" in proc.stderr
    assert not out.exists()
    proc = run_cli("predict", str(run), str(nan), "-o", str(out), "-q",
                   "--set", "data.nonfinite_pixels=mask")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (f"warning: {nan}: NaN/Inf pixels are masked (ignored by the "
                           "normalizer and set to 0; data.nonfinite_pixels is \"mask\")\n")
    assert _labels(out).shape == (32, 32) and list((out / "wandb").iterdir())
    proc = run_cli("predict", str(run), str(nan), "-o", str(tmp_path / "o2"),
                   "--set", "data.scale=2")
    assert proc.returncode == 2 and "dlsuite predict can change only" in proc.stderr
    assert not (tmp_path / "o2").exists()


# --------------------------------------------------------------------------------------------
# provenance


def wandb_config(run_file: Path) -> dict:
    """The run config recorded in an offline W&B run file (``run-<id>.wandb``): its records
    (a LevelDB-style log of 32 KiB blocks after a 7-byte header) decoded as protobuf."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, payloads, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 2):  # full, first
            pending = chunk
        elif kind in (3, 4):  # middle, last
            pending += chunk
        if kind in (1, 4):
            payloads.append(pending)
    config = {}
    for raw in payloads:
        record = pb.Record()
        record.ParseFromString(raw)
        which = record.WhichOneof("record_type")
        items = (record.run.config.update if which == "run"
                 else record.config.update if which == "config" else [])
        config.update({item.key: json.loads(item.value_json) for item in items})
    return config


def test_provenance_in_config_metrics_and_wandb_config(trained):
    run = trained["run"]
    saved = json.loads((run / "config.json").read_text())
    prov = saved["provenance"]
    assert prov["postprocess.1"] == EXAMPLE
    assert prov["model"] == {"name": "unet", "plugin": "dlsuite.architectures",
                             "distribution": "dlsuite", "version": prov["model"]["version"]}
    assert prov["model"]["version"]
    assert set(prov) >= {"model", "loss", "metrics.0", "datagen.sampling",
                         "datagen.normalization", "datagen.target", "postprocess.0",
                         "postprocess.2"}
    assert json.loads((run / "metrics.json").read_text())["provenance"] == prov
    (run_file,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    config = wandb_config(run_file)
    assert config["provenance.postprocess.1.distribution"] == "dlsuite-example"
    assert config["provenance.postprocess.1.version"] == "0.1.0"
    assert config["provenance.postprocess.1.plugin"] == "example"
    assert config["provenance.model.distribution"] == "dlsuite"
    assert config["model.n_filters"] == 4  # the config itself is still there
    assert "dlsuite-example 0.1.0: postprocess.1 opening" in (run / "run.log").read_text()


def test_compare_lists_a_plugin_version_that_differs(trained, tmp_path):
    from dlsuite import api

    run = trained["run"]
    other = tmp_path / "other"
    other.mkdir()
    for name in ("config.json", "metrics.json"):
        shutil.copy(run / name, other / name)
    data = json.loads((other / "config.json").read_text())
    data["provenance"]["postprocess.1"]["version"] = "0.2.0"
    (other / "config.json").write_text(json.dumps(data))
    comparison = api.compare([run, other])
    assert "provenance.postprocess.1.version" in comparison.differing_keys
    assert "provenance.model.version" not in comparison.differing_keys
