"""Validation shared by the architecture builders (TF-free).

Every check raises :class:`dlsuite.errors.DlsuiteInputError` with a message naming the
architecture and the offending key or shape.
"""

from __future__ import annotations

from typing import Any, Sequence

from dlsuite import DlsuiteInputError

__all__ = [
    "require_int",
    "require_momentum",
    "require_rate",
    "resolve_2d_input_shape",
    "resolve_temporal_input_shape",
]


def require_int(arch: str, key: str, value: Any, low: int, high: int | None = None) -> int:
    """Return ``value`` as int if it is an integer in ``[low, high]``; otherwise raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
        high is not None and value > high
    ):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise DlsuiteInputError(
            f"architecture {arch!r}: {key} must be an integer {bound}, got {value!r}"
        )
    return int(value)


def require_rate(arch: str, key: str, value: Any) -> float:
    """Return ``value`` as float if it is a rate in ``[0, 1)``; otherwise raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise DlsuiteInputError(
            f"architecture {arch!r}: {key} must be a number in [0, 1), got {value!r}"
        )
    return float(value)


def require_momentum(arch: str, key: str, value: Any) -> float:
    """Return ``value`` as float if it is a BatchNorm momentum in the open interval ``(0, 1)``;
    otherwise raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise DlsuiteInputError(
            f"architecture {arch!r}: {key} must be a number in (0, 1), got {value!r}"
        )
    return float(value)


def _check_spatial(arch: str, shape: Sequence[Any], multiple: int) -> None:
    for axis, size in zip(("height", "width"), shape):
        if size is None:
            continue
        if not isinstance(size, int) or size <= 0 or size % multiple:
            raise DlsuiteInputError(
                f"architecture {arch!r}: input {axis} {size!r} must be a positive multiple of "
                f"{multiple} (2**pools)"
            )


def resolve_2d_input_shape(arch: str, input_shape: Sequence[Any] | None, multiple: int) -> tuple:
    """``(H, W, 1)`` for a 2D model: ``None`` means dynamic ``(None, None, 1)``. Known sizes
    must be multiples of ``multiple``; the channel axis must be 1."""
    if input_shape is None:
        return (None, None, 1)
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] not in (1, None):
        raise DlsuiteInputError(
            f"architecture {arch!r}: input_shape must be (H, W, 1) (batch excluded), got {shape!r}"
        )
    _check_spatial(arch, shape[:2], multiple)
    return (shape[0], shape[1], 1)


def resolve_temporal_input_shape(
    arch: str, input_shape: Sequence[Any] | None, time_windows: int, multiple: int
) -> tuple:
    """``(T, H, W, 1)`` for a ConvLSTM model: H and W must be given (Keras 3 ConvLSTM2D needs
    static spatial shapes) and be multiples of ``multiple``; T may be None (then
    ``time_windows``) or must equal ``time_windows``."""
    if input_shape is None:
        raise DlsuiteInputError(
            f"architecture {arch!r} needs a static input size: pass input_shape=(T, H, W, 1) with "
            "H and W given (Keras 3 ConvLSTM2D does not support dynamic spatial shapes; build "
            "the model at the inference size and copy the weights)"
        )
    shape = tuple(input_shape)
    if len(shape) != 4 or shape[-1] not in (1, None):
        raise DlsuiteInputError(
            f"architecture {arch!r}: input_shape must be (T, H, W, 1) (batch excluded), got {shape!r}"
        )
    t, h, w = shape[:3]
    if h is None or w is None:
        raise DlsuiteInputError(
            f"architecture {arch!r} needs static H and W (Keras 3 ConvLSTM2D), "
            f"got input_shape {shape!r}"
        )
    if t is not None and t != time_windows:
        raise DlsuiteInputError(
            f"architecture {arch!r}: input_shape has T={t} frames but time_windows={time_windows}"
        )
    _check_spatial(arch, (h, w), multiple)
    return (time_windows, h, w, 1)
