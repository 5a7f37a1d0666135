"""The legacy rows a plain rule cannot give: keys whose migration depends on other keys
(the ``custom`` rules of :data:`dlsuite.config.legacy_rules.RULES`) and the original's
implicit behaviour (rows without a key of their own).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Optional

from ..errors import PluginError
from ..registry import singular
from .legacy_context import _Context, _join, _none
from .legacy_rule_kinds import MigrationRow, Rule, _model, _row_model, _to_bool
from .legacy_tables import (_LEGACY_AUGMENTATION_TEXT, LEGACY_AUGMENTATION, NORMALIZATION_MAP,
                            TARGET_CLASSES, PluginParam)
from .schema import Config


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
