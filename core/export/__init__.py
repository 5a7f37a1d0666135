"""``dlsuite export``: a trained run's model in a form other tools open without dlsuite.

Formats (:data:`FORMATS`): ``keras`` (a ``.keras`` file of plain Keras layers,
:mod:`dlsuite.export.plain_keras`), ``savedmodel`` (a TensorFlow SavedModel whose ``serve``
signature takes any height and width that are multiples of the size multiple), ``onnx``
(through Keras' own ``model.export(format="onnx")``; needs the ``export`` extra). Every
format carries the model as trained: input normalized as the run normalized it, output
logits (softmax over the last axis gives the probabilities ``dlsuite predict`` writes).

The output path must not exist: export never replaces a file. The default,
``RUN_DIR/export/<run name>.<suffix>``, is recorded in the run's marker (so ``--overwrite``
of the run removes it). Everything is written beside the target, then renamed into place.
TensorFlow is imported only when a model is exported.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import attrs

from dlsuite.errors import DlsuiteInputError

__all__ = ["FORMATS", "ExportFormat", "ExportResult", "export_run", "input_signature"]


@attrs.frozen
class ExportFormat:
    """One export format: the default name's suffix, the writer ``(model, path)`` and the
    Python modules it needs (checked before any work, with the extra that installs them)."""

    suffix: str
    write: Callable[[Any, Path], None]
    needs: tuple[str, ...] = ()
    plain_keras: bool = False
    help: str = ""


def input_signature(model) -> list:
    """The ``keras.InputSpec`` list of ``model``: batch and (for 2D models built without a
    fixed size) height and width left open, float32."""
    import keras

    return [keras.InputSpec(shape=tuple(t.shape), dtype="float32") for t in model.inputs]


def _write_keras(model, path: Path) -> None:
    model.save(path)


def _write_savedmodel(model, path: Path) -> None:
    model.export(str(path), format="tf_saved_model", input_signature=input_signature(model),
                 verbose=False)


def _write_onnx(model, path: Path) -> None:
    model.export(str(path), format="onnx", input_signature=input_signature(model),
                 verbose=False)


#: The formats of ``dlsuite export --format``.
FORMATS: dict[str, ExportFormat] = {
    "keras": ExportFormat(".keras", _write_keras, plain_keras=True,
                          help="a .keras file of plain Keras layers"),
    "savedmodel": ExportFormat("_savedmodel", _write_savedmodel,
                               help="a TensorFlow SavedModel folder, signature 'serve'"),
    "onnx": ExportFormat(".onnx", _write_onnx, needs=("tf2onnx", "onnx"),
                         help="an ONNX file (Keras' exporter through tf2onnx)"),
}


@attrs.frozen
class ExportResult:
    """What :func:`export_run` wrote: ``path``, ``format``, the ``checkpoint`` it came from,
    the ``architecture``, ``input_shape`` (None: any size; height and width must then be
    multiples of ``size_multiple``), ``outputs`` (name -> shape), ``normalization`` (the
    run's normalizer and its parameters, to apply before the model) and ``notes``."""

    path: Path
    format: str
    checkpoint: Path
    architecture: str
    input_shape: tuple
    outputs: dict
    size_multiple: int
    normalization: dict
    notes: tuple = ()


def _default_out(root: Path, name: str, fmt: ExportFormat) -> Path:
    return root / "export" / f"{name}{fmt.suffix}"


def _check_out(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise DlsuiteInputError(f"{out}: already exists; export never replaces a file, "
                                "choose another path with -o or remove it first")
    if out.parent.exists() and not out.parent.is_dir():
        raise DlsuiteInputError(f"{out.parent}: exists and is not a folder")


def _check_needs(name: str, fmt: ExportFormat) -> None:
    missing = [m for m in fmt.needs if importlib.util.find_spec(m) is None]
    if missing:
        raise DlsuiteInputError(f"export format {name!r} needs {', '.join(missing)}: "
                                "pip install 'dlsuite[export]'")


def _normalization(config) -> dict:
    from dlsuite.fileio import to_jsonable

    choice = config.datagen.normalization
    return {"name": choice.name, "params": to_jsonable(attrs.asdict(choice.params))
            if attrs.has(type(choice.params)) else {}}


def _write_atomic(write: Callable[[Any, Path], None], model, out: Path) -> None:
    """``write`` into a temporary name beside ``out``, then rename it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        target = tmp / out.name
        write(model, target)
        os.replace(target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_run(run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *,
               weights: str | None = None, registry=None) -> ExportResult:
    """Export the model of the trained run ``run_dir`` in format ``fmt`` (a key of
    :data:`FORMATS`) to ``out`` (default ``RUN_DIR/export/<run name><suffix>``), from the
    checkpoint ``weights`` names (``best``/``last``/a path; default the run's
    ``inference.weights``). DlsuiteInputError before anything is written for an unknown
    format, a missing run or checkpoint, an existing ``out``, a missing optional package, or
    a model that cannot be plain Keras (custom layers without a converter)."""
    from dlsuite.inference.checkpoint import choose_checkpoint, load_checkpoint
    from dlsuite.models import model_geometry
    from dlsuite.ownership import OwnedFolder
    from dlsuite.registry import get_registry
    from dlsuite.rundir import RunDir, load_run_config

    if fmt not in FORMATS:
        raise DlsuiteInputError(f"unknown export format {fmt!r}; choose one of "
                                f"{', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise DlsuiteInputError(f"{root}: run directory not found")
    registry = registry or get_registry()
    config = load_run_config(root, registry).config
    run = RunDir(root.resolve())
    checkpoint = choose_checkpoint(run, weights or config.inference.weights)
    default = out is None
    out = _default_out(run.root, config.name, spec) if default else Path(out).expanduser()
    _check_out(out)
    _check_needs(fmt, spec)
    geo = model_geometry(config, registry)

    model = load_checkpoint(checkpoint, config, registry)
    notes = []
    if spec.plain_keras:
        from .plain_keras import custom_layers, to_plain_keras

        replaced = custom_layers(model)
        model = to_plain_keras(model)
        if replaced:
            notes.append(f"rebuilt as plain Keras layers: {', '.join(replaced)}")
    if default and OwnedFolder(run.root, "run").read() is not None:
        OwnedFolder(run.root, "run").record(["export"])  # before writing it
    _write_atomic(spec.write, model, out)
    return ExportResult(
        path=out, format=fmt, checkpoint=checkpoint, architecture=config.model.name,
        input_shape=tuple(model.inputs[0].shape),
        outputs={name: tuple(t.shape) for name, t in zip(model.output_names, model.outputs)},
        size_multiple=int(geo["size_multiple"]), normalization=_normalization(config),
        notes=tuple(notes))
