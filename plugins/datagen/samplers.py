"""Patch sampler factories: ``factory(params) -> callable(labels, patch_size, rng)
-> (top, left)``.

``labels`` is the ``(H, W)`` integer label frame (already padded by the pipeline to at least
the patch size), ``patch_size`` is ``(h, w)``, ``rng`` a :class:`numpy.random.Generator`. The
returned ``(top, left)`` always keeps the patch fully inside: ``0 <= top <= H - h`` and
``0 <= left <= W - w``. The patch *centre* is pixel ``(top + h // 2, left + w // 2)``.

``foreground_pdf`` draws the centre from the distribution giving weight 1 to background and
``pdf`` to foreground pixels among the valid centres, exactly, by rejection sampling: propose a
uniform valid centre, accept it with probability ``weight / max_weight``. Proposals are drawn
in vectorised blocks, so it costs O(1/foreground fraction) pixel look-ups and no per-frame
precomputation. When a few blocks find nothing (no or almost no foreground) it falls back to
the exact two-stage draw over the whole frame (choose foreground with probability
``pdf * n_fg / (n_bg + pdf * n_fg)``, then a uniform pixel of that class), which is uniform
for frames without foreground.

``instances`` centres the patch on an instance drawn uniformly among the frame's instances
(every cell equally likely, whatever its size, as SEG counts them), at a uniform pixel of
it, the centre moved the least needed to keep the patch inside; with probability
``background`` (and on frames without instances) the position is uniform instead.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from dlsuite import DlsuiteInputError

__all__ = ["build_uniform", "build_foreground_pdf", "build_instances", "valid_range"]

_BLOCK = 1024  # proposals per vectorised block
_MAX_BLOCKS = 8  # then fall back to the exact two-stage draw

Sampler = Callable[[np.ndarray, tuple[int, int], np.random.Generator], tuple[int, int]]


def valid_range(shape: tuple[int, int], patch_size: tuple[int, int]) -> tuple[int, int]:
    """Number of valid top and left positions ``(H - h + 1, W - w + 1)``; raises ValueError
    when the patch does not fit (the pipeline pads first)."""
    H, W = shape[:2]
    h, w = patch_size
    if h > H or w > W:
        raise ValueError(f"patch {patch_size} larger than frame {(H, W)}: pad the frame first")
    return H - h + 1, W - w + 1


def build_uniform(params) -> Sampler:
    """Every valid patch position equally likely."""

    def sample(labels: np.ndarray, patch_size, rng: np.random.Generator) -> tuple[int, int]:
        ny, nx = valid_range(labels.shape, patch_size)
        return int(rng.integers(ny)), int(rng.integers(nx))

    return sample


def build_foreground_pdf(params) -> Sampler:
    """Centre drawn with weight 1 on background and ``pdf`` on foreground (exact)."""
    pdf = float(params.pdf)
    if not pdf > 0:
        raise DlsuiteInputError(f"sampler 'foreground_pdf': pdf must be > 0, got {params.pdf}")
    w_max = max(1.0, pdf)
    accept_fg, accept_bg = pdf / w_max, 1.0 / w_max

    def sample(labels: np.ndarray, patch_size, rng: np.random.Generator) -> tuple[int, int]:
        ny, nx = valid_range(labels.shape, patch_size)
        cy, cx = patch_size[0] // 2, patch_size[1] // 2
        for _ in range(_MAX_BLOCKS):
            tops = rng.integers(ny, size=_BLOCK)
            lefts = rng.integers(nx, size=_BLOCK)
            fg = labels[tops + cy, lefts + cx] > 0
            ok = rng.random(_BLOCK) < np.where(fg, accept_fg, accept_bg)
            hit = np.flatnonzero(ok)
            if hit.size:
                return int(tops[hit[0]]), int(lefts[hit[0]])
        # exact two-stage fallback over the valid centres
        region = labels[cy:cy + ny, cx:cx + nx] > 0
        n_fg = int(np.count_nonzero(region))
        n_bg = region.size - n_fg
        p_fg = pdf * n_fg / (n_bg + pdf * n_fg)
        choose = rng.random() < p_fg
        index = np.flatnonzero(region == choose)
        flat = int(index[rng.integers(index.size)])
        return flat // nx, flat % nx

    return sample


def build_instances(params) -> Sampler:
    """Centre on a uniformly drawn instance (module docstring), else uniform."""
    background = float(params.background)
    if not 0 <= background <= 1:
        raise DlsuiteInputError(
            f"sampler 'instances': background must be in [0, 1], got {params.background}")
    uniform = build_uniform(params)

    def sample(labels: np.ndarray, patch_size, rng: np.random.Generator) -> tuple[int, int]:
        ny, nx = valid_range(labels.shape, patch_size)
        if rng.random() < background:
            return uniform(labels, patch_size, rng)
        flat = labels.ravel()
        ids = np.unique(flat[flat != 0])  # any id range (bincount would size by the largest)
        if not ids.size:
            return uniform(labels, patch_size, rng)
        pixels = np.flatnonzero(flat == ids[rng.integers(len(ids))])
        y, x = divmod(int(pixels[rng.integers(pixels.size)]), labels.shape[1])
        top = min(max(y - patch_size[0] // 2, 0), ny - 1)
        left = min(max(x - patch_size[1] // 2, 0), nx - 1)
        return top, left

    return sample
