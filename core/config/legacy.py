"""Legacy flat configs of the original suite: detection and migration to the typed schema.

The original suite read a flat JSON (``cnn_name``,
``OUTPUTPATH``, ``model_n_filters``, ...) with no defaults, the string ``"None"`` as the
"absent" sentinel and ``0``/``1`` as booleans. :func:`migrate` turns such a dict into the
nested form of :mod:`dlsuite.config.schema` and returns one :class:`MigrationRow` per
decision (old key -> JSON path of the new key, or the reason the key is obsolete).

Everything is driven by the declarative table :data:`RULES` (one :class:`Rule` per legacy
key) plus a few lookup tables (architecture substrings, losses, normalizations, the
original's augmentation). Plugin parameters are resolved against the registry *at migration
time*: a model parameter is written only when the chosen architecture's params class has
that field, so the result validates. No TensorFlow is imported.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

import attrs

from ..fileio import write_json_atomic
from ..errors import DlsuiteInputError, PluginError
from ..registry import singular
from .schema import SCHEMA_VERSION, Config

__all__ = ["MigrationRow", "Rule", "RULES", "LEGACY_PREFIXES", "is_legacy", "migrate",
           "migrate_file", "select_architecture", "format_migration", "migration_to_text",
           "write_migrated", "name_legacy_keys"]

#: Key prefixes of the original's flat config (``models/builder.py`` strips ``model_``).
LEGACY_PREFIXES = ("model_", "datagen_", "train_", "callbacks_", "newinfer_")
_SENTINEL_NONE = "None"


@attrs.frozen
class MigrationRow:
    """One migration decision. ``new_key`` is a JSON path (``$.model.n_filters``) or ``None``
    when the old key is obsolete; ``note`` says why (never empty for obsolete keys).
    ``error`` is set when the old value is invalid (the original would have crashed on it):
    the value is carried over unchanged, so validating the migrated config fails at
    ``new_key``, and :func:`name_legacy_keys` reports this message there."""

    old_key: str
    old_value: Any
    new_key: Optional[str]
    new_value: Any
    note: str = ""
    error: str = ""


# ---- lookup tables ---------------------------------------------------------------------------
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


# ---- context: decisions that depend on several keys ------------------------------------------
@attrs.define
class _Context:
    """What every rule may need: the legacy data, the registry and the cross-key decisions
    (architecture, loss, target, seed, epochs), computed once before the rules run."""

    data: dict
    registry: Any
    arch: str = DEFAULT_ARCH
    arch_note: str = ""
    temporal: bool = False
    arch_fields: frozenset = frozenset()
    arch_registered: bool = True
    loss: LossMapping = LossMapping("sparse_cce")
    target: str = "binary"
    target_note: str = ""
    seed: Any = None
    epochs: Optional[int] = None

    @property
    def mobilenet(self) -> bool:
        return self.arch in MOBILENETS

    def get(self, key: str, default: Any = None) -> Any:
        """The legacy value of ``key`` with the ``"None"`` sentinel read as None."""
        return _none(self.data.get(key, default))

    def plugin_fields(self, kind: str, name: str) -> Optional[frozenset]:
        """Field names of plugin ``name``'s params class, or None when it is not registered."""
        try:
            entry = self.registry.resolve(kind, name)
        except PluginError:
            return None
        return frozenset(attrs.fields_dict(entry.spec.params))

    def plugin_names(self, kind: str) -> frozenset:
        """Names registered for ``kind`` (empty when the kind has no plugins yet)."""
        return frozenset(self.registry.tables.get(kind, {}))


def _none(value: Any) -> Any:
    return None if value == _SENTINEL_NONE else value


def select_architecture(cnn_name: Any) -> str:
    """The architecture the original built for ``cnn_name``: the first of
    :data:`ARCH_SUBSTRINGS` contained in it, else ``unet`` (2D pick, before the ``lstm``
    rule)."""
    name = cnn_name if isinstance(cnn_name, str) else ""
    return next((arch for arch in ARCH_SUBSTRINGS if arch in name), DEFAULT_ARCH)


def _is_temporal(ctx: _Context, arch: str) -> bool:
    try:
        return bool(ctx.registry.resolve("architectures", arch).spec.temporal)
    except PluginError:
        return arch in STATIC_TEMPORAL


def _build_context(data: dict, registry: Any) -> _Context:
    ctx = _Context(data=data, registry=registry)
    cnn_name = data.get("cnn_name")
    name = cnn_name if isinstance(cnn_name, str) else ""
    arch = select_architecture(name)
    notes = [f"substring rule -> {arch}"]
    switched = "lstm" in name and not _is_temporal(ctx, arch)
    if switched:
        arch = TEMPORAL_COUNTERPART.get(arch, "unet_lstm")
        notes.append(f"'lstm' in the name: temporal model {arch} (the original switched to "
                     "the LSTM data generator and crashed)")
    ctx.arch = arch
    ctx.temporal = _is_temporal(ctx, arch)
    if ctx.temporal and not switched:
        notes.append("temporal model (window of model_time_windows frames)")
    notes.append(ARCH_NOTES.get(arch, ""))
    if "tips" in name:
        notes.append("no tips head existed in the original; tips not enabled (model.tips)")
    notes.append("the checkpoint-prefix role is gone: checkpoints/best.keras, last.keras")
    fields = ctx.plugin_fields("architectures", arch)
    if fields is None:
        ctx.arch_registered = False
        fields = STATIC_ARCH_FIELDS.get(arch, frozenset())
        notes.append(f"architecture {arch!r} is not registered: its parameters were "
                     "assumed from a static list")
    ctx.arch_fields = fields
    ctx.arch_note = _join(*notes)

    lossfunction = ctx.get("model_lossfunction")
    if ctx.mobilenet:
        ctx.loss = _MOBILENET_LOSS
    elif lossfunction is None:
        ctx.loss = LossMapping("sparse_cce", note="not set: sparse_cce")
    else:
        ctx.loss = LOSS_MAP.get(str(lossfunction), _LOSS_FALLBACK)

    datagen_type = ctx.get("datagen_type")
    contours = isinstance(datagen_type, str) and "contours" in datagen_type
    if contours and not ctx.temporal:
        ctx.target, why = "contours", "'contours' in datagen_type: 3 classes (background, " \
                                      "cell, boundary)"
    elif ctx.loss.target is not None:
        ctx.target, why = ctx.loss.target, f"for loss {ctx.loss.loss}"
    else:
        ctx.target, why = "binary", "labels > 0"
    ctx.target_note = f"target {ctx.target} ({why})"
    if contours and ctx.temporal:
        ctx.target_note = _join("'contours' was ignored by the original for LSTM models "
                                "(non-LSTM generators only)", ctx.target_note)

    model_seed, train_seed = ctx.get("model_seed_initializer"), ctx.get("train_seed_initializer")
    ctx.seed = model_seed if model_seed is not None else train_seed
    epochs = ctx.get("train_max_epochs")
    ctx.epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
    return ctx


# ---- value converters -------------------------------------------------------------------------
Converter = Callable[[Any, _Context], Any]


def _same(value: Any, ctx: _Context) -> Any:
    return value


def _to_bool(value: Any, ctx: _Context) -> Any:
    """0/1 (and true/false, "0"/"1", "True"/"False") -> bool; anything else unchanged so the
    schema reports it at the new path."""
    table = {0: False, 1: True, "0": False, "1": True, "False": False, "True": True,
             "false": False, "true": True}
    try:
        return table.get(value, value)
    except TypeError:  # unhashable (list, dict)
        return value


def _square(value: Any, ctx: _Context) -> Any:
    """``[k, k]`` -> ``k``; a non-square kernel -> its larger side."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return max(value)
    return value


def _pair(value: Any, ctx: _Context) -> Any:
    """``[h, w]`` -> ``[h, w]``; a single int -> ``[v, v]``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    return list(value) if isinstance(value, tuple) else value


def _halo(value: Any, ctx: _Context) -> Any:
    """``[h, w]`` per side -> one int halo (the larger)."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return max(value)
    return value


def _weights_path(value: Any, ctx: _Context) -> Any:
    """As the original: ``os.path.join(OUTPUTPATH, 'checkpoints', value)`` (absolute kept)."""
    if not isinstance(value, str):
        return value
    out = ctx.get("OUTPUTPATH")
    base = os.path.join(out, "checkpoints") if isinstance(out, str) else "checkpoints"
    return os.path.join(base, value)


# ---- rules ------------------------------------------------------------------------------------
RowFn = Callable[[str, Any, "Rule", _Context], list[MigrationRow]]


@attrs.frozen
class Rule:
    """How one legacy key migrates.

    ``kind`` picks the row builder (:data:`_KINDS`): ``"set"`` writes ``convert(value)`` at
    ``target``; ``"model"`` writes the architecture parameter ``target`` only if the chosen
    architecture accepts it (and the original did not ignore the key for that family, see
    ``ignored_by_mobilenets``); ``"obsolete"`` writes nothing and reports ``note`` as the
    reason; ``"custom"`` calls ``custom(key, value, rule, ctx)`` for keys that depend on
    others. ``note`` is appended to the row."""

    kind: str
    target: Optional[str] = None
    convert: Converter = _same
    note: str = ""
    ignored_by_mobilenets: bool = False
    custom: Optional[RowFn] = None


def _row_set(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = rule.convert(_none(raw), ctx)
    return [MigrationRow(key, raw, rule.target, value, rule.note)]


def _row_obsolete(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    return [MigrationRow(key, raw, None, None, rule.note)]


def _row_model(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    field = rule.target
    if rule.ignored_by_mobilenets and ctx.mobilenet:
        note = "ignored by the original's MobileNet models; dropped (dlsuite's default kept)"
        return [MigrationRow(key, raw, None, None, note)]
    if field not in ctx.arch_fields:
        return [MigrationRow(key, raw, None, None, f"not used by {ctx.arch}; dropped")]
    value = rule.convert(_none(raw), ctx)
    note = rule.note if ctx.arch_registered else _join(
        rule.note, f"assumed parameter of {ctx.arch} (not registered)")
    return [MigrationRow(key, raw, f"$.model.{field}", value, note)]


def _row_custom(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    assert rule.custom is not None
    return rule.custom(key, raw, rule, ctx)


_KINDS: dict[str, RowFn] = {"set": _row_set, "obsolete": _row_obsolete, "model": _row_model,
                            "custom": _row_custom}


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _set(path: str, convert: Converter = _same, note: str = "") -> Rule:
    return Rule("set", path, convert, note)


def _model(field: str, convert: Converter = _same, note: str = "",
           ignored_by_mobilenets: bool = False) -> Rule:
    return Rule("model", field, convert, note, ignored_by_mobilenets)


def _obsolete(reason: str) -> Rule:
    return Rule("obsolete", note=reason)


def _custom(fn: RowFn, note: str = "") -> Rule:
    return Rule("custom", note=note, custom=fn)


# ---- custom rows (keys whose migration depends on other keys) ---------------------------------
def _cnn_name(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    return [MigrationRow(key, raw, "$.model.name", ctx.arch, ctx.arch_note)]


def _outputpath(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = _none(raw)
    rows = [MigrationRow(key, raw, "$.output_dir", value,
                         "run directory: checkpoints/, logs/ and predictions")]
    if isinstance(value, str) and Path(value).name:
        rows.append(MigrationRow(key, raw, "$.name", Path(value).name,
                                 "run name: the last folder of OUTPUTPATH"))
    return rows


def _lossfunction(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    rows = [MigrationRow(key, raw, "$.loss", {"name": ctx.loss.loss},
                         _join(ctx.loss.note, "the monitored metric is val_jaccard "
                                              "(train.monitor) for every loss"))]
    if ctx.loss.target is not None:
        rows.append(MigrationRow(key, raw, "$.datagen.target", {"name": ctx.target},
                                 ctx.target_note))
    return rows


def _category_weights(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    if ctx.loss.loss == "multiple_output":
        fields = ctx.plugin_fields("losses", "multiple_output")
        if fields is None or "category_weights" in fields:
            return [MigrationRow(key, raw, "$.loss.category_weights", _none(raw),
                                 "loss weights of the multiple_output heads")]
    return [MigrationRow(key, raw, None, None,
                         "used only by the multiple_output U-Nets and unet4tips (dead code); "
                         f"not used with loss {ctx.loss.loss}; dropped")]


def _seed(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    other = ("train_seed_initializer" if key == "model_seed_initializer"
             else "model_seed_initializer")
    notes = ["one seed for Python, NumPy and TensorFlow (model and data)"]
    if ctx.seed is None:
        notes.append('"None": unseeded, as the original')
    if other in ctx.data and ctx.get(other) != _none(raw):
        notes.append(f"differs from {other} ({ctx.data[other]!r}); dlsuite has one seed: "
                     f"{ctx.seed!r} used (model_seed_initializer unless it is \"None\")")
    return [MigrationRow(key, raw, "$.seed", ctx.seed, _join(*notes))]


def _patience(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = _none(raw)
    rows = [MigrationRow(key, raw, "$.train.reduce_lr.patience", value,
                         "ReduceLROnPlateau patience in epochs (README said 'inputs')")]
    epochs = ctx.epochs if ctx.epochs is not None else Config().train.epochs
    if isinstance(value, int) and not isinstance(value, bool):
        enabled = value < epochs
        why = (f"patience {value} < {epochs} epochs: enabled" if enabled else
               f"patience {value} >= {epochs} epochs: disabled, as in the original")
        rows.append(MigrationRow(key, raw, "$.train.reduce_lr.enabled", enabled, why))
    return rows


def _save_best_only(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = _to_bool(_none(raw), ctx)
    note = ("keep checkpoints/best.keras at the best val_jaccard" if value is True else
            "no best checkpoint; periodic checkpoints from callbacks_save_freq"
            if value is False else "")
    return [MigrationRow(key, raw, "$.train.checkpoint.save_best", value, note)]


def _steps_per_epoch(ctx: _Context) -> Optional[tuple[int, int, int]]:
    """(steps, files, batch) as the original computed them: floor(files in
    TRAINPATH/inputs / datagen_batch_size); None when it cannot be counted."""
    train, batch = ctx.get("TRAINPATH"), ctx.get("datagen_batch_size")
    if not isinstance(train, str) or not isinstance(batch, int) or batch <= 0:
        return None
    try:
        files = sum(1 for p in (Path(train) / "inputs").iterdir() if p.is_file())
    except OSError:
        return None
    steps = files // batch
    return (steps, files, batch) if steps > 0 else None


def _save_freq(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = _none(raw)
    if _to_bool(ctx.get("callbacks_save_best_only"), ctx) is True:
        return [MigrationRow(key, raw, None, None, "only used when callbacks_save_best_only "
                                                   "is 0; ignored, as it was")]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return [MigrationRow(key, raw, "$.train.checkpoint.every_n_epochs", value,
                             "checkpoint period")]
    counted = _steps_per_epoch(ctx)
    if counted is None:
        return [MigrationRow(key, raw, "$.train.checkpoint.every_n_epochs", value,
                             "the original counted batches; dlsuite counts epochs: value kept "
                             "as epochs (steps per epoch unknown: TRAINPATH/inputs not "
                             "readable); adjust")]
    steps, files, batch = counted
    epochs = max(1, round(value / steps))
    return [MigrationRow(key, raw, "$.train.checkpoint.every_n_epochs", epochs,
                         f"the original counted batches; dlsuite counts epochs: {value} "
                         f"batches / {steps} steps per epoch ({files} training inputs, batch "
                         f"{batch}) = {epochs} epochs")]


def _tb_update_freq(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = _none(raw)
    return [
        MigrationRow(key, raw, "$.train.tensorboard.update_freq", value,
                     "TensorBoard update_freq in batches, as in the original"),
        MigrationRow(key, raw, "$.train.tensorboard.histogram_freq", value,
                     "the original also used it as histogram_freq (epochs)"),
    ]


def _datagen_type(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    note = ctx.target_note
    if isinstance(raw, str) and "tips" in raw:
        note = _join(note, "'tips' only changed the monitored metric name in the original; "
                           "no tips head")
    return [MigrationRow(key, raw, "$.datagen.target", {"name": ctx.target}, note)]


def _choice(ctx: _Context, kind: str, name: str, wanted: tuple[PluginParam, ...]
            ) -> tuple[dict, list[str]]:
    """``{"name": name, **params}`` keeping only the parameters plugin ``name`` accepts (the
    first matching alias); notes for dropped or assumed parameters."""
    fields = ctx.plugin_fields(kind, name)
    out: dict[str, Any] = {"name": name}
    notes: list[str] = []
    if fields is None:
        for p in wanted:
            out[p.aliases[0]] = p.value
        notes.append(f"{singular(kind)} plugin {name!r} not registered at migration time"
                     + ("; parameter names assumed" if wanted else ""))
        return out, notes
    for p in wanted:
        field = next((a for a in p.aliases if a in fields), None)
        if field is None:
            notes.append(f"{p.aliases[0]}={p.value!r} not a parameter of {name}; dropped")
        else:
            out[field] = p.value
    return out, notes


def _sampling_pdf(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    value = _none(raw)
    if value == 1:
        choice, notes = _choice(ctx, "samplers", "uniform", ())
        notes.insert(0, "pdf 1: uniform patch centres")
    else:
        choice, notes = _choice(ctx, "samplers", "foreground_pdf",
                                (PluginParam(("pdf", "foreground_weight", "weight"), value),))
        notes.insert(0, "foreground weight of the patch-centre distribution")
    notes.append("training only; the original's validation hard-coded 5000")
    return [MigrationRow(key, raw, "$.datagen.sampling", choice, _join(*notes))]


def _normalization(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    if key == "newinfer_normalization" and "normalization" in ctx.data:
        return [MigrationRow(key, raw, None, None,
                             "README-only name, never read: the code read `normalization`, "
                             "which also drove training; ignored, as it was")]
    value = _none(raw)
    if str(value).upper() not in NORMALIZATION_MAP:
        known = list(NORMALIZATION_MAP)
        close = difflib.get_close_matches(str(value).upper(), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        error = (f"unknown normalization {value!r} (the original crashed on it){hint} "
                 f"known: {', '.join(known)}")
        return [MigrationRow(key, raw, "$.datagen.normalization", {"name": raw}, error,
                             error=error)]
    name, note = NORMALIZATION_MAP[str(value).upper()]
    if key == "newinfer_normalization":
        note = _join("README name of `normalization` (never read by the original, which then "
                     "lacked `normalization` and crashed); used as normalization", note)
    choice, notes = _choice(ctx, "normalizers", name, ())
    notes.append("used for training and inference alike, as in the original")
    return [MigrationRow(key, raw, "$.datagen.normalization", choice, _join(note, *notes))]


def _newinfer_data(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    if ctx.get("TESTPATH") is not None:
        return [MigrationRow(key, raw, None, None,
                             "folder of new videos for test.py / inference_new_videos.py; "
                             "data.test comes from TESTPATH; predict new data with "
                             "`dlsuite predict RUN FOLDER`")]
    return [MigrationRow(key, raw, "$.data.test", _none(raw),
                         "no TESTPATH: used as the test set; the original read videos directly "
                         "in this folder (no inputs/) for inference_new_videos.py, dlsuite "
                         "expects a dataset layout (inputs/ + labels/)")]


def _output_ch(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    try:
        n = ctx.registry.resolve("targets", ctx.target).spec.n_classes
    except PluginError:
        n = TARGET_CLASSES.get(ctx.target)
    note = ("undocumented pass-through (output_ch of the U-Nets); the number of output "
            f"classes follows datagen.target ({ctx.target}")
    note += f": {n})" if n is not None else ")"
    if n is not None and _none(raw) != n:
        note += f"; the value {raw!r} differs and is ignored"
    return [MigrationRow(key, raw, None, None, note)]


def _padding_drop(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    if "padding" in ctx.arch_fields and not ctx.mobilenet:
        return _row_model(key, raw, _model("padding"), ctx)
    note = ("ignored by the original's MobileNet models (always 'same')" if ctx.mobilenet
            else "dlsuite convolutions always use 'same' padding")
    if _none(raw) not in ("same", None):
        note += f"; {raw!r} padding is not supported"
    return [MigrationRow(key, raw, None, None, _join(note, "dropped"))]


def _dropout_note(ctx: _Context) -> str:
    notes = {"unet": "the original's unet used the schedule d,d,2d,2d,3d; dlsuite's unet "
                     "applies model.dropout_schedule (constant by default)",
             "categorical_unet": "schedule d,d,2d,2d | 3d | 2d,2d,d,d as the original",
             "mobilenet_mobileunet": "constant in the decoder, as the original",
             "mobilenet_mobileunet_lstm": "constant in the decoder, as the original"}
    return notes.get(ctx.arch, "")


def _dropout(key: str, raw: Any, rule: Rule, ctx: _Context) -> list[MigrationRow]:
    return _row_model(key, raw, _model("dropout", note=_dropout_note(ctx)), ctx)


#: One entry per legacy key the original suite knew: keys its code read, keys present in its
#: configs or README but ignored by its code, and undocumented pass-throughs.
RULES: dict[str, Rule] = {
    # keys read by the original code
    "cnn_name": _custom(_cnn_name),
    "OUTPUTPATH": _custom(_outputpath),
    "TRAINPATH": _set("$.data.train", note="training folder (inputs/ + labels/)"),
    "VALPATH": _set("$.data.val", note="validation folder"),
    "TESTPATH": _set("$.data.test", note="test folder predicted and evaluated after training "
                                         "(the original: videos for LSTM models, 2D frames "
                                         "otherwise; dlsuite detects the layout)"),
    "PATH2VIDEOS": _set("$.data.videos_csv", note="frame <-> video relation CSV"),
    "model_n_filters": _model("n_filters"),
    "model_pools": _model("pools"),
    "model_kernel_size": _model("kernel_size", _square, "square kernel side",
                                ignored_by_mobilenets=True),
    "model_dilation_rate": _model("dilation_rate"),
    "model_mobile_alpha": _model("alpha", note="MobileNetV2 width multiplier"),
    "model_time_windows": _model("time_windows", note="frames per window T"),
    "model_lr": _set("$.optimizer.learning_rate", note="Adam learning rate (optimizer adam)"),
    "model_dropout": _custom(_dropout),
    "model_activation": _model("activation"),
    "model_last_activation": _obsolete(
        "dlsuite models output logits and the loss applies the activation (the original "
        "applied it only in the U-Net weighted_bce(_dice) heads; ignored by MobileNets)"),
    "model_padding": _custom(_padding_drop),
    "model_kernel_initializer": _model("kernel_initializer", ignored_by_mobilenets=True),
    "model_lossfunction": _custom(_lossfunction),
    "model_loss_tips": _obsolete(
        "used only by unet4tips (dead code); a tips head is model.tips with loss l1l2"),
    "model_metrics": _obsolete(
        "dlsuite logs the metrics list (jaccard, dice, accuracy by default); the original's "
        "MobileNets ignored it"),
    "model_train_decoder_only": _model("train_decoder_only", _to_bool,
                                       "freeze the MobileNetV2 encoder"),
    "model_category_weights": _custom(_category_weights),
    "model_seed_initializer": _custom(_seed),
    "train_seed_initializer": _custom(_seed),
    "train_max_epochs": _set("$.train.epochs", note="number of epochs"),
    "train_pretrained_weights": _set(
        "$.train.pretrained_weights",
        note='a full path, as the original used it ("None": none)'),
    "train_load_from_frozen": _set("$.train.load_from_frozen", _to_bool,
                                   "weights come from a frozen-encoder run: load, then unfreeze"),
    "callbacks_save_best_only": _custom(_save_best_only),
    "callbacks_save_freq": _custom(_save_freq),
    "callbacks_patience": _custom(_patience),
    "callbacks_tb_update_freq": _custom(_tb_update_freq),
    "datagen_type": _custom(_datagen_type),
    "datagen_patch_batch": _set("$.datagen.patches_per_image",
                                note="patches per image per step (batch = batch_size x this)"),
    "datagen_batch_size": _set("$.datagen.batch_size",
                               note="images per step (the original also used it as the "
                                    "validation and LSTM inference batch)"),
    "datagen_dim_size": _set("$.datagen.patch_size", _pair, "patch [height, width]"),
    "datagen_sampling_pdf": _custom(_sampling_pdf),
    "normalization": _custom(_normalization),
    "newinfer_padding": _set("$.inference.halo", _halo,
                             "halo in px (the original: [h, w] per side; the larger kept; its "
                             "tiles were a hard-coded 960 px)"),
    "newinfer_epoch_process_test": _set(
        "$.inference.weights", _weights_path,
        "weights file joined with OUTPUTPATH/checkpoints unless absolute, as the original "
        "(an original .hdf5 needs the same layer structure)"),
    "newinfer_data": _custom(_newinfer_data),
    "newinfer_output_folder_name": _set(
        "$.inference.output_folder",
        note="predictions subfolder of output_dir (the original's train.py always used "
             "test_output)"),
    # keys present in the original configs or README but ignored by the original code
    "datagen_tips_factor": _obsolete("never read by the original (the tips feature was "
                                     "removed from its release); ignored, as it was"),
    "datagen_sigma": _obsolete("never read by the original (README formula wrong: the batch "
                               "is datagen_batch_size x datagen_patch_batch); ignored, as it "
                               "was"),
    "newinfer_uneven_illumination": _obsolete(
        "never read by the original (always False); ignored, as it was (dlsuite's "
        "normalizers offer the correction as an option)"),
    "newinfer_normalization": _custom(_normalization),
    # undocumented pass-throughs
    "model_output_ch": _custom(_output_ch),
    "model_batch_norm": _model("batch_norm", _to_bool,
                               "undocumented pass-through (the original honoured it only in "
                               "categorical_unet_fc_dil)"),
}


# ---- implicit behaviour of the original (rows without a key of their own) ----------------------
def _augmentation_rows(ctx: _Context) -> list[MigrationRow]:
    registered = ctx.plugin_names("augmentations")
    entries: list[dict] = []
    notes: list[str] = []
    covered: set[str] = set()
    for group in LEGACY_AUGMENTATION:
        parts = set(group.what.split("/"))
        if parts <= covered:
            continue
        name = next((n for n in group.names if n in registered), None)
        if name is None:
            continue
        choice, extra = _choice(ctx, "augmentations", name, group.params)
        entries.append(choice)
        notes += extra
        covered |= parts
    missing = sorted({"rotation", "shift", "zoom", "horizontal flip"} - covered)
    if not registered:
        notes.insert(0, "no augmentation plugins registered at migration time: augmentation "
                        "left empty; add it by hand")
    elif missing:
        notes.insert(0, f"no registered plugin for {', '.join(missing)}")
    notes.append("legacy augmentation: shear (0.2 degrees) dropped; dlsuite uses nearest "
                 "interpolation for labels (the original: bilinear, re-binarised)")
    return [MigrationRow("(augmentation)", _LEGACY_AUGMENTATION_TEXT, "$.datagen.augmentation",
                         entries, _join(*notes))]


def _implicit_rows(ctx: _Context) -> list[MigrationRow]:
    rows = _augmentation_rows(ctx)
    if ctx.mobilenet:
        rows.append(MigrationRow(
            "(encoder weights)", "imagenet (downloaded at build time)", None, None,
            "the original always started from ImageNet weights; model.encoder_weights stays "
            "null (random init): set 'imagenet' (online) or a local weights file to match"))
    if ctx.temporal and ctx.arch == "mobilenet_mobileunet_lstm":
        rows.append(MigrationRow(
            "(ConvLSTM gates)", "hard_sigmoid (TF 2.2)", None, None,
            "dlsuite's default recurrent_activation is sigmoid (Keras 3 hard_sigmoid differs "
            "from TF 2.2's); set model.recurrent_activation to change it"))
    post_note = ("dlsuite's default postprocess chain applies (argmax, fill_holes, "
                 "remove_small_objects, label; border cells kept, as the ground truth keeps "
                 "them); edit postprocess to change it")
    if ctx.target == "contours":
        post_note += "; with the contours target consider watershed_split before label"
    rows.append(MigrationRow(
        "(post-processing)", "closing r3, fill holes, remove < 150 px, remove border objects",
        None, None, post_note))
    if "cnn_name" not in ctx.data:
        rows.insert(0, MigrationRow("cnn_name", None, "$.model.name", ctx.arch,
                                    "missing (the original required it): " + ctx.arch_note))
    return rows


# ---- public API -------------------------------------------------------------------------------
_NEW_TOP_LEVEL = frozenset(f.name for f in attrs.fields(Config))


def _looks_legacy_key(key: Any) -> bool:
    return isinstance(key, str) and (key in RULES or key.startswith(LEGACY_PREFIXES))


def is_legacy(data: Any) -> bool:
    """True when ``data`` is a flat config of the original suite: a dict without
    ``schema_version`` and without any top-level key of the new schema, holding at least one
    key of the original (``cnn_name``, ``OUTPUTPATH``, ``model_*``, ``datagen_*``, ...)."""
    if not isinstance(data, dict) or "schema_version" in data:
        return False
    if any(key in _NEW_TOP_LEVEL for key in data):
        return False
    return any(_looks_legacy_key(key) for key in data)


def _unknown_rows(key: str, raw: Any, ctx: _Context) -> list[MigrationRow]:
    if isinstance(key, str) and key.startswith("model_"):
        field = key[len("model_"):]
        if field in ctx.arch_fields and field != "name":
            convert = _to_bool if field in _BOOL_FIELDS else _same
            return _row_model(key, raw, _model(field, convert,
                                               "undocumented model_<x> pass-through"), ctx)
        return [MigrationRow(key, raw, None, None,
                             f"unknown key, ignored (the original forwarded it to the U-Net "
                             f"builders as {field!r}; not a parameter of {ctx.arch})")]
    return [MigrationRow(str(key), raw, None, None, "unknown key, ignored")]


_BOOL_FIELDS = frozenset({"tips", "batch_norm", "train_decoder_only"})


def _path_note(row: MigrationRow) -> MigrationRow:
    value = row.new_value
    if row.new_key in PATH_KEYS and isinstance(value, str) and not os.path.isabs(
            os.path.expanduser(value)):
        return attrs.evolve(row, note=_join(row.note, _RELATIVE_NOTE))
    return row


def _set_path(tree: dict, path: str, value: Any) -> None:
    """Write ``value`` at JSON path ``$.a.b`` (dicts merged, intermediate dicts created)."""
    parts = path.removeprefix("$.").split(".")
    value = copy.deepcopy(value)
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node.get(last), dict) and isinstance(value, dict):
        node[last].update(value)
    else:
        node[last] = value


def migrate_file(path: str | os.PathLike, registry: Any = None
                 ) -> tuple[dict, list[MigrationRow]]:
    """Read the JSON file at ``path`` and :func:`migrate` it. Raises DlsuiteInputError naming
    the file when it is missing, not JSON, or not a legacy flat config."""
    from .loader import load_config_data  # local: loader imports this module lazily too

    data = load_config_data(path)
    if not is_legacy(data):
        raise DlsuiteInputError(
            f"{path}: not a legacy flat config of the original suite (it has schema_version, "
            "a key of the new schema, or no key of the original); nothing to migrate")
    return migrate(data, registry)


def migrate(data: dict, registry: Any = None) -> tuple[dict, list[MigrationRow]]:
    """Migrate a legacy flat config into the new nested form.

    Returns ``(new_config_dict, rows)``: the dict carries ``schema_version`` and validates
    with :func:`dlsuite.config.parse_config` when the plugins it names are registered; the
    rows hold one entry per decision, in the order of the legacy keys, then the original's
    implicit behaviour (augmentation, encoder weights, ...). Every key gets at least one row;
    keys without a rule are reported as ``unknown key, ignored``. Values of the wrong type
    are carried over unchanged, so validation reports them at their new JSON path. Plugin
    parameters are checked against ``registry`` (default: the installed plugins). The input
    is not modified and shares no mutable value with the result.
    Raises DlsuiteInputError when ``data`` is not a dict.
    """
    if not isinstance(data, dict):
        raise DlsuiteInputError(f"a legacy config must be a JSON object, got "
                                f"{type(data).__name__}")
    if registry is None:
        from ..registry import get_registry
        registry = get_registry()
    ctx = _build_context(data, registry)
    rows: list[MigrationRow] = []
    for key, raw in data.items():
        rule = RULES.get(key)
        rows += _KINDS[rule.kind](key, raw, rule, ctx) if rule else _unknown_rows(key, raw, ctx)
    rows += _implicit_rows(ctx)
    rows = [_path_note(row) for row in rows]

    tree: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "model": {"name": ctx.arch}}
    if ctx.mobilenet or "model_lossfunction" in data:
        tree["loss"] = {"name": ctx.loss.loss}
    for row in rows:
        if row.new_key is not None:
            _set_path(tree, row.new_key, row.new_value)
    rows = _fit_static_halo(tree, rows, ctx)
    order = [f.name for f in attrs.fields(Config)]
    return {k: tree[k] for k in order if k in tree}, rows


def _fit_static_halo(tree: dict, rows: list[MigrationRow], ctx: _Context) -> list[MigrationRow]:
    """The original predicted 960 px tiles whatever the model; dlsuite's static-size models
    (ConvLSTM) predict tiles of ``datagen.patch_size``. A ``newinfer_padding`` leaving no core
    in such a tile (the original examples: 115 px in 256 px tiles) becomes the largest halo
    that does, with a note; anything invalid is left to validation."""
    halo = tree.get("inference", {}).get("halo")
    if not isinstance(halo, int) or isinstance(halo, bool) or halo < 0:
        return rows
    try:
        spec = ctx.registry.resolve("architectures", ctx.arch).spec
        if spec.supports_dynamic_size or spec.size_multiple is None:
            return rows
        params = spec.params(**{k: v for k, v in tree["model"].items() if k != "name"})
        m = int(spec.size_multiple(params))
        patch = tree.get("datagen", {}).get("patch_size", Config().datagen.patch_size)
        size = min(int(v) for v in patch)
    except Exception:  # noqa: BLE001 - unregistered model or invalid values: validation says
        return rows
    if m < 1 or (size - 2 * (-(-halo // m) * m)) // m * m >= 1:
        return rows
    fit = max((size - m) // 2 // m * m, 0)
    tree["inference"]["halo"] = fit
    note = (f"{ctx.arch} has a static input size: dlsuite predicts tiles of "
            f"datagen.patch_size ({size} px; the original: 960 px), where a {halo} px halo "
            f"leaves no core; lowered to {fit} px, the largest that does")
    return [attrs.evolve(r, new_value=fit, note=_join(r.note, note))
            if r.new_key == "$.inference.halo" else r for r in rows]


def name_legacy_keys(problems: list[tuple[str, str]], rows: list[MigrationRow]
                     ) -> list[tuple[str, str]]:
    """Validation problems of a migrated config, each message followed by the legacy key its
    value came from (``$.optimizer.learning_rate: must be > 0, got -1 (legacy key
    model_lr)``): the row whose ``new_key`` is the problem's path or its closest parent (the
    last row writing it, as in the migrated config). A row's ``error`` replaces the message at
    its own path, and is added if validation did not report that path."""
    by_key: dict[str, MigrationRow] = {}
    for row in rows:
        if row.new_key is not None:
            by_key[row.new_key] = row
    keys = sorted(by_key, key=len, reverse=True)

    def row_for(path: str) -> Optional[MigrationRow]:
        return next((by_key[k] for k in keys if path == k or path.startswith((k + ".", k + "["))),
                    None)

    out: list[tuple[str, str]] = []
    for path, message in problems:
        row = row_for(path)
        if row is None:
            out.append((path, message))
            continue
        if row.error and row.new_key == path:
            message = row.error
        out.append((path, f"{message} (legacy key {row.old_key})"))
    reported = {path for path, _ in problems}
    out += [(row.new_key, f"{row.error} (legacy key {row.old_key})") for row in rows
            if row.error and row.new_key is not None and row.new_key not in reported]
    return out


# ---- presentation and output ------------------------------------------------------------------
def _show(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) and not value == "" else json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _value_cell(row: MigrationRow) -> str:
    old = _show(row.old_value)
    same = type(row.new_value) is type(row.old_value) and row.new_value == row.old_value
    if row.new_key is None or same:
        return old
    return f"{old} -> {_show(row.new_value)}"


def _cells(row: MigrationRow) -> tuple[str, str, str, str]:
    """old key, value, new key (``obsolete`` for a dropped key, ``-`` for a note about the
    original's implicit behaviour), note."""
    new_key = row.new_key or ("-" if row.old_key.startswith("(") else "obsolete")
    return row.old_key, _value_cell(row), new_key, row.note


def format_migration(rows: list[MigrationRow]):
    """A rich Table with columns old key, value (``old -> new`` when converted), new key
    (``obsolete`` when dropped) and note, one line per row."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="legacy config migration", show_lines=False)
    table.add_column("old key", no_wrap=True)
    table.add_column("value", overflow="fold", max_width=28)
    table.add_column("new key", overflow="fold")
    table.add_column("note", overflow="fold", ratio=1)
    for row in rows:
        table.add_row(*(escape(cell) for cell in _cells(row)))
    return table


def migration_to_text(rows: list[MigrationRow]) -> str:
    """The migration as plain text: a header and one tab-free aligned line per row
    (``old key | value | new key | note``)."""
    cells = [("old key", "value", "new key", "note")] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(3)]
    lines = [" | ".join([c[0].ljust(widths[0]), c[1].ljust(widths[1]), c[2].ljust(widths[2]),
                         c[3]]).rstrip() for c in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths) + "-+-" + "-" * 4)
    return "\n".join(lines) + "\n"


def write_migrated(data_new: dict, path: str | os.PathLike) -> Path:
    """Write the migrated config as indented JSON at ``path`` atomically (temp file in the
    same folder, then ``os.replace``); returns the path. Raises DlsuiteInputError naming the
    file when it cannot be written."""
    try:
        return write_json_atomic(path, data_new)
    except OSError as exc:
        raise DlsuiteInputError(f"{path}: cannot write migrated config: {exc}") from None
