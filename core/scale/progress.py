"""What a block-wise prediction has finished, so that ``dlsuite predict --resume`` goes on
where a stopped one (Ctrl-C, SIGTERM, a lost cluster, a full disk) left off.

The client, the only writer, keeps one file per output image,
``OUT/.dlsuite-blocks/<name>.jsonl``: a header (the block size, the normalization of the
whole image, the input's modification time), then a line per block whose probabilities a task
wrote completely (appended as each task reports back; a block a task was writing when it
stopped is not listed, so it is predicted again and its chunks rewritten whole), then, when
the image's labels are merged, a ``complete`` line with its ``predict.json`` row. Labels are
always made again on a resumed image (they come from the probabilities, and merging renumbers
them in place). The folder is removed once ``predict.json`` is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .normalize import GlobalNormalizer

__all__ = ["PROGRESS_FOLDER", "BlockProgress", "input_mtime"]

#: The folder of progress files inside a block-wise prediction's output folder.
PROGRESS_FOLDER = ".dlsuite-blocks"


def input_mtime(path: str | os.PathLike) -> int:
    """When the input last changed (ns): a TIFF file, or the newest file of an OME-Zarr
    array folder."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_mtime_ns
    return max((f.stat().st_mtime_ns for f in p.rglob("*") if f.is_file()), default=0)


class BlockProgress:
    """The progress file of one output image (module docstring)."""

    def __init__(self, out: Path, name: str):
        self.path = Path(out) / PROGRESS_FOLDER / f"{name}.jsonl"
        self.header: dict | None = None
        self.done: set[tuple] = set()
        self.row: dict | None = None

    def load(self, block: int, mtime: int) -> "BlockProgress":
        """Read what an earlier, stopped prediction of this image finished, if its header
        matches ``block`` and the input's ``mtime`` (else nothing counts as done). A last
        line cut short by the stop is ignored."""
        try:
            lines = self.path.read_text().splitlines()
        except OSError:
            return self
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                break
        if not records or records[0].get("block") != block or \
                records[0].get("mtime") != mtime:
            return self
        self.header = records[0]
        for record in records[1:]:
            if "probs" in record:
                self.done.update(tuple(key) for key in record["probs"])
            elif "complete" in record:
                self.row = record["complete"]
        return self

    def normalizer(self) -> tuple[GlobalNormalizer, list[str]] | None:
        """The whole image's normalization the stopped prediction used, and its notes."""
        if self.header is None:
            return None
        norm = self.header["norm"]
        low = None if norm["low"] is None else tuple(norm["low"])
        high = None if norm["high"] is None else tuple(norm["high"])
        return GlobalNormalizer(low, high, norm["clip"]), list(self.header.get("notes", []))

    def start(self, block: int, mtime: int, norm: GlobalNormalizer, notes: list[str]) -> None:
        """Begin the file of a prediction of this image from scratch."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.header = {"block": block, "mtime": mtime, "notes": notes,
                       "norm": {"low": None if norm.low is None else [float(v) for v in norm.low],
                                "high": None if norm.high is None else [float(v) for v in
                                                                        norm.high],
                                "clip": norm.clip}}
        self.done, self.row = set(), None
        self.path.write_text(json.dumps(self.header) + "\n")

    def _append(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finished(self, keys: list[tuple]) -> None:
        """Record that the probabilities of the blocks ``keys`` are written."""
        self.done.update(keys)
        self._append({"probs": [list(k) for k in keys]})

    def complete(self, row: dict) -> None:
        """Record that the image is done (labels merged): its ``predict.json`` row."""
        self.row = row
        self._append({"complete": row})
