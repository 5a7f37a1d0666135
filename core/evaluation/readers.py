"""Reading label images and CTC folders for evaluation.

- :func:`read_labels` reads one label image (2D) or label video (T, H, W) through
  ``dlsuite.data.io.read_image`` and checks it holds integer labels.
- :func:`ctc_frames` lists the frames of a CTC folder (``maskTTT.tif`` in ``NN_RES``,
  ``man_segTTT.tif`` in ``NN_GT/SEG``, ``man_trackTTT.tif`` in ``NN_GT/TRA``) as
  ``{frame index: path}``; any number of digits is accepted and the 3D-slice names
  ``man_segTTT_ZZZ.tif`` are ignored (dlsuite is 2D).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dlsuite.data.io import read_image
from dlsuite.errors import DataError

from .overlap import as_label_array

CTC_PATTERNS = {
    "res": re.compile(r"^mask(\d+)\.tiff?$"),
    "seg": re.compile(r"^man_seg(\d+)\.tiff?$"),
    "tra": re.compile(r"^man_track(\d+)\.tiff?$"),
}


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


def ctc_frames(folder: str | Path, kind: str) -> dict[int, Path]:
    """``{frame index: file}`` of the CTC frames of ``kind`` ("res", "seg" or "tra") in
    ``folder`` (empty when the folder does not exist). Raises DataError when two files give
    the same frame index (e.g. ``mask01.tif`` and ``mask001.tif``)."""
    folder = Path(folder)
    pattern = CTC_PATTERNS[kind]
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        m = pattern.match(p.name)
        if m and p.is_file():
            t = int(m.group(1))
            if t in out:
                raise DataError(f"{folder}: frame {t} appears twice ({out[t].name}, {p.name})")
            out[t] = p
    return out


def read_ctc_frame(path: Path) -> np.ndarray:
    """One 2D CTC label frame; raises DataError naming the file when it is not 2D."""
    arr = read_labels(path)
    if arr.ndim != 2:
        raise DataError(f"{path}: expected a 2D label image, got shape {arr.shape}")
    return arr


def read_track_file(path: str | Path) -> np.ndarray:
    """A CTC track file (``L B E P`` per line) as an ``(n, 4)`` int64 array. Raises DataError
    naming the file and line when a line does not hold four non-negative integers."""
    path = Path(path)
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            values = [int(x) for x in parts]
        except ValueError:
            values = []
        if len(values) != 4:
            raise DataError(f"{path}:{i}: expected 'label begin end parent', got {line!r}")
        rows.append(values)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)
