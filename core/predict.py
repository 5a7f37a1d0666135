"""Prediction of new images and videos with a trained run (``dlsuite predict``, ``api.predict``).

A *run* (a folder written by ``dlsuite train``/``run``) supplies everything: the config
(normalization, tiling, the post-processing chain, tracking parameters), the architecture
geometry (temporal windows, size multiple, receptive field for ``halo: auto``) and the
checkpoint (``best``, ``last`` or a path). The steps reuse the run pipeline:

* :func:`open_run` -> :class:`Predictor` (config + loaded model + normalizer + tiling);
* :meth:`Predictor.probabilities` -> :func:`dlsuite.inference.predict_video` (tiled,
  temporal windows), the same call ``dlsuite run`` makes for the test set;
* :func:`predict_folder` -> per input: probabilities, then
  :func:`dlsuite.pipeline.postprocess_step` (instance labels),
  :func:`dlsuite.inference.write_predictions` and, with ``ctc``, the run's tracker into CTC
  ``NN_RES`` folders.

Inputs (:func:`list_inputs`): a single TIFF/PNG file (a 2D image ``(H, W)`` or a video
``(T, H, W)``), a folder of such files, a folder of CTC frames ``tNNN.tif`` (one video), or a
dataset folder in one of the layouts of :mod:`dlsuite.data.layouts` (labels not needed).
Outputs follow the input: a 2D image gives ``(H, W, C)`` probabilities and ``(H, W)`` labels,
a video ``(T, H, W, C)`` and ``(T, H, W)``.

Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import attrs
import numpy as np

from .errors import DataError, DlsuiteInputError
from .fileio import write_json_atomic, write_text_atomic
from .rundir import RunDir, load_run_config

__all__ = ["FROM_CONFIG", "InputItem", "Predictor", "PredictSummary", "TileSettings",
           "checkpoint_path", "default_output_dir", "list_inputs", "load_checkpoint",
           "model_tile_settings", "open_run", "predict", "predict_folder"]

log = logging.getLogger("dlsuite")

#: Folders :func:`predict_folder` writes inside its output folder.
OUTPUT_SUBFOLDERS = ("probabilities", "labels", "ctc")
#: What was predicted how (run, checkpoint, tiling, inputs), written beside them.
SUMMARY_FILE = "predict.json"


# --------------------------------------------------------------------------------------------
# settings


@attrs.frozen
class TileSettings:
    """How a model is run over an image: :func:`dlsuite.inference.predict_video` arguments."""

    tile_size: int | None
    halo: int
    batch_size: int
    size_multiple: int = 1
    temporal: bool = False
    time_windows: int = 1
    heads: tuple | None = None  # the target's output heads (None: softmax over all channels)

    def kwargs(self) -> dict:
        """Keyword arguments of :func:`dlsuite.inference.predict_video`."""
        return {"tile_size": self.tile_size, "halo": self.halo, "batch_size": self.batch_size,
                "size_multiple": self.size_multiple, "temporal": self.temporal,
                "time_windows": self.time_windows, "heads": self.heads}


#: Sentinel of ``tile_size``: keep the run config's value (None means the whole image).
FROM_CONFIG: Any = object()


def _inference_overrides(inference, *, tile_size=FROM_CONFIG, halo=None, batch_size=None,
                         weights=None):
    """``inference`` config section with the given overrides (``tile_size=None`` means whole
    image; ``FROM_CONFIG`` keeps the config's value)."""
    changes: dict[str, Any] = {}
    if tile_size is not FROM_CONFIG:
        changes["tile_size"] = None if tile_size is None else int(tile_size)
    if halo is not None:
        changes["halo"] = halo if halo == "auto" else int(halo)
    if batch_size is not None:
        changes["batch_size"] = int(batch_size)
    if weights is not None:
        changes["weights"] = str(weights)
    return attrs.evolve(inference, **changes)


def _strides(layer) -> int:
    """Spatial down-sampling factor of one layer (1 for transposed convs and up-sampling)."""
    name = type(layer).__name__
    strides = getattr(layer, "strides", None)
    if strides is None or "Transpose" in name or "UpSampling" in name:
        return 1
    strides = tuple(strides) if isinstance(strides, (list, tuple)) else (int(strides),)
    return max(int(s) for s in strides[-2:]) if strides else 1


def _infer_size_multiple(model) -> int:
    """Product of the spatial strides of the layers of ``model`` (nested models and wrappers
    included): a multiple H and W must have. It over-estimates for parallel strided branches,
    which costs only padding."""
    total, stack, seen = 1, [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer is not model:
            total *= _strides(layer)
        stack.extend(getattr(layer, "layers", None) or [])
        if getattr(layer, "layer", None) is not None:  # TimeDistributed, Bidirectional, ...
            stack.append(layer.layer)
    return total


def model_tile_settings(model, *, tile_size: int | None = 1024, halo: int = 32,
                        batch_size: int = 2, size_multiple: int | None = None,
                        time_windows: int | None = None) -> TileSettings:
    """:class:`TileSettings` for a bare ``keras.Model``: temporal when its input is
    ``(B, T, H, W, 1)`` (``time_windows`` defaults to the model's ``T``, else 5); the size
    multiple is inferred from the layers' strides unless given."""
    shape = model.input_shape[0] if isinstance(model.input_shape, list) else model.input_shape
    temporal = len(shape) == 5
    if time_windows is None:
        time_windows = (shape[1] or 5) if temporal else 1
    if size_multiple is None:
        size_multiple = _infer_size_multiple(model)
    return TileSettings(tile_size, int(halo), int(batch_size), int(size_multiple), temporal,
                        int(time_windows))


# --------------------------------------------------------------------------------------------
# run, checkpoint, model


def checkpoint_path(run: RunDir, weights: str) -> Path:
    """The checkpoint ``weights`` names: ``"best"`` (``last.keras`` when there is no
    ``best.keras``), ``"last"``, or a path to a ``.keras`` file (relative paths are tried
    from the working directory, then from the run). DlsuiteInputError naming the missing
    file otherwise."""
    if weights in ("best", "last"):
        path = run.best if weights == "best" else run.last
        if weights == "best" and not path.is_file() and run.last.is_file():
            log.warning("%s: no best.keras, using last.keras", run.checkpoints)
            path = run.last
        if not path.is_file():
            raise DlsuiteInputError(f"{path}: no checkpoint to predict with (weights "
                                    f"{weights!r}); train the run first or pass --weights PATH")
        return path
    path = Path(weights).expanduser()
    if not path.is_file() and not path.is_absolute() and (run.root / path).is_file():
        path = run.root / path
    if not path.is_file():
        raise DlsuiteInputError(f"{path}: checkpoint not found (weights {weights!r})")
    return path


_MODELS: "OrderedDict[tuple, Any]" = OrderedDict()
_MAX_CACHED_MODELS = 2


def load_checkpoint(path: str | os.PathLike, config=None, registry=None):
    """Load the Keras model at ``path`` (``compile=False``). With ``config``, the factory of
    its architecture plugin is imported first, so custom layers the plugin registers are
    known in a fresh process. The last two models loaded are cached by path, size and
    modification time. DlsuiteInputError naming the file when it cannot be loaded."""
    from .models import load_model_file

    path = Path(path).resolve()
    if config is not None:
        from .registry import get_registry

        (registry or get_registry()).resolve("architectures", config.model.name).load()
    try:
        stat = path.stat()
    except OSError as exc:
        raise DlsuiteInputError(f"{path}: cannot read the checkpoint: {exc}") from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    model = load_model_file(path)
    _MODELS[key] = model
    while len(_MODELS) > _MAX_CACHED_MODELS:
        _MODELS.popitem(last=False)
    return model


@attrs.frozen
class Predictor:
    """A trained run ready to predict: ``ctx`` (a :class:`dlsuite.pipeline.RunContext` whose
    config carries the inference overrides), the model, its checkpoint, the run's normalizer
    (None: no normalization) and the tiling."""

    ctx: Any
    model: Any
    checkpoint: Path | None
    normalize: Callable[[np.ndarray], np.ndarray] | None
    tiles: TileSettings

    def probabilities(self, image) -> np.ndarray:
        """Class probabilities float32 of ``image``: ``(H, W)`` -> ``(H, W, C)``, ``(T, H, W)``
        -> ``(T, H, W, C)``. Normalization, tiling and temporal windows as in
        ``dlsuite run``'s prediction step (a 2D image is a one-frame video)."""
        return _probabilities(self.model, image, self.tiles, self.normalize)


def _probabilities(model, image, tiles: TileSettings, normalize) -> np.ndarray:
    from .inference import predict_video

    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise DataError(f"predict: expected a 2D image (H, W) or a video (T, H, W), got shape "
                        f"{image.shape}")
    video = image[np.newaxis] if image.ndim == 2 else image
    if normalize is not None:
        video = normalize(video)
    probs = predict_video(model, np.asarray(video, dtype=np.float32), **tiles.kwargs())
    return probs[0] if image.ndim == 2 else probs


def open_run(run_dir: str | os.PathLike, *, weights: str | None = None, tile_size=FROM_CONFIG,
             halo: int | str | None = None, batch_size: int | None = None,
             normalize: bool | Callable = True, time_windows: int | None = None,
             quiet: bool = True, registry=None) -> Predictor:
    """Open the run in ``run_dir`` for prediction: its config with the given inference
    overrides (``tile_size`` None: whole image; ``halo`` int or ``"auto"``; ``weights``
    ``best``/``last``/path), the checkpoint loaded (architecture plugin imported first), the
    run's normalizer (``normalize=False``: none; a callable replaces it), the tiling from the
    architecture's geometry. DlsuiteInputError naming the path for a missing folder, a folder
    without ``config.json`` or a missing checkpoint."""
    from .models import model_geometry
    from .pipeline import RunContext, resolve_halo
    from .registry import get_registry
    from .tuning import tuned_chain

    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise DlsuiteInputError(f"{root}: run directory not found")
    registry = registry or get_registry()
    loaded = load_run_config(root, registry)
    cfg = loaded.config
    cfg = attrs.evolve(cfg, inference=_inference_overrides(
        cfg.inference, tile_size=tile_size, halo=halo, batch_size=batch_size, weights=weights))
    chain, why = tuned_chain(cfg.postprocess, root, registry)  # the run's postprocess.json
    cfg = attrs.evolve(cfg, postprocess=chain)
    ctx = RunContext(attrs.evolve(loaded, config=cfg), registry, RunDir(root.resolve()),
                     quiet=quiet)
    if why:
        ctx.note(why)
    path = checkpoint_path(ctx.run, cfg.inference.weights)
    geo = model_geometry(cfg, registry)
    windows = time_windows or geo["time_windows"] or 1
    tiles = TileSettings(cfg.inference.tile_size, resolve_halo(ctx, geo), cfg.inference.batch_size,
                         geo["size_multiple"], geo["temporal"], int(windows), geo["heads"])
    model = load_checkpoint(path, cfg, registry)
    if callable(normalize):
        normalizer = normalize
    elif normalize:
        from .data.pipeline import make_normalizer

        normalizer = make_normalizer(cfg, registry)
    else:
        normalizer = None
    return Predictor(ctx, model, path, normalizer, tiles)


# --------------------------------------------------------------------------------------------
# inputs


@attrs.frozen
class InputItem:
    """One input to predict: ``name`` (output file stem) and ``path`` (a file; a CTC
    sequence folder when ``ctc_sequence``). With ``frames``, the input is the video stacked
    from those 2D image files in order (``path`` is their folder)."""

    name: str
    path: Path
    ctc_sequence: bool = False
    frames: tuple = ()

    def load(self) -> np.ndarray:
        """The pixels: ``(H, W)`` or ``(T, H, W)`` as stored (a CTC sequence or a stack of
        frames is a video). DataError naming the file for unreadable or mismatched frames."""
        from .data.io import read_image
        from .data.layouts import Sample, load_sample

        if self.ctc_sequence:
            return load_sample(Sample(self.name, "ctc", self.path, None)).image
        if self.frames:
            first = read_image(self.frames[0])
            video = np.empty((len(self.frames),) + first.shape, dtype=first.dtype)
            for t, frame_path in enumerate(self.frames):
                frame = first if t == 0 else read_image(frame_path)
                if frame.shape != first.shape or frame.dtype != first.dtype:
                    raise DataError(f"{frame_path}: frame {frame.shape} {frame.dtype} differs "
                                    f"from {self.frames[0].name} {first.shape} {first.dtype}")
                video[t] = frame
            return video
        return read_image(self.path)

    def check(self) -> None:
        """Read the file headers (not the pixels): DataError naming the file when it is
        unreadable or not a 2D image / video (stacked frames: not 2D or of different
        shapes). CTC sequences are checked when loaded."""
        from .data.io import read_info

        if self.ctc_sequence:
            return
        if self.frames:
            shapes = {}
            for frame_path in self.frames:
                shape = read_info(frame_path).shape
                if len(shape) != 2:
                    raise DataError(f"{frame_path}: --as-video stacks 2D images, got shape "
                                    f"{shape}")
                shapes.setdefault(shape, frame_path)
            if len(shapes) > 1:
                desc = ", ".join(f"{p.name}: {s}" for s, p in shapes.items())
                raise DataError(f"{self.path}: frames differ in shape ({desc})")
            return
        shape = read_info(self.path).shape
        if len(shape) not in (2, 3):
            raise DataError(f"{self.path}: expected a 2D image or a video, got shape {shape}")


def _direct_images(folder: Path) -> list[Path]:
    from .data.io import is_image_file
    from .data.layouts import natural_key

    files = [p for p in folder.iterdir() if p.is_file() and is_image_file(p)]
    return sorted(files, key=lambda p: natural_key(p.name))


def _unique(items: list[InputItem], where: Path) -> list[InputItem]:
    seen: dict[str, Path] = {}
    for item in items:
        if item.name in seen:
            raise DataError(f"{where}: {seen[item.name].name} and {item.path.name} would both "
                            f"be written as {item.name}.tif; rename one")
        seen[item.name] = item.path
    return items


def list_inputs(path: str | os.PathLike, *, as_video: bool = False) -> list[InputItem]:
    """The inputs under ``path``, in natural order: the file itself; the TIFF/PNG files
    directly in a folder (one input each, or with ``as_video`` one video stacked from them,
    named after the folder); a folder of CTC frames ``tNNN.tif`` (one video named after the
    folder); or the samples of a dataset folder (frames, videos or CTC layout; labels not
    needed). DataError naming the path when it does not exist or holds no image."""
    from .data.layouts import ctc_frame_files, list_samples

    path = Path(path).expanduser()
    if path.is_file():
        if as_video:
            raise DlsuiteInputError(f"{path}: --as-video needs a folder of 2D images")
        return [InputItem(_stem(path), path)]
    if not path.is_dir():
        raise DataError(f"{path}: input not found")
    files = _direct_images(path)
    if as_video:
        if not files:
            raise DataError(f"{path}: no TIFF/PNG images directly in this folder to stack "
                            "into a video (--as-video)")
        return [InputItem(path.resolve().name, path, frames=tuple(files))]
    if files and len(ctc_frame_files(path)) == len(files):
        return [InputItem(path.resolve().name, path, ctc_sequence=True)]
    if files:
        return _unique([InputItem(_stem(p), p) for p in files], path)
    try:
        samples = list_samples(path, "auto", require_labels=False)
    except DataError as exc:
        raise DataError(f"{path}: no TIFF/PNG images to predict in this folder, and no dataset "
                        f"layout ({exc})") from None
    return _unique([InputItem(s.name, s.image, s.layout == "ctc") for s in samples], path)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# --------------------------------------------------------------------------------------------
# folder prediction


def default_output_dir(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                       output_folder: str) -> Path:
    """``RUN_DIR/<output_folder>/<input name>`` (a file's name without its suffix)."""
    src = Path(input_path).expanduser().resolve()
    name = _stem(src) if src.is_file() else src.name
    return Path(run_dir).expanduser() / output_folder / name


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DlsuiteInputError(f"{out}: output exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise DlsuiteInputError(f"{out}: output folder is not empty; pass --overwrite to "
                                    "replace its predictions, or choose another -o")
        for sub in OUTPUT_SUBFOLDERS:
            if (out / sub).is_dir():
                shutil.rmtree(out / sub)
        (out / SUMMARY_FILE).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


@attrs.frozen
class PredictSummary:
    """What :func:`predict_folder` wrote: ``out_dir``, one row per input (``name``,
    ``input``, ``shape``, ``probabilities``, ``labels``, ``objects``, ``sequence``), the
    checkpoint used, the CTC folder (None when not written) and notes."""

    out_dir: Path
    rows: list
    checkpoint: Path
    ctc_dir: Path | None
    notes: list


def predict_folder(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                   out_dir: str | os.PathLike | None = None, *, weights: str | None = None,
                   tile_size=FROM_CONFIG, halo: int | str | None = None,
                   batch_size: int | None = None, postprocess: bool = True, ctc: bool = False,
                   as_video: bool = False, overwrite: bool = False, quiet: bool = False,
                   registry=None) -> PredictSummary:
    """Predict every input of ``input_path`` (see :func:`list_inputs`) with the run in
    ``run_dir`` and write, under ``out_dir`` (default :func:`default_output_dir`):
    ``probabilities/<name>.tif`` (float32, class axis first: ``CYX`` / ``TCYX``),
    ``labels/<name>.tif`` (instance labels from the run's post-processing chain; skipped
    with ``postprocess=False``) and, with ``ctc``, for each video ``ctc/NN_RES`` (masks +
    ``res_track.txt`` from the run's tracking settings) and ``ctc/sequences.csv``; and
    ``predict.json`` (run, checkpoint, tiling, one row per input, notes). Probabilities are
    always written (the run's ``inference.save_probabilities`` is not consulted).

    ``as_video``: the 2D images directly in the folder ``input_path`` are the frames of one
    video (natural name order), e.g. a time-lapse exported as one file per frame.

    A non-empty ``out_dir`` is refused unless ``overwrite`` (which removes the folders
    above first). Errors: DlsuiteInputError / DataError naming the run, checkpoint, input
    or output path.
    """
    from .inference import write_predictions
    from .pipeline import progress
    from .pipeline import Predictions, SamplePrediction, postprocess_step, write_tracked

    if ctc and not postprocess:
        raise DlsuiteInputError("--ctc needs instance labels: drop --no-postprocess")
    items = list_inputs(input_path, as_video=as_video)
    for item in items:  # unreadable files fail before any model is loaded or file written
        item.check()
    pred = open_run(run_dir, weights=weights, tile_size=tile_size, halo=halo,
                    batch_size=batch_size, quiet=True, registry=registry)
    ctx = pred.ctx
    out = Path(out_dir).expanduser() if out_dir is not None else default_output_dir(
        run_dir, input_path, ctx.config.inference.output_folder)
    _prepare_output(out, overwrite)
    log.info("predicting %d input(s) from %s with %s into %s", len(items), input_path,
             pred.checkpoint, out)
    rows, sequences, notes = [], [], []
    for item in progress(items, "predicting", quiet):
        image = item.load()
        probs = pred.probabilities(image)
        row = {"name": item.name, "input": str(item.path), "shape": list(image.shape),
               "objects": None, "sequence": None}
        labels = None
        if postprocess:
            video_probs = probs[np.newaxis] if image.ndim == 2 else probs
            sample = SamplePrediction(item.name, image, None, np.zeros(0, dtype=np.int64),
                                      video_probs)
            labels = postprocess_step(ctx, Predictions([sample])).samples[0].labels
            row["objects"] = int(sum(len(np.unique(f[f > 0])) for f in labels))
            if image.ndim == 3 and ctc:
                number = (item.name if item.ctc_sequence and item.name.isdigit()
                          else f"{len(sequences) + 1:02d}")
                write_tracked(ctx, out / "ctc" / f"{number}_RES", labels)
                sequences.append((number, item.name))
                row["sequence"] = number
            if image.ndim == 2:
                labels = labels[0]
        written = write_predictions(out, f"{item.name}.tif", probs=probs, labels=labels)
        row.update({k: str(v) for k, v in written.items()})
        rows.append(row)
    ctc_dir = None
    if ctc:
        if sequences:
            ctc_dir = out / "ctc"
            write_text_atomic(ctc_dir / "sequences.csv", "sequence,input\n" + "".join(
                f"{number},{name}\n" for number, name in sequences))
        else:
            notes.append("--ctc: no video among the inputs; CTC results are written for "
                         "videos only")
    notes += ctx.notes
    write_json_atomic(out / SUMMARY_FILE, {
        "run_dir": str(ctx.run.root), "checkpoint": str(pred.checkpoint),
        "input": str(Path(input_path).expanduser().resolve()), "tiles": attrs.asdict(pred.tiles),
        "postprocess": postprocess, "ctc": ctc, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": rows, "notes": notes})
    return PredictSummary(out, rows, pred.checkpoint, ctc_dir, notes)


# --------------------------------------------------------------------------------------------
# Python API


def _default_normalizer(registry):
    from .config import parse_config
    from .data.pipeline import make_normalizer

    return make_normalizer(parse_config({}, registry, check_paths=False).config, registry)


def predict(model_or_run_dir, image_or_video, *, weights: str | None = None,
            tile_size=FROM_CONFIG, halo: int | str | None = None, batch_size: int | None = None,
            normalize: bool | Callable | None = None, time_windows: int | None = None,
            size_multiple: int | None = None, registry=None) -> np.ndarray:
    """Class probabilities float32 of ``image_or_video`` (an ndarray or an image path):
    ``(H, W)`` -> ``(H, W, C)``, ``(T, H, W)`` -> ``(T, H, W, C)``.

    ``model_or_run_dir`` is a run directory (its config's normalization, tiling and
    geometry, checkpoint ``weights`` = ``best`` by default; the result equals the
    probabilities ``dlsuite predict`` writes) or a ``keras.Model`` (no normalization unless
    ``normalize`` is True, the default percentile normalizer, or a callable; tiling from
    ``tile_size`` (default 1024), ``halo`` (default 32), ``batch_size`` (2),
    ``size_multiple`` (default inferred from the layers' strides) and ``time_windows``
    (temporal models; default the model's window)); ``weights`` (a ``.keras`` /
    ``.weights.h5`` path) is loaded into the given model first (changing it in place).
    DlsuiteInputError / DataError naming the path for a bad run, checkpoint or image.
    """
    if isinstance(image_or_video, (str, os.PathLike)):
        from .data.io import read_image

        image_or_video = read_image(image_or_video)
    if isinstance(model_or_run_dir, (str, os.PathLike)):
        pred = open_run(model_or_run_dir, weights=weights, tile_size=tile_size, halo=halo,
                        batch_size=batch_size,
                        normalize=True if normalize is None else normalize,
                        time_windows=time_windows, registry=registry)
        if size_multiple is not None:
            pred = attrs.evolve(pred, tiles=attrs.evolve(pred.tiles,
                                                         size_multiple=int(size_multiple)))
        return pred.probabilities(image_or_video)
    model = model_or_run_dir
    if not hasattr(model, "predict_on_batch") or not hasattr(model, "input_shape"):
        raise DlsuiteInputError(f"predict: expected a run directory or a keras.Model, got "
                                f"{type(model).__name__}")
    if weights is not None:  # loaded into the given model (it is changed in place)
        path = Path(weights).expanduser()
        if weights in ("best", "last") or not path.is_file():
            raise DlsuiteInputError(f"{weights}: with a keras.Model, weights must be the path "
                                    "of a .keras or .weights.h5 file")
        model.load_weights(str(path))
    tiles = model_tile_settings(
        model, tile_size=1024 if tile_size is FROM_CONFIG else tile_size,
        halo=32 if halo in (None, "auto") else int(halo),
        batch_size=2 if batch_size is None else int(batch_size),
        size_multiple=size_multiple, time_windows=time_windows)
    if callable(normalize):
        normalizer = normalize
    elif normalize:
        from .registry import get_registry

        normalizer = _default_normalizer(registry or get_registry())
    else:
        normalizer = None
    return _probabilities(model, image_or_video, tiles, normalizer)
