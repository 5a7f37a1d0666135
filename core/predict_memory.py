"""Does a whole-image prediction fit in memory? Checked from the input headers before any
pixel is read, so ``dlsuite predict`` of a stitched 40000 x 40000 image stops at once with
the way forward (``--block-size``) instead of being killed by the kernel after minutes.

The estimate (:func:`prediction_bytes`) is linear in the pixels: a baseline for TensorFlow
and the model, :data:`BYTES_PER_PIXEL` for every pixel of the input (its copy as float32,
the probabilities and their test-time augmentation, the labels, the TIFF writing) and
:data:`CHAIN_BYTES_PER_PIXEL` per pixel of one frame for the post-processing chain, which
runs frame by frame. ``python benchmarks/predict_memory.py`` measures the peak resident
memory of real predictions beside this estimate: with the quickstart run (test-time
augmentation, ``distance_watershed``) the estimate is 1.06 to 1.10 times the peak measured for
2048 x 2048 and 4096 x 4096 images and a 20-frame 1024 x 1024 video, with and without the
chain (2.16 GiB measured for the 4096 x 4096 image with its chain). Memory available is the
kernel's ``MemAvailable``, bounded by a cgroup (container) limit when there is one.

Once the model is loaded, :func:`model_pass_bytes` adds a lower bound of its own pass: the
values its layers output for the pixels one pass sees, times :data:`PASS_BYTES_PER_VALUE`.
With tiles that is a small constant (the benchmark's figures above); with
``inference.tile_size`` null the model sees the whole image, and it dominates (measured: 7.3
GB peak for a 4096 x 4096 image with the quickstart U-Net, where the header estimate said 2.4).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BASELINE_BYTES", "BYTES_PER_PIXEL", "CHAIN_BYTES_PER_PIXEL", "PASS_BYTES_PER_VALUE",
           "prediction_bytes", "pass_values_per_pixel", "model_pass_bytes", "available_bytes",
           "memory_problem"]

#: TensorFlow, Keras and a small model loaded (measured: 0.76 GiB).
BASELINE_BYTES = 800 * 2**20
#: Per input pixel: float32 input, probabilities and their test-time augmentation, labels,
#: writing.
BYTES_PER_PIXEL = 64
#: Per pixel of one frame, for the post-processing chain.
CHAIN_BYTES_PER_PIXEL = 32

_GIB = 2**30


#: Per value the model's layers output in one inference pass: a lower bound of the bytes
#: the pass adds (measured whole-image at 2048 x 2048: 1.25 for a U-Net with BatchNorm, 1.5
#: for the quickstart U-Net, 3.5 for ``mobilenet_mobileunet``).
PASS_BYTES_PER_VALUE = 1.2


def prediction_bytes(shape: tuple[int, ...], *, postprocess: bool = True,
                     pass_bytes: int = 0) -> int:
    """Peak memory, in bytes, expected of predicting one input of ``shape`` (``(H, W)`` or
    ``(T, H, W)``, as :func:`dlsuite.data.io.read_info` gives it) in one piece, the model's
    pass taking ``pass_bytes`` (:func:`model_pass_bytes`; 0: not counted)."""
    frame = int(shape[-2]) * int(shape[-1])
    frames = int(shape[0]) if len(shape) == 3 else 1
    return (BASELINE_BYTES + frames * frame * BYTES_PER_PIXEL
            + (frame * CHAIN_BYTES_PER_PIXEL if postprocess else 0) + int(pass_bytes))


def pass_values_per_pixel(model, size_multiple: int = 1) -> float:
    """How many values the layers of ``model`` output per input pixel (counted once at a
    small size, :func:`dlsuite.keras_helpers.activation_elements`); 0 for a model whose
    layers cannot be counted (not a functional Keras model)."""
    from .keras_helpers import activation_elements

    m = max(1, int(size_multiple))
    side = -(-64 // m) * m
    try:
        dims = tuple(model.inputs[0].shape[1:])
        sample = tuple(side if d is None else int(d) for d in dims)
        elements = activation_elements(model, [(1,) + sample])
    except Exception:  # noqa: BLE001 - an estimate only: the prediction reports real errors
        return 0.0
    return elements / (sample[-3] * sample[-2]) if elements else 0.0


def model_pass_bytes(values_per_pixel: float, tiles, shape: tuple[int, ...], *,
                     scale: float = 1.0) -> int:
    """A lower bound of the memory one pass of a model outputting ``values_per_pixel``
    (:func:`pass_values_per_pixel`) adds when predicting an input of ``shape`` with the
    tiling ``tiles`` (:class:`dlsuite.inference.TileSettings`): those values for the pixels
    one pass sees (the whole frame, resized by ``scale``, when ``tiles.tile_size`` is None;
    else ``tiles.batch_size`` tiles; each, or the frame, extended by the mirrored halo on
    every side, as tiling does, however large the halo), times :data:`PASS_BYTES_PER_VALUE`."""
    height, width = (max(1, round(int(n) * scale)) for n in shape[-2:])
    halo = 2 * int(tiles.halo)
    if tiles.tile_size is None:
        pixels = (height + halo) * (width + halo)
    else:
        core = int(tiles.tile_size)
        pixels = (min(core, height) + halo) * (min(core, width) + halo) * int(tiles.batch_size)
    return int(PASS_BYTES_PER_VALUE * values_per_pixel * pixels)


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            return int(text)
    return None


def available_bytes() -> int | None:
    """Memory a new allocation can get now, in bytes (None when the system does not say)."""
    found = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    limit = _cgroup_limit()
    return found if limit is None else min(found, limit)


def memory_problem(name: str, shape: tuple[int, ...], *, postprocess: bool = True,
                   available: int | None = None,
                   what: str = "of memory is available", pass_bytes: int = 0,
                   whole_image: bool = False, halo: int = 0) -> str | None:
    """A one-line message when predicting the input ``name`` of ``shape`` in one piece needs
    more memory than is ``available`` (default: :func:`available_bytes`; ``what`` says
    whose), naming both and the block-wise way (with ``whole_image``, a model pass over the
    whole image, taking ``pass_bytes``: the tiled way first; with a ``halo`` wider than the
    image, lowering it); None when it fits or nothing is known of the memory."""
    available = available_bytes() if available is None else available
    need = prediction_bytes(shape, postprocess=postprocess, pass_bytes=pass_bytes)
    if available is None or need <= available:
        return None
    size = "x".join(str(int(n)) for n in shape)
    digits = 1  # enough digits to tell the two apart (not "0.8 GiB ..., 0.8 GiB")
    while digits < 3 and f"{need / _GIB:.{digits}f}" == f"{available / _GIB:.{digits}f}":
        digits += 1
    if halo > max(int(n) for n in shape[-2:]):  # the mirrored context is most of the pass
        return (f"{name}: {size} pixels need about {need / _GIB:.{digits}f} GiB to predict "
                f"with a halo of {halo} px on every side, {available / _GIB:.{digits}f} GiB "
                f"{what}; the halo is wider than the image: lower --halo (inference.halo; "
                "'auto' measures the model's reach)")
    tiled = ("the model sees the whole image at once (inference.tile_size null): predict it "
             "in tiles with --tile-size 1024, or " if whole_image else "predict it ")
    return (f"{name}: {size} pixels need about {need / _GIB:.{digits}f} GiB to predict in one "
            f"piece, {available / _GIB:.{digits}f} GiB {what}; {tiled}block by block "
            "with --block-size 1024 (dlsuite[scale]; or convert it with dlsuite prepare "
            "ome-zarr)")
