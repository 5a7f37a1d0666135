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
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BASELINE_BYTES", "BYTES_PER_PIXEL", "CHAIN_BYTES_PER_PIXEL", "prediction_bytes",
           "available_bytes", "memory_problem"]

#: TensorFlow, Keras and a small model loaded (measured: 0.76 GiB).
BASELINE_BYTES = 800 * 2**20
#: Per input pixel: float32 input, probabilities and their test-time augmentation, labels,
#: writing.
BYTES_PER_PIXEL = 64
#: Per pixel of one frame, for the post-processing chain.
CHAIN_BYTES_PER_PIXEL = 32

_GIB = 2**30


def prediction_bytes(shape: tuple[int, ...], *, postprocess: bool = True) -> int:
    """Peak memory, in bytes, expected of predicting one input of ``shape`` (``(H, W)`` or
    ``(T, H, W)``, as :func:`dlsuite.data.io.read_info` gives it) in one piece."""
    frame = int(shape[-2]) * int(shape[-1])
    frames = int(shape[0]) if len(shape) == 3 else 1
    return (BASELINE_BYTES + frames * frame * BYTES_PER_PIXEL
            + (frame * CHAIN_BYTES_PER_PIXEL if postprocess else 0))


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
                   what: str = "of memory is available") -> str | None:
    """A one-line message when predicting the input ``name`` of ``shape`` in one piece needs
    more memory than is ``available`` (default: :func:`available_bytes`; ``what`` says
    whose), naming both and the block-wise way; None when it fits or nothing is known of
    the memory."""
    available = available_bytes() if available is None else available
    need = prediction_bytes(shape, postprocess=postprocess)
    if available is None or need <= available:
        return None
    size = "x".join(str(int(n)) for n in shape)
    digits = 1  # enough digits to tell the two apart (not "0.8 GiB ..., 0.8 GiB")
    while digits < 3 and f"{need / _GIB:.{digits}f}" == f"{available / _GIB:.{digits}f}":
        digits += 1
    return (f"{name}: {size} pixels need about {need / _GIB:.{digits}f} GiB to predict in one "
            f"piece, {available / _GIB:.{digits}f} GiB {what}; predict it block by block "
            "with --block-size 1024 (dlsuite[scale]; or convert it with dlsuite prepare "
            "ome-zarr)")
