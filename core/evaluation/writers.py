"""Writing evaluation results: JSON and CSV, atomically (temporary file + ``os.replace``).

NaN and infinite floats are written as JSON ``null`` (strict JSON); numpy scalars are
converted to Python numbers.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dlsuite.fileio import to_jsonable, write_text_atomic


def dumps_metrics(metrics) -> str:
    """Strict JSON text (indent 2) of ``metrics`` (see :func:`to_jsonable`)."""
    return json.dumps(to_jsonable(metrics), indent=2, allow_nan=False)


def write_metrics_json(path: str | os.PathLike, metrics) -> Path:
    """Write ``metrics`` (any dict/list of numbers, strings, numpy values) as strict JSON to
    ``path`` atomically; returns the path."""
    return write_text_atomic(Path(path), dumps_metrics(metrics) + "\n")


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
    return write_text_atomic(Path(path), buf.getvalue())
