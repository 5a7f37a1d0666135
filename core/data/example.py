"""Synthetic example data: small phase-contrast-like 2D+t videos with instance labels.

Image model (per video, all drawn from ``numpy.random.default_rng((seed, video_index))``, so
each video depends only on the seed and its index):

- The field is cut into ``g x g`` tiles of about 32 px (``g = max(1, size // 32)``); most tiles
  hold one cell lineage, so cells never overlap and every label is visible in every frame of
  its life (the CTC track file is exact).
- A cell is an ellipse (semi-axes ``a``, ``b = a * U(0.6, 0.9)``, random orientation) whose
  centre drifts by a small random walk with momentum, kept inside its tile. Its orientation
  turns slowly.
- Some cells divide (the first lineage of every video with >= 3 frames, others with p=0.35):
  at frame ``d`` the mother (last frame ``d-1``) is replaced by two smaller, rounder daughters
  placed on both sides of her centre along her long axis, which then move apart. Daughters get
  new label ids and the mother as parent.
- Intensity: background 1; cell interiors dark (``-0.45``, darker towards the centre); a bright
  phase-contrast halo ``+0.5 * exp(-((r - 1.1) / 0.15)^2)`` around each cell, ``r`` the
  normalised elliptic radius; multiplied by a smooth uneven illumination (linear + quadratic
  gradient, up to about +-30 %); light Gaussian blur (sigma 0.7, 3 taps); additive Gaussian noise
  (sigma 0.03); scaled to uint16 as ``1000 + 8000 * value``.
- Labels are uint16 instance ids, constant over time for a cell, 0 for background.

:func:`write_example_videos` writes the same videos in the videos layout and as CTC sequences
(sparse ``SEG``: every other frame plus the last; ``TRA`` on all frames with ``man_track.txt``
holding the divisions). :func:`write_example_frames` writes single 2D frames in the frames
layout. 4 videos of 8 frames at 64 px take well under a second.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import numpy as np

from dlsuite.data.io import write_text_atomic, write_tiff
from dlsuite.data.layouts import INPUT_PREFIX, LABEL_PREFIX
from dlsuite.data.prepare import (_CTC_OUTPUTS, _FRAME_OUTPUTS, _clear_outputs, _record,
                                  write_ctc_sequence)

__all__ = ["SyntheticVideo", "synthetic_video", "write_example_frames", "write_example_videos",
           "example_bytes"]

TILE = 32
DIVIDE_P = 0.35
OCCUPIED_P = 0.85
HALO = (0.5, 1.1, 0.15)  # amplitude, radius, width (in units of the elliptic radius)
DARK = 0.45
NOISE = 0.03
SCALE, OFFSET = 8000.0, 1000.0
#: Peak memory of writing example data: Python and NumPy, then per pixel of one video's
#: frames its float drawing, blur, noise and the uint16 image and labels (measured: 1.69 GiB
#: for one 8-frame 2048 x 2048 video, 3.33 GiB for 16 frames; about 50 bytes per pixel).
EXAMPLE_BASELINE_BYTES = 100 * 2**20
EXAMPLE_BYTES_PER_PIXEL = 56


def example_bytes(frames: int, size: int) -> int:
    """Peak memory, in bytes, expected of writing example videos of ``frames`` frames of
    ``size`` x ``size`` (or frames: ``frames`` = 1); videos are drawn one at a time."""
    return EXAMPLE_BASELINE_BYTES + EXAMPLE_BYTES_PER_PIXEL * int(frames) * int(size) ** 2


@attrs.frozen(eq=False)
class SyntheticVideo:
    """One synthetic video: ``image`` (T, H, W) uint16, ``labels`` (T, H, W) uint16 and
    ``parents`` (daughter label -> mother label)."""

    image: np.ndarray
    labels: np.ndarray
    parents: dict[int, int]


@attrs.define
class _Cell:
    label: int
    begin: int
    end: int  # inclusive
    a: float
    b: float
    centres: np.ndarray  # (frames, 2): y, x (only begin..end are meaningful)
    angles: np.ndarray  # (frames,)


def _walk(rng, start, frames, lo, hi, step=0.6):
    pos = np.empty((frames, 2))
    pos[0] = start
    velocity = rng.uniform(-step, step, 2)
    for t in range(1, frames):
        velocity = 0.7 * velocity + rng.normal(0, step * 0.5, 2)
        pos[t] = np.clip(pos[t - 1] + velocity, lo, hi)
        velocity[(pos[t] == lo) | (pos[t] == hi)] *= -1
    return pos


def _lineage(rng, tile_origin, tile, frames, next_label, divide) -> list[_Cell]:
    a = rng.uniform(0.17, 0.23) * tile
    b = a * rng.uniform(0.6, 0.9)
    da, db = 0.62 * a, 0.52 * a  # daughter semi-axes
    max_sep = 2.0
    margin = max(a, 2 * da + 1 + max_sep) + 1.5
    lo = np.asarray(tile_origin, float) + margin
    hi = np.asarray(tile_origin, float) + tile - margin
    hi = np.maximum(hi, lo)
    centre = _walk(rng, rng.uniform(lo, hi), frames, lo, hi)
    angles = rng.uniform(0, np.pi) + np.cumsum(rng.normal(0, 0.08, frames))
    if not divide:
        return [_Cell(next_label, 0, frames - 1, a, b, centre, angles)]
    d = int(rng.integers(max(1, frames // 4), max(1, (3 * frames) // 4) + 1))
    d = min(max(d, 1), frames - 1)
    mother = _Cell(next_label, 0, d - 1, a, b, centre, angles)
    axis = np.stack([np.sin(angles[d - 1]), np.cos(angles[d - 1])])  # y, x of the long axis
    cells = [mother]
    for k, sign in enumerate((1.0, -1.0), start=1):
        sep = np.minimum(0.7 * np.arange(frames) - 0.7 * d, max_sep).clip(0)
        offset = (da + 1.0 + sep)[:, None] * axis[None, :] * sign
        cells.append(
            _Cell(next_label + k, d, frames - 1, da, db, centre + offset,
                  angles + np.pi / 2 + rng.normal(0, 0.1, frames))
        )
    return cells


def _render(cells: list[_Cell], frames: int, size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    contrast = np.zeros((frames, size, size))
    labels = np.zeros((frames, size, size), np.uint16)
    amp, ring, width = HALO
    for cell in cells:
        reach = int(np.ceil(cell.a * (ring + 3 * width))) + 1
        for t in range(cell.begin, cell.end + 1):
            cy, cx = cell.centres[t]
            y0, y1 = max(0, int(cy) - reach), min(size, int(cy) + reach + 2)
            x0, x1 = max(0, int(cx) - reach), min(size, int(cx) + reach + 2)
            yy, xx = np.mgrid[y0:y1, x0:x1]
            dy, dx = yy - cy, xx - cx
            c, s = np.cos(cell.angles[t]), np.sin(cell.angles[t])
            u, v = dx * c + dy * s, -dx * s + dy * c
            r = np.sqrt((u / cell.a) ** 2 + (v / cell.b) ** 2)
            inside = r < 1.0
            contrast[t, y0:y1, x0:x1] += amp * np.exp(-(((r - ring) / width) ** 2))
            contrast[t, y0:y1, x0:x1] -= DARK * inside * (1.0 - 0.3 * r**2)
            labels[t, y0:y1, x0:x1][inside] = cell.label
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5
    gy, gx = rng.uniform(-0.3, 0.3, 2)
    illumination = 1.0 + gy * yy + gx * xx + rng.uniform(-0.3, 0.3) * (yy**2 + xx**2)
    return (1.0 + contrast) * illumination, labels


def _blur(value: np.ndarray, sigma: float = 0.7) -> np.ndarray:
    """Separable 3-tap Gaussian blur over the last two axes (edge-padded); no scipy import."""
    w = np.exp(-1.0 / (2 * sigma**2))
    k = np.array([w, 1.0, w]) / (1.0 + 2 * w)
    for axis in (-2, -1):
        pad = [(0, 0)] * value.ndim
        pad[axis] = (1, 1)
        p = np.pad(value, pad, mode="edge")
        n = value.shape[axis]
        value = sum(k[i] * np.take(p, range(i, i + n), axis=axis) for i in range(3))
    return value


def synthetic_video(frames: int = 8, size: int = 64, seed: int | tuple = 0) -> SyntheticVideo:
    """One synthetic phase-contrast video (see the module docstring for the model)."""
    if frames < 1 or size < 16:
        raise ValueError(f"need frames >= 1 and size >= 16, got frames={frames}, size={size}")
    rng = np.random.default_rng(seed)
    g = max(1, size // TILE)
    tile = size / g
    occupied = rng.random(g * g) < OCCUPIED_P
    occupied[int(rng.integers(g * g))] = True
    cells: list[_Cell] = []
    parents: dict[int, int] = {}
    first = True
    for i in np.flatnonzero(occupied):
        origin = ((i // g) * tile, (i % g) * tile)
        divide = frames >= 3 and (first or rng.random() < DIVIDE_P)
        first = False
        lineage = _lineage(rng, origin, tile, frames, len(cells) + 1, divide)
        for daughter in lineage[1:]:
            parents[daughter.label] = lineage[0].label
        cells += lineage
    value, labels = _render(cells, frames, size, rng)
    value = _blur(value) + rng.normal(0, NOISE, value.shape)
    image = np.clip(OFFSET + SCALE * value, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return SyntheticVideo(image, labels, parents)


def _sparse_annotation(frames: int) -> list[int]:
    return sorted(set(range(0, frames, 2)) | {frames - 1})


def write_example_videos(
    out_dir: str | os.PathLike, n_videos: int = 4, frames: int = 8, size: int = 64, seed: int = 0
) -> dict:
    """Write ``n_videos`` synthetic videos as a videos layout and as CTC sequences.

    Files: ``out_dir/videos/{inputs,labels}/cells_NN.tif``; ``out_dir/ctc/NN/tTTT.tif``,
    ``out_dir/ctc/NN_GT/SEG/man_segTTT.tif`` (every other frame plus the last),
    ``out_dir/ctc/NN_GT/TRA/man_trackTTT.tif`` (all frames) and ``man_track.txt`` (with
    parents), ``out_dir/ctc/sequences.csv``. Files of an earlier example run there are
    replaced. Deterministic in ``seed``. Returns
    ``{"videos": folder, "ctc": folder, "inputs": [...], "labels": [...],
    "sequences": [...], "annotated": [...]}``.
    """
    out = Path(out_dir)
    videos_root, ctc_root = out / "videos", out / "ctc"
    written: dict = {"videos": videos_root, "ctc": ctc_root, "inputs": [], "labels": [],
                     "sequences": [], "annotated": _sparse_annotation(frames)}
    rows = ["sequence;video"]
    # a rerun with other sizes must not leave files of the previous run behind
    owned = _clear_outputs(videos_root, ("inputs/cells_*.tif", "labels/cells_*.tif"),
                           overwrite=True)
    _clear_outputs(ctc_root, _CTC_OUTPUTS, overwrite=True)
    _record(owned, [videos_root / kind / f"cells_{k:02d}.tif" for k in range(n_videos)
                    for kind in ("inputs", "labels")])
    for k in range(n_videos):
        video = synthetic_video(frames, size, seed=(seed, k))
        name, sequence = f"cells_{k:02d}", f"{k + 1:02d}"
        written["inputs"].append(write_tiff(videos_root / "inputs" / f"{name}.tif", video.image))
        written["labels"].append(write_tiff(videos_root / "labels" / f"{name}.tif", video.labels))
        write_ctc_sequence(ctc_root, sequence, video.labels, images=video.image, kind="GT",
                           annotated=written["annotated"], parents=video.parents)
        written["sequences"].append(ctc_root / sequence)
        rows.append(f"{sequence};{name}")
    write_text_atomic(ctc_root / "sequences.csv", "\n".join(rows) + "\n")
    return written


def write_example_frames(
    out_dir: str | os.PathLike, n: int = 8, size: int = 64, seed: int = 0
) -> dict:
    """Write ``n`` synthetic 2D frames in the frames layout under ``out_dir/frames``:
    ``inputs/raw_NNN.tif`` (uint16) + ``labels/instance_ids_NNN.tif`` (uint16), from 000.
    Deterministic in ``seed``. Returns ``{"frames": folder, "inputs": [...], "labels": [...]}``.
    """
    root = Path(out_dir) / "frames"
    written: dict = {"frames": root, "inputs": [], "labels": []}
    owned = _clear_outputs(root, _FRAME_OUTPUTS, overwrite=True)
    _record(owned, [root / kind / f"{prefix}{k:03d}.tif" for k in range(n)
                    for kind, prefix in (("inputs", INPUT_PREFIX), ("labels", LABEL_PREFIX))])
    for k in range(n):
        video = synthetic_video(1, size, seed=(seed, k, 1))
        image_path = root / "inputs" / f"{INPUT_PREFIX}{k:03d}.tif"
        label_path = root / "labels" / f"{LABEL_PREFIX}{k:03d}.tif"
        written["inputs"].append(write_tiff(image_path, video.image[0]))
        written["labels"].append(write_tiff(label_path, video.labels[0]))
    return written
