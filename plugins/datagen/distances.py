"""Exact Euclidean distances of instance-label images, for the ``weight_map`` and ``distance``
targets.

The transforms are OpenCV's ``distanceTransform(DIST_L2, DIST_MASK_PRECISE)`` (Felzenszwalb's
exact algorithm), per instance on small crops: on 304x304 training patches it measured 1.3-2x
faster than SciPy's ``distance_transform_edt`` and than the ``edt`` package
(``benchmarks/distance_transforms.py``). OpenCV returns float32 distances whose last bit
sometimes differs from the correctly rounded square root; every distance returned here is
therefore recomputed as ``float32(sqrt(n))`` from its exact integer square ``n`` (recovered as
``rint(d**2)``, exact while ``n < 2**20``, i.e. distances below 1024 px; beyond, within one
float32 ulp), so results equal SciPy's float64 distances rounded once to float32. As in SciPy, pixels outside the image are never
background.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["distance_to_zero", "separation_distances", "instance_distances", "centre_region"]


def _cv2():
    import cv2

    return cv2


def _exact(d: np.ndarray) -> np.ndarray:
    """float32 ``sqrt(n)`` of the integer squares ``n = rint(d**2)`` (``inf`` stays ``inf``).

    In float32 throughout: for ``d`` within one ulp of ``sqrt(n)`` and ``n < 2**20`` the
    float32 square is within 0.5 of ``n``, and the float32 square root of an integer is the
    correctly rounded one (= float64 sqrt rounded to float32)."""
    sq = np.square(d, dtype=np.float32)
    np.rint(sq, out=sq)
    return np.sqrt(sq, out=sq)


def distance_to_zero(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (float32, OpenCV precision: within one float32 ulp of exact) of
    every pixel of the 2D boolean ``mask`` to its nearest False pixel (0 on False pixels).
    ``mask`` must contain a False pixel; outside the image is not False."""
    m = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    cv2 = _cv2()
    return cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


# -------------------------------------------------------------------------- separation
def _grown_boxes(labels: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, boxes, grown)`` of the present instances: ``boxes`` / ``grown`` are
    ``(n, 4)`` int arrays ``y0, y1, x0, x1`` of the bounding boxes and of the boxes grown by
    ``ceil(reach)`` (clipped to the image)."""
    H, W = labels.shape
    r = int(np.ceil(reach))
    found = [(i + 1, b) for i, b in enumerate(ndimage.find_objects(labels)) if b is not None]
    ids = np.array([i for i, _ in found], dtype=np.int64)
    boxes = np.array([(b[0].start, b[0].stop, b[1].start, b[1].stop) for _, b in found],
                     dtype=np.int64).reshape(-1, 4)
    grown = boxes + np.array([-r, r, -r, r])
    np.clip(grown[:, :2], 0, H, out=grown[:, :2])
    np.clip(grown[:, 2:], 0, W, out=grown[:, 2:])
    return ids, boxes, grown


def _pair_rects(boxes: np.ndarray, grown: np.ndarray, region=None) -> np.ndarray:
    """Per instance, the part of its grown box where d2 can be finite: the bounding
    rectangle of (its grown box intersected with the other instances' grown boxes, and with
    ``region`` ``(y0, y1, x0, x1)`` when given) and its own bounding box (so its distance
    transform there stays exact); an empty rectangle (``y0 == y1``) when its grown box meets
    no other there."""
    if len(boxes) == 0:
        return boxes
    y0 = np.maximum(grown[:, None, 0], grown[None, :, 0])
    y1 = np.minimum(grown[:, None, 1], grown[None, :, 1])
    x0 = np.maximum(grown[:, None, 2], grown[None, :, 2])
    x1 = np.minimum(grown[:, None, 3], grown[None, :, 3])
    if region is not None:
        np.maximum(y0, region[0], out=y0)
        np.minimum(y1, region[1], out=y1)
        np.maximum(x0, region[2], out=x0)
        np.minimum(x1, region[3], out=x1)
    meets = (y0 < y1) & (x0 < x1)
    np.fill_diagonal(meets, False)
    big = np.iinfo(np.int64).max
    rects = np.stack([np.where(meets, y0, big).min(1), np.where(meets, y1, -big).max(1),
                      np.where(meets, x0, big).min(1), np.where(meets, x1, -big).max(1)], 1)
    rects[:, 0] = np.minimum(rects[:, 0], boxes[:, 0])
    rects[:, 1] = np.maximum(rects[:, 1], boxes[:, 1])
    rects[:, 2] = np.minimum(rects[:, 2], boxes[:, 2])
    rects[:, 3] = np.maximum(rects[:, 3], boxes[:, 3])
    alone = ~meets.any(1)
    rects[alone] = 0
    return rects


def separation(labels: np.ndarray, reach: float, pairs_only: bool = False,
               region: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(d1, d2)`` of :func:`separation_distances` for labels with small non-negative ids,
    on the whole image or only on ``region`` ``(y0, y1, x0, x1)`` (the rest of the image is
    context: its instances count, its pixels are not returned).

    One distance transform per instance on its grown bounding box; with ``pairs_only`` only
    on the part of it where ``d2`` can be finite in the region (:func:`_pair_rects`), which
    leaves ``d2`` unchanged and ``d1`` exact wherever ``d2`` is finite.
    """
    H, W = labels.shape
    ry0, ry1, rx0, rx1 = region if region is not None else (0, H, 0, W)
    d1 = np.full((ry1 - ry0, rx1 - rx0), np.inf, dtype=np.float32)
    d2 = np.full((ry1 - ry0, rx1 - rx0), np.inf, dtype=np.float32)
    ids, boxes, grown = _grown_boxes(labels, reach)
    rects = _pair_rects(boxes, grown, region) if pairs_only else grown
    scratch = np.empty(d1.shape, dtype=np.float32)
    for index, (y0, y1, x0, x1) in zip(ids.tolist(), rects.tolist()):
        oy0, oy1, ox0, ox1 = max(y0, ry0), min(y1, ry1), max(x0, rx0), min(x1, rx1)
        if oy0 >= oy1 or ox0 >= ox1:  # nothing of it in the region
            continue
        d = distance_to_zero(labels[y0:y1, x0:x1] != index)
        d = d[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0]
        a = d1[oy0 - ry0:oy1 - ry0, ox0 - rx0:ox1 - rx0]
        b = d2[oy0 - ry0:oy1 - ry0, ox0 - rx0:ox1 - rx0]
        np.minimum(b, np.maximum(a, d, out=scratch[: oy1 - oy0, : ox1 - ox0]), out=b)
        np.minimum(a, d, out=a)
    return _exact(d1), _exact(d2)


def centre_region(shape: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of the central ``size`` of an image of ``shape`` (the training
    pipeline's centre crop: start ``(n - size) // 2``)."""
    (H, W), (h, w) = shape, size
    if h > H or w > W:
        raise ValueError(f"crop {size} larger than the label image {shape}")
    y0, x0 = (H - h) // 2, (W - w) // 2
    return y0, y0 + h, x0, x0 + w


def separation_distances(labels: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances ``(d1, d2)`` of every pixel to the nearest and second-nearest instance
    (0 inside an instance), exact up to ``reach`` pixels and ``inf`` beyond.

    Precisely: an instance counts for a pixel when the pixel lies in the instance's bounding
    box grown by ``ceil(reach)`` pixels (clipped to the image); ``d1 <= d2`` are the two
    smallest exact Euclidean distances among the instances that count (``inf`` when fewer
    than one / two count). Returned as float32 (the exact distance rounded once; see the
    module docstring for the 1024 px bound).
    """
    return separation(compact_ids(labels), reach, pairs_only=False)


def compact_ids(labels: np.ndarray) -> np.ndarray:
    """Non-negative ids with a small maximum (``find_objects`` makes a list of ``max`` slots):
    unchanged when already small, else relabelled to 1..n."""
    if int(labels.min()) >= 0 and int(labels.max()) <= 4 * labels.size:
        return labels.astype(np.intp, copy=False)
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32)


# -------------------------------------------------------------------------- inside
def instance_distances(labels: np.ndarray, normalize: bool = False,
                       region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """float32 ``(H, W)``: for every instance pixel its Euclidean distance to the nearest
    pixel of another label (background or another instance), 0 on background; pixels outside
    the image do not count as another label (an instance cut by the image edge continues),
    except for an instance that fills the whole image, whose distances are to the image edge
    (as StarDist's ``edt_prob``). With ``normalize`` each instance is divided by its own
    maximum, so every instance peaks at exactly 1. With ``region`` ``(y0, y1, x0, x1)`` only
    that part is returned (instances not meeting it are skipped; the rest is context).

    Equal to ``scipy.ndimage.distance_transform_edt(labels == i)`` on the instance pixels of
    each ``i``, rounded to float32 (one transform per instance on its bounding box grown by
    one pixel: the ring around the box holds the nearest other-label pixel of every pixel
    inside it)."""
    labels = compact_ids(labels)
    H, W = labels.shape
    ry0, ry1, rx0, rx1 = region if region is not None else (0, H, 0, W)
    out = np.zeros((ry1 - ry0, rx1 - rx0), dtype=np.float32)
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None or box[0].stop <= ry0 or box[0].start >= ry1 \
                or box[1].stop <= rx0 or box[1].start >= rx1:
            continue
        y0, y1 = max(box[0].start - 1, 0), min(box[0].stop + 1, H)
        x0, x1 = max(box[1].start - 1, 0), min(box[1].stop + 1, W)
        mask = labels[y0:y1, x0:x1] == index + 1
        if mask.all():  # no other label in the whole image: measure to the image edge
            d = distance_to_zero(np.pad(mask, 1))[1:-1, 1:-1]
        else:
            d = distance_to_zero(mask)
        d = _exact(d)
        if normalize:
            d /= d[mask].max()
        oy0, oy1, ox0, ox1 = max(y0, ry0), min(y1, ry1), max(x0, rx0), min(x1, rx1)
        inner = (slice(oy0 - y0, oy1 - y0), slice(ox0 - x0, ox1 - x0))
        target = out[oy0 - ry0:oy1 - ry0, ox0 - rx0:ox1 - rx0]
        np.copyto(target, d[inner], where=mask[inner])
    return out
