"""The examples run end to end as their READMEs say (issue "run end to end", point 9).

Each example folder is copied to ``tmp_path`` (so nothing is written into the project) and
run with the ``dlsuite`` command line in a subprocess, exactly as a user would:

* ``examples/quickstart``: real phase-contrast images (Usiigaci, MIT), tiled inference;
  exit 0, test foreground Jaccard at least the figure its README states minus a margin,
  an offline W&B run directory.
* ``examples/quickstart-video``: videos written by ``dlsuite example-data videos``, the
  temporal ``mobilenet_mobileunet_lstm``; exit 0, CTC results with tracks, scores.
* ``examples/legacy``: a flat config of the original suite; the migration table is printed,
  then the run completes.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: tolerance under the README's figure (other seeds/BLAS builds, 2 vs more cores)
JACCARD_MARGIN = 0.05


def _copy(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("runs"))
    return target


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def _readme_jaccard() -> float:
    """The test foreground Jaccard the quickstart README promises ("foreground Jaccard of
    about 0.NN")."""
    text = (EXAMPLES / "quickstart" / "README.md").read_text()
    match = re.search(r"foreground Jaccard[^0-9]{0,40}(0\.\d+)", text)
    assert match, "examples/quickstart/README.md states no foreground Jaccard figure"
    return float(match.group(1))


def _readme_figure(name: str) -> float:
    text = (EXAMPLES / "quickstart" / "README.md").read_text(encoding="utf-8")
    match = re.search(name + r"[^0-9]{0,20}(0\.\d+)", text)
    assert match, f"examples/quickstart/README.md states no {name} figure"
    return float(match.group(1))


def test_quickstart_data_is_real_small_and_licensed():
    """The bundled data: frames layout, uint16 labels matching the images, a few MB,
    with the source's attribution and MIT licence."""
    from dlsuite.data.layouts import list_samples, load_sample

    data = EXAMPLES / "quickstart" / "data"
    assert "MIT" in (data / "LICENSE-usiigaci.txt").read_text()
    assert "Usiigaci" in (data / "SOURCE.md").read_text()
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file())
    assert size < 8 * 2**20, size
    counts = {}
    for split in ("train", "val", "test"):
        samples = list_samples(data / split, "frames", require_labels=True)
        counts[split] = len(samples)
        for sample in samples:
            loaded = load_sample(sample)
            assert loaded.image.shape == loaded.labels.shape == (1, 511, 512)
            assert loaded.labels.dtype == np.uint16 and loaded.image.dtype == np.uint16
            assert len(np.unique(loaded.labels)) > 20  # dozens of annotated cells
    assert counts["train"] >= 4 and counts["val"] >= 1 and counts["test"] >= 2


def test_quickstart_make_data_reproduces_the_bundled_files(tmp_path):
    """``make_data.py`` writes the same pixels again from ``../shared/data`` (skipped where
    the shared data is absent, e.g. a user's clone)."""
    import importlib.util

    import tifffile

    spec = importlib.util.spec_from_file_location("make_data",
                                                  EXAMPLES / "quickstart" / "make_data.py")
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    if not (make_data.DEFAULT_SOURCE / "annotated").is_dir():
        pytest.skip(f"{make_data.DEFAULT_SOURCE} not available")
    make_data.write(make_data.DEFAULT_SOURCE, tmp_path / "data")
    bundled = EXAMPLES / "quickstart" / "data"
    files = sorted(p.relative_to(bundled) for p in bundled.rglob("*.tif"))
    assert files == sorted(p.relative_to(tmp_path / "data")
                           for p in (tmp_path / "data").rglob("*.tif"))
    for rel in files:
        np.testing.assert_array_equal(tifffile.imread(bundled / rel),
                                      tifffile.imread(tmp_path / "data" / rel))


@pytest.mark.slow
def test_quickstart_runs_and_reaches_the_readme_jaccard(tmp_path):
    folder = _copy("quickstart", tmp_path)
    proc = run_cli("run", str(folder / "config.json"), "--overwrite", "--quiet",
                   env={"WANDB_MODE": "offline"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = folder / "runs" / "quickstart"
    test = _metrics(run_dir)["test"]
    assert test["foreground_jaccard"] >= _readme_jaccard() - JACCARD_MARGIN, test
    # touching cells separated: the instance scores the README states, within the margin
    assert test["SEG"] >= _readme_figure("SEG") - JACCARD_MARGIN, test
    assert test["f1"] >= _readme_figure(r"F1 \(IoU 0\.5\)") - JACCARD_MARGIN, test
    assert (run_dir / "postprocess.json").is_file()
    assert [m["iou"] for m in test["matching"]][0] == 0.5
    # tiled prediction of the real-size (511x512) test images, 2D labels named as the GT
    labels = sorted(p.name for p in (run_dir / "predictions" / "labels").iterdir())
    assert labels == ["instance_ids_001.tif", "instance_ids_002.tif"]
    assert list((run_dir / "wandb").glob("offline-run-*")), "no offline W&B run"
    assert (run_dir / "checkpoints" / "best.keras").is_file()


@pytest.mark.slow
def test_video_quickstart_runs_end_to_end_with_a_temporal_model(tmp_path):
    folder = _copy("quickstart-video", tmp_path)
    data = folder / "data"
    for split, n, seed in (("train", 4, 1), ("val", 1, 2), ("test", 2, 3)):
        proc = run_cli("example-data", "videos", str(data / split), "--n-videos", str(n),
                       "--seed", str(seed))
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("run", str(folder / "config.json"), "--overwrite", "--quiet",
                   env={"WANDB_MODE": "disabled"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = folder / "runs" / "quickstart-video"
    saved = json.loads((run_dir / "config.json").read_text())["config"]
    assert saved["model"]["name"] == "mobilenet_mobileunet_lstm"
    metrics = _metrics(run_dir)
    test = metrics["test"]
    # it learned the cells (here: 0.80 and SEG 0.75; the encoder trains from scratch)
    assert test["foreground_jaccard"] > 0.6 and test["SEG"] > 0.5, test
    assert test["SEG"] is not None and test["TRA"] is not None, metrics
    for seq in ("01", "02"):  # tracked CTC results of every test sequence
        res = run_dir / "predictions" / "ctc" / f"{seq}_RES"
        assert (res / "res_track.txt").is_file() and len(list(res.glob("mask*.tif"))) == 8


@pytest.mark.slow
def test_legacy_flat_config_runs_after_printing_the_migration(tmp_path):
    _copy("quickstart", tmp_path)  # the legacy config points at ../quickstart/data
    folder = _copy("legacy", tmp_path)
    proc = run_cli("run", str(folder / "config.json"), "--verbose", env={"WANDB_MODE": "disabled",
                                                           "COLUMNS": "200"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = proc.stderr
    assert "legacy config of the original suite" in err
    for old, new in (("cnn_name", "$.model.name"), ("TRAINPATH", "$.data.train"),
                     ("datagen_dim_size", "$.datagen.patch_size")):
        assert old in err and new in err, (old, new)
    # the table comes before training starts, the run finishes with test metrics
    run_dir = folder / "runs" / "legacy"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["legacy_migrated"] is True
    assert config["config"]["model"]["name"] == "categorical_unet"
    assert config["config"]["datagen"]["patch_size"] == [128, 128]
    metrics = _metrics(run_dir)
    assert metrics["train"]["epochs"] == 2 and "foreground_jaccard" in metrics["test"]
    assert (run_dir / "test_prediction" / "labels" / "instance_ids_001.tif").is_file()
