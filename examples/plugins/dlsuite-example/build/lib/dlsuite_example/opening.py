"""The ``opening`` post-processor: morphological opening of a binary mask."""

from __future__ import annotations

import numpy as np
from skimage.morphology import disk, opening as grey_opening


def build(params):
    """Return a step mapping a mask ``(H, W)`` to its opening (uint8 0/1)."""

    def opening_step(mask: np.ndarray) -> np.ndarray:
        return grey_opening(mask > 0, disk(params.radius)).astype(np.uint8)

    return opening_step
