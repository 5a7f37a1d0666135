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

from conftest import run_cli
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
