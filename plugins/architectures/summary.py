"""A plain-data summary of a Keras model (for ``dlsuite model summary``)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["summarize"]


def _size(weights) -> int:
    return int(sum(math.prod(int(d) for d in w.shape) for w in weights))


def _shape(shape: Any) -> list:
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_shape(s) for s in shape]
    return [None if d is None else int(d) for d in shape]


def summarize(model: Any) -> dict:
    """``{"total", "trainable", "non_trainable"}`` parameter counts (ints; trainable +
    non_trainable == total, each shared weight once) and ``"input_shape"``, ``"output_shape"``
    (lists with ``None`` for unknown axes, batch first; a list of such lists when the model has
    several inputs or outputs)."""
    trainable = _size(model.trainable_weights)
    non_trainable = _size(model.non_trainable_weights)
    return {
        "name": model.name,
        "total": trainable + non_trainable,
        "trainable": trainable,
        "non_trainable": non_trainable,
        "input_shape": _shape(model.input_shape),
        "output_shape": _shape(model.output_shape),
    }
