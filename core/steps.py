"""What the steps of a run share, below both the run pipeline and ``dlsuite predict``.

* :class:`RunContext` -- config, registry, run directory, W&B run and notes of one run;
* the typed step outputs :class:`TrainOutput`, :class:`SamplePrediction`,
  :class:`Predictions`, and the outcomes :class:`TrainingInterrupted` /
  :class:`TrainingDiverged` (TF-free, so the CLI can catch them without importing TF);
* :class:`Predictor` (:func:`open_predictor`) -- a run's checkpoint, normalizer and tiling
  ready to give probabilities, the same for the test set of ``run`` and for ``predict``;
* :func:`progress`, :func:`receptive_field`, :func:`resolve_halo`, :func:`tile_settings`,
  :func:`write_tracked`.

Module layers: :mod:`dlsuite.inference`, :mod:`dlsuite.rundir`, :mod:`dlsuite.models` <
this module < :mod:`dlsuite.training`, :mod:`dlsuite.predict` < :mod:`dlsuite.pipeline`.
Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
from pathlib import Path
from typing import Any, Callable, Iterable

import attrs
import numpy as np

from .config import LoadedConfig
from .errors import DataError, DlsuiteInputError, os_error_head
from .inference.tiling import TileSettings, halo_pixels
from .logging.wandb_run import WandbRun
from .registry import Registry
from .rundir import RunDir

__all__ = ["TrainingInterrupted", "TrainingDiverged", "RunContext", "TrainOutput", "resume_config",
           "SamplePrediction", "Predictions", "Predictor", "open_predictor", "probabilities",
           "progress", "receptive_field", "sample_probabilities",
           "resolve_halo", "tile_settings", "write_tracked"]

log = logging.getLogger("dlsuite")


# --------------------------------------------------------------------------------------------
# outcomes other than success


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a resumable state. ``exit_code`` is
    130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, signum: int, run_dir: Path, epoch: int, config_source: str | None):
        self.signum = signum
        self.exit_code = 128 + int(signum)
        self.run_dir = run_dir
        self.epoch = epoch
        name = signal.Signals(signum).name
        config = config_source or "CONFIG"
        super().__init__(
            f"training interrupted by {name} after {epoch} epoch(s); resumable state saved in "
            f"{run_dir / 'checkpoints' / 'resume'}. Continue with: dlsuite run {config} --resume "
            f"(or dlsuite train {config} --resume)")


def resume_config(ctx: "RunContext") -> str:
    """The config to name in "continue with: dlsuite run CONFIG --resume": the one given,
    or, when ``--set`` overrides changed it (another ``output_dir`` perhaps), the run's own
    ``config.json``, which records them (the given file would resume another run)."""
    if ctx.loaded.overrides:
        return str(ctx.run.config_json)
    return ctx.loaded.source or "CONFIG"


class TrainingStoppedByStorage(DlsuiteInputError):
    """A write during training was refused by its location (a full disk, a quota, a size
    limit): the message names the file, the epoch kept and how to continue, or, in the first
    epoch (``epoch`` 0), that nothing can be resumed and how to start again."""

    def __init__(self, exc: OSError, run_dir: Path, epoch: int, config_source: str | None):
        config = config_source or "CONFIG"
        if epoch == 0:
            super().__init__(
                f"{os_error_head(exc)}: training stopped in its first epoch, before any "
                f"checkpoint was written (nothing to resume): free space in {run_dir}, then "
                f"start again with: dlsuite run {config} --overwrite")
            return
        super().__init__(
            f"{os_error_head(exc)}: training stopped; the checkpoints and resumable "
            f"state of epoch {epoch} are kept in {run_dir / 'checkpoints'}: free space there, "
            f"then continue with: dlsuite run {config} --resume (or dlsuite train {config} "
            "--resume)")


class TrainingDiverged(DlsuiteInputError):
    """The loss became NaN or infinite; the last good checkpoints were kept."""


# --------------------------------------------------------------------------------------------
# typed step inputs / outputs


@attrs.define
class RunContext:
    """Shared by the steps of one run: config, registry, run directory, W&B run, options."""

    loaded: LoadedConfig
    registry: Registry
    run: RunDir
    quiet: bool = False
    wandb: WandbRun = attrs.field(factory=WandbRun)
    notes: list = attrs.field(factory=list)
    seed: int | None = None
    distribution: Any = None  # dlsuite.distribute.Distribution; None: from the config
    #: probabilities kept for a later step of this run, ``{(checkpoint, image path): probs}``
    #: (:func:`sample_probabilities`)
    kept_probabilities: dict = attrs.field(factory=dict)

    @property
    def config(self):
        return self.loaded.config

    def note(self, message: str) -> None:
        """Record (and log) something the user should know about this run."""
        log.warning(message)
        self.notes.append(message)

    def provenance(self) -> dict:
        """Plugin, distribution and version of every plugin the config chose
        (:func:`dlsuite.provenance.provenance`)."""
        from .provenance import provenance

        return provenance(self.config, self.registry)

    def geometry(self) -> dict:
        """:func:`dlsuite.models.model_geometry` of the configured architecture (no TF)."""
        from .models import model_geometry

        return model_geometry(self.config, self.registry)


@attrs.frozen
class TrainOutput:
    """Output of training: the checkpoint prediction uses, history rows, train metrics."""

    model_path: Path | None  # the checkpoint prediction uses (inference.weights)
    history: list
    metrics: dict
    n_classes: int


@attrs.frozen
class SamplePrediction:
    """One test sample: its pixels and ground truth, predicted probabilities and (after
    post-processing) instance labels."""

    name: str
    image: np.ndarray  # (T, H, W) raw
    truth: np.ndarray | None  # (T, H, W) instance labels
    annotated: np.ndarray  # indices of the frames that carry ground truth
    probs: np.ndarray  # (T, H, W, C)
    labels: np.ndarray | None = None  # (T, H, W) instances after post-processing
    truth_path: Path | None = None
    layout: str = "videos"  # the sample's dataset layout (frames samples are single images)


@attrs.frozen
class Predictions:
    """Output of the prediction and post-processing steps of ``run``."""

    samples: list  # SamplePrediction


# --------------------------------------------------------------------------------------------
# helpers


def progress(items: list, description: str, quiet: bool) -> Iterable:
    """Iterate ``items`` with a rich progress bar on stderr (none when quiet)."""
    if quiet or not items:
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    yield from track(items, description=description, console=Console(stderr=True),
                     transient=True)


def receptive_field(ctx: RunContext, geo: dict) -> tuple[int, str]:
    """``(receptive field in pixels, "declared" | "measured")`` of the run's architecture:
    the spec's ``receptive_field(params)``, or, when it declares none, the field measured on
    a freshly built model (:func:`dlsuite.inference.receptive_field.measured_receptive_field`, once per
    parameter set per process), with a note saying so."""
    if geo["receptive_field"] is not None:
        return int(geo["receptive_field"]), "declared"
    from .inference.receptive_field import measured_receptive_field

    name = ctx.config.model.name
    entry = ctx.registry.resolve("architectures", name)
    reach = measured_receptive_field(entry, ctx.config.model.params, n_classes=geo["n_classes"])
    bound = "" if reach.complete else "at least "
    message = (f"architecture {name!r} declares no receptive field: measured {bound}"
               f"{reach.receptive_field} px (reach {reach.radius} px over {reach.phases} "
               f"phases), used for inference.halo 'auto'; declaring receptive_field in its "
               "spec skips the measurement")
    if message not in ctx.notes:
        ctx.note(message)
    return reach.receptive_field, "measured"


def resolve_halo(ctx: RunContext, geo: dict) -> int:
    """The halo in pixels before rounding to the size multiple: ``inference.halo``, or for
    ``"auto"`` the reach ``(rf - 1) / 2`` of the architecture's receptive field ``rf``
    (declared, or measured when the architecture declares none: :func:`receptive_field`)."""
    halo = ctx.config.inference.halo
    if halo != "auto":
        return halo_pixels(halo, None)
    return halo_pixels(halo, receptive_field(ctx, geo)[0])


def tile_settings(ctx: RunContext, geo: dict | None = None, *,
                  time_windows: int | None = None) -> TileSettings:
    """How the run's model is run over an image: the config's ``inference`` tiling, the
    architecture's geometry ``geo`` (default :meth:`RunContext.geometry`) and its temporal
    window (``time_windows`` overrides it). Its ``halo`` is the one tiling uses (rounded up
    to the size multiple); for ``halo: auto`` it records the receptive field and whether it
    was declared or measured."""
    geo = geo if geo is not None else ctx.geometry()
    inf = ctx.config.inference
    windows = time_windows or geo["time_windows"] or 1
    rf = source = None
    if inf.halo == "auto":
        rf, source = receptive_field(ctx, geo)
    return TileSettings(inf.tile_size, resolve_halo(ctx, geo), inf.batch_size,
                        geo["size_multiple"], geo["temporal"], int(windows), rf, source,
                        geo.get("heads"), inf.tta)


# --------------------------------------------------------------------------------------------
# prediction with a run's model


@attrs.frozen
class Predictor:
    """A trained run ready to predict: ``ctx`` (a :class:`RunContext` whose config carries
    the inference overrides), the model, its checkpoint, the run's normalizer (None: no
    normalization) and the tiling."""

    ctx: RunContext
    model: Any
    checkpoint: Path | None
    normalize: Callable[[np.ndarray], np.ndarray] | None
    tiles: TileSettings

    def probabilities(self, image) -> np.ndarray:
        """Class probabilities float32 of ``image``: ``(H, W)`` -> ``(H, W, C)``, ``(T, H, W)``
        -> ``(T, H, W, C)``. Normalization, tiling and temporal windows as in
        ``dlsuite run``'s prediction step (a 2D image is a one-frame video); with
        ``data.scale`` the frames are resized for the model and its outputs resized back."""
        return probabilities(self.model, image, self.tiles, self.normalize,
                             scale=self.ctx.config.data.scale)


def probabilities(model, image, tiles: TileSettings, normalize, *,
                  scale: float = 1.0) -> np.ndarray:
    """:meth:`Predictor.probabilities` for a bare ``model`` (``normalize`` None: none;
    ``scale``: :mod:`dlsuite.data.resize`, outputs at the input's own size)."""
    from .data.resize import resize_frames, resize_outputs_back
    from .inference import predict_video

    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.size == 0:
        raise DataError(f"predict: expected a 2D image (H, W) or a video (T, H, W), got shape "
                        f"{image.shape}")
    video = image[np.newaxis] if image.ndim == 2 else image
    if normalize is not None:
        video = normalize(video)
    size = video.shape[-2:]
    video = resize_frames(np.asarray(video, dtype=np.float32), scale)
    probs = resize_outputs_back(predict_video(model, video, **tiles.kwargs()), size)
    return probs[0] if image.ndim == 2 else probs


def open_predictor(ctx: RunContext, checkpoint: Path | None = None, *,
                   normalize: bool | Callable = True,
                   time_windows: int | None = None) -> Predictor:
    """The :class:`Predictor` of ``ctx``'s run: ``checkpoint`` (default: the one
    ``inference.weights`` names, :func:`dlsuite.inference.choose_checkpoint`) loaded with
    its architecture plugin imported first, the run's normalizer (``normalize=False``: none;
    a callable replaces it) and :func:`tile_settings`. DlsuiteInputError naming a missing
    checkpoint."""
    from .inference import choose_checkpoint, load_checkpoint

    if checkpoint is None:
        checkpoint = choose_checkpoint(ctx.run, ctx.config.inference.weights)
    tiles = tile_settings(ctx, time_windows=time_windows)
    model = load_checkpoint(checkpoint, ctx.config, ctx.registry)
    if callable(normalize):
        normalizer = normalize
    elif normalize:
        from .data.datagen_plugins import make_normalizer

        normalizer = make_normalizer(ctx.config, ctx.registry)
    else:
        normalizer = None
    return Predictor(ctx, model, checkpoint, normalizer, tiles)


def sample_probabilities(ctx: RunContext, predictor: Predictor, sample, image, *,
                         keep: bool = False) -> np.ndarray:
    """``predictor.probabilities(image)`` of ``sample`` (a :class:`~dlsuite.data.layouts.Sample`
    whose pixels are ``image``). Probabilities an earlier step of this run kept for the same
    checkpoint and image file are returned (once) instead of predicting again; ``keep=True``
    keeps these for a later step (the tuning step does, when the test set is the validation
    set: with ``inference.tta`` each prediction costs 8 passes)."""
    key = (str(Path(predictor.checkpoint).resolve()), str(Path(sample.image).resolve()))
    probs = ctx.kept_probabilities.pop(key, None)
    if probs is None:
        probs = predictor.probabilities(image)
    if keep:
        ctx.kept_probabilities[key] = probs
    return probs


# --------------------------------------------------------------------------------------------
# tracking


def write_tracked(ctx: RunContext, res_dir: Path, labels: np.ndarray) -> None:
    """Optional gap filling, then linking with the overlap tracker (or, without
    ``laptrack``, one track per frame object, with a note), then a CTC ``NN_RES`` folder."""
    from .tracking import gap_fill, track, untracked, write_ctc_result

    t = ctx.config.tracking
    if t.gap_fill.enabled:
        labels = gap_fill(labels > 0, sigma=t.gap_fill.sigma, threshold=t.gap_fill.threshold,
                          min_size=t.gap_fill.min_size)
    if importlib.util.find_spec("laptrack") is None:
        if "laptrack" not in " ".join(ctx.notes):
            ctx.note("laptrack is not installed (pip install laptrack): CTC results "
                     "are written without linking objects over time, so TRA is meaningless")
        video, tracks = untracked(labels)
    else:
        video, tracks = track(labels, max_distance=t.max_distance, min_overlap=t.min_overlap,
                              gap_closing=t.gap_closing, splitting=t.splitting)
    write_ctc_result(res_dir, video, tracks)
