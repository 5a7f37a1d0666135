"""The context of a legacy migration: the decisions that depend on several keys.

Architecture, loss, target, seed and epochs are computed once from the whole legacy dict
(:func:`_build_context`) before the rules of :mod:`dlsuite.config.legacy_rules` run.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs

from ..errors import PluginError
from .legacy_tables import (_LOSS_FALLBACK, _MOBILENET_LOSS, ARCH_NOTES, ARCH_SUBSTRINGS,
                            DEFAULT_ARCH, LOSS_MAP, MOBILENETS, STATIC_ARCH_FIELDS,
                            STATIC_TEMPORAL, TEMPORAL_COUNTERPART, LossMapping)

_SENTINEL_NONE = "None"


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


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
