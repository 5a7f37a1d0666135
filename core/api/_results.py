"""Evaluation and prediction functions of :mod:`dlsuite.api`. Evaluation never imports
TensorFlow; prediction does, when it runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..registry import get_registry

__all__ = ["evaluate", "predict", "predict_folder"]


def evaluate(res: str | os.PathLike, gt: str | os.PathLike, metrics: Any = None, *,
             json_file: str | os.PathLike | None = None,
             per_frame_csv: str | os.PathLike | None = None, overwrite: bool = False) -> dict:
    """Evaluate results ``res`` against ground truth ``gt``.

    Both are CTC-format folders (a root holding ``NN_RES``/``NN_GT``, or the sequence folders
    themselves) or folders of label images with the same file names. ``metrics`` is a list
    or comma-separated string of ``SEG, DET, TRA, jaccard, dice, precision, recall, f1,
    temporal_stability, temporal_stability_gt`` (default: all). Returns ``{"metrics": {name:
    value}, "per_sequence": [...], "per_frame": [...], "matching": [...], "warnings":
    [...]}``, metrics in the requested order (``warnings``: one line per sequence whose
    ground truth looks like binary masks, one object id in separate regions) (``matching``: one entry per IoU threshold 0.5..0.9 with ``iou``, ``tp``,
    ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``ap``, ``pq`` over all frames, one-to-one
    Hungarian matching; None unless an instance metric is requested); a metric that cannot be
    computed is None with the reason in its sequence's ``"unavailable"``. ``json_file`` also
    writes ``{"metrics", "per_sequence", "matching"}`` there as
    strict JSON, ``per_frame_csv`` the per-frame rows as CSV (both atomically, after the
    evaluation succeeded). An existing ``json_file`` / ``per_frame_csv`` is replaced only with
    ``overwrite`` and only when an earlier evaluation wrote it; otherwise DlsuiteInputError
    naming it, before anything is read, as are both given as one file. Raises
    DlsuiteInputError for an unknown metric,
    DataError naming the paths for missing or unpaired data.
    """
    from ..evaluation import evaluate as _evaluate
    from ..evaluation.writers import (is_evaluate_json, is_per_frame_csv, write_metrics_csv,
                                      write_metrics_json)
    from ..errors import DlsuiteInputError
    from ..output_file import check_output_file

    if (json_file is not None and per_frame_csv is not None
            and Path(json_file).expanduser().resolve()
            == Path(per_frame_csv).expanduser().resolve()):
        raise DlsuiteInputError(f"--output {json_file} and --per-frame {per_frame_csv} are "
                                "one file: give each its own path")
    if per_frame_csv is not None:
        _check_per_frame_metrics(metrics)
    for path, label, ours in ((json_file, "--output", is_evaluate_json),
                              (per_frame_csv, "--per-frame", is_per_frame_csv)):
        if path is not None:
            check_output_file(path, f"{label} {path}", writer="dlsuite evaluate",
                              overwrite=overwrite, ours=ours)
    result = _evaluate(res, gt, metrics)
    if json_file is not None:
        write_metrics_json(json_file, {"metrics": result["metrics"],
                                       "per_sequence": result["per_sequence"],
                                       "matching": result.get("matching")})
    if per_frame_csv is not None:
        write_metrics_csv(per_frame_csv, result["per_frame"])
    return result


def _check_per_frame_metrics(metrics: Any) -> None:
    """DlsuiteInputError when none of ``metrics`` is computed per frame: ``--per-frame``
    would write a CSV of frame names only (or an empty one, for CTC folders)."""
    from ..config.metric_names import parse_metrics, per_frame_metrics
    from ..errors import DlsuiteInputError

    names = parse_metrics(metrics)
    if not per_frame_metrics(names):
        raise DlsuiteInputError(f"--per-frame: none of the metrics asked for "
                                f"({', '.join(names)}) is computed per frame; add one of "
                                f"{', '.join(per_frame_metrics())}")


def predict(model_or_run_dir: Any, image_or_video: Any, **overrides: Any):
    """Class probabilities of one 2D image or video, as a float32 ndarray: ``(H, W)`` ->
    ``(H, W, C)``, ``(T, H, W)`` -> ``(T, H, W, C)`` (softmax; sigmoid for one class).

    ``model_or_run_dir`` is a run directory (its config's normalization, tiling, temporal
    windows and the ``best.keras`` checkpoint by default: the same probabilities as
    ``dlsuite predict`` writes), an exported model (a bioimage.io package zip or folder, a
    SavedModel folder or a ``.keras`` file: settings from the override ``config``, a
    config file, else from the export, else defaults) or a ``keras.Model`` (no
    normalization unless given).
    ``image_or_video`` is an ndarray or the path of a TIFF/PNG file. ``overrides``:
    ``weights`` (``best``/``last``/a path), ``tile_size`` (None: whole image), ``halo``
    (int or ``"auto"``), ``batch_size``, ``normalize`` (bool or a callable),
    ``time_windows``, ``size_multiple``, ``config``; ``scheduler`` (``local[:N]`` or a Dask
    scheduler address, run directories only: the image, or an OME-Zarr / TIFF path read
    lazily, is cut into blocks of ``block_size`` (default: whole frames) predicted on the
    workers; equal to the single-process result within 1e-4; needs ``dlsuite[scale]``).
    Raises DlsuiteInputError / DataError naming the path for a missing run, checkpoint, bad
    exported model or unreadable image. For whole folders and files
    written to disk see :func:`predict_folder`.
    """
    if overrides.get("scheduler") is not None:  # blocks / frames as tasks on a Dask cluster
        if not isinstance(model_or_run_dir, (str, os.PathLike)):
            from ..errors import DlsuiteInputError

            raise DlsuiteInputError("predict: scheduler needs a run directory (the workers "
                                    "load its checkpoint), not a keras.Model")
        from ..scale.image import predict_array

        unknown = set(overrides) - {"scheduler", "block_size", "weights", "tile_size", "halo",
                                    "batch_size"}
        if unknown:
            from ..errors import DlsuiteInputError

            raise DlsuiteInputError(f"predict: {', '.join(sorted(unknown))} cannot be combined "
                                    "with scheduler (the run's config gives them)")
        return predict_array(model_or_run_dir, image_or_video, registry=get_registry(),
                             **overrides)
    overrides.pop("scheduler", None)
    overrides.pop("block_size", None)
    from ..predict import predict as _predict

    return _predict(model_or_run_dir, image_or_video, registry=get_registry(), **overrides)


def predict_folder(run_dir: str | os.PathLike, input_path: str | os.PathLike,
                   out_dir: str | os.PathLike | None = None, **options: Any):
    """Predict ``input_path`` with the trained run ``run_dir`` and write, per input,
    ``probabilities/<name>.tif`` (float32) and ``labels/<name>.tif`` (instance labels) in
    ``out_dir`` (default ``run_dir/<inference.output_folder>/<input name>``): what
    ``dlsuite predict`` does. ``run_dir`` may be an exported model instead (a bioimage.io
    package zip or folder, a SavedModel folder, a ``.keras`` file; the default ``out_dir``
    is then beside it): normalization, halo and post-processing come from the option
    ``config`` (a dlsuite config file, e.g. the run's ``config.json``), else from what
    ``dlsuite export`` stored in the package or SavedModel, else from dlsuite's defaults with
    a package's own preprocessing and halo; the labels then equal those of the run.

    ``input_path`` is a TIFF/PNG image or video, a folder of them, a folder of CTC frames
    ``tNNN.tif`` or a dataset folder (frames, videos or CTC layout). ``options`` left out take
    the run's config: ``weights`` (``best``/``last``/a path), ``tile_size`` (int, or None for
    the whole image), ``halo`` (int or ``"auto"``), ``batch_size``; and ``postprocess``
    (default True; False writes probabilities only), ``ctc`` (also track each video into
    ``out_dir/ctc/NN_RES``), ``as_video`` (stack a folder of 2D images into one video),
    ``overwrite`` (replace predictions in a non-empty ``out_dir``), ``resume`` (continue a
    prediction into ``out_dir`` that was interrupted: inputs whose outputs are all there,
    newer than the input, are skipped; refused when it used another run, checkpoint, input,
    tiling, chain or overrides; a ``scheduler`` job always resumes; a block-wise one skips
    the blocks already predicted), ``quiet`` (no progress
    bar), ``config`` (see above), ``scheduler`` (``local[:N]`` or a Dask scheduler address:
    every input a task on that cluster, the model loaded once per worker, outputs written as
    tasks finish; rerunning on the same ``out_dir`` skips complete outputs; needs
    ``dlsuite[scale]``), ``block_size`` (predict block by block, reading the inputs lazily,
    into ``out_dir/<name>.ome.zarr``: probabilities, ``labels/instances``, the input's pixel
    size; OME-Zarr inputs always go this way). ``postprocess`` may also be another chain to try on the trained run without
    retraining: a list in the config's ``postprocess`` format or the path of a JSON file
    holding one (``--postprocess CHAIN.json``); ``overrides`` (``--set``: ``{path: value}``
    or ``KEY=VALUE`` strings) change the run's ``postprocess``, ``inference`` or
    ``tracking`` keys. A chain that cannot work on the run's model outputs is a ConfigError
    naming the step and the kind it got, raised before anything is written. Returns a
    summary with ``out_dir``, ``checkpoint``, ``ctc_dir``, ``rows`` (one dict per input:
    ``name``, ``input``, ``shape``, ``probabilities``, ``labels``, ``objects``,
    ``sequence``) and ``notes``; ``out_dir/predict.json`` holds the same (and the chain
    used, under ``chain``). Raises DlsuiteInputError /
    DataError naming the path for a missing run, checkpoint or input, or a non-empty output
    folder, before anything is written.
    """
    from ..scale.omezarr import is_omezarr, holds_omezarr

    blockwise = options.get("block_size") is not None or is_omezarr(input_path) or \
        holds_omezarr(input_path)
    if options.get("resume") and options.get("overwrite"):
        from ..errors import DlsuiteInputError

        raise DlsuiteInputError("--resume and --overwrite exclude each other: --resume "
                                "continues the predictions in -o, --overwrite replaces them")
    if blockwise or options.get("scheduler") is not None:
        _run_directory_only(options, "--block-size/OME-Zarr" if blockwise else "--scheduler")
        _resume_on_cluster_only(options, blockwise)
    if blockwise:  # images larger than memory: block by block into OME-Zarr
        from ..scale.image import predict_blockwise

        return predict_blockwise(run_dir, input_path, out_dir, registry=get_registry(),
                                 **options)
    options.pop("block_size", None)
    if options.get("scheduler") is not None:  # inputs as tasks on a Dask cluster
        from ..scale.batch import predict_folder_on_cluster

        return predict_folder_on_cluster(run_dir, input_path, out_dir, registry=get_registry(),
                                         **options)
    options.pop("scheduler", None)
    from ..predict import predict_folder as _predict_folder

    return _predict_folder(run_dir, input_path, out_dir, registry=get_registry(), **options)


def _resume_on_cluster_only(options: dict, blockwise: bool) -> None:
    """Drop ``resume`` for a Dask job of whole inputs (it always resumes); block-wise
    prediction resumes only when asked (it keeps ``resume``)."""
    if not blockwise:
        options.pop("resume", None)


def _run_directory_only(options: dict, where: str) -> None:
    """Drop an exported model's ``config`` left at its default: the Dask and block-wise
    paths predict with a run directory (its chain may be replaced or changed with
    ``postprocess`` and ``overrides``); a given one is a DlsuiteInputError naming it, before
    anything is written."""
    from ..errors import DlsuiteInputError

    if options.get("config") is None:
        options.pop("config", None)
    if "config" in options:
        raise DlsuiteInputError(f"predict: --config cannot be combined with {where} (it "
                                "applies to an exported model; give a run directory)")


def tune(run_dir: str | os.PathLike, *, weights: str = "best", metric: str | None = None,
         seconds: float | None = None, overwrite: bool = False, quiet: bool = False,
         postprocess=None, output: str | os.PathLike | None = None):
    """Tune a trained run's post-processing on its validation set, as ``dlsuite run`` does
    after training (for a run stopped before that step, or trained with
    ``evaluation.tune_postprocess`` false): writes ``run_dir/postprocess.json``, which
    ``predict``, ``predict_folder`` and ``test_run`` then use. ``weights``: the checkpoint
    (``best``/``last``); ``metric``: ``SEG`` or ``f1`` (default the config's
    ``evaluation.tune_metric``); ``seconds``: the search's budget (default
    ``evaluation.tune_seconds``); ``overwrite``: replace an existing ``postprocess.json``
    (or an ``output`` file tuned before). ``output``: write the tuned chain to this file
    instead (a chain file for ``predict(..., postprocess=FILE)``; the run is not touched);
    ``postprocess``: a chain file or list to tune instead of the run's (needs ``output``).
    Returns the TuningResult (``metric``, ``score``, ``default_score``, ``tuned``,
    ``steps``, ``evaluations``, ``seconds``, ``timed_out``; ``as_dict()`` as written).
    DlsuiteInputError naming the folder, file or value before anything is predicted."""
    from ..tune_step import tune_run

    return tune_run(run_dir, weights=weights, metric=metric, seconds=seconds,
                    overwrite=overwrite, quiet=quiet, postprocess=postprocess, output=output,
                    registry=get_registry())
