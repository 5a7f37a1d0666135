"""Shared fixtures: real (temporary) distributions on sys.path, CLI subprocess runner."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_distribution(site: Path, dist: str, version: str, entry_points: dict[str, str],
                       modules: dict[str, str]) -> Path:
    """Write a real installed-distribution layout into ``site``: ``<dist>-<ver>.dist-info``
    with METADATA and entry_points.txt (group ``dlsuite``), plus the module sources."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[dlsuite]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in modules.items():
        path = site / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return site


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A temporary site folder on sys.path (removed after the test); returns a writer."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    written: list[str] = []

    def add(dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]):
        write_distribution(site, dist, version, entry_points, modules)
        written.extend(modules)
        importlib.invalidate_caches()
        return site

    add.site = site
    yield add
    for module in written:
        sys.modules.pop(module, None)


def sigint_default() -> None:
    """``preexec_fn`` of a CLI process a test sends SIGINT: pytest-xdist workers ignore
    SIGINT, an ignored signal is inherited across exec (POSIX) and dlsuite leaves an inherited
    ignored signal ignored; this gives the process the default a terminal's user has."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, env: dict | None = None, cwd: str | os.PathLike | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m dlsuite.cli ARGS`` in a subprocess and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "dlsuite.cli", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


def load_with_plugins(path: Path, config: dict | None = None, **plugins):
    """``(loaded config, registry)``: ``config`` (when given) written to ``path`` as JSON, then
    loaded with the installed plugins plus ``plugins`` (``name=plugin object``), as
    ``pipeline.train`` takes them."""
    import json

    from dlsuite.config import load_config
    from dlsuite.registry import Registry

    if config is not None:
        path.write_text(json.dumps(config))
    registry = Registry.from_entry_points()
    for name, plugin in plugins.items():
        registry.add_plugin(plugin, name, None, None)
    return load_config(path, registry), registry


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True)
def _environment_restored():
    """Each test leaves ``os.environ`` as it found it. Libraries called in-process change it
    for good (bioimageio.core's model test sets ``TF_ENABLE_ONEDNN_OPTS=0``), and the CLI
    subprocesses of later tests in the same worker would inherit that."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _wandb_mode_from_config(monkeypatch):
    """Tests choose the W&B mode in their configs; a WANDB_MODE in the environment of the
    person running them would override it."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("DLSUITE_THREADS", raising=False)  # tests set it where they mean it


@pytest.fixture(scope="module")
def threshold_model(tmp_path_factory):
    """A real 1x1-conv Keras model thresholding normalized intensity at 0.5 (it finds
    objects, unlike a 1-epoch model), saved as .keras; predict and scale tests use it as
    ``--weights``."""
    import keras
    import numpy as np

    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(2, 1)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([[[[-20.0, 20.0]]]], dtype=np.float32),
                      np.array([10.0, -10.0], dtype=np.float32)])
    path = tmp_path_factory.mktemp("threshold") / "threshold.keras"
    model.save(path)
    return path


def tiny_training_config(root: Path, *, n_filters: int = 4, wandb: str = "disabled") -> Path:
    """``root/config.json``: one epoch of one step of a small U-Net on two 32 x 32 example
    images (``root/data``, train and val) into ``root/run``, no tuning, W&B ``wandb``."""
    import json

    from dlsuite.data.example import write_example_frames

    data = write_example_frames(root / "data", n=2, size=32, seed=1)["frames"]
    config = root / "config.json"
    config.write_text(json.dumps({
        "name": root.name, "output_dir": str(root / "run"), "seed": 1,
        "data": {"train": str(data), "val": str(data)},
        "model": {"name": "unet", "n_filters": n_filters, "pools": 2},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 1},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "evaluation": {"tune_postprocess": False},
        "wandb": {"mode": wandb, "project": "dlsuite-tests"}}))
    return config
