"""Issue 16's matrix: does every built-in architecture export in every ``dlsuite export``
format, and does the export compute what the model computes?

Each built-in architecture is built tiny (a few filters, two pools; temporal ones with
T = 3 at 64 x 64), untrained, and goes through each writer of :data:`dlsuite.export.FORMATS`
exactly as ``dlsuite export`` calls it (plain-Keras conversion first for ``keras`` and
``bioimageio``). A cell is ``ok`` only when the export is also checked:

- ``keras``: loaded with ``keras.models.load_model`` in a subprocess where importing
  ``dlsuite`` / ``dlsuite_plugins`` fails; logits within 1e-5 of the model's;
- ``savedmodel``: the ``serve`` signature's logits within 1e-5;
- ``onnx``: ONNX Runtime's logits within 1e-4;
- ``bioimageio``: the package (test tensors from generated 256 x 256 validation images;
  temporal models rebuilt at that size, with a time axis of T = 3) passes
  ``bioimageio.core.test_model``.

Otherwise the cell holds the error (type and first line). Needs ``dlsuite[export]``.
Usage: ``KERAS_BACKEND=tensorflow python benchmarks/export_matrix.py [--json OUT]
[--only LABEL ...]`` (about ten minutes on two cores; ``--only`` keeps the rows named, e.g.
``--only "unet_lstm mean" mobilenet_mobileunet_lstm``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from dlsuite.testing import TINY_ARCHITECTURES  # noqa: E402

#: Tiny parameters per built-in architecture (unet_lstm once per time reduction).
TINY = TINY_ARCHITECTURES

PLAIN_LOADER = textwrap.dedent("""
    import sys, importlib.abc, json

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("dlsuite", "dlsuite_plugins"):
                raise ImportError(f"blocked: {name}")

    sys.meta_path.insert(0, Block())
    import numpy as np, keras
    result = {}
    for path in sys.argv[1:]:
        try:
            model = keras.models.load_model(path, compile=False)
            out = model.predict(np.load(path + ".in.npy"), verbose=0)
            np.save(path + ".out.npy", out[0] if isinstance(out, list) else out)
            result[path] = None
        except Exception as exc:
            result[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    print(json.dumps(result))
""")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160] if text else ''}"


def _job(name: str, params: dict, data: Path, root: Path):
    """The config, geometry and :class:`dlsuite.export.ExportJob` of a tiny model."""
    from dlsuite.config import parse_config
    from dlsuite.export import ExportJob
    from dlsuite.models import model_geometry
    from dlsuite.registry import get_registry

    registry = get_registry()
    cfg = parse_config({"name": f"matrix-{name}", "model": {"name": name, **params},
                        "data": {"train": str(data), "val": str(data)}}, registry,
                       check_paths=False).config
    geo = model_geometry(cfg, registry)
    return ExportJob(cfg, root, root / "tiny.keras", geo, registry), registry


def _model(job, registry):
    entry = registry.resolve("architectures", job.config.model.name)
    temporal = job.geometry["temporal"]
    shape = (3, 64, 64, 1) if temporal else (None, None, 1)
    model = entry.load()(job.config.model.params, n_classes=job.geometry["n_classes"],
                         input_shape=shape)
    lead = (1, 3) if temporal else (1,)
    x = np.random.default_rng(0).normal(size=(*lead, 64, 64, 1)).astype(np.float32)
    return model, x


def _logits(model, x) -> np.ndarray:
    out = model.predict(x, verbose=0)
    return np.asarray(out[0] if isinstance(out, list) else out)


def _check_savedmodel(path: Path, x, want) -> str:
    import tensorflow as tf

    got = list(tf.saved_model.load(str(path)).signatures["serve"](tf.constant(x)).values())
    diff = float(np.max(np.abs(got[0].numpy() - want)))
    return "ok" if diff <= 1e-5 else f"differs: max |diff| {diff:.2e} > 1e-5"


def _check_onnx(path: Path, x, want) -> str:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    diff = float(np.max(np.abs(got - want)))
    return "ok" if diff <= 1e-4 else f"differs: max |diff| {diff:.2e} > 1e-4"


def _check_bioimageio(path: Path, work: Path) -> str:
    from bioimageio.core import test_model

    cwd = os.getcwd()
    os.chdir(work)  # bioimageio.core unpacks the SavedModel into the working directory
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras' progress bars: not the table
            summary = test_model(path)
    finally:
        os.chdir(cwd)
        os.environ["KERAS_BACKEND"] = "tensorflow"
    if summary.status == "passed":
        return "ok"
    failed = [f"{d.name}: {d.errors[0].msg if d.errors else ''}" for d in summary.details
              if d.status == "failed"]
    return "bioimageio test failed: " + "; ".join(failed)[:300]


def export_matrix(work: Path, only: list[str] | None = None) -> dict[str, dict[str, str]]:
    """``{architecture: {format: "ok" | why not}}`` (see the module docstring), for the rows
    of :data:`TINY` named in ``only`` (default all)."""
    import keras

    from dlsuite.data.example import write_example_videos
    from dlsuite.export import FORMATS
    from dlsuite.export.plain_keras import to_plain_keras

    data = write_example_videos(work / "data", n_videos=2, frames=2, size=256, seed=0)["videos"]
    table: dict[str, dict[str, str]] = {}
    plain_files: dict[str, Path] = {}
    for label, params in TINY.items():
        if only and label not in only:
            continue
        name = label.split()[0]
        stem = label.replace(" ", "_")
        row = table.setdefault(label, {})
        started = time.time()
        job, registry = _job(name, params, data, work)
        model, x = _model(job, registry)
        want = _logits(model, x)
        for fmt, spec in FORMATS.items():
            out = work / f"{stem}{spec.suffix}"
            try:
                target = to_plain_keras(model) if spec.plain_keras else model
                spec.write(target, out, job)
                if fmt == "keras":
                    np.save(str(out) + ".in.npy", x)
                    np.save(str(out) + ".want.npy", want)
                    plain_files[label] = out
                    row[fmt] = "pending"
                elif fmt == "savedmodel":
                    row[fmt] = _check_savedmodel(out, x, want)
                elif fmt == "onnx":
                    row[fmt] = _check_onnx(out, x, want)
                else:
                    row[fmt] = _check_bioimageio(out, work)
            except Exception as exc:  # noqa: BLE001 - the matrix records every failure
                row[fmt] = _short(exc)
        print(f"{label}: {row} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
        keras.backend.clear_session()
    if plain_files:  # the .keras files, loaded where dlsuite cannot be imported
        proc = subprocess.run([sys.executable, "-c", PLAIN_LOADER,
                               *map(str, plain_files.values())], capture_output=True,
                              text=True, timeout=1800)
        loaded = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
        for label, path in plain_files.items():
            err = loaded.get(str(path), f"loader failed: {proc.stderr[-200:]}")
            if err is None:
                diff = float(np.max(np.abs(np.load(str(path) + ".out.npy")
                                           - np.load(str(path) + ".want.npy"))))
                err = "ok" if diff <= 1e-5 else f"differs: max |diff| {diff:.2e} > 1e-5"
            table[label]["keras"] = err
    return table


def markdown(table: dict[str, dict[str, str]]) -> str:
    """The matrix as a Markdown table, the reasons of failed cells below it."""
    formats = list(next(iter(table.values())))
    lines = ["| architecture | " + " | ".join(formats) + " |",
             "|---|" + "---|" * len(formats)]
    reasons = []
    for label, row in table.items():
        cells = []
        for fmt in formats:
            if row[fmt] == "ok":
                cells.append("ok")
            else:
                reasons.append(f"- `{label}` x `{fmt}`: {row[fmt]}")
                cells.append(f"no ({len(reasons)})")
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    if reasons:
        lines += ["", "Why not:"] + [f"{r}" for r in reasons]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the matrix as JSON here")
    parser.add_argument("--only", nargs="+", metavar="LABEL", choices=list(TINY),
                        help="only these rows (default all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="export-matrix-") as tmp:
        table = export_matrix(Path(tmp), args.only)
    print(markdown(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
