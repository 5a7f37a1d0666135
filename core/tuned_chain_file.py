"""A tuned post-processing chain as a file of its own: ``dlsuite tune RUN_DIR --output FILE``.

A run's ``postprocess.json`` holds values for the run's own chain only. A chain given to
``dlsuite tune --postprocess CHAIN.json`` (or the run's chain, tuned without touching the run)
is written instead to a chain file that ``dlsuite predict --postprocess FILE`` reads::

    {"postprocess": [{"name": "distance_watershed", "threshold": 0.4, ...}],
     "tuning": {"written_by": "dlsuite tune", "run": ..., "checkpoint": ..., "chain": ...,
                "metric": "SEG", "score": ..., "default_score": ..., "tuned": {...},
                "evaluations": ..., "seconds": ..., "timed_out": ...}}

Only such a file (``tuning.written_by`` is ``dlsuite tune``) is replaced, and only with
``overwrite``; any other existing file is left alone. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["WRITTEN_BY", "check_chain_output", "write_tuned_chain"]

#: ``tuning.written_by`` of a chain file this module wrote.
WRITTEN_BY = "dlsuite tune"


def _written_by_tune(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("tuning"), dict) and \
        data["tuning"].get("written_by") == WRITTEN_BY


def check_chain_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """The absolute path a tuned chain may be written to. DlsuiteInputError naming ``path``
    when its folder does not exist, it is a folder, or it exists and either ``overwrite`` is
    false or the file was not written by ``dlsuite tune`` (then it is never replaced)."""
    from .output_file import check_output_file

    return check_output_file(path, f"--output {path}", writer=WRITTEN_BY, overwrite=overwrite,
                             ours=_written_by_tune).resolve()


def write_tuned_chain(path: Path, result, *, run: Path, checkpoint: Path,
                      chain_from: str) -> Path:
    """Write ``result`` (a :class:`~dlsuite.tuning.TuningResult`) to ``path`` atomically as a
    chain file (module docstring): the chain with the chosen values, then how they were
    chosen. Returns ``path``."""
    from .fileio import write_json_atomic

    data = result.as_dict()
    steps = [{"name": s["name"], **s["params"]} for s in data.pop("steps")]
    tuning = {"written_by": WRITTEN_BY, "run": str(run), "checkpoint": str(checkpoint),
              "chain": chain_from, **data}
    return write_json_atomic(path, {"postprocess": steps, "tuning": tuning})
