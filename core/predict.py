"""Prediction of new images and videos with a trained run (``dlsuite predict``, ``api.predict``).

A *run* (a folder written by ``dlsuite train``/``run``) supplies everything: the config
(normalization, tiling, the post-processing chain, tracking parameters), the architecture
geometry (temporal windows, size multiple, receptive field for ``halo: auto``) and the
checkpoint (``best``, ``last`` or a path). The steps are those ``dlsuite run`` takes:

* :func:`open_run` -> :class:`~dlsuite.steps.Predictor` (config + model of the checkpoint
  :func:`dlsuite.inference.choose_checkpoint` picks + normalizer + tiling), the same
  predictor ``dlsuite run`` uses for the test set;
* :meth:`Predictor.probabilities` -> :func:`dlsuite.inference.predict_video` (tiled,
  temporal windows);
* :func:`predict_folder` -> per input :func:`predict_input` (probabilities, then instance
  labels from the run's post-processing chain, :func:`dlsuite.inference.build_postprocess`),
  then :func:`dlsuite.inference.write_predictions` and, with ``ctc``, the run's tracker into
  CTC ``NN_RES`` folders.

Inputs (:func:`list_inputs`): a single TIFF/PNG file (a 2D image ``(H, W)`` or a video
``(T, H, W)``), a folder of such files, a folder of CTC frames ``tNNN.tif`` (one video), or a
dataset folder in one of the layouts of :mod:`dlsuite.data.layouts` (labels not needed).
Outputs follow the input: a 2D image gives ``(H, W, C)`` probabilities and ``(H, W)`` labels,
a video ``(T, H, W, C)`` and ``(T, H, W)``.

Nothing here imports TensorFlow at module level.

The inputs live in :mod:`dlsuite.predict_inputs`, the output folder's rules in
:mod:`dlsuite.predict_output` (both re-exported here).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import attrs
import numpy as np

from .data.ctc import PREDICT_CTC_FOLDER, RES_FILES
from .errors import DlsuiteInputError
from .signal_handlers import signal_behind
from .fileio import write_json_atomic, write_text_atomic
from .predict_memory import memory_problem
from .inference import TileSettings, choose_checkpoint, load_checkpoint, model_tile_settings
# InputItem, list_inputs, OUTPUT_SUBFOLDERS, SUMMARY_FILE, PredictSummary and
# default_output_dir lived in this module: re-exported here
from .predict_inputs import InputItem, list_inputs
from .ownership import OwnedFolder
from .predict_output import (OUTPUT_SUBFOLDERS, SUMMARY_FILE, PredictSummary,
                             _planned, _prepare_output, claim_or_resume, complete_row,
                             count_objects, default_output_dir, output_lock, record_job,
                             refuse_early, remove_leftovers, same_job, stopped_note)
from .rundir import RunDir, load_run_config
from .steps import Predictor, RunContext, open_predictor, probabilities, progress, write_tracked

__all__ = ["FROM_CONFIG", "InputItem", "Predictor", "PredictSummary", "TileSettings",
           "checkpoint_path", "default_output_dir", "list_inputs", "load_checkpoint",
           "model_tile_settings", "open_run", "predict", "predict_folder", "predict_input",
           "run_predict_config"]

log = logging.getLogger("dlsuite")


# --------------------------------------------------------------------------------------------
# run and checkpoint


#: Sentinel of ``tile_size``: keep the run config's value (None means the whole image).
FROM_CONFIG: Any = object()

#: The checkpoint ``--weights`` names (the rule of ``dlsuite run`` too).
checkpoint_path = choose_checkpoint


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


def open_run(run_dir: str | os.PathLike, *, weights: str | None = None, tile_size=FROM_CONFIG,
             halo: int | str | None = None, batch_size: int | None = None,
             normalize: bool | Callable = True, time_windows: int | None = None,
             quiet: bool = True, chain: Any = None, overrides: Any = None,
             config: str | os.PathLike | None = None,
             registry=None) -> Predictor:
    """Open the run in ``run_dir`` for prediction: its config with the given inference
    overrides (``tile_size`` None: whole image; ``halo`` int or ``"auto"``; ``weights``
    ``best``/``last``/path), the checkpoint loaded (architecture plugin imported first), the
    run's normalizer (``normalize=False``: none; a callable replaces it), the tiling from the
    architecture's geometry. ``chain`` replaces the run's post-processing chain (a list in
    the config's ``postprocess`` format or the path of a JSON file holding one) and
    ``overrides`` (``--set``: ``{path: value}`` or ``KEY=VALUE`` strings under
    ``postprocess``, ``inference`` or ``tracking``) change the run's config; both are
    validated like a config (a chain that cannot work on the model's outputs is a
    ConfigError naming the step) before the model is loaded, and the run's tuned
    ``postprocess.json`` is not applied to a replaced or changed chain. ``run_dir`` may
    instead be an exported model (bioimage.io package, SavedModel folder, ``.keras`` file):
    :func:`dlsuite.exported.open_exported`, settings from ``config`` (a config file), the
    export or defaults (``chain``/``overrides`` then refused: give ``config``).
    DlsuiteInputError naming the path for a missing folder, a folder without
    ``config.json``, a missing checkpoint or a model dlsuite cannot predict with."""
    from .export.reopen import exported_kind
    from .exported import open_exported
    from .registry import get_registry

    root = Path(run_dir).expanduser()
    if exported_kind(root) is not None or root.is_file():
        if weights is not None:
            raise DlsuiteInputError(f"{root}: --weights chooses a checkpoint of a run "
                                    "directory; an exported model has its own weights")
        if chain is not None or overrides:
            raise DlsuiteInputError(f"{root}: --postprocess and --set change a run "
                                    "directory's config; with an exported model give --config")
        return open_exported(root, config=config, normalize=normalize,
                             time_windows=time_windows, quiet=quiet, registry=registry,
                             inference_overrides=lambda inf: _inference_overrides(
                                 inf, tile_size=tile_size, halo=halo, batch_size=batch_size))
    if config is not None:
        raise DlsuiteInputError(f"{config}: --config applies to an exported model; a run "
                                f"directory ({root}) has its own config")
    registry = registry or get_registry()
    loaded = run_predict_config(root, registry, chain=chain, overrides=overrides,
                                weights=weights, tile_size=tile_size, halo=halo,
                                batch_size=batch_size)
    ctx = RunContext(loaded, registry, RunDir(root.resolve()), quiet=quiet)
    return open_predictor(ctx, normalize=normalize, time_windows=time_windows)


def run_predict_config(run_dir: str | os.PathLike, registry, *, chain: Any = None,
                       overrides: Any = None, weights: str | None = None,
                       tile_size=FROM_CONFIG, halo: int | str | None = None,
                       batch_size: int | None = None):
    """The LoadedConfig a run directory predicts with (no TensorFlow): its config with the
    post-processing ``chain`` and ``--set`` ``overrides`` applied and validated
    (:func:`dlsuite.inference.chain_choice.load_predict_config`), the inference options
    given, and the run's tuned ``postprocess.json`` when its chain is unchanged.
    DlsuiteInputError naming a missing folder, ConfigError naming a bad chain or
    override."""
    from .inference.chain_choice import load_predict_config
    from .tuning import tuned_chain

    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise DlsuiteInputError(f"{root}: run directory not found")
    if chain is None and not overrides:
        loaded, chain_changed = load_run_config(root, registry), False
    else:
        chosen = load_predict_config(root, registry, chain=chain, overrides=overrides)
        loaded, chain_changed = chosen.loaded, chosen.chain_changed
    cfg = loaded.config
    cfg = attrs.evolve(cfg, inference=_inference_overrides(
        cfg.inference, tile_size=tile_size, halo=halo, batch_size=batch_size, weights=weights))
    if not chain_changed:
        steps, _ = tuned_chain(cfg.postprocess, root, registry)  # the run's postprocess.json
        cfg = attrs.evolve(cfg, postprocess=steps)
    return attrs.evolve(loaded, config=cfg)


# --------------------------------------------------------------------------------------------
# folder prediction


def predict_input(predictor: Predictor, item: InputItem, chain=None):
    """Predict one input: ``(shape, probs, labels)`` with the input's pixel ``shape``, its
    probabilities (``(H, W, C)`` or ``(T, H, W, C)``) and, with a post-processing ``chain``
    (:func:`dlsuite.inference.build_postprocess`), its int64 instance labels (``(H, W)`` or
    ``(T, H, W)``; None without a chain). Reads the input, writes nothing."""
    image = item.load()
    probs = predictor.probabilities(image)
    labels = None
    if chain is not None:
        labels = chain.labels(probs[np.newaxis] if image.ndim == 2 else probs)
        if image.ndim == 2:
            labels = labels[0]
    return image.shape, probs, labels


def _first_frame(array: np.ndarray | None) -> np.ndarray | None:
    return array if array is None or array.ndim == 2 else array[0]


def _check_model_memory(pred: Predictor, items, shapes, postprocess: bool) -> None:
    """Refuse, before anything is written, an input whose prediction cannot fit in memory
    once the model's own pass is counted (:func:`dlsuite.predict_memory.model_pass_bytes`:
    with ``inference.tile_size`` null the model sees the whole image at once)."""
    from .predict_memory import model_pass_bytes, pass_values_per_pixel

    per_pixel = pass_values_per_pixel(pred.model, pred.tiles.size_multiple)  # traced once
    for item, shape in zip(items, shapes):
        if not shape:
            continue
        pass_bytes = model_pass_bytes(per_pixel, pred.tiles, shape,
                                      scale=pred.ctx.config.data.scale)
        too_big = memory_problem(str(item.path), shape, postprocess=postprocess,
                                 pass_bytes=pass_bytes, halo=pred.tiles.halo,
                                 whole_image=pred.tiles.tile_size is None)
        if too_big:
            raise DlsuiteInputError(too_big)


def predict_folder(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                   out_dir: str | os.PathLike | None = None, *, weights: str | None = None,
                   tile_size=FROM_CONFIG, halo: int | str | None = None,
                   batch_size: int | None = None, postprocess: Any = True, ctc: bool = False,
                   as_video: bool = False, overwrite: bool = False, resume: bool = False,
                   quiet: bool = False, overrides: Any = None,
                   config: str | os.PathLike | None = None, registry=None) -> PredictSummary:
    """Predict every input of ``input_path`` (see :func:`list_inputs`) with the run in
    ``run_dir`` and write, under ``out_dir`` (default :func:`default_output_dir`):
    ``probabilities/<name>.tif`` (float32, class axis first: ``CYX`` / ``TCYX``),
    ``labels/<name>.tif`` (instance labels from the run's post-processing chain; skipped
    with ``postprocess=False``) and, with ``ctc``, for each video ``ctc/NN_RES`` (masks +
    ``res_track.txt`` from the run's tracking settings) and ``ctc/sequences.csv``; and
    ``predict.json`` (run, checkpoint, tiling, one row per input, notes) and, unless the
    run's W&B mode is disabled, a W&B run of job type ``predict`` in ``wandb/``
    (:func:`dlsuite.wandb_results.record_prediction`). Probabilities are
    always written (the run's ``inference.save_probabilities`` is not consulted).

    ``as_video``: the 2D images directly in the folder ``input_path`` are the frames of one
    video (natural name order), e.g. a time-lapse exported as one file per frame.

    ``postprocess``: True (the run's chain, with its tuned ``postprocess.json``), False (no
    labels), or another chain to try without retraining: a list in the config's
    ``postprocess`` format or the path of a JSON file holding one (``--postprocess
    CHAIN.json``). ``overrides``: ``--set`` overrides (``{path: value}`` or ``KEY=VALUE``
    strings) of the run's ``postprocess``, ``inference`` or ``tracking`` keys. Either is
    validated like a config before anything is written: a chain that cannot work on the
    run's model outputs is a ConfigError naming the step and the kind it got.

    ``run_dir`` may be an exported model instead (bioimage.io package zip or folder,
    SavedModel folder, ``.keras`` file; :func:`open_run`): normalization, halo and
    post-processing then come from the package, from ``config`` (a dlsuite config file, e.g.
    the run's ``config.json``) or from dlsuite's defaults; the default ``out_dir`` lies
    beside the model.

    ``out_dir`` carries the marker ``.dlsuite-predict`` listing what was written
    (:mod:`dlsuite.ownership`). An ``out_dir`` that is, or lies inside, or holds the input
    is refused; so is a non-empty ``out_dir`` without the marker (also with ``overwrite``) or
    with it unless ``overwrite``, which removes only what the earlier prediction wrote (and
    refuses when a file about to be written exists but was not written by it).

    ``resume``: continue a prediction into ``out_dir`` that was interrupted (or finished):
    the inputs whose outputs are all there, newer than the input, are read back, not
    predicted again (their rows marked ``skipped``; an input replaced since is predicted
    again); refused when the earlier prediction used another run, checkpoint,
    input, tiling, chain or overrides (the folder's marker records them before the first
    prediction; ``predict.json`` is written only when it finishes), and together with
    ``overwrite``. Stopped (Ctrl-C, SIGTERM, a full disk), the command warns how many
    inputs are complete and that ``--resume`` continues. While it writes, the folder's lock
    (:func:`dlsuite.predict_output.output_lock`) refuses a second prediction into it. Errors:
    DlsuiteInputError / DataError naming the run, checkpoint, input or output path;
    nothing is written before the inputs, the run and the output folder were checked.
    """
    from .data.checks import check_inputs
    from .inference import build_postprocess

    given_chain = None if isinstance(postprocess, bool) else postprocess
    postprocess = postprocess is not False
    if ctc and not postprocess:
        raise DlsuiteInputError("--ctc needs instance labels: drop --no-postprocess")
    if resume and overwrite:
        raise DlsuiteInputError("--resume and --overwrite exclude each other: --resume "
                                "continues the predictions in -o, --overwrite replaces them")
    items = list_inputs(input_path, as_video=as_video)
    shapes = []
    for item in items:  # unreadable files fail before any model is loaded or file written
        shapes.append(item.check())
        too_big = shapes[-1] and memory_problem(str(item.path), shapes[-1],
                                                postprocess=postprocess)
        if too_big:
            raise DlsuiteInputError(too_big)
    refuse_early(out_dir, input_path, overwrite=overwrite, resume=resume)
    pred = open_run(run_dir, weights=weights, tile_size=tile_size, halo=halo,
                    batch_size=batch_size, quiet=True, chain=given_chain,
                    overrides=overrides, config=config, registry=registry)
    ctx = pred.ctx
    _check_model_memory(pred, items, shapes, postprocess)
    check_inputs(items, ctx.config.data.nonfinite_pixels)  # pixels: before anything is written
    chain = build_postprocess(ctx.config.postprocess, ctx.registry) if postprocess else None
    out = Path(out_dir).expanduser() if out_dir is not None else default_output_dir(
        run_dir, input_path, ctx.config.inference.output_folder)
    job = _job(ctx, pred, input_path, postprocess, given_chain)
    planned = _planned(items, postprocess, ctc)
    lock = output_lock(out)  # taken once the folder passed its checks
    try:
        resumed = False
        if resume:
            same_job(out, job)
            resumed = claim_or_resume(out, input_path, planned, overwrite=False,
                                      before_write=lock.acquire)
            if resumed:
                remove_leftovers(out, items)  # a write the interruption stopped half-way
        else:
            _prepare_output(out, input_path, planned, overwrite, before_write=lock.acquire)
        record_job(out, job)  # before the first prediction: what --resume compares
        log.info("predicting %d input(s) from %s with %s into %s", len(items), input_path,
                 pred.checkpoint, out)
        return _predict_into(out, pred, items, chain, job, resumed=resumed, ctc=ctc,
                             quiet=quiet, weights=weights)
    finally:
        lock.release()


def _predict_into(out: Path, pred: Predictor, items: list[InputItem], chain, job: dict, *,
                  resumed: bool, ctc: bool, quiet: bool, weights) -> PredictSummary:
    """:func:`predict_folder` once ``out`` is claimed: every input predicted (or, resumed,
    read back) and written, videos tracked with ``ctc``, the W&B run, ``predict.json``."""
    ctx = pred.ctx
    owned = OwnedFolder(out, "predict")
    rows, sequences, notes, shown = [], [], [], []
    try:
        for item in progress(items, "predicting", quiet):
            row, labels = _predicted_row(pred, item, chain, out, resumed)
            if len(shown) < ctx.config.wandb.n_images:  # for the W&B table: the first frame
                shown.append((item.name, _first_frame(item.load()), _first_frame(labels())))
            if ctc and len(row["shape"]) == 3:
                number = (item.name if item.ctc_sequence and item.name.isdigit()
                          else f"{len(sequences) + 1:02d}")
                # before writing, so --overwrite finds them
                owned.record([f"{PREDICT_CTC_FOLDER}/{number}_RES/{f}" for f in RES_FILES])
                write_tracked(ctx, out / PREDICT_CTC_FOLDER / f"{number}_RES", labels())
                sequences.append((number, item.name))
                row["sequence"] = number
            rows.append(row)
    except BaseException as exc:
        if isinstance(exc, OSError) or signal_behind(exc) is not None:  # a full disk,
            # Ctrl-C, SIGTERM (also wrapped by C code): say how to go on
            log.warning(stopped_note(len(rows), len(items), out, "the same command with "
                                     "--resume continues"))
        raise
    if resumed:
        notes.append(f"resumed: {sum('skipped' in r for r in rows)} of {len(items)} "
                     f"input(s) already complete in {out}")
    ctc_dir = None
    if ctc:
        if sequences:
            ctc_dir = out / PREDICT_CTC_FOLDER
            write_text_atomic(ctc_dir / "sequences.csv", "sequence,input\n" + "".join(
                f"{number},{name}\n" for number, name in sequences))
        else:
            notes.append("--ctc: no video among the inputs; CTC results are written for "
                         "videos only")
    notes += ctx.notes
    from .wandb_results import record_prediction

    # the run's logged model is its own inference.weights checkpoint: linked when used
    logged = ctx.config.inference.weights
    record_prediction(ctx, out, rows, shown, linked_alias=logged if weights is None and
                      logged in ("best", "last") else None,
                      before_writing=lambda: owned.record(["wandb"]))
    write_json_atomic(out / SUMMARY_FILE, {
        **job, "tiles": attrs.asdict(pred.tiles), "ctc": ctc,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "inputs": rows, "notes": notes})
    return PredictSummary(out, rows, pred.checkpoint, ctc_dir, notes)


def _job(ctx, pred: Predictor, input_path, postprocess: bool, given_chain) -> dict:
    """What ``predict.json`` records of the prediction's settings (the keys a Dask job
    records too): a resumed folder must have been predicted with the same."""
    from .inference.chain_choice import chain_record

    inference = ctx.config.inference
    return {"run_dir": str(ctx.run.root), "checkpoint": str(pred.checkpoint),
            "input": str(Path(input_path).expanduser().resolve()), "postprocess": postprocess,
            "tiling": {"tile_size": inference.tile_size, "halo": inference.halo,
                       "batch_size": inference.batch_size},
            "chain": chain_record(ctx, given_chain) if postprocess else None,
            "overrides": dict(ctx.loaded.overrides or {})}


def _predicted_row(pred: Predictor, item: InputItem, chain, out: Path, resumed: bool):
    """``(row, labels)`` of one input for ``predict.json``: predicted and written now, or,
    in a resumed folder whose outputs of ``item`` are all there, read back (the row marked
    ``skipped``). ``labels()`` gives its instance labels (None without a chain)."""
    from .inference import write_predictions

    row = complete_row(out, item, chain is not None) if resumed else None
    if row is not None:
        import tifffile

        path = row.get("labels")
        return row, lambda: None if path is None else tifffile.imread(path)
    shape, probs, labels = predict_input(pred, item, chain)
    row = {"name": item.name, "input": str(item.path), "shape": list(shape),
           "objects": None if labels is None else count_objects(labels), "sequence": None}
    written = write_predictions(out, f"{item.name}.tif", probs=probs, labels=labels)
    row.update({k: str(v) for k, v in written.items()})
    return row, lambda: labels


# --------------------------------------------------------------------------------------------
# Python API


def _default_normalizer(registry):
    from .config import parse_config
    from .data.datagen_plugins import make_normalizer

    return make_normalizer(parse_config({}, registry, check_paths=False).config, registry)


def predict(model_or_run_dir, image_or_video, *, weights: str | None = None,
            tile_size=FROM_CONFIG, halo: int | str | None = None, batch_size: int | None = None,
            normalize: bool | Callable | None = None, time_windows: int | None = None,
            size_multiple: int | None = None, config: str | os.PathLike | None = None,
            registry=None) -> np.ndarray:
    """Class probabilities float32 of ``image_or_video`` (an ndarray or an image path):
    ``(H, W)`` -> ``(H, W, C)``, ``(T, H, W)`` -> ``(T, H, W, C)``.

    ``model_or_run_dir`` is a run directory (its config's normalization, tiling and
    geometry, checkpoint ``weights`` = ``best`` by default; the result equals the
    probabilities ``dlsuite predict`` writes), the path of an exported model (bioimage.io
    package, SavedModel, ``.keras``; settings from the export, ``config`` or defaults, as
    :func:`open_run`) or a ``keras.Model`` (no normalization unless
    ``normalize`` is True, the default percentile normalizer, or a callable; tiling from
    ``tile_size`` (default 1024), ``halo`` (default ``"auto"``: the reach of the model's
    receptive field, measured once per model object), ``batch_size`` (2),
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
                        time_windows=time_windows, config=config, registry=registry)
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
        halo="auto" if halo in (None, "auto") else int(halo),
        batch_size=2 if batch_size is None else int(batch_size),
        size_multiple=size_multiple, time_windows=time_windows)
    if callable(normalize):
        normalizer = normalize
    elif normalize:
        from .registry import get_registry

        normalizer = _default_normalizer(registry or get_registry())
    else:
        normalizer = None
    return probabilities(model, image_or_video, tiles, normalizer)
