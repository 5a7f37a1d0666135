"""What an exported model carries about its run, so ``dlsuite predict`` gives the same labels
from the export as from the run: the run's config (normalizer, inference tiling, the
post-processing chain with the values tuned into ``postprocess.json``, tracking), the size
multiple and the halo in pixels.

It is a JSON object (:func:`run_metadata`): the ``config.dlsuite`` field of a bioimage.io
package's ``rdf.yaml``, ``assets.extra/dlsuite.json`` in a SavedModel folder (the
folder TensorFlow Serving reserves for extra files) and ``dlsuite.json`` in the zip of a
``.keras`` file (beside Keras' ``config.json``; ``keras.models.load_model`` reads only its
own entries). Other tools ignore it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["METADATA_VERSION", "SAVEDMODEL_METADATA", "KERAS_METADATA", "ONNX_METADATA",
           "RDF_NAMES",
           "embedded_metadata", "export_halo", "run_metadata"]

#: Version of the layout of :func:`run_metadata`.
METADATA_VERSION = 1
#: Where a SavedModel folder written by ``dlsuite export`` holds :func:`run_metadata`.
SAVEDMODEL_METADATA = Path("assets.extra") / "dlsuite.json"
#: Where a ``.keras`` file written by ``dlsuite export`` holds :func:`run_metadata` (a zip
#: entry).
KERAS_METADATA = "dlsuite.json"
#: The key of an ONNX file's ``metadata_props`` entry holding :func:`run_metadata`.
ONNX_METADATA = "dlsuite"
#: The names of a bioimage.io package's description file (the first one present).
RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")


def embedded_metadata(path: Path, fmt: str) -> dict | None:
    """The :func:`run_metadata` a ``fmt`` export at ``path`` carries; None when it carries
    none or is not such an export (unreadable, another tool's file)."""
    import zipfile

    try:
        if fmt == "savedmodel":
            data = json.loads((path / SAVEDMODEL_METADATA).read_text(encoding="utf-8"))
        elif fmt == "keras":
            with zipfile.ZipFile(path) as archive:
                data = json.loads(archive.read(KERAS_METADATA).decode("utf-8"))
        elif fmt == "onnx":
            import onnx

            props = onnx.load(str(path), load_external_data=False).metadata_props
            data = json.loads(next(p.value for p in props if p.key == ONNX_METADATA))
        elif fmt == "bioimageio":
            import yaml

            with zipfile.ZipFile(path) as archive:
                name = next(n for n in RDF_NAMES if n in archive.namelist())
                rdf = yaml.safe_load(archive.read(name).decode("utf-8"))
            data = rdf.get("config", {}).get("dlsuite")
        else:
            return None
    except Exception:  # noqa: BLE001 -- anything unreadable is not dlsuite's export
        return None
    return data if isinstance(data, dict) and "dlsuite_version" in data else None


def export_halo(job) -> int:
    """The halo in pixels the run predicts with (``inference.halo``; ``auto``: the reach of
    the architecture's receptive field, declared or measured), rounded up to the size
    multiple: the halo of the package and of ``dlsuite predict`` on the run."""
    from dlsuite.models import halo_pixels, used_halo

    geo, config = job.geometry, job.config
    rf = geo["receptive_field"]
    if config.inference.halo == "auto" and rf is None:
        from dlsuite.inference.receptive_field import measured_receptive_field

        entry = job.registry.resolve("architectures", config.model.name)
        rf = measured_receptive_field(entry, config.model.params,
                                      n_classes=geo["n_classes"]).receptive_field
    return int(used_halo(halo_pixels(config.inference.halo, rf), geo["size_multiple"]))


def run_metadata(job, halo: int) -> dict[str, Any]:
    """``{"version", "dlsuite_version", "config", "postprocess_json", "size_multiple",
    "halo", "temporal", "n_classes"}`` of the run behind ``job`` (an
    :class:`dlsuite.export.ExportJob`): ``config`` as plain JSON (data paths kept, only as
    a record), ``postprocess_json`` the run's tuned post-processing values (None: untuned)."""
    from dlsuite import __version__
    from dlsuite.config.converter import unstructure_config
    from dlsuite.fileio import to_jsonable

    tuned = job.root / "postprocess.json"
    try:
        postprocess = json.loads(tuned.read_text(encoding="utf-8")) if tuned.is_file() else None
    except ValueError:
        postprocess = None  # predict from the run refuses it too; the package keeps the config's
    return {"version": METADATA_VERSION, "dlsuite_version": __version__,
            "config": to_jsonable(unstructure_config(job.config, job.registry)),
            "postprocess_json": postprocess, "size_multiple": int(job.geometry["size_multiple"]),
            "halo": int(halo), "temporal": bool(job.geometry["temporal"]),
            "n_classes": int(job.geometry["n_classes"])}
