"""``dlsuite export``: a trained run's model in a form other tools open without dlsuite.

Formats (:data:`FORMATS`): ``keras`` (a ``.keras`` file of plain Keras layers,
:mod:`dlsuite.export.plain_keras`), ``savedmodel`` (a TensorFlow SavedModel whose ``serve``
signature takes any height and width that are multiples of the size multiple), ``onnx``
(through Keras' own ``model.export(format="onnx")``, then run in onnxruntime and compared
with the Keras model, so a file with operations ONNX does not know is never written; needs
the ``export`` extra). Every
format carries the model as trained: input normalized as the run normalized it, output
logits (softmax over the last axis gives the probabilities ``dlsuite predict`` writes).

The output path must not exist: export never replaces a file. The default,
``RUN_DIR/export/<run name>.<suffix>``, is recorded in the run's marker (so ``--overwrite``
of the run removes it). Everything is written beside the target, then renamed into place.
TensorFlow is imported only when a model is exported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import attrs

from dlsuite.errors import DlsuiteInputError

__all__ = ["FORMATS", "ExportFormat", "ExportJob", "ExportResult", "default_export_path",
           "export_run", "export_stem", "missing_modules", "write_savedmodel"]


@attrs.frozen
class ExportFormat:
    """One export format: the default name's suffix, the writer ``(model, path, job=None)``
    (``job`` an :class:`ExportJob`, needed by ``bioimageio`` only) and the
    Python modules it needs (checked before any work, with the extra that installs them)."""

    suffix: str
    write: Callable[..., None]
    needs: tuple[str, ...] = ()
    plain_keras: bool = False
    help: str = ""
    #: The ending an ``-o`` path must have (Keras saves only ``.keras`` files; a package
    #: is recognised as one by ``.zip``); None: any name.
    out_suffix: str | None = None


@attrs.frozen
class ExportJob:
    """The run behind an export: its config, root, checkpoint, geometry and registry."""

    config: Any
    root: Path
    checkpoint: Path
    geometry: dict
    registry: Any


def _write_keras(model, path: Path, job: ExportJob | None = None) -> None:
    model.save(path)
    if job is not None:  # what dlsuite predict needs; keras.models.load_model ignores it
        import zipfile

        from .embedded import KERAS_METADATA, export_halo, run_metadata

        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(KERAS_METADATA, json.dumps(run_metadata(job, export_halo(job)),
                                                        indent=1))


def write_savedmodel(model, path: Path, job: ExportJob | None = None) -> None:
    """A SavedModel of ``model`` whose ``serve`` endpoint (also the signature) maps the image
    batch to a dict ``{output name: logits}``, a dict also when called as a function (what
    ``keras.layers.TFSMLayer`` users and bioimage.io's TensorFlow runner expect)."""
    import keras
    import tensorflow as tf

    names = list(model.output_names)
    specs = [tf.TensorSpec(tuple(t.shape), tf.float32, name=f"input_{i}")
             for i, t in enumerate(model.inputs)]

    def serve(*inputs):
        out = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        return dict(zip(names, out if isinstance(out, (list, tuple)) else [out]))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serve", fn=serve, input_signature=specs)
    archive.write_out(str(path), verbose=False)
    if job is not None:  # what dlsuite predict needs to predict as the run did
        from .embedded import SAVEDMODEL_METADATA, export_halo, run_metadata

        target = Path(path) / SAVEDMODEL_METADATA
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(run_metadata(job, export_halo(job)), indent=1),
                          encoding="utf-8")


def _write_onnx(model, path: Path, job: ExportJob | None = None) -> None:
    import tensorflow as tf

    # named specs: the ONNX inputs are "input" (or "input_0", ...) rather than "args_0"
    names = ["input"] if len(model.inputs) == 1 else [f"input_{i}" for i in
                                                      range(len(model.inputs))]
    specs = [tf.TensorSpec(tuple(t.shape), tf.float32, name=n)
             for n, t in zip(names, model.inputs)]
    converter = logging.getLogger("tf2onnx")
    level = converter.level
    # its error records name each operation it cannot convert: _check_onnx says it in one line
    converter.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            # Keras' tf2onnx patch asks NumPy 2 for np.object: a warning about Keras' code
            # that says nothing about the export
            warnings.filterwarnings("ignore", message=r"In the future `np\.object`",
                                    category=FutureWarning)
            model.export(str(path), format="onnx", input_signature=specs, verbose=False)
    finally:
        converter.setLevel(level)
    if job is not None:
        multiple = int(job.geometry["size_multiple"])
    else:
        from dlsuite.keras_helpers import infer_size_multiple

        multiple = infer_size_multiple(model)
    _check_onnx(model, path, multiple)
    if job is not None:  # what dlsuite wrote: a later export --overwrite may replace it
        import onnx

        from .embedded import ONNX_METADATA, export_halo, run_metadata

        graph = onnx.load(str(path))
        entry = graph.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA, json.dumps(run_metadata(job, export_halo(job)))
        onnx.save(graph, str(path))


#: Largest difference allowed between the ONNX file's outputs and the Keras model's, as a
#: fraction of the largest output (float32 arithmetic in another order).
ONNX_TOLERANCE = 1e-3


def _check_onnx(model, path: Path, multiple: int) -> None:
    """The ONNX file ``path`` runs in onnxruntime and gives ``model``'s outputs on a random
    input (height and width the smallest multiple of ``multiple`` from 32, where the model
    leaves them open). DlsuiteInputError naming the operations ONNX does not know (tf2onnx
    writes an operation it cannot convert as it is, and the file then fails wherever it is
    opened) or the difference, before the file is moved into place."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(path)).graph
    unknown = sorted({n.op_type for n in graph.node if not onnx.defs.has(n.op_type, n.domain)})
    if unknown:
        raise DlsuiteInputError(
            f"the model cannot be exported to ONNX: tf2onnx does not convert its operations "
            f"{', '.join(unknown)}; export it as savedmodel or keras instead")
    side = multiple * -(-32 // multiple)
    rng = np.random.default_rng(0)
    inputs = [rng.random(tuple(1 if i == 0 else side if d is None else int(d)
                               for i, d in enumerate(t.shape)), dtype=np.float32)
              for t in model.inputs]
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise DlsuiteInputError(f"the model cannot be exported to ONNX: onnxruntime cannot "
                                f"run the converted file ({type(exc).__name__}: {first}); "
                                "export it as savedmodel or keras instead") from None
    want = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    want = [np.asarray(w) for w in (want.values() if isinstance(want, dict) else
                                    want if isinstance(want, (list, tuple)) else [want])]
    for name, g, w in zip(model.output_names, got, want):
        g = np.asarray(g)
        diff = float(np.max(np.abs(g - w))) if g.shape == w.shape and w.size else 0.0
        if g.shape != w.shape or diff > ONNX_TOLERANCE * max(1.0, float(np.abs(w).max())):
            raise DlsuiteInputError(
                f"the model cannot be exported to ONNX faithfully: output {name!r} of the "
                f"ONNX file differs from the Keras model's (shape {g.shape} vs {w.shape}, "
                f"largest difference {diff:.3g}); export it as savedmodel or keras instead")


def _write_bioimageio(model, path: Path, job: ExportJob) -> None:
    from dlsuite.data.datagen_plugins import make_normalizer

    from .bioimageio import BioimageioInfo, write_bioimageio
    from .embedded import export_halo, run_metadata

    geo, config = job.geometry, job.config
    halo = export_halo(job)
    write_bioimageio(model, config, run_root=job.root, checkpoint=job.checkpoint, halo=halo,
                     size_multiple=geo["size_multiple"],
                     normalize=make_normalizer(config, job.registry), out=path,
                     info=BioimageioInfo.from_config(config),
                     metadata=run_metadata(job, halo))


#: The formats of ``dlsuite export --format``.
FORMATS: dict[str, ExportFormat] = {
    "keras": ExportFormat(".keras", _write_keras, plain_keras=True, out_suffix=".keras",
                          help="a .keras file of plain Keras layers"),
    "savedmodel": ExportFormat("_savedmodel", write_savedmodel,
                               help="a TensorFlow SavedModel folder, signature 'serve'"),
    "onnx": ExportFormat(".onnx", _write_onnx, needs=("tf2onnx", "onnx", "onnxruntime"),
                         help="an ONNX file (Keras' exporter through tf2onnx), checked "
                              "against the model in onnxruntime"),
    "bioimageio": ExportFormat(".bioimageio.zip", _write_bioimageio,
                               needs=("bioimageio.spec",), plain_keras=True,
                               out_suffix=".zip",
                               help="a bioimage.io model package (spec 0.5)"),
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


def export_stem(name: str) -> str:
    """The file name (without suffix) of the models a run named ``name`` exports: its
    characters other than ``A-Z a-z 0-9 _ . -`` as ``-``, without leading dots and dashes,
    so a name like ``../x`` or ``team/run 1`` stays one file inside ``export/``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name).lstrip(".-") or "model"


def _default_out(root: Path, name: str, fmt: ExportFormat) -> Path:
    return root / "export" / f"{export_stem(name)}{fmt.suffix}"


def default_export_path(run_root: str | os.PathLike, name: str, fmt: str) -> Path:
    """Where ``dlsuite export`` writes format ``fmt`` of the run ``name`` by default:
    ``RUN_ROOT/export/<name><suffix>``."""
    return _default_out(Path(run_root), name, FORMATS[fmt])


def _check_out(out: Path, fmt: str, overwrite: bool = False) -> None:
    wanted = FORMATS[fmt].out_suffix
    if wanted and not out.name.endswith(wanted):
        raise DlsuiteInputError(f"{out}: a {fmt} export is a {wanted} file; give -o a name "
                                f"ending in {wanted}")
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise DlsuiteInputError(f"{out}: already exists; pass --overwrite to replace an "
                                    "earlier dlsuite export, or choose another path with -o")
        if not written_by_export(out, fmt):
            raise DlsuiteInputError(f"{out}: exists and is not a {fmt} export dlsuite wrote; "
                                    "it is not replaced, not even with --overwrite: choose "
                                    "another path with -o")
        added = _added_to_folder_export(out)
        if added:
            raise DlsuiteInputError(f"{added[0]}: not written by dlsuite export ({len(added)} "
                                    f"such file(s) in {out}); the export is not replaced, not "
                                    "even with --overwrite: move them, or choose another "
                                    "path with -o")
    if out.parent.exists() and not out.parent.is_dir():
        raise DlsuiteInputError(f"{out.parent}: exists and is not a folder")


#: The files TensorFlow writes into a SavedModel folder (dlsuite adds its metadata).
_SAVEDMODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables/variables.index",
                     "variables/variables.data-*-of-*")


def _added_to_folder_export(path: Path) -> list[Path]:
    """The files in the export folder ``path`` (a SavedModel) that an export does not
    write: someone added them, and replacing the folder would delete them."""
    import fnmatch

    from .embedded import SAVEDMODEL_METADATA

    if not path.is_dir() or path.is_symlink():
        return []
    written = (*_SAVEDMODEL_FILES, SAVEDMODEL_METADATA.as_posix())
    return sorted(p for p in path.rglob("*") if (p.is_file() or p.is_symlink()) and not any(
        fnmatch.fnmatchcase(p.relative_to(path).as_posix(), pattern) for pattern in written))


def written_by_export(path: Path, fmt: str) -> bool:
    """Whether ``path`` is a ``fmt`` export ``dlsuite export`` (or ``dlsuite run``) wrote:
    it carries the run's metadata (:mod:`.embedded`), or it lies in the ``export/`` folder
    of a run directory, which dlsuite owns."""
    from dlsuite.ownership import OwnedFolder

    if path.is_symlink():
        return False
    run = OwnedFolder(path.parent.parent, "run").read() if path.parent.name == "export" \
        else None
    if run is not None and "export" in run.written:
        return True
    from .embedded import embedded_metadata

    return embedded_metadata(path, fmt) is not None


def _move_into_place(new: Path, out: Path, scratch: Path) -> None:
    """``new`` (in ``scratch``) to ``out``, replacing what is there (checked by
    :func:`_check_out`): a file atomically, a folder moved aside into ``scratch`` first
    (Ctrl-C is held between the two moves: it would leave neither export)."""
    from dlsuite.fileio import _hold_signals, _release_signals

    held = _hold_signals()
    try:
        if out.is_dir():
            os.rename(out, scratch / ".replaced")
        os.replace(new, out)
    finally:
        _release_signals(held)


def _find(module: str):
    try:
        return importlib.util.find_spec(module)
    except ModuleNotFoundError:  # the parent package of a dotted name is missing
        return None


def missing_modules(fmt: ExportFormat) -> list[str]:
    """The Python modules format ``fmt`` needs that are not installed."""
    return [m for m in fmt.needs if _find(m) is None]


def _check_needs(name: str, fmt: ExportFormat) -> None:
    missing = missing_modules(fmt)
    if missing:
        raise DlsuiteInputError(f"export format {name!r} needs {', '.join(missing)}: "
                                "pip install 'dlsuite[export]'")


def _normalization(config) -> dict:
    from dlsuite.fileio import to_jsonable

    choice = config.datagen.normalization
    return {"name": choice.name, "params": to_jsonable(attrs.asdict(choice.params))
            if attrs.has(type(choice.params)) else {}}


@contextlib.contextmanager
def _scratch_beside(out: Path) -> Iterator[Path]:
    """A new temporary folder beside ``out`` (its parents created), removed at the end; made
    before the model loads, so a location that refuses writes fails first. An OSError names
    ``out``, not the temporary folder."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(out)) from exc
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_run(run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *,
               weights: str | None = None, overwrite: bool = False,
               registry=None) -> ExportResult:
    """Export the model of the trained run ``run_dir`` in format ``fmt`` (a key of
    :data:`FORMATS`) to ``out`` (default ``RUN_DIR/export/<run name><suffix>``), from the
    checkpoint ``weights`` names (``best``/``last``/a path; default the run's
    ``inference.weights``). ``overwrite``: replace an existing ``out`` that is an export
    dlsuite wrote (:func:`written_by_export`), once the new one is complete. DlsuiteInputError
    before anything is written for an unknown format, a missing run or checkpoint, an
    existing ``out`` (without ``overwrite``, or not dlsuite's export), a missing optional
    package, or a model that cannot be plain Keras (custom layers without a converter)."""
    from dlsuite.config.rules import scale_export_problem
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
    why = scale_export_problem(fmt, config.data.scale)
    if why:
        raise DlsuiteInputError(f"{root}: {why}")
    run = RunDir(root.resolve())
    checkpoint = choose_checkpoint(run, weights or config.inference.weights)
    default = out is None
    out = _default_out(run.root, config.name, spec) if default else Path(out).expanduser()
    _check_out(out, fmt, overwrite)
    _check_needs(fmt, spec)
    if fmt == "bioimageio":  # the config's export section: before the model loads
        from dlsuite.errors import ConfigError

        from .metadata import metadata_problems

        problems = metadata_problems(config)
        if problems:
            raise ConfigError(problems, str(root / "config.json"))
    geo = model_geometry(config, registry)

    if default and OwnedFolder(run.root, "run").read() is not None:
        OwnedFolder(run.root, "run").record(["export"])  # before creating it
    with _scratch_beside(out) as scratch:  # write, then rename: never half an export
        model = load_checkpoint(checkpoint, config, registry)
        notes = []
        if spec.plain_keras:
            from .plain_keras import custom_layers, to_plain_keras

            replaced = custom_layers(model)
            model = to_plain_keras(model)
            if replaced:
                notes.append(f"rebuilt as plain Keras layers: {', '.join(replaced)}")
        if config.data.scale != 1:
            notes.append(f"the model expects images resized by data.scale "
                         f"{config.data.scale:g} (dlsuite predict does it from a SavedModel, "
                         "or with --config RUN_DIR/config.json)")
        if config.inference.tta:
            notes.append("inference.tta is not part of the model: tools other than "
                         "dlsuite predict one pass (dlsuite predict averages the 8 flips and "
                         "turns from a SavedModel, or with --config RUN_DIR/config.json)")
        job = ExportJob(config, run.root, checkpoint, geo, registry)
        spec.write(model, scratch / out.name, job)
        _move_into_place(scratch / out.name, out, scratch)
    return ExportResult(
        path=out, format=fmt, checkpoint=checkpoint, architecture=config.model.name,
        input_shape=tuple(model.inputs[0].shape),
        outputs={name: tuple(t.shape) for name, t in zip(model.output_names, model.outputs)},
        size_multiple=int(geo["size_multiple"]), normalization=_normalization(config),
        notes=tuple(notes))
