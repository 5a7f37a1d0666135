"""The lookup tables of the legacy migration: what the original suite did for each value.

Architecture names and the parameters each accepts, losses, normalizations, the keys holding
paths, the classes per target and the original's augmentation (:mod:`dlsuite.config.legacy`).
"""

from __future__ import annotations

from typing import Any, Optional

import attrs

#: Key prefixes of the original's flat config (``models/builder.py`` strips ``model_``).
LEGACY_PREFIXES = ("model_", "datagen_", "train_", "callbacks_", "newinfer_")

#: The original's architecture choice: first substring of ``cnn_name`` that matches, in this
#: order (``models/builder.py``); no match -> ``unet``.
ARCH_SUBSTRINGS = ("mobilenet_mobileunet_lstm", "mobilenet_mobileunet",
                   "categorical_unet_transpose", "categorical_unet_fc_dil",
                   "categorical_unet_fc", "categorical_unet")
DEFAULT_ARCH = "unet"
#: A name containing ``lstm`` whose substring pick is 2D: the temporal architecture used
#: instead (the original switched to the LSTM generator and crashed).
TEMPORAL_COUNTERPART = {"mobilenet_mobileunet": "mobilenet_mobileunet_lstm",
                        "categorical_unet_transpose": "unet_lstm",
                        "categorical_unet_fc_dil": "unet_lstm",
                        "categorical_unet_fc": "unet_lstm",
                        "categorical_unet": "unet_lstm", "unet": "unet_lstm"}
MOBILENETS = frozenset({"mobilenet_mobileunet", "mobilenet_mobileunet_lstm"})

#: Parameter names assumed when the architecture is not registered at migration time.
_MOBILE_FIELDS = ("n_filters", "pools", "alpha", "encoder_weights", "train_decoder_only",
                  "dilation_rate", "dropout", "activation", "kernel_initializer")
_UNET_FIELDS = ("n_filters", "pools", "kernel_size", "dropout", "batch_norm", "activation",
                "kernel_initializer")
STATIC_ARCH_FIELDS: dict[str, frozenset[str]] = {
    "mobilenet_mobileunet": frozenset(_MOBILE_FIELDS),
    "mobilenet_mobileunet_lstm": frozenset(_MOBILE_FIELDS + ("time_windows",)),
    "unet": frozenset(_UNET_FIELDS + ("dilation_rate",)),
    "categorical_unet": frozenset(_UNET_FIELDS),
    "categorical_unet_transpose": frozenset(_UNET_FIELDS),
    "categorical_unet_fc": frozenset(_UNET_FIELDS),
    "categorical_unet_fc_dil": frozenset(_UNET_FIELDS + ("dilation_rate",)),
    "unet_lstm": frozenset(("n_filters", "pools", "kernel_size", "dropout", "activation",
                            "kernel_initializer", "time_windows")),
}
STATIC_TEMPORAL = frozenset({"mobilenet_mobileunet_lstm", "unet_lstm"})
#: What differs from the original's model of the same name (beyond its crash at build).
ARCH_NOTES = {
    "unet": "the original's unet (crashed at build) had a 1-channel output; dlsuite's has "
            "one channel per target class",
}


@attrs.frozen
class LossMapping:
    """How a U-Net ``model_lossfunction`` value maps: loss plugin, target plugin, note."""

    loss: str
    target: Optional[str] = None  # None: the target follows datagen_type
    note: str = ""


LOSS_MAP: dict[str, LossMapping] = {
    "sparse_cce": LossMapping("sparse_cce"),
    "categorical_crossentropy": LossMapping(
        "categorical_cce", note="the original one-hot encoded the labels for this value; "
                                "dlsuite's categorical_cce one-hot encodes itself"),
    "categorical_cce": LossMapping(
        "categorical_cce", note="README value: the original fed sparse labels to "
                                "CategoricalCrossentropy (shape mismatch); fixed here"),
    "weighted_bce_dice": LossMapping(
        "weighted_bce_dice", note="the model outputs logits; the original applied "
                                  "model_last_activation before this loss"),
    "weighted_bce": LossMapping(
        "weighted_bce", target="weight_map",
        note="pixel weights computed on the fly (target weight_map) instead of read from "
             "TRAINPATH/weights"),
    "multiple_output": LossMapping(
        "multiple_output", note="per-channel sigmoid BCE; category weights from "
                                "model_category_weights"),
}
_LOSS_FALLBACK = LossMapping(
    "categorical_cce", note="unknown value: the original fell back to CategoricalCrossentropy "
                            "from logits")
_MOBILENET_LOSS = LossMapping(
    "sparse_cce", note="ignored as a loss by the original's MobileNet models (always sparse "
                       "CCE from logits); sparse_cce")

#: ``normalization`` value (upper-cased) -> (normalizer plugin, note).
NORMALIZATION_MAP: dict[str, tuple[str, str]] = {
    "PERCENTILE": ("percentile", ""),
    "MEAN": ("mean", ""),
    "MEDIAN": ("median", ""),
    "HE": ("percentile", "HE (histogram equalisation) crashed in the original on float data "
                         "and is not supported; percentile used"),
}

#: New keys holding file or folder paths: a relative value gets a note, because dlsuite
#: resolves it against the config file's folder (the original: the working directory).
PATH_KEYS = frozenset({"$.output_dir", "$.data.train", "$.data.val", "$.data.test",
                       "$.data.videos_csv", "$.train.pretrained_weights", "$.inference.weights"})
_RELATIVE_NOTE = ("relative path: dlsuite resolves it against the config file's folder (the "
                  "original: against the working directory)")

#: Target plugin -> number of classes the model outputs, when the target plugin is not
#: registered (otherwise its spec's ``n_classes`` is used; for ``model_output_ch``).
TARGET_CLASSES = {"binary": 2, "contours": 3, "weight_map": 2}


@attrs.frozen
class PluginParam:
    """A parameter wanted for a plugin, under any of ``aliases`` (first match in the plugin's
    params class wins; the first alias is assumed when the plugin is not registered)."""

    aliases: tuple[str, ...]
    value: Any


@attrs.frozen
class AugmentationGroup:
    """One part of the original's augmentation: the first registered plugin of ``names``
    receives ``params``."""

    what: str
    names: tuple[str, ...]
    params: tuple[PluginParam, ...]


#: The original's training augmentation (Keras ImageDataGenerator, identical for every
#: generator): rotation 30 deg, shifts 0.2, zoom 0.2, horizontal flip, reflect fill.
LEGACY_AUGMENTATION = (
    AugmentationGroup("rotation/shift/zoom", ("affine", "random_affine", "geometric"), (
        PluginParam(("rotation", "rotation_range", "max_rotation", "degrees", "max_degrees"), 30.0),
        PluginParam(("shift", "shift_range", "translation", "max_shift"), 0.2),
        PluginParam(("zoom", "zoom_range", "scale", "max_zoom"), 0.2),
        PluginParam(("fill_mode", "fill", "mode", "padding_mode", "border_mode"), "reflect"),
        PluginParam(("independent_zoom", "zoom_independent"), True),
    )),
    AugmentationGroup("rotation", ("rotation", "rotate", "random_rotation"), (
        PluginParam(("degrees", "max_degrees", "rotation", "rotation_range", "angle",
                     "max_angle"), 30.0),
        PluginParam(("fill_mode", "fill", "mode", "padding_mode"), "reflect"),
    )),
    AugmentationGroup("shift", ("shift", "translate", "random_shift", "random_translation"), (
        PluginParam(("fraction", "shift", "shift_range", "max_shift", "translation"), 0.2),
        PluginParam(("fill_mode", "fill", "mode", "padding_mode"), "reflect"),
    )),
    AugmentationGroup("zoom", ("zoom", "scale", "random_zoom"), (
        PluginParam(("zoom", "zoom_range", "fraction", "max_zoom", "scale"), 0.2),
        PluginParam(("fill_mode", "fill", "mode", "padding_mode"), "reflect"),
    )),
    AugmentationGroup("horizontal flip", ("flip", "random_flip", "flips", "horizontal_flip"), (
        PluginParam(("horizontal", "horizontal_flip", "flip_horizontal", "left_right"), True),
        PluginParam(("vertical", "vertical_flip", "flip_vertical", "up_down"), False),
    )),
)
_LEGACY_AUGMENTATION_TEXT = ("ImageDataGenerator(rotation_range=30, width/height_shift_range"
                             "=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True, "
                             "fill_mode='reflect')")
