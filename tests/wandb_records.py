"""Read an offline W&B run back from its files, for tests: the ``run-<id>.wandb`` record log
(W&B's LevelDB-style log: a 7-byte ``:W&B`` header, then 32 KiB blocks of records with a
7-byte header each -- CRC, length, type FULL/FIRST/MIDDLE/LAST -- holding ``Record``
protobufs of ``wandb.proto.wandb_internal_pb2``) turned into plain dicts."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    """The ``Record`` protobufs of the ``.wandb`` file at ``path``, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    ident, _magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B", f"{path}: not a W&B run file"
    pos, pending, out = 7, b"", []
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer: padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zero padding up to the end of the block
            pos += left
            continue
        if pos + 7 + length > len(data):  # a record W&B's service is still writing
            break
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (_FIRST, _MIDDLE):
            pending = chunk if kind == _FIRST else pending + chunk
            continue
        payload = pending + chunk if kind == _LAST else chunk
        pending = b""
        record = pb.Record()
        record.ParseFromString(payload)
        out.append(record)
    return out


def finished_records(path: Path, timeout: float = 30.0) -> list:
    """:func:`records` once the file holds the run's ``exit`` record (W&B's service may still
    be flushing the file when ``run.finish()`` has returned: a record it is writing may not
    parse yet, which is retried until ``timeout``)."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + timeout
    while True:
        try:
            out = records(path)
        except DecodeError:
            if time.monotonic() > deadline:
                raise
            out = []
        if any(r.WhichOneof("record_type") == "exit" for r in out) \
                or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(folder: Path) -> dict:
    """The offline run in ``folder`` (``offline-run-*-<id>``): ``{"run": {id, project,
    group, job_type, name, tags}, "config": {...}, "summary": {...} (last value of each
    key), "history": [rows], "metrics": {name: summary aggregations},
    "artifacts": [{name, type, aliases, metadata, run_id, files}]}``."""
    (path,) = Path(folder).glob("run-*.wandb")
    out: dict = {"run": {}, "config": {}, "summary": {}, "history": [], "metrics": {},
                 "artifacts": []}
    for rec in finished_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out["run"] = {"id": r.run_id, "project": r.project, "group": r.run_group,
                          "job_type": r.job_type, "name": r.display_name,
                          "tags": list(r.tags)}
            out["config"].update({i.key: json.loads(i.value_json)
                                  for i in r.config.update if i.key != "_wandb"})
        elif kind == "config":
            out["config"].update({_key(i): json.loads(i.value_json)
                                  for i in rec.config.update if _key(i) != "_wandb"})
        elif kind == "summary":
            for item in rec.summary.update:
                key = item.key or item.nested_key[0]
                value = json.loads(item.value_json)
                if not item.key and len(item.nested_key) > 1:  # a nested part: a dict
                    node = out["summary"].setdefault(key, {})
                    if isinstance(node, dict):
                        node["/".join(item.nested_key[1:])] = value
                else:
                    out["summary"][key] = value
        elif kind == "history":
            row = {}
            for item in rec.history.item:
                if len(item.nested_key) <= 1:
                    row[_key(item)] = json.loads(item.value_json)
                else:
                    row.setdefault(item.nested_key[0], {})[
                        "/".join(item.nested_key[1:])] = json.loads(item.value_json)
            out["history"].append(row)
        elif kind == "metric":
            m = rec.metric
            aggregations = [f for f in ("min", "max", "mean", "last")
                            if getattr(m.summary, f, False)]
            out["metrics"][m.name or m.glob_name] = aggregations
        elif kind == "artifact":
            a = rec.artifact
            out["artifacts"].append({
                "name": a.name, "type": a.type, "aliases": list(a.aliases),
                "metadata": json.loads(a.metadata) if a.metadata else {}, "run_id": a.run_id,
                "files": [c.path for c in a.manifest.contents]})
    return out


def offline_runs(run_dir: Path) -> dict:
    """``{W&B run id: read_run(folder)}`` of every offline run under ``run_dir/wandb``."""
    runs = {}
    for folder in sorted((Path(run_dir) / "wandb").glob("offline-run-*")):
        data = read_run(folder)
        runs[data["run"]["id"]] = {**data, "folder": folder}
    return runs
