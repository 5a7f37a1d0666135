"""Writing evaluation results: JSON and CSV, atomically (temporary file + ``os.replace``).

NaN and infinite floats are written as JSON ``null`` (strict JSON); numpy scalars are
converted to Python numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from dlsuite.fileio import write_text_atomic


def to_jsonable(value):
    """``value`` with numpy scalars/arrays turned into Python numbers/lists and NaN/inf into
    None, recursively through dicts, lists and tuples."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _atomic_write_text(path: Path, text: str) -> Path:
    return write_text_atomic(path, text)


def dumps_metrics(metrics) -> str:
    """Strict JSON text (indent 2) of ``metrics`` (see :func:`to_jsonable`)."""
    return json.dumps(to_jsonable(metrics), indent=2, allow_nan=False)


def write_metrics_json(path: str | os.PathLike, metrics) -> Path:
    """Write ``metrics`` (any dict/list of numbers, strings, numpy values) as strict JSON to
    ``path`` atomically; returns the path."""
    return _atomic_write_text(Path(path), dumps_metrics(metrics) + "\n")


def write_metrics_csv(path: str | os.PathLike, rows: Iterable[Mapping]) -> Path:
    """Write ``rows`` (dicts) as CSV to ``path`` atomically; the header is the union of the
    keys in first-seen order, missing cells and None/NaN are empty, nested values are JSON."""
    rows = [to_jsonable(r) for r in rows]
    header: list[str] = []
    for r in rows:
        header.extend(k for k in r if k not in header)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(
            {k: ("" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v)
             for k, v in r.items()}
        )
    return _atomic_write_text(Path(path), buf.getvalue())
