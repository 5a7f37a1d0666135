"""Test-time augmentation: a model's outputs averaged over the 8 symmetries of the square.

Each frame is rotated by 0/90/180/270 degrees, with and without a left-right flip; the model
predicts every version and each output is mapped back before the mean. It suits outputs that
are per-pixel scalars, which do not change under a rotation (class probabilities, distance
maps, heat maps: every built-in target's); a head predicting a direction (e.g. a flow
field) would need its vectors rotated back and must not use it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DIHEDRAL", "dihedral_average"]

#: (quarter turns, left-right flip) of the 8 symmetries; the identity first.
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, f) for k in range(4) for f in (False, True))


def dihedral_average(predict: Callable[[np.ndarray], np.ndarray], video: np.ndarray
                     ) -> np.ndarray:
    """The mean over :data:`DIHEDRAL` of ``predict`` applied to ``video`` ``(T, H, W)``
    transformed on its last two axes, each result ``(T, H', W', C)`` mapped back to
    ``(T, H, W, C)``; float32. Non-square frames work: a quarter turn swaps H and W and the
    model sees the turned frame."""
    total = None
    for turns, flip in DIHEDRAL:
        x = np.rot90(video, turns, axes=(1, 2))
        if flip:
            x = x[:, :, ::-1]
        out = np.asarray(predict(np.ascontiguousarray(x)), dtype=np.float32)
        if flip:
            out = out[:, :, ::-1]
        out = np.rot90(out, -turns, axes=(1, 2))
        total = out.copy() if total is None else total + out
    return total / np.float32(len(DIHEDRAL))
