"""The example plugin passes dlsuite's contract tests (a few lines per plugin)."""

import numpy as np

import dlsuite_example.plugin as plugin
from dlsuite.testing import ArchitectureContract, LossContract, PostprocessorContract


class TestResidualUNet(ArchitectureContract):
    plugin = plugin
    name = "residual_unet"
    params = {"n_filters": 4, "pools": 2}


class TestTversky(LossContract):
    plugin = plugin
    name = "tversky"


class TestOpening(PostprocessorContract):
    plugin = plugin
    name = "opening"


def test_opening_removes_a_thin_line(isolated_registry):
    step = isolated_registry(plugin).resolve("postprocessors", "opening").load()(
        plugin.OpeningParams(radius=1))
    mask = np.zeros((20, 20), np.uint8)
    mask[2:10, 2:10] = 1
    mask[15, :] = 1
    out = step(mask)
    assert out[15].sum() == 0 and out[4:8, 4:8].all()
