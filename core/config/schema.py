"""The typed config of a dlsuite run (attrs classes).

Every section has defaults, so ``{}`` plus data paths is a valid config. Pluggable sections
(``model``, ``loss``, ``metrics``, ``datagen.sampling``, ``datagen.normalization``,
``datagen.target``, ``datagen.augmentation``, ``postprocess``) are :class:`Choice` values:
a plugin ``name`` plus that plugin's own parameter object, validated against the schema the
plugin declares (see :mod:`dlsuite.config.converter`).

Field metadata ``help`` documents each key; the README's config reference and
``dlsuite config schema`` are generated from it.
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar, Literal, Optional, Union

import attrs

from ..specs import param
from ..checks import (Check, CheckError, each, excludes, greater_than, in_range,
                      max_length, non_empty, non_negative, not_both_enabled, not_both_set,
                      one_of, positive, relative_path)

SCHEMA_VERSION = 1
#: Longest run ``name``: W&B artifact names (``model-<name>``) end at 128 characters, and
#: an export's file name (``<name>.bioimageio.zip``) must stay well within a file system's
#: 255 bytes.
RUN_NAME_LIMIT = 100
#: Widest ``inference.halo``: far beyond any model's reach (a 5-pool U-Net sees ~200 px to
#: each side), and a larger one makes every tile's pass mostly mirrored context.
MAX_HALO = 4096


@attrs.frozen
class Choice:
    """A plugin selected by ``name`` with its parameters (an instance of the plugin's params
    class; ``None`` until defaults are filled in). Subclasses fix the plugin ``kind``."""

    kind: ClassVar[str] = ""
    name: str
    params: Any = None


# One subclass per plugin kind, so the converter knows which table a section draws from.
class ModelChoice(Choice):
    kind = "architectures"


class LossChoice(Choice):
    kind = "losses"


class MetricChoice(Choice):
    kind = "metrics"


class NormalizerChoice(Choice):
    kind = "normalizers"


class SamplerChoice(Choice):
    kind = "samplers"


class TargetChoice(Choice):
    kind = "targets"


class AugmentationChoice(Choice):
    kind = "augmentations"


class PostprocessorChoice(Choice):
    kind = "postprocessors"


CHOICE_TYPES = (ModelChoice, LossChoice, MetricChoice, NormalizerChoice, SamplerChoice,
                TargetChoice, AugmentationChoice, PostprocessorChoice)

Layout = Literal["auto", "frames", "videos", "ctc"]


_FRACTION = in_range(0, 1, lo_open=True, hi_open=True)


@attrs.frozen
class _EvaluationMetrics(Check):
    """Every name is a metric ``dlsuite evaluate`` knows (case-insensitive, as
    :func:`dlsuite.config.metric_names.parse_metrics`). The default list holds every metric, so
    the evaluation table is imported only when a name is not in it (an error, or a metric
    added since)."""

    known: tuple[str, ...] = ()

    def __call__(self, instance: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, list):
            return
        lower = {k.lower() for k in self.known}
        for i, name in enumerate(value):
            if not isinstance(name, str) or name.lower() in lower:
                continue
            from .metric_names import METRICS

            if name.lower() in {m.lower() for m in METRICS}:
                continue
            close = difflib.get_close_matches(name, list(METRICS), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CheckError(attribute.name, f"unknown metric {name!r}{hint} (known: "
                                             f"{', '.join(METRICS)})", f"[{i}]")


_EVALUATION_METRICS = ["SEG", "DET", "TRA", "jaccard", "dice", "precision", "recall", "f1",
                       "temporal_stability", "temporal_stability_gt"]


@attrs.frozen
class DataConfig:
    train: Optional[str] = param(None, help="training data folder (layout frames, videos or ctc)")
    val: Optional[str] = param(None, help="validation data folder; none: no validation")
    test: Optional[str] = param(None, help="test data folder predicted and evaluated by `run`")
    layout: Layout = param("auto", help="dataset layout: auto, frames, videos or ctc")
    videos_csv: Optional[str] = param(
        None, help="videos2im_relation.csv relating the 2D frames of data.test to their "
        "videos (dlsuite prepare frames writes one): the run rebuilds the test videos and "
        "predicts, tracks and scores them as videos")
    scale: float = param(
        1.0, help="resize factor applied to every image before the model sees it (training, "
        "validation and prediction), e.g. 0.5 when cells are large for the model's receptive "
        "field; training labels are resized with their image (each pixel the label covering most "
        "of it, ids kept) and predictions are resized back to each image's own size, so "
        "outputs and metrics keep the original pixel grid",
        validator=in_range(0.1, 4.0))
    nonfinite_pixels: Literal["refuse", "mask"] = param(
        "refuse", help="NaN/Inf pixels in input images: 'refuse' them (the run and predict "
        "stop naming the file) or 'mask' them (left out of normalization, 0 afterwards)")


@attrs.frozen
class OptimizerConfig:
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = param("adam", help="Keras optimizer")
    learning_rate: float = param(1e-3, help="initial learning rate", validator=positive())
    weight_decay: Optional[float] = param(
        None, help="decoupled weight decay, any optimizer (null: none, except adamw's "
        "Keras default 0.004)", validator=non_negative())
    clipnorm: Optional[float] = param(
        None, help="clip the gradient of each weight separately to this norm (Keras' "
        "clipnorm); global_clipnorm clips all of them together", validator=positive())
    global_clipnorm: Optional[float] = param(
        None, help="clip the gradients of all weights together to this global norm (Keras' "
        "global_clipnorm); not together with clipnorm",
        validator=[positive(), not_both_set("clipnorm")])
    ema_momentum: Optional[float] = param(
        None, help="keep an exponential moving average of the weights (Polyak averaging) with "
        "this momentum, e.g. 0.99 (about the last 1 / (1 - momentum) steps; it starts from the "
        "first step's weights); validation, checkpoints and prediction use the averaged "
        "weights, training continues on its own", validator=_FRACTION)


@attrs.frozen
class DatagenConfig:
    patch_size: tuple[int, int] = param((64, 64), help="training patch size [height, width]",
                                        validator=each(positive()))
    batch_size: int = param(2, help="images (or videos) per step", validator=positive())
    patches_per_image: int = param(1, help="patches cut from each image per step",
                                   validator=positive())
    steps_per_epoch: Optional[int] = param(
        None, help="steps per epoch; default: number of training images // batch_size",
        validator=positive())
    sampling: SamplerChoice = param(SamplerChoice("foreground_pdf"),
                                    help="patch sampler plugin")
    normalization: NormalizerChoice = param(NormalizerChoice("percentile"),
                                            help="intensity normalization plugin")
    target: TargetChoice = param(TargetChoice("binary"), help="training target plugin")
    augmentation: list[AugmentationChoice] = param(
        [], help="augmentation plugins applied in order (training only)")
    cache: bool = param(True, help="keep decoded, normalized images in memory")


@attrs.frozen
class CheckpointConfig:
    save_best: bool = param(True, help="keep checkpoints/best.keras at the best monitored value")
    save_last: bool = param(True, help="keep checkpoints/last.keras after every epoch")
    every_n_epochs: Optional[int] = param(None, help="also keep checkpoints/epoch_NNNN.keras",
                                         validator=positive())


@attrs.frozen
class ReduceLRConfig:
    enabled: bool = param(True, help="ReduceLROnPlateau on the monitored metric")
    factor: float = param(0.5, help="multiply the learning rate by this", validator=_FRACTION)
    patience: int = param(10, help="epochs without improvement before reducing",
                          validator=non_negative())
    min_delta: float = param(1e-4, help="smallest change counted as improvement",
                             validator=non_negative())
    cooldown: int = param(1, help="epochs to wait after a reduction", validator=non_negative())
    min_lr: float = param(0.0, help="lower bound of the learning rate",
                          validator=non_negative())


@attrs.frozen
class CosineDecayConfig:
    enabled: bool = param(
        False, help="cosine decay of the learning rate from optimizer.learning_rate (after "
                    "train.warmup_steps) to min_lr at the last step of train.epochs; instead "
                    "of reduce_lr, which must then be disabled")
    min_lr: float = param(0.0, help="the learning rate at the end of the decay",
                          validator=non_negative())


@attrs.frozen
class CollapseRecoveryConfig:
    enabled: bool = param(
        True, help="when a training metric that grows as the model improves (jaccard, dice) "
                   "falls under drop x its peak (>= 0.1) while the training loss rises above "
                   "1.5 x its value at the last healthy epoch end, put back the weights and "
                   "optimizer slots of that epoch end and multiply the learning rate by factor")
    drop: float = param(0.7, help="a fall under this fraction of the peak is a collapse (0.7 "
                                  "also catches the partial falls of a loss spike)",
                        validator=_FRACTION)
    healthy: float = param(0.8, help="an epoch end is healthy when every such metric, and "
                                     "its validation counterpart when there is one, is at "
                                     "least this fraction of its peak (above drop), "
                                     "after epoch 1 and with the loss under epoch 1's",
                           validator=[_FRACTION, greater_than("drop")])
    factor: float = param(0.5, help="multiply the learning rate by this at each recovery",
                          validator=_FRACTION)
    max_times: int = param(3, help="recoveries per run; after them a collapse only warns",
                           validator=positive())


@attrs.frozen
class EarlyStoppingConfig:
    enabled: bool = param(False, help="stop when the monitored metric stops improving")
    patience: int = param(20, help="epochs without improvement before stopping",
                          validator=non_negative())
    min_delta: float = param(0.0, help="smallest change counted as improvement",
                             validator=non_negative())


@attrs.frozen
class TensorBoardConfig:
    enabled: bool = param(True, help="write TensorBoard logs to logs/")
    update_freq: Union[Literal["epoch", "batch"], int] = param(
        "epoch", help="'epoch', 'batch' or a number of batches", validator=positive())
    histogram_freq: int = param(0, help="epochs between weight histograms (0: none)",
                                validator=non_negative())


@attrs.frozen
class DistributeConfig:
    strategy: Literal["none", "mirrored", "multi_worker"] = param(
        "none", help="'none': one device; 'mirrored': tf.distribute.MirroredStrategy over the "
        "devices of this host; 'multi_worker': MultiWorkerMirroredStrategy over the hosts of "
        "TF_CONFIG or of a SLURM job step (datagen.batch_size is the global batch)")
    devices: list[str] = param(
        [], help="mirrored only: the devices to use, e.g. ['GPU:0', 'GPU:1']; "
        "empty: every GPU of the host (the CPU when there is none)")


@attrs.frozen
class TrainConfig:
    epochs: int = param(10, help="number of epochs", validator=positive())
    monitor: str = param("val_jaccard", help="metric for checkpoints, LR schedule, early stop",
                         validator=non_empty())
    monitor_mode: Literal["auto", "max", "min"] = param(
        "auto", help="whether the monitored metric should grow (max) or shrink (min)")
    pretrained_weights: Optional[str] = param(
        None, help="a .keras or .weights.h5 file whose weights initialise the model")
    load_from_frozen: bool = param(
        False, help="pretrained weights come from a frozen-encoder run: load, then unfreeze")
    checkpoint: CheckpointConfig = param(CheckpointConfig(), help="checkpointing")
    reduce_lr: ReduceLRConfig = param(ReduceLRConfig(), help="ReduceLROnPlateau")
    cosine_decay: CosineDecayConfig = param(
        CosineDecayConfig(), help="cosine learning-rate decay over train.epochs",
        validator=not_both_enabled("reduce_lr", " (both set the learning rate)"))
    early_stopping: EarlyStoppingConfig = param(EarlyStoppingConfig(), help="EarlyStopping")
    collapse_recovery: CollapseRecoveryConfig = param(
        CollapseRecoveryConfig(), help="go back to the last healthy weights at a lower "
                                       "learning rate when the model collapses")
    tensorboard: TensorBoardConfig = param(TensorBoardConfig(), help="TensorBoard logging")
    mixed_precision: bool = param(False, help="bfloat16 on CPU, float16 on GPU")
    deterministic: bool = param(False, help="enable TensorFlow op determinism")
    distribute: DistributeConfig = param(DistributeConfig(),
                                         help="training on several devices or hosts")
    warmup_steps: int = param(
        0, help="raise the learning rate linearly from optimizer.learning_rate / N to "
                "optimizer.learning_rate over the first N optimizer steps (0: off)",
        validator=non_negative())
    precise_bn_batches: int = param(
        8, help="re-estimate BatchNorm moving statistics over this many training batches "
                "before each validation and checkpoint (0: off; models without BatchNorm skip it)",
        validator=non_negative())


@attrs.frozen
class InferenceConfig:
    tile_size: Optional[int] = param(
        1024, help="output tile edge in pixels (the network sees tile + 2 halo); "
                   "null: whole image", validator=positive())
    halo: Union[int, Literal["auto"]] = param(
        "auto", help="pixels of context around each tile (at most 4096); auto: from the "
                     "receptive field", validator=in_range(0, MAX_HALO))
    batch_size: int = param(2, help="tiles (or frames) per prediction batch",
                            validator=positive())
    weights: str = param("best", help="'best', 'last' or a path to a .keras file",
                         validator=non_empty())
    output_folder: str = param(
        "predictions", help="subfolder of output_dir for the test set's predictions (a "
                            "relative path inside it, not one of the run's own files)",
        validator=[non_empty(), relative_path()])
    save_probabilities: bool = param(True, help="write float32 class probabilities")
    tta: bool = param(
        False, help="test-time augmentation: average the model's outputs over the 8 flips and "
                    "quarter turns of each frame (8x the prediction time; for per-pixel "
                    "scalar outputs such as class probabilities and distance maps)")


@attrs.frozen
class GapFillConfig:
    enabled: bool = param(False, help="temporal Gaussian gap filling before tracking")
    sigma: float = param(2.0, help="Gaussian sigma in frames (and pixels)", validator=positive())
    threshold: float = param(
        1 / 255, help="keep pixels whose smoothed value exceeds this (0 keeps the whole "
                      "Gaussian tail)", validator=in_range(0, 1, hi_open=True))
    min_size: int = param(100, help="drop objects smaller than this (pixels)",
                          validator=non_negative())


@attrs.frozen
class ExportAuthor:
    name: str = param("dlsuite user", help="author's name", validator=non_empty())
    affiliation: Optional[str] = param(None, help="institution")
    email: Optional[str] = param(None, help="e-mail address")
    orcid: Optional[str] = param(None, help="ORCID iD, e.g. 0000-0002-1825-0097")
    github_user: Optional[str] = param(None, help="GitHub user name")


@attrs.frozen
class ExportCitation:
    text: str = param(help="free-text reference", validator=non_empty())
    doi: Optional[str] = param(None, help="DOI (without https://doi.org/)")
    url: Optional[str] = param(None, help="URL, when there is no DOI")


@attrs.frozen
class ExportConfig:
    authors: list[ExportAuthor] = param([ExportAuthor()],
                                        help="authors of the exported model (bioimageio)")
    license: str = param("CC-BY-4.0", help="SPDX licence id of the exported model (bioimageio)",
                         validator=non_empty())
    cite: list[ExportCitation] = param(
        [ExportCitation("Ronneberger, Fischer and Brox: U-Net: Convolutional Networks for "
                        "Biomedical Image Segmentation (MICCAI 2015)",
                        doi="10.1007/978-3-319-24574-4_28")],
        help="citations of the exported model (bioimageio)")
    tags: list[str] = param(["segmentation", "2d", "dlsuite"],
                            help="keywords of the exported model (bioimageio)")
    description: Optional[str] = param(None, help="one-line description of the exported "
                                                  "model; null: architecture and classes")
    formats: list[Literal["keras", "savedmodel", "onnx", "bioimageio"]] = param(
        [], help="formats `dlsuite run` exports the trained model in at its end (as `dlsuite "
                 "export`, into RUN_DIR/export; onnx and bioimageio need dlsuite[export])")


@attrs.frozen
class TrackingConfig:
    enabled: bool = param(True, help="link instances over time and write res_track.txt")
    max_distance: float = param(30.0, help="largest centroid displacement linked (pixels)",
                                validator=positive())
    min_overlap: float = param(
        0.1, help="smallest overlap, as a fraction of the smaller object, for a link "
                  "(0: link by distance alone)", validator=in_range(0, 1))
    gap_closing: int = param(2, help="frames a track may be missing and still be linked",
                             validator=non_negative())
    splitting: bool = param(True, help="allow divisions")
    gap_fill: GapFillConfig = param(GapFillConfig(), help="tracking preparation")


@attrs.frozen
class EvaluationConfig:
    metrics: list[str] = param(
        _EVALUATION_METRICS, help="metrics computed on the test set",
        validator=[non_empty(), _EvaluationMetrics(tuple(_EVALUATION_METRICS))])
    tune_postprocess: bool = param(
        True, help="after training, search the post-processors' tunable parameters on the "
                   "validation set (written to postprocess.json and used for the test set and "
                   "dlsuite predict); needs data.val")
    tune_metric: Literal["SEG", "f1"] = param(
        "SEG", help="what the search maximises: CTC SEG, or instance F1 at IoU 0.5")
    tune_seconds: float = param(
        120.0, help="time budget of the search in seconds (the best values found so far are "
                    "kept when it runs out)", validator=positive())


@attrs.frozen
class WandbConfig:
    mode: Literal["offline", "online", "disabled"] = param(
        "offline", help="W&B mode (env WANDB_MODE overrides); offline needs no account")
    project: str = param(
        "dlsuite", help="W&B project (at most 128 characters, none of / \\ # ? % :)",
        validator=[non_empty(), max_length(128),
                   excludes("/\\#?%:", "; W&B refuses them in a project name (the team "
                                         "goes in wandb.entity)")])
    entity: Optional[str] = param(None, help="W&B entity (team or user)")
    group: Optional[str] = param(None, help="group runs in the dashboard")
    tags: list[str] = param([], help="tags of the run (1 to 64 characters each)",
                            validator=each(non_empty(), max_length(64)))
    job_type: Optional[str] = param(
        None, help="W&B job type; null: the command's own (train for train/run, evaluate "
                   "for test); sweep trials set sweep-trial")
    log_model: bool = param(True, help="log the final model as an artifact")
    n_images: int = param(4, help="sample predictions logged per epoch (validation patches) "
                          "and of the test set (its first images); 0: none",
                          validator=non_negative())


@attrs.frozen
class Config:
    """A whole dlsuite run."""

    schema_version: int = param(SCHEMA_VERSION, help="version of this config schema",
                                validator=one_of(SCHEMA_VERSION))
    name: str = param("dlsuite-run", help="run name, at most 100 characters (exported "
                                          "models and the W&B model artifact are named "
                                          "after it, characters other than A-Z a-z 0-9 _ . "
                                          "- as -)",
                      validator=[non_empty(), max_length(RUN_NAME_LIMIT)])
    output_dir: str = param("runs/dlsuite-run", help="run directory (checkpoints, results)",
                            validator=non_empty())
    seed: Optional[int] = param(0, help="seed of Python, NumPy and TensorFlow; null: random",
                                validator=in_range(0, 2**32 - 1))
    data: DataConfig = param(DataConfig(), help="datasets")
    model: ModelChoice = param(ModelChoice("unet"), help="architecture plugin")
    loss: LossChoice = param(LossChoice("sparse_cce"), help="loss plugin")
    metrics: list[MetricChoice] = param(
        [MetricChoice("jaccard"), MetricChoice("dice"), MetricChoice("accuracy")],
        help="metric plugins logged during training")
    optimizer: OptimizerConfig = param(OptimizerConfig(), help="optimizer")
    datagen: DatagenConfig = param(DatagenConfig(), help="training data generation")
    train: TrainConfig = param(TrainConfig(), help="training")
    inference: InferenceConfig = param(InferenceConfig(), help="prediction")
    postprocess: list[PostprocessorChoice] = param(
        [PostprocessorChoice("argmax"), PostprocessorChoice("fill_holes"),
         PostprocessorChoice("remove_small_objects"), PostprocessorChoice("label")],
        help="post-processing chain applied to predicted probabilities, in order")
    tracking: TrackingConfig = param(TrackingConfig(), help="tracking and CTC export")
    evaluation: EvaluationConfig = param(EvaluationConfig(), help="evaluation")
    wandb: WandbConfig = param(WandbConfig(), help="Weights & Biases logging")
    export: ExportConfig = param(ExportConfig(), help="who made the model, for `dlsuite export`; formats `dlsuite run` exports")
