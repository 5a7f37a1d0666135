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


#: The keys of the JSON object ``dlsuite evaluate -o`` writes.
EVALUATE_JSON_KEYS = frozenset({"metrics", "per_sequence", "matching"})


def is_evaluate_json(path: Path) -> bool:
    """True when ``path`` holds what ``dlsuite evaluate -o`` writes (a JSON object of exactly
    ``metrics``, ``per_sequence``, ``matching``)."""
    from dlsuite.output_file import json_object_with

    return json_object_with(path, EVALUATE_JSON_KEYS)


def is_per_frame_csv(path: Path) -> bool:
    """True when ``path`` (not a symbolic link) is a per-frame CSV of ``dlsuite evaluate
    --per-frame`` (its header starts with ``sequence,frame,``)."""
    if path.is_symlink():
        return False
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.readline(4096).startswith("sequence,frame,")
    except (OSError, UnicodeDecodeError):
        return False
