"""Real third-party packages installed with pip: the example plugin and `dlsuite new-plugin`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli

EXAMPLE = REPO / "examples" / "plugins" / "dlsuite-example"


def pip_install(target: Path, package: Path) -> None:
    """``pip install --no-deps --target`` a package: a real install whose dist-info and entry
    points are found when ``target`` is on the path."""
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target",
                    str(target), str(package)], check=True, capture_output=True, text=True,
                   timeout=600)


@pytest.fixture(scope="module")
def example_site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    pip_install(site, EXAMPLE)
    return site


def env_with(*paths: Path) -> dict:
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([*map(str, paths), *([old] if old else [])])}


@pytest.mark.slow
def test_example_plugin_is_listed_with_its_distribution(example_site):
    proc = run_cli("plugins", "--json", env=env_with(example_site))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    example = [p for p in data["plugins"] if p["dist"] == "dlsuite-example"]
    assert example and example[0]["version"] == "0.1.0"
    assert example[0]["contributes"] == {"architectures": ["residual_unet"],
                                         "losses": ["tversky"], "postprocessors": ["opening"]}


@pytest.mark.slow
def test_model_summary_builds_the_third_party_architecture(example_site, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"name": "residual_unet", "n_filters": 4, "pools": 2},
                                  "loss": "tversky"}))
    proc = run_cli("model", "summary", str(config), "--json", env=env_with(example_site))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["architecture"] == "residual_unet" and info["total"] > 0
    assert info["output_shape"][-1] == 2


@pytest.mark.slow
def test_same_name_from_two_packages_conflicts_until_qualified(example_site, fake_site, tmp_path):
    fake_site("dlsuite-example-fork", "0.2", {"example_fork": "example_fork"},
              {"example_fork": "from dlsuite_example.plugin import dlsuite_architectures\n"})
    env = env_with(example_site, fake_site.site)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": "residual_unet"}))
    proc = run_cli("config", "validate", str(config), env=env)
    assert proc.returncode == 2
    for needle in ("dlsuite-example 0.1.0", "dlsuite-example-fork 0.2", "'example:residual_unet'",
                   "'example_fork:residual_unet'", "$.model"):
        assert needle in proc.stderr
    config.write_text(json.dumps({"model": "example_fork:residual_unet"}))
    proc = run_cli("config", "validate", str(config), env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_broken_package_does_not_break_validation_of_unrelated_config(fake_site, tmp_path):
    fake_site("dlsuite-broken", "0.1", {"broken": "broken_plugin"},
              {"broken_plugin": "import a_dependency_that_is_not_installed\n"})
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": "unet"}))
    env = env_with(fake_site.site)
    assert run_cli("config", "validate", str(config), env=env).returncode == 0
    config.write_text(json.dumps({"model": "fancy_unet"}))
    proc = run_cli("config", "validate", str(config), env=env)
    assert proc.returncode == 2
    assert "broken" in proc.stderr and "a_dependency_that_is_not_installed" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["architecture", "loss", "postprocessor", "target",
                                  "augmentation"])
def test_new_plugin_skeleton_installs_and_passes_its_tests(tmp_path, kind):
    proc = run_cli("new-plugin", f"my_{kind}", "--kind", kind, "-d", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    package = tmp_path / f"dlsuite-my-{kind}"
    site = tmp_path / "site"
    pip_install(site, package)
    listed = json.loads(run_cli("plugins", "--json", env=env_with(site)).stdout)
    assert any(p["dist"] == f"dlsuite-my-{kind}" for p in listed["plugins"])
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(package / "tests")], capture_output=True, text=True,
                           env={**os.environ, **env_with(site)}, cwd=tmp_path, timeout=600)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout


def test_new_plugin_offers_every_kind_it_scaffolds():
    from dlsuite.cli import load_commands
    from dlsuite.scaffold import KINDS

    command = load_commands().commands["new-plugin"]
    (kind,) = [p for p in command.params if p.name == "kinds"]
    assert list(kind.type.choices) == list(KINDS)


def test_new_plugin_refuses_bad_name_and_existing_folder(tmp_path):
    for name, why in (("Bad-Name", "has characters other than"), ("2net", "starts with a digit"),
                      ("class", "is a Python keyword")):
        proc = run_cli("new-plugin", name, "-d", str(tmp_path))
        assert proc.returncode == 2 and f"plugin name {name!r}: {why}" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    assert run_cli("new-plugin", "ok_name", "-d", str(tmp_path)).returncode == 0
    proc = run_cli("new-plugin", "ok_name", "-d", str(tmp_path))
    assert proc.returncode == 2 and "already exists" in proc.stderr
    # a name an installed plugin already provides for that kind: the new plugin's own tests
    # would exercise that one (dlsuite's unet, its dice loss), so it is refused
    for name, kind in (("unet", "architecture"), ("dice", "loss")):
        proc = run_cli("new-plugin", name, "--kind", kind, "-d", str(tmp_path))
        assert proc.returncode == 2 and f"{kind} {name!r} is already provided by" in proc.stderr
        assert not (tmp_path / f"dlsuite-{name}").exists()
    assert run_cli("new-plugin", "dice", "--kind", "architecture", "-d",
                   str(tmp_path)).returncode == 0


def tiny_run_config(tmp_path: Path, model: dict, loss: str | dict = "sparse_cce") -> Path:
    from dlsuite.data.example import write_example_videos

    write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32, seed=0)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "output_dir": "run", "seed": 0,
        "data": {"train": "data/videos", "val": "data/videos", "test": "data/ctc"},
        "model": model, "loss": loss,
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "inference": {"tile_size": 32, "halo": 8},
        "wandb": {"mode": "disabled"},
    }))
    return config


@pytest.mark.slow
def test_run_uses_the_third_party_architecture_and_loss(example_site, tmp_path):
    config = tiny_run_config(tmp_path, {"name": "residual_unet", "n_filters": 4, "pools": 2},
                             "tversky")
    proc = run_cli("run", str(config), "--quiet", env=env_with(example_site), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["model"]["name"] == "residual_unet" and saved["loss"]["name"] == "tversky"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train"]["epochs"] == 1 and "SEG" in metrics["test"]
    assert (tmp_path / "run" / "checkpoints" / "best.keras").is_file()


@pytest.mark.slow
def test_broken_package_does_not_break_a_run_that_does_not_use_it(fake_site, tmp_path):
    fake_site("dlsuite-broken", "0.1", {"broken": "broken_plugin"},
              {"broken_plugin": "import a_dependency_that_is_not_installed\n"})
    config = tiny_run_config(tmp_path, {"name": "unet", "n_filters": 4, "pools": 2})
    proc = run_cli("train", str(config), "--quiet", env=env_with(fake_site.site), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.keras").is_file()


@pytest.mark.slow
def test_example_plugin_passes_its_own_tests(example_site, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(EXAMPLE / "tests")], capture_output=True, text=True,
                          env={**os.environ, **env_with(example_site)}, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed" not in proc.stdout and " passed" in proc.stdout
