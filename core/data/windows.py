"""Time windows for temporal models: the one rule shared by training, validation
clips (``dlsuite prepare clips``) and inference.

A window of ``T`` frames ends at frame ``t`` and covers ``t-T+1 .. t``. Positions before the
first frame are filled by temporal mirroring: the sequence ``0..t`` is reflected at both ends
without repeating the end frames (numpy ``mode="reflect"``), i.e. position ``-k`` maps to ``k``
and the pattern bounces between 0 and ``t`` with period ``2t``. Examples (T=5):
``t=0 -> [0,0,0,0,0]``, ``t=1 -> [1,0,1,0,1]``, ``t=2 -> [2,1,0,1,2]``, ``t=3 -> [1,0,1,2,3]``,
``t>=4 -> [t-4..t]``. For T <= 5 this equals the original suite's ``(T-t-1-f) mod (t+1)``
formula; for longer windows it stays a continuous back-and-forth instead of jumping.
The original suite's inference padded with copies of frame 0 instead, unlike its training
(a train/inference mismatch): not here.
"""

from __future__ import annotations

__all__ = ["window_indices"]


def window_indices(t: int, T: int) -> list[int]:
    """Frame indices of the ``T``-frame window ending at frame ``t`` (last element is ``t``).

    Indices are all in ``0..t``; raises ValueError for ``t < 0`` or ``T < 1``.
    """
    if t < 0 or T < 1:
        raise ValueError(f"window_indices needs t >= 0 and T >= 1, got t={t}, T={T}")
    if t == 0:
        return [0] * T
    period = 2 * t
    out = []
    for position in range(t - T + 1, t + 1):
        k = position % period  # python modulo: non-negative
        out.append(k if k <= t else period - k)
    return out
