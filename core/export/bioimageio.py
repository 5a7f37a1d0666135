"""A trained 2D run as a bioimage.io model package (model spec 0.5), built and validated by
the ``bioimageio.spec`` library (``pip install 'dlsuite[export]'``).

The package holds: the plain-Keras ``.keras`` weights (``keras_v3``) and the SavedModel
(``tensorflow_saved_model_bundle``, zipped); axes ``batch, y, x, channel``; the run's
normalizer as preprocessing (``percentile`` -> ``scale_range`` with the run's percentiles,
then ``clip`` to [0, 1] when the run clips; ``none`` -> nothing); ``softmax`` over the
channels as postprocessing; spatial sizes ``min + n * step`` with step the size multiple;
the output halo (the run's ``inference.halo``, rounded up to the size multiple); test
tensors from the first image of the run's validation data (raw pixels in, probabilities out,
computed by dlsuite); a cover picture; documentation from the run's config and metrics;
authors, licence, citations and tags from the config's ``export`` section
(:class:`BioimageioInfo`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from dlsuite.errors import DataError, DlsuiteInputError

__all__ = ["BioimageioInfo", "write_bioimageio", "PREPROCESSING"]


@attrs.frozen
class BioimageioInfo:
    """What the package says about who made it: ``authors`` (dicts with ``name`` and
    optionally ``affiliation``, ``email``, ``orcid``, ``github_user``), ``license`` (an SPDX
    id), ``cite`` (dicts with ``text`` and ``doi`` or ``url``), ``tags``, ``description``."""

    authors: tuple = ({"name": "dlsuite user"},)
    license: str = "CC-BY-4.0"
    cite: tuple = ({"text": "Ronneberger, Fischer and Brox: U-Net: Convolutional Networks for "
                            "Biomedical Image Segmentation (MICCAI 2015)",
                    "doi": "10.1007/978-3-319-24574-4_28"},)
    tags: tuple = ("segmentation", "2d", "dlsuite")
    description: str = ""

    @classmethod
    def from_config(cls, config) -> "BioimageioInfo":
        """The config's ``export`` section (defaults when the run's config has none)."""
        section = getattr(config, "export", None)
        if section is None:
            return cls()

        def given(obj) -> dict:
            return {k: v for k, v in attrs.asdict(obj).items() if v is not None}

        return cls(authors=tuple(given(a) for a in section.authors),
                   license=section.license, cite=tuple(given(c) for c in section.cite),
                   tags=tuple(section.tags), description=section.description or "")


def _percentile_steps(params) -> list:
    from bioimageio.spec.model import v0_5

    if getattr(params, "illumination_sigma", None) is not None:
        raise DlsuiteInputError("bioimageio export: the run's normalizer corrects uneven "
                                "illumination (illumination_sigma), which bioimage.io "
                                "preprocessing cannot express")
    steps = [v0_5.ScaleRangeDescr(kwargs=v0_5.ScaleRangeKwargs(
        axes=[v0_5.AxisId("y"), v0_5.AxisId("x")], min_percentile=float(params.low),
        max_percentile=float(params.high), eps=1e-6))]
    if params.clip:
        steps.append(v0_5.ClipDescr(kwargs=v0_5.ClipKwargs(min=0.0, max=1.0)))
    return steps


def _no_steps(params) -> list:
    if getattr(params, "illumination_sigma", None) is not None:
        raise DlsuiteInputError("bioimageio export: the run's normalizer corrects uneven "
                                "illumination (illumination_sigma), which bioimage.io "
                                "preprocessing cannot express")
    return []


#: Normalizer plugin name -> its bioimage.io preprocessing steps (from the plugin's params).
PREPROCESSING = {"percentile": _percentile_steps, "none": _no_steps}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _validation_image(config, multiple: int, limit: int = 256) -> tuple[np.ndarray, str]:
    """The first frame of the first sample of the run's validation (else training) data,
    cropped to a multiple of ``multiple`` (at most ``limit`` px a side)."""
    from dlsuite.data.layouts import list_samples, load_sample

    folder = config.data.val or config.data.train
    if not folder or not Path(folder).exists():
        raise DataError(f"{folder}: the run's validation data is needed for the bioimage.io "
                        "test tensors and is not there")
    sample = list_samples(folder, config.data.layout, require_labels=False)[0]
    image = load_sample(sample).image[0]
    h, w = (min(limit, s) // multiple * multiple for s in image.shape)
    if h == 0 or w == 0:
        raise DataError(f"{sample.image}: smaller than the size multiple {multiple}")
    return np.ascontiguousarray(image[:h, :w]), str(sample.image)


def _cover(raw: np.ndarray, probs: np.ndarray, path: Path) -> None:
    """Input (left) beside the foreground probability (right), 8-bit grey PNG."""
    import imageio.v3 as iio

    lo, hi = np.percentile(raw, [1, 99])
    left = np.clip((raw - lo) / max(hi - lo, 1e-6), 0, 1)
    right = 1.0 - probs[..., 0] if probs.shape[-1] > 1 else probs[..., 0]
    iio.imwrite(path, (np.concatenate([left, right], axis=1) * 255).astype(np.uint8))


def _documentation(config, run_root: Path, checkpoint: Path, source: str) -> str:
    from dlsuite.fileio import to_jsonable

    metrics = run_root / "metrics.json"
    lines = [f"# {config.name}", "", "Trained with dlsuite.", "",
             f"- architecture: `{config.model.name}`",
             f"- checkpoint: `{checkpoint.name}`",
             f"- test tensor: first frame of `{Path(source).name}` (validation data)", "",
             "## Model parameters", "", "```json",
             json.dumps(to_jsonable(attrs.asdict(config.model.params)), indent=2), "```", "",
             "## Normalization", "", "```json",
             json.dumps(to_jsonable(attrs.asdict(config.datagen.normalization)), indent=2),
             "```", ""]
    if metrics.is_file():
        lines += ["## Metrics (metrics.json of the run)", "", "```json",
                  metrics.read_text(encoding="utf-8").strip(), "```", ""]
    return "\n".join(lines)


def write_bioimageio(model, config, *, run_root: Path, checkpoint: Path, halo: int,
                     size_multiple: int, normalize, out: Path,
                     info: BioimageioInfo = BioimageioInfo(), metadata: dict | None = None
                     ) -> None:
    """Write the bioimage.io package of the (plain Keras, 2D, one output) ``model`` of the run
    to the zip ``out`` (validated by ``bioimageio.spec`` while built), with ``metadata``
    (:func:`dlsuite.export.embedded.run_metadata`) as ``config.dlsuite``. DlsuiteInputError for a
    normalizer bioimage.io cannot express or a model that is not 2D with one output."""
    import keras
    import tensorflow as tf
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5

    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.inputs[0].shape) != 4:
        raise DlsuiteInputError("bioimageio export: needs a 2D model with one input and one "
                                f"output; got inputs {[tuple(t.shape) for t in model.inputs]} "
                                f"and {len(model.outputs)} output(s)")
    norm = config.datagen.normalization
    if norm.name not in PREPROCESSING:
        raise DlsuiteInputError(f"bioimageio export: normalizer {norm.name!r} has no bioimage.io "
                                f"preprocessing; supported: {', '.join(PREPROCESSING)}")
    preprocessing = PREPROCESSING[norm.name](norm.params)
    n_classes = int(model.outputs[0].shape[-1])
    m = int(size_multiple)
    # the spec wants more than the two halos at the smallest size
    minimum = m * (2 * halo // m + 1)

    raw, source = _validation_image(config, m)
    if min(raw.shape) < minimum:
        raise DataError(f"{source}: {raw.shape[0]} x {raw.shape[1]} px is smaller than the "
                        f"package's minimum input of {minimum} px (twice the halo {halo} px, "
                        f"rounded to the size multiple {m}); validation images must be larger")
    x = normalize(raw[np.newaxis])[0][np.newaxis, ..., np.newaxis].astype(np.float32)
    probs = _softmax(np.asarray(model.predict(x, verbose=0)))

    work = Path(tempfile.mkdtemp(prefix=".bioimageio.", dir=out.parent))
    try:
        model.save(work / "model.keras")
        from . import write_savedmodel

        write_savedmodel(model, work / "saved_model")
        with zipfile.ZipFile(work / "tf_saved_model.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted((work / "saved_model").rglob("*")):
                zf.write(f, f.relative_to(work / "saved_model"))
        np.save(work / "test_input.npy", raw[np.newaxis, ..., np.newaxis].astype(np.float32))
        np.save(work / "test_output.npy", probs)
        _cover(raw.astype(np.float32), probs[0], work / "cover.png")
        (work / "README.md").write_text(_documentation(config, run_root, checkpoint, source),
                                        encoding="utf-8")
        size = v0_5.ParameterizedSize(min=minimum, step=m)
        inp = v0_5.InputTensorDescr(
            id=v0_5.TensorId("raw"), description="raw image, one channel",
            axes=[v0_5.BatchAxis(), v0_5.SpaceInputAxis(id=v0_5.AxisId("y"), size=size),
                  v0_5.SpaceInputAxis(id=v0_5.AxisId("x"), size=size),
                  v0_5.ChannelAxis(channel_names=[v0_5.Identifier("raw")])],
            test_tensor=v0_5.FileDescr(source=work / "test_input.npy"),
            data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            preprocessing=preprocessing)
        out_axes = [v0_5.BatchAxis()] + [
            v0_5.SpaceOutputAxisWithHalo(
                id=v0_5.AxisId(a), halo=halo,
                size=v0_5.SizeReference(tensor_id=v0_5.TensorId("raw"), axis_id=v0_5.AxisId(a)))
            for a in ("y", "x")] + [v0_5.ChannelAxis(
                channel_names=[v0_5.Identifier(f"class{i}") for i in range(n_classes)])]
        output = v0_5.OutputTensorDescr(
            id=v0_5.TensorId("probabilities"), description="class probabilities (softmax)",
            axes=out_axes, test_tensor=v0_5.FileDescr(source=work / "test_output.npy"),
            data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
            postprocessing=[v0_5.SoftmaxDescr(kwargs=v0_5.SoftmaxKwargs(
                axis=v0_5.AxisId("channel")))])
        weights = v0_5.WeightsDescr(
            keras_v3=v0_5.KerasV3WeightsDescr(
                source=work / "model.keras", keras_version=v0_5.Version(keras.__version__),
                backend=("tensorflow", v0_5.Version(tf.__version__))),
            tensorflow_saved_model_bundle=v0_5.TensorflowSavedModelBundleWeightsDescr(
                source=work / "tf_saved_model.zip", parent="keras_v3",
                tensorflow_version=v0_5.Version(tf.__version__)))
        descr = v0_5.ModelDescr(
            name=config.name.replace("_", " ")[:128] if len(config.name) >= 5
            else f"dlsuite {config.name}",
            description=info.description or (
                f"{config.model.name} segmentation ({n_classes} classes) trained with dlsuite"),
            authors=[v0_5.Author(**a) for a in info.authors],
            cite=[v0_5.CiteEntry(**c) for c in info.cite],
            license=info.license, tags=list(info.tags),
            covers=[v0_5.FileDescr(source=work / "cover.png")],
            documentation=v0_5.FileDescr(source=work / "README.md"),
            inputs=[inp], outputs=[output], weights=weights,
            config=v0_5.Config(**({"dlsuite": metadata} if metadata else {})))
        tmp_zip = work / out.name
        save_bioimageio_package(descr, output_path=tmp_zip)
        os.replace(tmp_zip, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
