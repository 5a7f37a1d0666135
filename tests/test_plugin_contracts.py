"""Plugin contracts that catch what breaks in production, and plugins that fail as themselves.

* the receptive field: measured (every phase modulo the size multiple), a declared value
  smaller than the measured one and a missing one fail the contract, a raising callable is
  the plugin's error; an undeclared one is measured for ``halo: auto`` (tiled == untiled);
* graph mode at production shapes: bilinear ``UpSampling2D`` passes eager calls but fails
  ``predict_on_batch`` on a second size, and the contract catches it;
* exceptions escaping a third-party plugin are reported as that plugin's error;
* a third-party package providing a built-in's name does not break configs;
* ``dlsuite new-plugin`` with several kinds.

Real distributions (``*.dist-info`` folders on a site directory, pip installs), real
subprocess CLI and pytest runs, real tiny Keras models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import run_cli, write_distribution

DIST, VERSION, EP = "dlsuite-h9-nets", "1.0", "h9"
ISSUES = "https://example.org/h9-nets/issues"

PLUGIN = '''
import attrs
from dlsuite import ArchitectureSpec, NormalizerSpec, hookimpl, param


@attrs.frozen
class Params:
    n_filters: int = param(4, help="filters")
    pools: int = param(2, help="down-sampling steps")


def multiple(params):
    return 2 ** params.pools


def reach_rf(params):
    """Exact: two 3x3 convs per block give r = 7 * 2**pools - 5 (47 px for pools 2)."""
    return 2 * (7 * 2 ** params.pools - 5) + 1


def textbook_rf(params):
    """1 + sum((k - 1) * jump) over the layers: ignores the phase in the pooling grid."""
    rf, jump = 1, 1
    for _ in range(params.pools):
        rf += 2 * 2 * jump + jump  # two 3x3 convs, one 2x2 pool
        jump *= 2
    rf += 2 * 2 * jump  # bottleneck
    for _ in range(params.pools):
        jump //= 2
        rf += 2 * 2 * jump
    return rf


def broken_rf(params):
    return {"depth": 3}["pools"]


def rejecting_rf(params):
    raise ValueError(f"pools={params.pools} is deeper than this network supports")


def spec(name, factory="unet", **extra):
    return ArchitectureSpec(name=name, factory=f"h9_nets_impl:{factory}", params=Params,
                            description=name, size_multiple=multiple, **extra)


@hookimpl
def dlsuite_architectures():
    return [
        spec("h9_unet", receptive_field=reach_rf),
        spec("h9_textbook", receptive_field=textbook_rf),
        spec("h9_undeclared"),
        spec("h9_raising", receptive_field=broken_rf),
        spec("h9_rejecting", receptive_field=rejecting_rf),
        spec("h9_bilinear", factory="bilinear", receptive_field=lambda p: 4 * reach_rf(p)),
        spec("h9_picky", factory="picky", receptive_field=reach_rf),
        spec("h9_buggy", factory="buggy", receptive_field=reach_rf),
        spec("h9_none", factory="returns_none", receptive_field=reach_rf),
        spec("unet", receptive_field=reach_rf),  # also a built-in's name
    ]


@hookimpl
def dlsuite_add_commands(cli):
    @cli.command("h9-crash")
    def crash():
        raise RuntimeError("boom in h9")

    @cli.command("h9-core-crash")
    def core_crash():
        from dlsuite.registry import singular

        singular(None)  # fails inside dlsuite's code: not the plugin's error


@hookimpl
def dlsuite_normalizers():
    return [NormalizerSpec(name="h9_crashing_norm", factory="h9_nets_impl:crashing_norm",
                           description="raises on every image")]
'''

IMPL = '''
import keras
from keras import layers


def _conv(x, filters):
    return layers.Conv2D(filters, 3, padding="same", activation="relu")(x)


def _net(params, n_classes, input_shape, interpolation):
    inputs = keras.Input(shape=input_shape or (None, None, 1))
    x, skips = inputs, []
    for level in range(params.pools):
        x = _conv(_conv(x, params.n_filters), params.n_filters)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = _conv(_conv(x, params.n_filters), params.n_filters)
    for skip in reversed(skips):
        x = layers.UpSampling2D(2, interpolation=interpolation)(x)
        x = layers.Concatenate()([x, skip])
        x = _conv(_conv(x, params.n_filters), params.n_filters)
    return keras.Model(inputs, layers.Conv2D(n_classes, 1)(x))


def unet(params, *, n_classes, input_shape=None):
    return _net(params, n_classes, input_shape, "nearest")


def bilinear(params, *, n_classes, input_shape=None):
    return _net(params, n_classes, input_shape, "bilinear")


def picky(params, *, n_classes, input_shape=None):
    if params.n_filters % 4:
        raise ValueError(f"n_filters must be a multiple of 4, got {params.n_filters}")
    return unet(params, n_classes=n_classes, input_shape=input_shape)


def buggy(params, *, n_classes, input_shape=None):
    return unet(params, n_classes=n_classes, input_shape=input_shape).no_such_method()


def returns_none(params, *, n_classes, input_shape=None):
    return None


def crashing_norm(params):
    def normalize(image):
        return image.astype("float32") / image.missing_attribute
    return normalize
'''


def write_h9(site: Path) -> Path:
    """The ``dlsuite-h9-nets`` distribution (with an issue tracker URL) in ``site``."""
    write_distribution(site, DIST, VERSION, {EP: "h9_nets"},
                       {"h9_nets": PLUGIN, "h9_nets_impl": IMPL})
    meta = site / f"{DIST.replace('-', '_')}-{VERSION}.dist-info" / "METADATA"
    meta.write_text(meta.read_text() + f"Project-URL: Issues, {ISSUES}\n")
    return site


@pytest.fixture
def h9(fake_site):
    """The h9 distribution on sys.path (in this process) and its site folder."""
    fake_site(DIST, VERSION, {EP: "h9_nets"}, {"h9_nets": PLUGIN, "h9_nets_impl": IMPL})
    meta = fake_site.site / f"{DIST.replace('-', '_')}-{VERSION}.dist-info" / "METADATA"
    meta.write_text(meta.read_text() + f"Project-URL: Issues, {ISSUES}\n")
    return fake_site.site


def env_with(site: Path, **extra: str) -> dict:
    old = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([str(site), *([old] if old else [])]), **extra}


# --------------------------------------------------------------------------------------------
# the measurement


def test_reach_depends_on_the_phase_and_beats_the_textbook_formula(h9):
    """The U-Net's reach differs by position in the pooling grid; its maximum (47 px for
    pools 2) is what the exact formula declares and more than the textbook 44 px."""
    import h9_nets
    import h9_nets_impl

    from dlsuite.inference.receptive_field import measure_model

    params = h9_nets.Params(n_filters=4, pools=2)
    reach = measure_model(h9_nets_impl.unet(params, n_classes=2))
    assert reach.complete and reach.phases == 4
    assert reach.receptive_field == h9_nets.reach_rf(params) == 47
    assert len(set(reach.per_phase)) > 1  # the phase matters
    assert h9_nets.textbook_rf(params) == 44 < reach.receptive_field


def test_measurement_grows_the_input_until_the_reach_fits():
    """A reach larger than the first input is found by doubling it; a cap gives a lower
    bound marked incomplete."""
    import keras
    from keras import layers

    from dlsuite.inference.receptive_field import measure_model

    inputs = keras.Input((None, None, 1))
    x = inputs
    for _ in range(6):  # 6 dilated 5x5 convs: reach 6 * 2 * 8 = 96 px
        x = layers.Conv2D(2, 5, dilation_rate=8, padding="same")(x)
    model = keras.Model(inputs, layers.Conv2D(2, 1)(x))
    reach = measure_model(model, draws=1)
    assert reach.complete and reach.radius == 96 and reach.size >= 256
    capped = measure_model(model, draws=1, max_size=128)
    assert not capped.complete and capped.radius < 96


def test_bare_model_prediction_measures_its_halo(h9):
    """``api.predict(keras_model, ...)`` defaults to ``halo="auto"``: the model's measured
    reach (51 px for pools 3, 56 px at the size multiple 8), so tiles equal the whole image;
    a model with a static input size is measured through rebuilds at other sizes."""
    import h9_nets
    import h9_nets_impl

    from dlsuite import api
    from dlsuite.inference import model_tile_settings

    params = h9_nets.Params(n_filters=4, pools=3)
    model = h9_nets_impl.unet(params, n_classes=2)
    tiles = model_tile_settings(model, halo="auto")
    assert (tiles.receptive_field, tiles.receptive_field_source, tiles.halo) == (
        103, "measured", 56)
    image = np.random.default_rng(0).random((72, 80), dtype=np.float32)
    np.testing.assert_allclose(api.predict(model, image, tile_size=16),
                               api.predict(model, image, tile_size=None), atol=1e-5)
    static = h9_nets_impl.unet(h9_nets.Params(n_filters=4, pools=2), n_classes=2,
                               input_shape=(32, 32, 1))
    assert model_tile_settings(static, halo="auto").receptive_field == 47


# --------------------------------------------------------------------------------------------
# contract kit: a subprocess pytest on a test module subclassing the contracts

CONTRACT_TESTS = '''
import h9_nets
from dlsuite.testing import ArchitectureContract

TINY = {"n_filters": 4, "pools": 2}

class TestGood(ArchitectureContract):
    plugin, name, params = h9_nets, "h9_unet", TINY

class TestTextbook(ArchitectureContract):
    plugin, name, params = h9_nets, "h9_textbook", TINY

class TestUndeclared(ArchitectureContract):
    plugin, name, params = h9_nets, "h9_undeclared", TINY

class TestRaising(ArchitectureContract):
    plugin, name, params = h9_nets, "h9_raising", TINY

class TestBilinear(ArchitectureContract):
    plugin, name, params = h9_nets, "h9_bilinear", TINY
'''


@pytest.mark.slow
def test_contract_catches_receptive_field_and_graph_mode_faults(tmp_path):
    site = write_h9(tmp_path / "site")
    (tmp_path / "test_h9_contracts.py").write_text(CONTRACT_TESTS)
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
         "receptive or production or builds_from_defaults", f"--junitxml={report}",
         "test_h9_contracts.py"], cwd=tmp_path, capture_output=True, text=True, timeout=1200,
        env={**os.environ, **env_with(site)})
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failure = case.find("failure")
        key = (case.get("classname").rsplit(".", 1)[-1], case.get("name"))
        outcomes[key] = "passed" if failure is None else failure.get("message", "") + (
            failure.text or "")
    rf, prod = "test_receptive_field_covers_the_measured_reach", \
        "test_predicts_production_shapes_in_graph_mode"
    assert len(outcomes) == 15, proc.stdout[-3000:]
    # the exact declaration and the production shapes pass
    assert outcomes[("TestGood", rf)] == outcomes[("TestGood", prod)] == "passed"
    # the textbook formula (44 px) is caught with both numbers
    assert "declared receptive_field 44 px is smaller than the measured 47 px" in \
        outcomes[("TestTextbook", rf)]
    # no declaration: fails with the number to declare, and still predicts
    assert "declares no receptive_field; measured 47 px" in outcomes[("TestUndeclared", rf)]
    assert outcomes[("TestUndeclared", prod)] == "passed"
    # a raising callable: the plugin's error, naming it and the exception
    raising = outcomes[("TestRaising", rf)]
    assert "plugin 'h9_nets'" in raising and "receptive_field(params)" in raising
    assert "KeyError" in raising and "unexpected" not in raising
    # bilinear upsampling works eagerly and at one size, fails in graph mode at the next
    assert outcomes[("TestBilinear", rf)] == "passed"
    assert outcomes[("TestBilinear", "test_builds_from_defaults")] == "passed"
    assert "prediction in graph mode of a 1x1029x35 input" in outcomes[("TestBilinear", prod)]


# --------------------------------------------------------------------------------------------
# an undeclared receptive field at prediction


def _train(tmp_path: Path, site: Path, model: dict) -> Path:
    from dlsuite.data.example import write_example_frames, write_example_videos

    write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32, seed=0)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "output_dir": "run", "seed": 0, "model": model,
        "data": {"train": "data/videos", "val": "data/videos"},
        "datagen": {"patch_size": [32, 32], "batch_size": 2, "steps_per_epoch": 2},
        "train": {"epochs": 1, "tensorboard": {"enabled": False}},
        "inference": {"halo": "auto"}, "wandb": {"mode": "disabled"}}))
    proc = run_cli("train", str(config), "--quiet", env=env_with(site), cwd=tmp_path,
                   timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    image = write_example_frames(tmp_path / "new", n=1, size=72, seed=5)["inputs"][0]
    return image


def _predict(tmp_path: Path, site: Path, image: Path, out: str, *options: str):
    proc = run_cli("predict", str(tmp_path / "run"), str(image), "-o", str(tmp_path / out),
                   "--no-postprocess", "--quiet", *options, env=env_with(site), cwd=tmp_path,
                   timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probs = tifffile.imread(tmp_path / out / "probabilities" / image.name)
    return probs, json.loads((tmp_path / out / "predict.json").read_text())


@pytest.mark.slow
def test_undeclared_receptive_field_is_measured_and_makes_tiles_exact(tmp_path):
    """pools 3: reach 51 px, which the old fixed 32 px halo did not cover."""
    site = write_h9(tmp_path / "site")
    image = _train(tmp_path, site, {"name": "h9_undeclared", "n_filters": 4, "pools": 3})
    whole, _ = _predict(tmp_path, site, image, "whole", "--tile-size", "none")
    tiled, record = _predict(tmp_path, site, image, "tiled", "--tile-size", "16")
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    tiles = record["tiles"]
    assert tiles["receptive_field"] == 103 and tiles["receptive_field_source"] == "measured"
    assert tiles["halo"] == 56  # reach 51 rounded up to the size multiple 8: the halo used
    assert any("declares no receptive field: measured 103 px" in n for n in record["notes"])
    short, record = _predict(tmp_path, site, image, "short", "--tile-size", "16", "--halo", "32")
    assert record["tiles"]["halo"] == 32 and record["tiles"]["receptive_field"] is None
    # the old fixed guess leaves seams (small with a 1-epoch model), far above float rounding
    exact = max(float(np.abs(tiled - whole).max()), 1e-7)
    assert np.abs(short - whole).max() > 20 * exact


# --------------------------------------------------------------------------------------------
# failures of plugin code


def test_factory_value_error_is_the_plugins_rejection_other_errors_its_bug(h9):
    from dlsuite.errors import DlsuiteInputError
    from dlsuite.registry import PluginFailure, PluginRejected, Registry

    reg = Registry.from_entry_points()
    picky = reg.resolve("architectures", "h9_picky")
    with pytest.raises(PluginRejected) as info:
        picky.load()(picky.spec.params(n_filters=3), n_classes=2)
    assert isinstance(info.value, DlsuiteInputError)  # exit 2
    for needle in ("the factory of architecture 'h9_picky'", "plugin 'h9'",
                   f"{DIST} {VERSION}", "n_filters must be a multiple of 4, got 3"):
        assert needle in str(info.value)
    buggy = reg.resolve("architectures", "h9_buggy")
    with pytest.raises(PluginFailure) as info:
        buggy.load()(buggy.spec.params(), n_classes=2)
    assert not isinstance(info.value, DlsuiteInputError) and info.value.exit_code == 1
    assert info.value.plugin == EP and info.value.report_to == ISSUES
    assert "bug of the plugin, not of dlsuite" in str(info.value)
    # what a factory returns is checked too: None is no model (it failed later, as
    # dlsuite's "unexpected error")
    import keras  # noqa: F401 - as whoever builds models has

    nothing = reg.resolve("architectures", "h9_none")
    with pytest.raises(PluginFailure, match=r"the factory of architecture 'h9_none' raised "
                                            r"TypeError: returned NoneType None, not a "
                                            r"keras.Model") as info:
        nothing.load()(nothing.spec.params(), n_classes=2)
    assert info.value.plugin == EP and info.value.report_to == ISSUES


def test_raising_or_bad_spec_callable_is_the_plugins_error(h9):
    from dlsuite.registry import PluginFailure, Registry, call_spec

    reg = Registry.from_entry_points()
    entry = reg.resolve("architectures", "h9_raising")
    with pytest.raises(PluginFailure, match=r"receptive_field\(params\) of architecture "
                                            r"'h9_raising' raised KeyError"):
        call_spec(entry, "receptive_field", entry.spec.params())
    assert call_spec(reg.resolve("architectures", "h9_undeclared"), "receptive_field",
                     entry.spec.params()) is None


def test_config_validation_reports_a_failing_receptive_field_at_the_model_key(h9):
    from dlsuite.config import parse_config
    from dlsuite.errors import ConfigError
    from dlsuite.registry import Registry

    reg = Registry.from_entry_points()
    for name, needle in [("h9_rejecting", "rejected its input: ValueError: pools=2 is deeper"),
                         ("h9_raising", "raised KeyError")]:
        with pytest.raises(ConfigError) as info:
            parse_config({"model": name}, reg, check_paths=False)
        problems = dict(info.value.problems)
        assert needle in problems["$.model"] and "plugin 'h9'" in problems["$.model"]


def test_an_exception_raised_later_in_plugin_code_is_blamed_on_the_plugin(h9):
    from dlsuite.registry import Registry

    reg = Registry.from_entry_points()
    normalize = reg.resolve("normalizers", "h9_crashing_norm").load()(None)
    try:
        normalize(np.zeros((4, 4), np.uint16))
    except AttributeError as exc:
        failure = reg.blame(exc)
    assert failure is not None and failure.plugin == EP and failure.report_to == ISSUES
    assert "h9_nets_impl.py" in str(failure) and "AttributeError" in str(failure)
    try:
        np.zeros(2).reshape(3)  # not plugin code
    except ValueError as exc:
        assert reg.blame(exc) is None


@pytest.mark.slow
def test_cli_reports_plugin_errors_as_the_plugins(tmp_path):
    site = write_h9(tmp_path / "site")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"name": "h9_picky", "n_filters": 3}}))
    proc = run_cli("model", "summary", str(config), env=env_with(site))
    assert proc.returncode == 2, proc.stderr
    assert "plugin 'h9'" in proc.stderr and f"{DIST} {VERSION}" in proc.stderr
    assert "n_filters must be a multiple of 4" in proc.stderr
    assert "unexpected error" not in proc.stderr and "Traceback" not in proc.stderr
    config.write_text(json.dumps({"model": "h9_buggy"}))
    proc = run_cli("model", "summary", str(config), env=env_with(site))
    assert proc.returncode == 1, proc.stderr
    assert "error in plugin 'h9'" in proc.stderr and ISSUES in proc.stderr
    assert "unexpected error" not in proc.stderr


def test_cli_blames_the_plugin_only_for_its_own_code(tmp_path):
    site = write_h9(tmp_path / "site")
    proc = run_cli("h9-crash", env=env_with(site))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    for needle in ("error in plugin 'h9'", f"{DIST} {VERSION}", "RuntimeError: boom in h9",
                   "bug of the plugin, not of dlsuite", ISSUES):
        assert needle in proc.stderr
    proc = run_cli("h9-core-crash", env=env_with(site))
    assert proc.returncode == 1
    assert "unexpected error: AttributeError" in proc.stderr and "h9" not in proc.stderr


@pytest.mark.slow
def test_raising_receptive_field_stops_a_run_before_it_starts(tmp_path):
    from dlsuite.data.example import write_example_videos

    site = write_h9(tmp_path / "site")
    write_example_videos(tmp_path / "data", n_videos=2, frames=3, size=32, seed=0)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "output_dir": "run", "model": "h9_raising",
        "data": {"train": "data/videos", "val": "data/videos"},
        "datagen": {"patch_size": [32, 32], "batch_size": 2}, "wandb": {"mode": "disabled"}}))
    proc = run_cli("train", str(config), "--quiet", env=env_with(site), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr  # a config error: found when the config is read
    assert "$.model" in proc.stderr and "error in plugin 'h9'" in proc.stderr
    assert "receptive_field(params)" in proc.stderr and "KeyError" in proc.stderr
    assert "unexpected error" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# names


def test_builtin_keeps_its_name_when_a_package_provides_it_too(h9):
    from dlsuite.registry import Registry

    reg = Registry.from_entry_points()
    assert reg.resolve("architectures", "unet").dist == "dlsuite"
    assert "also provided by plugin 'h9'" in reg.warnings[0] and "'h9:unet'" in reg.warnings[0]
    assert reg.resolve("architectures", "h9:unet").dist == DIST
    assert reg.resolve("architectures", f"{DIST}:unet").plugin == EP
    assert any("'h9:unet'" in line for line in reg.describe()["warnings"])


def test_kind_names_in_messages():
    from dlsuite.errors import PluginError
    from dlsuite.registry import Registry, singular

    assert [singular(k) for k in ("losses", "metrics", "augmentations")] == [
        "loss", "metric", "augmentation"]
    with pytest.raises(PluginError, match=r"^unknown loss 'no_such_loss_xyz'"):
        Registry.from_entry_points().resolve("losses", "no_such_loss_xyz")


def test_block_plugins_naming_nothing_installed_warns(h9, monkeypatch):
    from dlsuite.registry import Registry

    monkeypatch.setenv("DLSUITE_BLOCK_PLUGINS", "h9,no_such_plugin")
    reg = Registry.from_entry_points()
    assert "h9_unet" not in reg.tables["architectures"]
    assert len(reg.warnings) == 1 and "'no_such_plugin'" in reg.warnings[0]
    assert "'h9'" not in reg.warnings[0]


@pytest.mark.slow
def test_cli_names_survive_installing_a_package_with_a_builtin_name(tmp_path):
    site = write_h9(tmp_path / "site")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": "unet"}))
    proc = run_cli("config", "validate", str(config), env=env_with(site))
    assert proc.returncode == 0, proc.stderr
    assert "'h9:unet'" in proc.stderr and DIST in proc.stderr
    config.write_text(json.dumps({"loss": "no_such_loss"}))
    proc = run_cli("config", "validate", str(config), env=env_with(site))
    assert proc.returncode == 2 and "unknown loss 'no_such_loss'" in proc.stderr
    proc = run_cli("plugins", env=env_with(site, DLSUITE_BLOCK_PLUGINS="nothing_installed"))
    assert proc.returncode == 0 and "'nothing_installed'" in proc.stderr


# --------------------------------------------------------------------------------------------
# scaffold


@pytest.mark.slow
def test_new_plugin_with_several_kinds_installs_and_passes_its_contracts(tmp_path):
    proc = run_cli("new-plugin", "acme", "--kind", "architecture", "--kind", "loss",
                   "--kind", "postprocessor", "-d", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    package = tmp_path / "dlsuite-acme"
    plugin_source = (package / "src" / "dlsuite_acme" / "plugin.py").read_text()
    assert "receptive_field=architecture_receptive_field" in plugin_source
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(package)], check=True,
                   capture_output=True, timeout=600)
    listed = json.loads(run_cli("plugins", "--json", env=env_with(site)).stdout)
    acme = [p for p in listed["plugins"] if p["dist"] == "dlsuite-acme"]
    assert acme and acme[0]["plugin"] == "acme" and acme[0]["contributes"] == {
        "architectures": ["acme_architecture"], "losses": ["acme_loss"],
        "postprocessors": ["acme_postprocessor"]}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-rA", str(package / "tests")], capture_output=True, text=True,
                           env={**os.environ, **env_with(site)}, cwd=tmp_path, timeout=900)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "PASSED" in tests.stdout and "test_receptive_field_covers_the_measured_reach" in \
        tests.stdout
