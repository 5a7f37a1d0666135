"""Plugin-facing spec classes and the ``hookimpl`` marker.

This is the whole surface a plugin (built-in or third party) needs: each hook returns a
list of these small frozen specs. A spec names a thing (``name``), declares its parameter
schema (``params``, an attrs class whose fields carry defaults, types and ``help``
metadata), and points at its factory lazily with a ``"module:function"`` string, so listing
plugins and validating configs never imports the factory's module (nor TensorFlow).

Factory contracts, per kind (the factory receives the structured ``params`` instance first):

* ``ArchitectureSpec.factory(params, *, n_classes, input_shape=None) -> keras.Model``.
  ``input_shape`` excludes the batch axis: ``(H, W, 1)`` for 2D, ``(T, H, W, 1)`` for temporal
  models (``None`` entries allowed where the model supports dynamic sizes). The model outputs
  logits ``(B, H, W, n_classes)``; temporal models output the prediction for the *last* frame
  of the window, also ``(B, H, W, n_classes)``. A pretrainable encoder is a sub-model named
  exactly ``"encoder"``, at any depth (see :class:`ArchitectureSpec`).
* ``LossSpec.factory(params, *, n_classes) -> callable(y_true, y_pred) -> scalar``.
  ``y_true`` is ``(B, H, W, C)`` float32 as produced by the target plugin (channel 0 the
  class index; further channels such as pixel weights as the target documents).
* ``MetricSpec.factory(params, *, n_classes) -> keras.metrics.Metric`` with the same ``y_true``.
* ``NormalizerSpec.factory(params) -> callable(array) -> float32 array`` (same shape; an
  array ``(T, H, W)`` is a video).
* ``SamplerSpec.factory(params) -> callable(labels, patch_size, rng) -> (top, left)``.
* ``TargetSpec.factory(params) -> callable(labels) -> float32 (H, W, C)``.
* ``AugmentationSpec.factory(params) -> callable(image, target, rng) -> (image, target)``.
* ``PostprocessorSpec.factory(params) -> callable(array) -> array`` (the chain starts with
  class probabilities ``(H, W, C)``).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import attrs
import pluggy

__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "param",
    "PluginSpec",
    "ArchitectureSpec",
    "LossSpec",
    "MetricSpec",
    "NormalizerSpec",
    "SamplerSpec",
    "TargetSpec",
    "AugmentationSpec",
    "PostprocessorSpec",
    "NoParams",
    "load_object",
]

PROJECT = "dlsuite"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)


def param(default: Any = attrs.NOTHING, help: str = "", **kwargs: Any) -> Any:
    """Declare a plugin parameter: an attrs field with a default and a ``help`` text.

    The help text is shown by ``dlsuite plugins`` and in the JSON Schema of the config.
    Mutable defaults (lists, dicts) are copied per instance.
    """
    metadata = {"help": help}
    if isinstance(default, (list, dict, set)):
        return attrs.field(factory=lambda d=default: type(d)(d), metadata=metadata, **kwargs)
    return attrs.field(default=default, metadata=metadata, **kwargs)


@attrs.frozen
class NoParams:
    """Parameter class for plugins that take no parameters."""


def load_object(ref: str | Callable) -> Callable:
    """Import ``"package.module:attr"`` and return the attribute; callables pass through.

    Raises ImportError or AttributeError with the reference in the message.
    """
    if callable(ref):
        return ref
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise ImportError(f"factory reference {ref!r} is not of the form 'module:function'")
    module = importlib.import_module(module_name)
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as exc:
        raise AttributeError(f"factory {ref!r}: module {module_name!r} has no {attr!r}") from exc
    return obj


@attrs.frozen
class PluginSpec:
    """What every contribution declares.

    ``name`` is what a config writes; ``params`` the attrs class of its parameters;
    ``factory`` a ``"module:function"`` string (imported only when used) or a callable.
    """

    name: str
    factory: str | Callable
    params: type = NoParams
    description: str = ""

    def load(self) -> Callable:
        """Import and return the factory (raises ImportError naming the reference)."""
        return load_object(self.factory)


@attrs.frozen
class ArchitectureSpec(PluginSpec):
    """An encoder-decoder. ``temporal`` models take ``(B, T, H, W, 1)`` windows and their
    params class has a ``time_windows`` field. ``size_multiple(params)`` gives the number the
    input height and width must be divisible by; ``receptive_field(params)`` an estimate in
    pixels used by ``inference.halo = "auto"``. ``supports_dynamic_size`` is False for models
    (ConvLSTM) that must be built at a fixed spatial size.

    Encoder convention: a model with a pretrainable encoder nests it as a sub-model named
    exactly ``"encoder"``, found at any depth (inside nested models and wrappers such as
    ``TimeDistributed``). The core finds and (un)freezes it by that name only
    (:func:`dlsuite.keras_helpers.set_encoder_trainable`), e.g. for ``train.load_from_frozen``;
    a model without such a sub-model has nothing to unfreeze, and no other layer may carry
    that name."""

    temporal: bool = False
    size_multiple: Callable[[Any], int] | None = None
    receptive_field: Callable[[Any], int] | None = None
    supports_dynamic_size: bool = True


@attrs.frozen
class LossSpec(PluginSpec):
    """A training loss. ``target_channels`` lists the ``y_true`` channels it needs
    (e.g. ``("class", "weight")`` for weighted losses)."""

    target_channels: tuple[str, ...] = ("class",)


@attrs.frozen
class MetricSpec(PluginSpec):
    """A Keras metric; ``mode`` says whether higher (``max``) or lower (``min``) is better."""

    mode: str = "max"


@attrs.frozen
class NormalizerSpec(PluginSpec):
    """Intensity normalization applied before augmentation, identically at inference."""


@attrs.frozen
class SamplerSpec(PluginSpec):
    """Chooses where a training patch is cut."""


@attrs.frozen
class TargetSpec(PluginSpec):
    """Turns an instance-label image into the training target. ``n_classes`` is the number of
    classes the network must output; ``channels`` names the target's channels."""

    n_classes: int = 2
    channels: tuple[str, ...] = ("class",)


@attrs.frozen
class AugmentationSpec(PluginSpec):
    """A random transform applied identically to image, target and weights."""


@attrs.frozen
class PostprocessorSpec(PluginSpec):
    """One step of the post-processing chain (probabilities -> mask -> instances)."""
