"""A trained run as a bioimage.io model package (model spec 0.5), built and validated by
the ``bioimageio.spec`` library (``pip install 'dlsuite[export]'``).

The package holds: the plain-Keras ``.keras`` weights (``keras_v3``), the SavedModel
(``tensorflow_saved_model_bundle``, zipped) and, when ``tf2onnx`` and ``onnx`` are installed
and Keras' ONNX exporter handles the model, ``onnx`` weights (else the documentation says
why they are missing); axes ``batch, y, x, channel``; the run's
normalizer as preprocessing (``percentile`` -> ``scale_range`` with the run's percentiles,
then ``clip`` to [0, 1] when the run clips; ``none`` -> nothing); ``softmax`` over the
channels as postprocessing; spatial sizes ``min + n * step`` with step the size multiple;
the output halo (the run's ``inference.halo``, rounded up to the size multiple); test
tensors from the first image of the run's validation data (raw pixels in, probabilities out,
computed by dlsuite); a cover picture; documentation from the run's config and metrics;
authors, licence, citations and tags from the config's ``export`` section
(:class:`BioimageioInfo`).

Temporal models (input ``(B, T, H, W, 1)``) get input axes ``batch, time, y, x, channel``
with ``T`` the run's time window, and a fixed height and width (ConvLSTM needs static
shapes): those of the test window, the first ``T`` frames of the first validation video
(cropped as above), the model rebuilt at that size. Their output has no time axis
(``batch, y, x, channel``): the probabilities of the window's last frame, the frame dlsuite
assigns a window's prediction to. A ``per: video`` normalizer scales over ``time, y, x``
(the window), ``per: image`` over ``y, x`` (each frame).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import attrs
import numpy as np

from dlsuite.errors import DataError, DlsuiteInputError
from dlsuite.export.metadata import package_name

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


def _percentile_steps(params, temporal: bool = False) -> list:
    from bioimageio.spec.model import v0_5

    if getattr(params, "illumination_sigma", None) is not None:
        raise DlsuiteInputError("bioimageio export: the run's normalizer corrects uneven "
                                "illumination (illumination_sigma), which bioimage.io "
                                "preprocessing cannot express")
    names = ("time", "y", "x") if temporal and getattr(params, "per", "video") == "video" \
        else ("y", "x")
    steps = [v0_5.ScaleRangeDescr(kwargs=v0_5.ScaleRangeKwargs(
        axes=[v0_5.AxisId(a) for a in names], min_percentile=float(params.low),
        max_percentile=float(params.high), eps=1e-6))]
    if params.clip:
        steps.append(v0_5.ClipDescr(kwargs=v0_5.ClipKwargs(min=0.0, max=1.0)))
    return steps


def _no_steps(params, temporal: bool = False) -> list:
    if getattr(params, "illumination_sigma", None) is not None:
        raise DlsuiteInputError("bioimageio export: the run's normalizer corrects uneven "
                                "illumination (illumination_sigma), which bioimage.io "
                                "preprocessing cannot express")
    return []


#: Normalizer plugin name -> its bioimage.io preprocessing steps (from the plugin's params and
#: whether the input has a time axis).
PREPROCESSING = {"percentile": _percentile_steps, "none": _no_steps}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _validation_image(config, multiple: int, limit: int = 256,
                      frames: int | None = None) -> tuple[np.ndarray, str]:
    """The first frame ``(h, w)`` of the first sample of the run's validation (else
    training) data, or with ``frames`` the window ``(frames, h, w)`` ending at frame
    ``frames - 1`` (mirrored in time as dlsuite does when the video is shorter), cropped to
    a multiple of ``multiple`` (at most ``limit`` px a side)."""
    from dlsuite.data.layouts import list_samples
    from dlsuite.data.sample_loading import load_sample
    from dlsuite.data.windows import window_indices

    folder = config.data.val or config.data.train
    if not folder or not Path(folder).exists():
        raise DataError(f"{folder}: the run's validation data is needed for the bioimage.io "
                        "test tensors and is not there")
    sample = list_samples(folder, config.data.layout, require_labels=False)[0]
    video = load_sample(sample).image
    image = video[0] if frames is None else video[
        window_indices(min(frames, len(video)) - 1, frames)]
    h, w = (min(limit, s) // multiple * multiple for s in image.shape[-2:])
    if h == 0 or w == 0:
        raise DataError(f"{sample.image}: smaller than the size multiple {multiple}")
    return np.ascontiguousarray(image[..., :h, :w]), str(sample.image)


def _cover(raw: np.ndarray, probs: np.ndarray, path: Path) -> None:
    """Input (left) beside the foreground probability (right), 8-bit grey PNG."""
    import imageio.v3 as iio

    lo, hi = np.percentile(raw, [1, 99])
    left = np.clip((raw - lo) / max(hi - lo, 1e-6), 0, 1)
    right = 1.0 - probs[..., 0] if probs.shape[-1] > 1 else probs[..., 0]
    iio.imwrite(path, (np.concatenate([left, right], axis=1) * 255).astype(np.uint8))


def _documentation(config, run_root: Path, checkpoint: Path, source: str,
                   frames: int | None = None) -> str:
    from dlsuite.fileio import to_jsonable

    metrics = run_root / "metrics.json"
    test = (f"first frame of `{Path(source).name}`" if frames is None else
            f"the first {frames}-frame window of `{Path(source).name}`")
    lines = [f"# {config.name}", "", "Trained with dlsuite.", "",
             f"- architecture: `{config.model.name}`",
             f"- checkpoint: `{checkpoint.name}`",
             f"- test tensor: {test} (validation data)", ""]
    if frames is not None:
        lines += ["## Time", "", f"The input is a window of {frames} consecutive frames "
                  "(axes batch, time, y, x, channel) at the fixed size of the test tensor. "
                  "The output (batch, y, x, channel) holds the probabilities of the window's "
                  "last frame; predict frame t of a video from the frames t - T + 1 .. t "
                  "(dlsuite mirrors the video in time before its first frame).", ""]
    lines += [
             "## Model parameters", "", "```json",
             json.dumps(to_jsonable(attrs.asdict(config.model.params)), indent=2), "```", "",
             "## Normalization", "", "```json",
             json.dumps(to_jsonable(attrs.asdict(config.datagen.normalization)), indent=2),
             "```", ""]
    if metrics.is_file():
        lines += ["## Metrics (metrics.json of the run)", "", "```json",
                  metrics.read_text(encoding="utf-8").strip(), "```", ""]
    return "\n".join(lines)


def _onnx_weights(model, path: Path):
    """Write ``model`` as ONNX to ``path``: its ``OnnxWeightsDescr``, or the reason (a
    string) when the exporter's packages are missing or it fails."""
    from bioimageio.spec.model import v0_5

    from . import FORMATS, missing_modules

    missing = missing_modules(FORMATS["onnx"])
    if missing:
        return f"{', '.join(missing)} not installed"
    try:
        import onnx

        FORMATS["onnx"].write(model, path)
        imports = onnx.load(str(path)).opset_import
        opset = max(o.version for o in imports if o.domain in ("", "ai.onnx"))
    except Exception as exc:  # noqa: BLE001 - the package is still valid without ONNX
        lines = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"
    return v0_5.OnnxWeightsDescr(source=path, opset_version=int(opset), parent="keras_v3")


def _fit_model(model, temporal: bool, size: tuple[int, int]):
    """``model`` itself, or a temporal one with a static size other than ``size`` rebuilt at
    ``size`` (same weights)."""
    if not temporal or tuple(model.inputs[0].shape[2:4]) == tuple(size):
        return model
    from dlsuite.inference.tiling import rebuild_at_size

    return rebuild_at_size(model, size)


def _input_axes(temporal: bool, frames: int, shape: tuple[int, int], minimum: int,
                step: int) -> list:
    """2D: ``batch, y, x, channel`` with sizes ``minimum + n * step``; temporal:
    ``batch, time, y, x, channel`` with ``frames`` and the fixed ``shape``."""
    from bioimageio.spec.model import v0_5

    sizes = shape if temporal else (v0_5.ParameterizedSize(min=minimum, step=step),) * 2
    space = [v0_5.SpaceInputAxis(id=v0_5.AxisId(a), size=n) for a, n in zip("yx", sizes)]
    time = [v0_5.TimeInputAxis(size=int(frames))] if temporal else []
    return [v0_5.BatchAxis(), *time, *space,
            v0_5.ChannelAxis(channel_names=[v0_5.Identifier("raw")])]


def write_bioimageio(model, config, *, run_root: Path, checkpoint: Path, halo: int,
                     size_multiple: int, normalize, out: Path,
                     info: BioimageioInfo = BioimageioInfo(), metadata: dict | None = None
                     ) -> None:
    """Write the bioimage.io package of the (plain Keras, one output) ``model`` of the run
    to the zip ``out`` (validated by ``bioimageio.spec`` while built), with ``metadata``
    (:func:`dlsuite.export.embedded.run_metadata`) as ``config.dlsuite``. ``model`` is 2D
    (input ``(B, H, W, 1)``) or temporal (``(B, T, H, W, 1)``, see the module docstring).
    DlsuiteInputError for a normalizer bioimage.io cannot express or another model;
    DataError when the validation data is missing or too small for the halo."""
    import keras
    import tensorflow as tf
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5

    rank = len(model.inputs[0].shape) if len(model.inputs) == 1 else 0
    if rank not in (4, 5) or len(model.outputs) != 1 or len(model.outputs[0].shape) != 4:
        raise DlsuiteInputError("bioimageio export: needs a model with one input (B, H, W, 1) "
                                "or (B, T, H, W, 1) and one output (B, H, W, C); got inputs "
                                f"{[tuple(t.shape) for t in model.inputs]} and outputs "
                                f"{[tuple(t.shape) for t in model.outputs]}")
    temporal = rank == 5
    frames = int(model.inputs[0].shape[1]) if temporal else None
    norm = config.datagen.normalization
    if norm.name not in PREPROCESSING:
        raise DlsuiteInputError(f"bioimageio export: normalizer {norm.name!r} has no bioimage.io "
                                f"preprocessing; supported: {', '.join(PREPROCESSING)}")
    preprocessing = PREPROCESSING[norm.name](norm.params, temporal)
    n_classes = int(model.outputs[0].shape[-1])
    m = int(size_multiple)
    # the spec wants more than the two halos at the smallest size
    minimum = m * (2 * halo // m + 1)

    raw, source = _validation_image(config, m, frames=frames)
    if min(raw.shape[-2:]) < minimum:
        raise DataError(f"{source}: {raw.shape[-2]} x {raw.shape[-1]} px is smaller than the "
                        f"package's minimum input of {minimum} px (twice the halo {halo} px, "
                        f"rounded to the size multiple {m}); validation images must be larger")
    model = _fit_model(model, temporal, raw.shape[-2:])
    norm_raw = normalize(raw if temporal else raw[np.newaxis])
    x = (norm_raw if temporal else norm_raw[0])[np.newaxis, ..., np.newaxis].astype(np.float32)
    probs = _softmax(np.asarray(model.predict(x, verbose=0)))
    last = raw[-1] if temporal else raw
    what = (f"class probabilities (softmax) of the last frame of the {frames}-frame window"
            if temporal else "class probabilities (softmax)")

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
        _cover(last.astype(np.float32), probs[0], work / "cover.png")
        onnx_weights = _onnx_weights(model, work / "model.onnx")
        doc = _documentation(config, run_root, checkpoint, source, frames)
        if isinstance(onnx_weights, str):
            doc += f"\n## ONNX\n\nNo ONNX weights: {onnx_weights}\n"
            onnx_weights = None
        (work / "README.md").write_text(doc, encoding="utf-8")
        inp = v0_5.InputTensorDescr(
            id=v0_5.TensorId("raw"),
            description=f"raw video window, {frames} frames, one channel" if temporal
            else "raw image, one channel",
            axes=_input_axes(temporal, frames or 1, raw.shape[-2:], minimum, m),
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
            id=v0_5.TensorId("probabilities"), description=what,
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
                tensorflow_version=v0_5.Version(tf.__version__)),
            onnx=onnx_weights)
        tags = list(info.tags) + (["timelapse"] if temporal and "timelapse" not in info.tags
                                  else [])
        descr = v0_5.ModelDescr(
            name=package_name(config.name),
            description=info.description or (
                f"{config.model.name} segmentation ({n_classes} classes"
                f"{f'; {frames}-frame windows, last frame predicted' if temporal else ''}) "
                "trained with dlsuite"),
            authors=[v0_5.Author(**a) for a in info.authors],
            cite=[v0_5.CiteEntry(**c) for c in info.cite],
            license=info.license, tags=tags,
            covers=[v0_5.FileDescr(source=work / "cover.png")],
            documentation=v0_5.FileDescr(source=work / "README.md"),
            inputs=[inp], outputs=[output], weights=weights,
            config=v0_5.Config(**({"dlsuite": metadata} if metadata else {})))
        tmp_zip = work / out.name
        save_bioimageio_package(descr, output_path=tmp_zip)
        os.replace(tmp_zip, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
