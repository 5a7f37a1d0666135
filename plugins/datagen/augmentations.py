"""Augmentation factories: ``factory(params) -> callable(image, target, rng)
-> (image, target)``.

``image`` is ``(T, h, w)`` float32 (T=1 for 2D models), ``target`` ``(h, w, C)`` float32 whose
channel 0 is the class index and further channels (e.g. pixel weights) are continuous. A
geometric transform is the *same* for all T frames, the class channel and the other channels;
the class channel is resampled with nearest neighbour (order 0) so class values stay exact,
the image and other channels bilinearly (order 1). Intensity and noise touch the image only.

Context protocol (used by ``dlsuite.data.pipeline``): an augmentation that needs pixels from
outside the patch (rotation, zoom-out, shift) has a method ``margin(patch_size) -> (my, mx)``
and accepts a keyword ``patch_size``. The pipeline then cuts the patch with the sum of those
margins around it (never the whole frame), calls each such step with ``patch_size=`` the patch
plus the margins of the steps after it (so every step reads real pixels), and centre-crops the
result to the patch. Given ``patch_size``, :class:`Affine` evaluates only the central
``patch_size`` output (so later steps work on the small array) and expresses ``shift`` as a
fraction of the patch; without it, output has the input's shape and ``shift`` is a fraction of
the input size. Augmentations without ``margin`` are called with the three arguments only.

Plugins: ``affine`` (rotation, shift and zoom composed into one matrix, so the image is
interpolated once, fill mode ``reflect`` by default), ``elastic`` (a smooth random
displacement field, as in the U-Net paper), ``flip`` (horizontal/vertical, each with
probability 0.5), ``intensity`` (brightness/contrast jitter), ``noise`` (Gaussian).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy import ndimage

from dlsuite import DlsuiteInputError

__all__ = ["Affine", "Elastic", "build_affine", "build_elastic", "build_flip", "build_intensity",
           "build_noise", "warp"]


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise DlsuiteInputError(f"augmentation {name!r}: probability must be in [0, 1], got {p}")


class Affine:
    """Random rotation + shift + zoom, one interpolation (see module docstring)."""

    def __init__(self, params):
        if not 0.0 <= params.zoom < 1.0:
            raise DlsuiteInputError(
                f"augmentation 'affine': zoom must be in [0, 1), got {params.zoom}")
        if not 0.0 <= params.shift < 0.5:
            raise DlsuiteInputError(
                f"augmentation 'affine': shift must be in [0, 0.5), got {params.shift}")
        if params.rotation < 0:
            raise DlsuiteInputError(
                f"augmentation 'affine': rotation must be >= 0, got {params.rotation}")
        _check_probability("affine", params.probability)
        self.params = params

    def margin(self, patch_size) -> tuple[int, int]:
        """Pixels of context needed on each side of a ``patch_size`` patch so that every output
        pixel samples real image data for any draw of the parameters."""
        h, w = patch_size
        p = self.params
        angles = np.radians(np.linspace(0.0, min(p.rotation, 90.0), 46))
        cos, sin = np.abs(np.cos(angles)), np.abs(np.sin(angles))
        zmin = 1.0 - p.zoom
        ey = float(np.max(cos * h / 2 + sin * w / 2)) / zmin + p.shift * h
        ex = float(np.max(sin * h / 2 + cos * w / 2)) / zmin + p.shift * w
        return max(0, math.ceil(ey - h / 2) + 1), max(0, math.ceil(ex - w / 2) + 1)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random ``(matrix, shift)``: output->input 2x2 matrix and shift in units of the
        reference size (multiply by the patch or array size)."""
        p = self.params
        theta = math.radians(rng.uniform(-p.rotation, p.rotation))
        zy = rng.uniform(1 - p.zoom, 1 + p.zoom)
        zx = rng.uniform(1 - p.zoom, 1 + p.zoom) if p.independent_zoom else zy
        shift = rng.uniform(-p.shift, p.shift, size=2)
        c, s = math.cos(theta), math.sin(theta)
        matrix = np.array([[c, -s], [s, c]]) @ np.diag([1.0 / zy, 1.0 / zx])
        return matrix, shift

    def __call__(self, image, target, rng, patch_size=None):
        """Warp ``image`` ``(T, H, W)`` and ``target`` ``(H, W, C)`` with one random draw;
        with ``patch_size`` return only the central ``patch_size`` output."""
        if self.params.probability < 1.0 and rng.random() >= self.params.probability:
            return image, target
        matrix, shift = self.draw(rng)
        in_shape = np.array(image.shape[-2:], dtype=float)
        out_shape = np.array(patch_size if patch_size is not None else image.shape[-2:],
                             dtype=float)
        # input = c_in + M (o - c_out) + shift * size   (pixel-centre coordinates)
        offset = (in_shape - 1) / 2 - matrix @ ((out_shape - 1) / 2) + shift * out_shape
        shape = tuple(int(v) for v in out_shape)
        cy, cx = _coordinates(matrix, offset, shape)
        return _resample(image, target, cy, cx, shape, self.params.fill)


class Elastic:
    """Random smooth deformation: displacements drawn (normal, standard deviation ``alpha``
    pixels) on a grid of control points ``spacing`` pixels apart, interpolated cubically to
    every pixel and clipped to ``3 * alpha``, one field for the image, all frames and the
    target (see module docstring for the context protocol). Place it after ``affine``: it then
    deforms the patch only (2 ms per 128-pixel patch with the target's context), not the
    context a rotation and zoom need (80 ms with ``affine`` rotation 90, zoom 0.4)."""

    def __init__(self, params):
        _check_probability("elastic", params.probability)
        self.params = params
        self.limit = 3.0 * params.alpha

    def margin(self, patch_size) -> tuple[int, int]:
        """Pixels of context on each side: the largest displacement, plus one for bilinear."""
        m = math.ceil(self.limit) + 1
        return m, m

    def field(self, out_shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A random ``(2, h, w)`` displacement field (y, x) in pixels, ``|d| <= 3 alpha``."""
        h, w = out_shape
        s = float(self.params.spacing)
        wy, wx = _spline_weights(h, s), _spline_weights(w, s)
        coarse = rng.normal(0.0, self.params.alpha, size=(2, wy.shape[1], wx.shape[1]))
        d = wy @ coarse @ wx.T  # separable cubic spline, as ndimage.map_coordinates order 3
        return np.clip(d, -self.limit, self.limit).astype(np.float32)

    def __call__(self, image, target, rng, patch_size=None):
        """Deform ``image`` ``(T, H, W)`` and ``target`` ``(H, W, C)`` with one random field;
        with ``patch_size`` return only the central ``patch_size`` output."""
        p = self.params
        if p.alpha == 0 or (p.probability < 1.0 and rng.random() >= p.probability):
            return image, target
        H, W = image.shape[-2:]
        shape = tuple(int(v) for v in (patch_size if patch_size is not None else (H, W)))
        d = self.field(shape, rng)
        oy, ox = _grid(shape)
        cy = oy + np.float32((H - shape[0]) / 2) + d[0].ravel()
        cx = ox + np.float32((W - shape[1]) / 2) + d[1].ravel()
        return _resample(image, target, cy, cx, shape, "reflect")


def _resample(image, target, cy, cx, shape, mode: str):
    """``image`` ``(T, H, W)`` and ``target`` ``(H, W, C)`` read at the flat input coordinates
    ``(cy, cx)`` of every output pixel of ``shape``: the image and target channels 1.. bilinear,
    the class channel 0 nearest (ids and classes stay exact), boundary ``mode``."""
    H, W = image.shape[-2:]
    bilinear = _plan(cy, cx, H, W, 1, mode)
    new_image = _apply(bilinear, image, shape)
    channels = _apply(_plan(cy, cx, H, W, 0, mode), target[..., :1].transpose(2, 0, 1), shape)
    if target.shape[-1] > 1:
        rest = _apply(bilinear, np.moveaxis(target[..., 1:], -1, 0), shape)
        channels = np.concatenate([channels, rest])
    return new_image, np.moveaxis(channels, 0, -1)


@functools.lru_cache(maxsize=16)
def _spline_weights(n: int, spacing: float) -> np.ndarray:
    """``(n, nodes)`` weights of the cubic spline through control points ``spacing`` apart
    at pixels ``0..n-1`` (the 1D operator of ``ndimage.map_coordinates(order=3)``)."""
    nodes = math.ceil((n - 1) / spacing) + 1
    at = (np.arange(n) / spacing)[None]
    return np.stack([ndimage.map_coordinates(e, at, order=3, mode="nearest")
                     for e in np.eye(nodes)], axis=1)


def _fold(index: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Map integer pixel indices into ``0..n-1`` following scipy.ndimage boundary ``mode``;
    for ``constant`` also return the mask of indices that were inside."""
    if mode == "nearest":
        return np.clip(index, 0, n - 1), None
    if mode == "constant":
        return np.clip(index, 0, n - 1), (index >= 0) & (index < n)
    if mode == "mirror" and n > 1:
        period = 2 * n - 2
        k = index % period
        return np.where(k < n, k, period - k), None
    if mode == "mirror":
        return np.zeros_like(index), None
    period = 2 * n  # reflect: (d c b a | a b c d | d c b a)
    k = index % period
    return np.where(k < n, k, period - 1 - k), None


@functools.lru_cache(maxsize=8)
def _grid(out_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    oy, ox = np.indices(out_shape, dtype=np.float32)
    return oy.ravel(), ox.ravel()


def _coordinates(matrix, offset, out_shape) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinates ``matrix @ o + offset`` of every output pixel ``o`` (flat, float32)."""
    oy, ox = _grid(tuple(out_shape))
    m = np.asarray(matrix, dtype=np.float32)
    cy = m[0, 0] * oy + m[0, 1] * ox + np.float32(offset[0])
    cx = m[1, 0] * oy + m[1, 1] * ox + np.float32(offset[1])
    return cy, cx


def _inside(index: np.ndarray, n: int, extra: int = 0) -> bool:
    return bool(index.min() >= 0 and index.max() + extra < n)


def _plan(cy, cx, H: int, W: int, order: int, mode: str) -> list[tuple[np.ndarray, Any]]:
    """Flat gather indices and weights implementing nearest (order 0) or bilinear (order 1)
    resampling at ``(cy, cx)`` with scipy.ndimage boundary ``mode``."""
    if order == 0:
        iy = np.rint(cy).astype(np.intp)
        ix = np.rint(cx).astype(np.intp)
        if _inside(iy, H) and _inside(ix, W):
            return [(iy * W + ix, None)]
        iy, vy = _fold(iy, H, mode)
        ix, vx = _fold(ix, W, mode)
        return [(iy * W + ix, None if vy is None else (vy & vx).astype(np.float32))]
    fy, fx = np.floor(cy), np.floor(cx)
    wy, wx = cy - fy, cx - fx
    y0, x0 = fy.astype(np.intp), fx.astype(np.intp)
    weights = [(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx]
    if _inside(y0, H, 1) and _inside(x0, W, 1):
        base = y0 * W + x0
        return list(zip((base, base + 1, base + W, base + W + 1), weights))
    ya, vya = _fold(y0, H, mode)
    yb, vyb = _fold(y0 + 1, H, mode)
    xa, vxa = _fold(x0, W, mode)
    xb, vxb = _fold(x0 + 1, W, mode)
    pairs = [(ya, xa, vya, vxa), (ya, xb, vya, vxb), (yb, xa, vyb, vxa), (yb, xb, vyb, vxb)]
    plan = []
    for (y, x, vy, vx), w in zip(pairs, weights):
        plan.append((y * W + x, w if vy is None else w * (vy & vx)))
    return plan


def _apply(plan, stack: np.ndarray, out_shape) -> np.ndarray:
    """Resample every slice of ``stack`` ``(K, H, W)`` with a :func:`_plan`."""
    K = stack.shape[0]
    flat = np.ascontiguousarray(stack, dtype=np.float32).reshape(K, -1)
    out = np.empty((K, plan[0][0].size), np.float32)
    term = np.empty(out.shape[1], np.float32) if len(plan) > 1 else None
    # one 1D ``take`` per slice and term: ~3x faster than fancy indexing ``flat[:, index]``
    for row, acc in zip(flat, out):
        for j, (index, weight) in enumerate(plan):
            dest = acc if j == 0 else term
            np.take(row, index, out=dest, mode="clip")  # indices are in range already
            if weight is not None:
                dest *= weight
            if j:
                acc += term
    return out.reshape((K,) + tuple(out_shape))


def warp(stack: np.ndarray, matrix: np.ndarray, offset: np.ndarray, out_shape: tuple[int, int],
         order: int, mode: str) -> np.ndarray:
    """Affine resampling of every ``(H, W)`` slice of ``stack`` ``(K, H, W)`` with one shared
    coordinate computation: output pixel ``o`` reads input ``matrix @ o + offset`` (as
    :func:`scipy.ndimage.affine_transform` with ``prefilter=False``), ``order`` 0 (nearest) or
    1 (bilinear), boundary ``mode`` as in scipy.ndimage except ``constant``, which fills 0
    (scipy's ``grid-constant``). Returns float32 ``(K,) + out_shape``."""
    shape = tuple(int(v) for v in out_shape)
    cy, cx = _coordinates(matrix, offset, shape)
    return _apply(_plan(cy, cx, stack.shape[-2], stack.shape[-1], order, mode), stack, shape)


def build_affine(params) -> Affine:
    """Random rotation, shift and zoom as one affine warp (:class:`Affine`)."""
    return Affine(params)


def build_elastic(params) -> Elastic:
    """Random smooth elastic deformation (:class:`Elastic`)."""
    if params.alpha < 0 or params.spacing <= 0:
        raise DlsuiteInputError("augmentation 'elastic': alpha must be >= 0 and spacing > 0, "
                                f"got alpha {params.alpha}, spacing {params.spacing}")
    return Elastic(params)


def build_flip(params):
    """Random flips: left-right (``horizontal``) and up-down (``vertical``), each p=0.5."""

    def flip(image, target, rng):
        if params.horizontal and rng.random() < 0.5:
            image, target = image[..., ::-1], target[:, ::-1]
        if params.vertical and rng.random() < 0.5:
            image, target = image[..., ::-1, :], target[::-1]
        return image, target

    return flip


def build_intensity(params):
    """Brightness/contrast jitter of the image (the same for all frames); target unchanged."""
    _check_probability("intensity", params.probability)
    if params.contrast < 0 or params.brightness < 0:
        raise DlsuiteInputError("augmentation 'intensity': brightness and contrast must be >= 0")

    def jitter(image, target, rng):
        if params.probability < 1.0 and rng.random() >= params.probability:
            return image, target
        factor = rng.uniform(1 - params.contrast, 1 + params.contrast)
        offset = rng.uniform(-params.brightness, params.brightness)
        mean = float(image.mean(dtype=np.float64))
        out = np.multiply(image, np.float32(factor), dtype=np.float32)  # a new array
        out += np.float32(mean * (1 - factor) + offset)  # (x - mean) * factor + mean + offset
        return out, target

    return jitter


def build_noise(params):
    """Additive Gaussian noise on the image with a standard deviation drawn in [0, sigma]."""
    _check_probability("noise", params.probability)
    if params.sigma < 0:
        raise DlsuiteInputError(f"augmentation 'noise': sigma must be >= 0, got {params.sigma}")

    def noise(image, target, rng):
        if rng.random() >= params.probability:
            return image, target
        sigma = rng.uniform(0.0, params.sigma)
        return (image + rng.normal(0.0, sigma, size=image.shape)).astype(np.float32), target

    return noise
