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

from typing import Any, ClassVar, Literal, Optional, Union

import attrs

from ..specs import param

SCHEMA_VERSION = 1


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


@attrs.frozen
class DataConfig:
    train: Optional[str] = param(None, help="training data folder (layout frames, videos or ctc)")
    val: Optional[str] = param(None, help="validation data folder; none: no validation")
    test: Optional[str] = param(None, help="test data folder predicted and evaluated by `run`")
    layout: Layout = param("auto", help="dataset layout: auto, frames, videos or ctc")
    videos_csv: Optional[str] = param(
        None, help="videos2im_relation.csv relating 2D test frames to their videos")


@attrs.frozen
class OptimizerConfig:
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = param("adam", help="Keras optimizer")
    learning_rate: float = param(1e-3, help="initial learning rate")
    weight_decay: Optional[float] = param(None, help="decoupled weight decay (adamw, sgd)")
    clipnorm: Optional[float] = param(None, help="clip gradients to this global norm")


@attrs.frozen
class DatagenConfig:
    patch_size: tuple[int, int] = param((64, 64), help="training patch size [height, width]")
    batch_size: int = param(2, help="images (or videos) per step")
    patches_per_image: int = param(1, help="patches cut from each image per step")
    steps_per_epoch: Optional[int] = param(
        None, help="steps per epoch; default: number of training images // batch_size")
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
    every_n_epochs: Optional[int] = param(None, help="also keep checkpoints/epoch_NNNN.keras")


@attrs.frozen
class ReduceLRConfig:
    enabled: bool = param(True, help="ReduceLROnPlateau on the monitored metric")
    factor: float = param(0.5, help="multiply the learning rate by this")
    patience: int = param(10, help="epochs without improvement before reducing")
    min_delta: float = param(1e-4, help="smallest change counted as improvement")
    cooldown: int = param(1, help="epochs to wait after a reduction")
    min_lr: float = param(0.0, help="lower bound of the learning rate")


@attrs.frozen
class EarlyStoppingConfig:
    enabled: bool = param(False, help="stop when the monitored metric stops improving")
    patience: int = param(20, help="epochs without improvement before stopping")
    min_delta: float = param(0.0, help="smallest change counted as improvement")


@attrs.frozen
class TensorBoardConfig:
    enabled: bool = param(True, help="write TensorBoard logs to logs/")
    update_freq: Union[Literal["epoch", "batch"], int] = param(
        "epoch", help="'epoch', 'batch' or a number of batches")
    histogram_freq: int = param(0, help="epochs between weight histograms (0: none)")


@attrs.frozen
class TrainConfig:
    epochs: int = param(10, help="number of epochs")
    monitor: str = param("val_jaccard", help="metric for checkpoints, LR schedule, early stop")
    monitor_mode: Literal["auto", "max", "min"] = param(
        "auto", help="whether the monitored metric should grow (max) or shrink (min)")
    pretrained_weights: Optional[str] = param(
        None, help="a .keras or .weights.h5 file whose weights initialise the model")
    load_from_frozen: bool = param(
        False, help="pretrained weights come from a frozen-encoder run: load, then unfreeze")
    checkpoint: CheckpointConfig = param(CheckpointConfig(), help="checkpointing")
    reduce_lr: ReduceLRConfig = param(ReduceLRConfig(), help="ReduceLROnPlateau")
    early_stopping: EarlyStoppingConfig = param(EarlyStoppingConfig(), help="EarlyStopping")
    tensorboard: TensorBoardConfig = param(TensorBoardConfig(), help="TensorBoard logging")
    mixed_precision: bool = param(False, help="bfloat16 on CPU, float16 on GPU")
    deterministic: bool = param(False, help="enable TensorFlow op determinism")


@attrs.frozen
class InferenceConfig:
    tile_size: Optional[int] = param(
        1024, help="output tile edge in pixels (the network sees tile + 2 halo); "
                   "null: whole image")
    halo: Union[int, Literal["auto"]] = param(
        "auto", help="pixels of context around each tile; auto: from the receptive field")
    batch_size: int = param(2, help="tiles (or frames) per prediction batch")
    weights: str = param("best", help="'best', 'last' or a path to a .keras file")
    output_folder: str = param("predictions", help="subfolder of output_dir for predictions")
    save_probabilities: bool = param(True, help="write float32 class probabilities")


@attrs.frozen
class GapFillConfig:
    enabled: bool = param(False, help="temporal Gaussian gap filling before tracking")
    sigma: float = param(2.0, help="Gaussian sigma in frames (and pixels)")
    threshold: float = param(
        1 / 255, help="keep pixels whose smoothed value exceeds this (0 keeps the whole "
                      "Gaussian tail)")
    min_size: int = param(100, help="drop objects smaller than this (pixels)")


@attrs.frozen
class TrackingConfig:
    enabled: bool = param(True, help="link instances over time and write res_track.txt")
    max_distance: float = param(30.0, help="largest centroid displacement linked (pixels)")
    min_overlap: float = param(
        0.1, help="smallest overlap, as a fraction of the smaller object, for a link "
                  "(0: link by distance alone)")
    gap_closing: int = param(2, help="frames a track may be missing and still be linked")
    splitting: bool = param(True, help="allow divisions")
    gap_fill: GapFillConfig = param(GapFillConfig(), help="tracking preparation")


@attrs.frozen
class EvaluationConfig:
    metrics: list[str] = param(
        ["SEG", "DET", "TRA", "jaccard", "dice", "precision", "recall", "f1",
         "temporal_stability", "temporal_stability_gt"],
        help="metrics computed on the test set")
    tune_postprocess: bool = param(
        True, help="after training, search the post-processors' tunable parameters on the "
                   "validation set (written to postprocess.json and used for the test set and "
                   "dlsuite predict); needs data.val")
    tune_metric: Literal["SEG", "f1"] = param(
        "SEG", help="what the search maximises: CTC SEG, or instance F1 at IoU 0.5")
    tune_seconds: float = param(
        120.0, help="time budget of the search in seconds (the best values found so far are "
                    "kept when it runs out)")


@attrs.frozen
class WandbConfig:
    mode: Literal["offline", "online", "disabled"] = param(
        "offline", help="W&B mode (env WANDB_MODE overrides); offline needs no account")
    project: str = param("dlsuite", help="W&B project")
    entity: Optional[str] = param(None, help="W&B entity (team or user)")
    group: Optional[str] = param(None, help="group runs in the dashboard")
    tags: list[str] = param([], help="tags of the run")
    log_model: bool = param(True, help="log the final model as an artifact")
    n_images: int = param(4, help="sample predictions logged per epoch")


@attrs.frozen
class Config:
    """A whole dlsuite run."""

    schema_version: int = param(SCHEMA_VERSION, help="version of this config schema")
    name: str = param("dlsuite-run", help="run name")
    output_dir: str = param("runs/dlsuite-run", help="run directory (checkpoints, results)")
    seed: Optional[int] = param(0, help="seed of Python, NumPy and TensorFlow; null: random")
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
