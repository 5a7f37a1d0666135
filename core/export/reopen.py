"""Reading an exported model back: a bioimage.io package (zip, folder or its ``rdf.yaml``), a
SavedModel folder or a ``.keras`` file, as written by ``dlsuite export`` or by another tool
when it fits dlsuite's prediction (one input ``batch, y, x, channel``, or ``batch, time, y,
x, channel`` for a temporal model; one output ``batch, y, x, channel``; the model gives
logits and, in a package, ``softmax`` is the first output postprocessing step).

:func:`exported_kind` tells what a path is without loading anything; :func:`open_export`
checks and loads it (no file is written outside a temporary folder, removed at exit).
The package is read with plain YAML: predicting needs no ``dlsuite[export]`` extra. Every
problem is a DlsuiteInputError naming the path the user gave.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import attrs

from dlsuite.errors import DlsuiteInputError

from .embedded import RDF_NAMES

__all__ = ["EXPORT_KINDS", "OpenedExport", "exported_kind", "open_export"]

#: What :func:`exported_kind` recognises, for messages.
EXPORT_KINDS = ("a bioimage.io package (.zip, or a folder with rdf.yaml)", "a .keras file",
                "a SavedModel folder")
#: ``scale_range`` axes (sorted) -> the ``per`` of dlsuite's percentile normalizer.
_SCALE_AXES = {("x", "y"): "image", ("time", "x", "y"): "video"}
#: Input axis types dlsuite predicts with: 2D, temporal.
_INPUT_AXES = (["batch", "space", "space", "channel"],
               ["batch", "time", "space", "space", "channel"])


@attrs.frozen
class OpenedExport:
    """An exported model ready to predict: ``model`` (a Keras model giving logits), ``kind``
    (``bioimageio``, ``savedmodel``, ``keras``), ``metadata`` (what ``dlsuite export`` embedded,
    :func:`dlsuite.export.embedded.run_metadata`; None otherwise) and, read from a package,
    ``normalization`` (``{"name", "params"}`` of the dlsuite normalizer equal to its
    preprocessing), ``size_multiple`` and ``halo`` (pixels; None when not known; a temporal
    package's fixed size gives no multiple: it is then inferred from the model)."""

    path: Path
    kind: str
    model: Any
    metadata: dict | None = None
    normalization: dict | None = None
    size_multiple: int | None = None
    halo: int | None = None


def exported_kind(path) -> str | None:
    """``"bioimageio"``, ``"savedmodel"`` or ``"keras"`` when ``path`` looks like one (by its
    name or the files in it); None for anything else, e.g. a run directory."""
    p = Path(path).expanduser()
    name = p.name.lower()
    if p.is_file():
        if name.endswith(".zip") or name in RDF_NAMES or name.endswith(".bioimageio.yaml"):
            return "bioimageio"
        return "keras" if name.endswith(".keras") else None
    if p.is_dir() and not (p / "config.json").is_file():
        if any((p / n).is_file() for n in RDF_NAMES):
            return "bioimageio"
        if (p / "saved_model.pb").is_file():
            return "savedmodel"
    return None


def _temporary_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="dlsuite-export-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _unzip(path: Path) -> Path:
    try:
        with zipfile.ZipFile(path) as zf:
            if not any(n in zf.namelist() for n in RDF_NAMES):
                raise DlsuiteInputError(f"{path}: no rdf.yaml in this zip: not a bioimage.io "
                                        "model package")
            folder = _temporary_folder()
            zf.extractall(folder)  # extractall keeps members inside folder
    except (zipfile.BadZipFile, OSError) as exc:
        raise DlsuiteInputError(f"{path}: not a readable zip file ({exc})") from None
    return folder


def _read_rdf(path: Path) -> tuple[dict, Path]:
    """The package's description and the folder holding its files."""
    import yaml

    folder = _unzip(path) if path.is_file() and path.name.lower().endswith(".zip") else (
        path.parent if path.is_file() else path)
    rdf_file = path if path.is_file() and not path.name.lower().endswith(".zip") else next(
        folder / n for n in RDF_NAMES if (folder / n).is_file())
    try:
        rdf = yaml.safe_load(rdf_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DlsuiteInputError(f"{path}: {rdf_file.name} is not readable YAML "
                                f"({type(exc).__name__})") from None
    if not isinstance(rdf, dict) or rdf.get("type") != "model" or not str(
            rdf.get("format_version", "")).startswith("0.5"):
        got = (rdf.get("type"), rdf.get("format_version")) if isinstance(rdf, dict) else rdf
        raise DlsuiteInputError(f"{path}: not a bioimage.io model description of format 0.5 "
                                f"(type, format_version: {got})")
    return rdf, folder


def _percentile(steps: list, path: Path) -> dict:
    """The dlsuite normalizer equal to the package's input preprocessing (``ensure_dtype``
    steps aside: dlsuite feeds float32)."""
    steps = [s for s in steps if s.get("id") != "ensure_dtype"]
    ids = [s.get("id") for s in steps]
    if not steps:
        return {"name": "none", "params": {}}
    if ids in (["scale_range"], ["scale_range", "clip"]):
        kw = steps[0].get("kwargs") or {}
        clip = steps[1].get("kwargs", {}) if len(steps) == 2 else None
        per = _SCALE_AXES.get(tuple(sorted(kw.get("axes") or [])))
        if per is not None and (
                clip is None or (clip.get("min"), clip.get("max")) == (0.0, 1.0)):
            return {"name": "percentile", "params": {
                "low": float(kw.get("min_percentile", 0.0)),
                "high": float(kw.get("max_percentile", 100.0)), "clip": clip is not None,
                "per": per}}
    raise DlsuiteInputError(f"{path}: input preprocessing {ids} has no dlsuite normalizer "
                            "(supported: none; scale_range over y and x, or over time, y and "
                            "x, then clip to [0, 1])")



def _check_tensors(rdf: dict, path: Path) -> tuple[list, list]:
    inputs, outputs = rdf.get("inputs") or [], rdf.get("outputs") or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise DlsuiteInputError(f"{path}: dlsuite predicts with one input and one output "
                                f"tensor; the package has {len(inputs)} and {len(outputs)}")
    axes = [(a.get("type"), a.get("id")) for a in inputs[0].get("axes") or []]
    if [t for t, _ in axes] not in _INPUT_AXES or [i for _, i in axes[-3:-1]] != ["y", "x"]:
        raise DlsuiteInputError(f"{path}: input axes {[i or t for t, i in axes]}; dlsuite "
                                "predicts models with axes batch, y, x, channel (2D) or "
                                "batch, time, y, x, channel (temporal)")
    out_axes = [(a.get("type"), a.get("id")) for a in outputs[0].get("axes") or []]
    if [t for t, _ in out_axes] != ["batch", "space", "space", "channel"]:
        raise DlsuiteInputError(f"{path}: output axes {[i or t for t, i in out_axes]}; "
                                "dlsuite predicts 2D models with axes batch, y, x, channel")
    post = [p.get("id") for p in outputs[0].get("postprocessing") or []]
    if not post or post[0] != "softmax":
        raise DlsuiteInputError(f"{path}: output postprocessing {post}: dlsuite needs a model "
                                "giving logits with softmax as the first postprocessing step")
    return inputs[0]["axes"], outputs[0]["axes"]


def _weights(rdf: dict, folder: Path, path: Path) -> tuple[str, Path]:
    """``("keras", file)`` or ``("savedmodel", folder)`` of the package's weights."""
    weights = rdf.get("weights") or {}
    for key, kind in (("keras_v3", "keras"), ("tensorflow_saved_model_bundle", "savedmodel")):
        entry = weights.get(key)
        if not entry:
            continue
        source = folder / str(entry.get("source", ""))
        if not source.exists():
            raise DlsuiteInputError(f"{path}: its {key} weights {entry.get('source')!r} are "
                                    "not in the package")
        if kind == "savedmodel" and source.is_file():
            unpacked = _temporary_folder()
            try:
                with zipfile.ZipFile(source) as zf:
                    zf.extractall(unpacked)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DlsuiteInputError(f"{path}: its {key} weights are not a readable zip "
                                        f"({exc})") from None
            source = unpacked
        return kind, source
    raise DlsuiteInputError(f"{path}: no keras_v3 or tensorflow_saved_model_bundle weights "
                            f"(has: {', '.join(weights) or 'none'})")


def _load_keras(file: Path, path: Path):
    from dlsuite.models import load_model_file

    try:
        return load_model_file(file)
    except DlsuiteInputError as exc:
        raise DlsuiteInputError(f"{path}: {str(exc).removeprefix(f'{file}: ')}") from None


def _endpoint_shape(fn) -> tuple:
    """The input shape (batch excluded) of a SavedModel endpoint with one input: e.g.
    ``(T, H, W, 1)`` of a temporal model; ``(None, None, 1)`` when it is not recorded."""
    specs = getattr(fn, "input_signature", None)
    if specs is None:
        args = getattr(fn, "structured_input_signature", None)
        specs = list(args[0]) + list(args[1].values()) if args else None
    if not specs or len(specs) != 1 or getattr(specs[0], "shape", None) is None or \
            specs[0].shape.rank not in (4, 5):
        return (None, None, 1)
    return tuple(specs[0].shape)[1:]


def _load_savedmodel(folder: Path, path: Path):
    """The SavedModel's ``serve`` (else ``serving_default``) endpoint as a Keras model with
    the endpoint's input shape (a 2D model written by ``dlsuite export``: open height and
    width), giving its one output."""
    import keras

    errors = []
    for endpoint in ("serve", "serving_default"):
        try:
            layer = keras.layers.TFSMLayer(str(folder), call_endpoint=endpoint)
            break
        except Exception as exc:  # noqa: BLE001 - try the next endpoint, then report both
            errors.append(f"{endpoint}: {type(exc).__name__}")
    else:
        raise DlsuiteInputError(f"{path}: cannot load the SavedModel ({'; '.join(errors)})")
    inp = keras.Input(_endpoint_shape(layer.call_endpoint_fn))
    out = layer(inp)
    if isinstance(out, dict):
        if len(out) != 1:
            raise DlsuiteInputError(f"{path}: the SavedModel has {len(out)} outputs; dlsuite "
                                    "predicts with one")
        out = next(iter(out.values()))
    return keras.Model(inp, out)


def _savedmodel_metadata(folder: Path, path: Path) -> dict | None:
    from .embedded import SAVEDMODEL_METADATA

    file = folder / SAVEDMODEL_METADATA
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DlsuiteInputError(f"{path}: {SAVEDMODEL_METADATA} is not readable JSON "
                                f"({exc})") from None


def _keras_metadata(path: Path) -> dict | None:
    """What ``dlsuite export`` embedded in a ``.keras`` file (None: another tool's file, or
    a run's checkpoint). The archive itself was checked by loading the model."""
    from .embedded import KERAS_METADATA

    try:
        with zipfile.ZipFile(path) as archive:
            if KERAS_METADATA not in archive.namelist():
                return None
            data = json.loads(archive.read(KERAS_METADATA).decode("utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DlsuiteInputError(f"{path}: {KERAS_METADATA} in it is not readable JSON "
                                f"({exc})") from None
    return data if isinstance(data, dict) else None


def open_export(path) -> OpenedExport:
    """Check and load the exported model at ``path`` (see :func:`exported_kind`).
    DlsuiteInputError naming ``path`` for anything dlsuite cannot predict with: an
    unreadable zip or YAML, a description that is not a 0.5 model, other axes, several
    tensors, preprocessing without a dlsuite normalizer, output postprocessing not starting
    with softmax, missing weights, a model that does not load."""
    path = Path(path).expanduser()
    kind = exported_kind(path)
    if kind == "keras":
        return OpenedExport(path, kind, _load_keras(path, path),
                            metadata=_keras_metadata(path))
    if kind == "savedmodel":
        return OpenedExport(path, kind, _load_savedmodel(path, path),
                            metadata=_savedmodel_metadata(path, path))
    if kind != "bioimageio":
        raise DlsuiteInputError(f"{path}: not a run directory, nor {', '.join(EXPORT_KINDS)}")
    rdf, folder = _read_rdf(path)
    in_axes, out_axes = _check_tensors(rdf, path)
    normalization = _percentile(rdf["inputs"][0].get("preprocessing") or [], path)
    size = in_axes[-3].get("size")
    multiple = int(size.get("step", 1)) if isinstance(size, dict) else None
    halo = int(out_axes[1].get("halo", 0) or 0)
    metadata = (rdf.get("config") or {}).get("dlsuite")
    weights, source = _weights(rdf, folder, path)
    model = (_load_keras(source, path) if weights == "keras"
             else _load_savedmodel(source, path))
    return OpenedExport(path, kind, model, metadata if isinstance(metadata, dict) else None,
                        normalization, None if multiple is None else max(multiple, 1), halo)
