"""Reading label images and CTC frames for evaluation.

- :func:`read_labels` reads one label image (2D) or label video (T, H, W) through
  ``dlsuite.data.io.read_image`` and checks it holds integer labels.
- :func:`read_ctc_frame` reads one 2D CTC frame as labels.
- CTC names, frame listing and track files belong to :mod:`dlsuite.data.ctc`
  (``read_track_file`` is re-exported here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlsuite.data.checks import mask_warning
from dlsuite.data.ctc import read_frame, read_track_file
from dlsuite.data.io import read_image
from dlsuite.errors import DataError

from .overlap import as_label_array

__all__ = ["mask_warnings", "read_ctc_frame", "read_labels", "read_track_file"]


def read_labels(path: str | Path) -> np.ndarray:
    """Label image ``(H, W)`` or label video ``(T, H, W)`` from ``path`` as a non-negative
    integer array (native dtype kept when integer). Raises DataError naming the file."""
    array = read_image(path)
    try:
        return as_label_array(array, str(path))
    except DataError:
        raise
    except Exception as exc:  # pragma: no cover - defensive
        raise DataError(f"{path}: not a label image ({exc})") from exc


def read_ctc_frame(path: Path) -> np.ndarray:
    """One 2D CTC label frame; raises DataError naming the file when it is not 2D or not
    labels."""
    return as_label_array(read_frame(path), str(path))


def mask_warnings(paths: list) -> dict:
    """``{"warnings": [one line]}`` when ground-truth files ``paths`` look like binary masks
    (:func:`dlsuite.data.checks.one_id_many_regions`), else ``{}``: the scores then count
    all their cells as one object."""
    if not paths:
        return {}
    more = f" (and {len(paths) - 1} more ground-truth file(s))" if len(paths) > 1 else ""
    return {"warnings": [f"{paths[0]}{more}: {mask_warning()}"]}
