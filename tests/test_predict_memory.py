"""Inputs too large to predict in one piece are refused from their header, before a pixel is
read (``dlsuite.predict_memory``), and an interrupted block-wise prediction ends without
zarr's exit traceback (``dlsuite.scale.zarr_module``). Real TIFFs, real CLI subprocesses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tifffile

from conftest import run_cli, tiny_training_config
from dlsuite.predict_memory import (BASELINE_BYTES, BYTES_PER_PIXEL, CHAIN_BYTES_PER_PIXEL,
                                    available_bytes, memory_problem, prediction_bytes)


def test_the_estimate_grows_with_every_pixel_and_the_chain_with_one_frame():
    image = prediction_bytes((1000, 2000))
    assert image == BASELINE_BYTES + 2_000_000 * (BYTES_PER_PIXEL + CHAIN_BYTES_PER_PIXEL)
    video = prediction_bytes((10, 1000, 2000))
    assert video == BASELINE_BYTES + 2_000_000 * (10 * BYTES_PER_PIXEL + CHAIN_BYTES_PER_PIXEL)
    assert prediction_bytes((1000, 2000), postprocess=False) == (
        BASELINE_BYTES + 2_000_000 * BYTES_PER_PIXEL)


def test_the_refusal_names_the_input_both_amounts_and_the_block_wise_way():
    assert memory_problem("a.tif", (1000, 1000), available=2**40) is None
    message = memory_problem("big.tif", (40000, 40000), available=8 * 2**30)
    assert message.startswith("big.tif: 40000x40000 pixels need about 143.8 GiB")
    assert "8.0 GiB of memory is available" in message and "--block-size" in message
    assert len(message.splitlines()) == 1
    assert available_bytes() is None or available_bytes() > 0


@pytest.mark.parametrize("where", [[], ["--scheduler", "local:1"]], ids=["here", "local-cluster"])
def test_predict_refuses_an_image_far_larger_than_memory_before_reading_it(tmp_path, where):
    """A 200000 x 200000 uint16 TIFF (80 GB, sparse on disk): one line, exit 2, at once,
    nothing written; dlsuite would otherwise read it and be killed by the kernel. A local
    Dask cluster's workers share this machine's memory: the same (it read the whole file,
    then a worker died)."""
    if where:
        pytest.importorskip("distributed")
    huge = tmp_path / "stitched.tif"
    tifffile.memmap(huge, shape=(200_000, 200_000), dtype=np.uint16).flush()
    start = time.monotonic()
    proc = run_cli("predict", str(tmp_path / "any-run"), str(huge), "-o", str(tmp_path / "out"),
                   *where)
    assert proc.returncode == 2, proc.stderr
    assert f"{huge}: 200000x200000 pixels need about" in proc.stderr
    assert "--block-size" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - start < 60 and not (tmp_path / "out").exists()


SCRIPT = """
import sys, time
{import_zarr}
import zarr.core.sync as sync
loop = sync._get_loop()
loop.call_soon_threadsafe(time.sleep, 2)  # the I/O thread busy, as in a read cut short
time.sleep(0.2)
sys.exit(130)
"""


@pytest.mark.parametrize("hooked", [True, False])
def test_exit_during_a_zarr_read_prints_no_traceback(hooked):
    """zarr closes its I/O loop at exit and, with the thread still busy, printed "Cannot
    close a running event loop" after dlsuite's "interrupted"; through zarr_module it does
    not (the control without it shows that the test sees the traceback)."""
    import_zarr = ("from dlsuite.scale.zarr_module import zarr_module; zarr_module()"
                   if hooked else "import zarr")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT.format(
        import_zarr=import_zarr))], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130
    if hooked:
        assert proc.stderr == "", proc.stderr
    else:
        assert "Cannot close a running event loop" in proc.stderr


def test_the_model_pass_counts_the_whole_image_or_the_tiles_it_sees():
    import keras

    from dlsuite.inference import TileSettings
    from dlsuite.keras_helpers import activation_elements
    from dlsuite.predict_memory import (PASS_BYTES_PER_VALUE, model_pass_bytes,
                                        pass_values_per_pixel)

    x = keras.Input((None, None, 1))
    model = keras.Model(x, keras.layers.Conv2D(1, 1)(keras.layers.Conv2D(8, 3,
                                                                       padding="same")(x)))
    assert activation_elements(model, [(1, 64, 64, 1)]) / 64**2 == 9  # 8 + 1 per pixel
    per_pixel = pass_values_per_pixel(model, size_multiple=8)
    assert per_pixel == 9
    whole = TileSettings(tile_size=None, halo=0, batch_size=2)
    assert model_pass_bytes(per_pixel, whole, (3000, 2000)) == int(
        PASS_BYTES_PER_VALUE * 9 * (3000 * 2000))
    # data.scale 0.5: the model sees a quarter of the pixels
    assert model_pass_bytes(per_pixel, whole, (3000, 2000), scale=0.5) == int(
        PASS_BYTES_PER_VALUE * 9 * (1500 * 1000))
    # tiled: batch_size tiles of tile + 2 halo, whatever the image's size
    tiles = TileSettings(tile_size=256, halo=32, batch_size=2)
    assert model_pass_bytes(per_pixel, tiles, (3000, 2000)) == int(
        PASS_BYTES_PER_VALUE * 9 * (320 * 320 * 2))
    assert model_pass_bytes(per_pixel, tiles, (30000, 20000)) == model_pass_bytes(
        per_pixel, tiles, (3000, 2000))
    # an image smaller than a tile: its own size, plus the mirrored halo all the same (a
    # halo of 100000 px on a 32-px image was counted as 32 px, then the pass took 149 GiB)
    wide = TileSettings(tile_size=256, halo=4096, batch_size=1)
    assert model_pass_bytes(per_pixel, wide, (32, 32)) == int(
        PASS_BYTES_PER_VALUE * 9 * (32 + 8192) ** 2)
    whole_halo = TileSettings(tile_size=None, halo=64, batch_size=1)
    assert model_pass_bytes(per_pixel, whole_halo, (100, 50)) == int(
        PASS_BYTES_PER_VALUE * 9 * (228 * 178))
    too_big = memory_problem("a.tif", (32, 32), available=10**6, halo=4096,
                             pass_bytes=model_pass_bytes(per_pixel, wide, (32, 32)))
    assert too_big.startswith("a.tif: 32x32 pixels need about") and \
        "the halo is wider than the image: lower --halo" in too_big


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """A trained run whose U-Net outputs a few hundred values per pixel."""
    from dlsuite import api

    config = tiny_training_config(tmp_path_factory.mktemp("wide"), n_filters=16)
    return api.train(config, quiet=True).run_dir


@pytest.mark.slow
def test_whole_image_prediction_counts_the_model_and_points_at_tiles(wide_run, tmp_path):
    """With ``--tile-size none`` the model sees the whole image at once: an input whose
    pixels alone would fit (half the memory available) but whose model pass does not is
    refused before a pixel is read, naming the tiled way; it used to be read and predicted
    until the kernel killed the process."""
    from dlsuite.inference import TileSettings
    from dlsuite.predict import open_run
    from dlsuite.predict_memory import model_pass_bytes, pass_values_per_pixel

    available = available_bytes()
    if available is None:
        pytest.skip("this system does not say how much memory is available")
    per_pixel_input = BYTES_PER_PIXEL + CHAIN_BYTES_PER_PIXEL
    model = open_run(wide_run, quiet=True).model
    per_pixel_pass = model_pass_bytes(pass_values_per_pixel(model), TileSettings(None, 0, 1),
                                      (1000, 1000)) / 1e6
    assert per_pixel_pass > 1.5 * per_pixel_input  # so the model's pass decides
    side = int((0.5 * available / per_pixel_input) ** 0.5)
    assert prediction_bytes((side, side)) < available  # the header check lets it through
    big = tmp_path / "in" / "big.tif"
    big.parent.mkdir()
    tifffile.memmap(big, shape=(side, side), dtype=np.uint16).flush()  # sparse on disk
    proc = run_cli("predict", str(wide_run), str(big.parent), "-o", str(tmp_path / "out"),
                   "--tile-size", "none")
    assert proc.returncode == 2, proc.stderr
    line = " ".join(proc.stderr.split())
    assert f"{big}: {side}x{side} pixels need about" in line
    assert "the model sees the whole image at once (inference.tile_size null): predict it " \
           "in tiles with --tile-size 1024" in line
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
