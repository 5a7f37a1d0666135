"""Plugin-facing spec classes and the ``hookimpl`` marker.

This is the whole surface a plugin (built-in or third party) needs: each hook returns a
list of these small frozen specs. A spec names a thing (``name``), declares its parameter
schema (``params``, an attrs class whose fields carry defaults, types and ``help``
metadata), and points at its factory lazily with a ``"module:function"`` string, so listing
plugins and validating configs never imports the factory's module (nor TensorFlow).

Factory contracts, per kind (the factory receives the structured ``params`` instance first):

* ``ArchitectureSpec.factory(params, *, n_classes, input_shape=None) -> keras.Model``
  (``n_classes``: the number of output channels, the sum of the target's head channels).
  ``input_shape`` excludes the batch axis: ``(H, W, 1)`` for 2D, ``(T, H, W, 1)`` for temporal
  models (``None`` entries allowed where the model supports dynamic sizes). The model outputs
  logits ``(B, H, W, n_classes)``; temporal models output the prediction for the *last* frame
  of the window, also ``(B, H, W, n_classes)``. A pretrainable encoder is a sub-model named
  exactly ``"encoder"``, at any depth (see :class:`ArchitectureSpec`).
* ``LossSpec.factory(params, *, n_classes) -> callable(y_true, y_pred) -> scalar``.
  ``y_true`` is ``(B, H, W, C)`` float32 as produced by the target plugin (channel 0 the
  class index; further channels such as pixel weights as the target documents). For a target
  with several heads a plain loss sees only the class head's logits (``n_classes`` = its
  channels); a loss whose spec sets ``multi_head`` is called as
  ``factory(params, *, n_classes, heads, target_channels)`` with every head (``n_classes``
  = all channels; ``target_channels`` the target's channel names, to find each regression
  head's ``y_true`` channel).
* ``MetricSpec.factory(params, *, n_classes) -> keras.metrics.Metric`` with the same ``y_true``.
* ``NormalizerSpec.factory(params) -> callable(array) -> float32 array`` (same shape; an
  array ``(T, H, W)`` is a video).
* ``SamplerSpec.factory(params) -> callable(labels, patch_size, rng) -> (top, left)``.
* ``TargetSpec.factory(params) -> callable(labels) -> float32 (H, W, C)``. A callable with
  the attribute ``takes_crop = True`` is also called as ``target(labels, crop=(h, w))`` by the
  training pipeline and then returns only the central ``(h, w)`` it keeps (the rest of
  ``labels`` is context), saving the work outside it.
* ``AugmentationSpec.factory(params) -> callable(image, target, rng) -> (image, target)``.
* ``PostprocessorSpec.factory(params) -> callable(array) -> array`` (the chain starts with
  the activated outputs ``(H, W, C)``: the class probabilities, then the other heads' channels
  in the target's head order, e.g. ``[P(background), P(cell), distance]``). The spec's
  ``accepts``/``gives``/``needs`` declare the kinds of arrays (:data:`CHAIN_KINDS`) the step
  takes and returns, checked against the model's outputs when a config is validated.
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
    "CHAIN_KINDS",
    "Needs",
    "HeadSpec",
    "Tunable",
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
    input height and width must be divisible by; ``receptive_field(params)`` is ``2 r + 1``
    pixels, ``r`` the farthest input pixel that can change an output pixel along either axis,
    over every position modulo ``size_multiple`` (the contract measures it and fails when the
    declared value is smaller); ``inference.halo = "auto"`` uses ``r`` rounded up to the size
    multiple, and an architecture that declares none is measured. ``supports_dynamic_size`` is False for models
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
    (e.g. ``("class", "weight")`` for weighted losses). ``multi_head``: the loss trains every
    head of a multi-head target and its factory takes ``heads`` keywords; otherwise it sees
    only the class head. ``heads``/``target_channels`` keywords: see the module docstring."""

    target_channels: tuple[str, ...] = ("class",)
    multi_head: bool = False


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


_ACTIVATIONS = ("softmax", "sigmoid", "linear")
_ROLES = ("class", "regression")


@attrs.frozen
class HeadSpec:
    """One output head of the network, declared by a target plugin.

    ``name`` names the head (``"class"``, ``"distance"``); ``channels`` its output channels;
    ``activation`` what inference applies to its logits (``"softmax"``, ``"sigmoid"``,
    ``"linear"``; a 1-channel ``softmax`` head gets a sigmoid); ``role`` how it is trained:
    ``"class"`` against the class index (``y_true`` channel 0; exactly one head has this
    role and its channels equal the target's ``n_classes``), ``"regression"`` against the
    target channel of the same name as the head.
    """

    name: str
    channels: int
    activation: str = attrs.field(default="softmax",
                                  validator=attrs.validators.in_(_ACTIVATIONS))
    role: str = attrs.field(default="class", validator=attrs.validators.in_(_ROLES))


@attrs.frozen
class TargetSpec(PluginSpec):
    """Turns an instance-label image into the training target. ``n_classes`` is the number of
    classes of the class head; ``channels`` names the target's channels; ``heads`` the
    network's output heads in channel order (empty: one softmax head of ``n_classes``
    channels, see :func:`dlsuite.heads.heads_of`). A target adds a head without touching any
    architecture: the model is built with the sum of the head channels."""

    n_classes: int = 2
    channels: tuple[str, ...] = ("class",)
    heads: tuple[HeadSpec, ...] = ()


@attrs.frozen
class AugmentationSpec(PluginSpec):
    """A random transform applied identically to image, target and weights."""


@attrs.frozen
class Tunable:
    """A parameter of a post-processor that ``dlsuite run`` may tune on the validation set.

    ``name`` is a field of the step's params class. Candidates: ``values`` when given, else
    ``steps`` evenly spaced values from ``low`` to ``high`` (both included; rounded and
    de-duplicated when ``integer``).
    """

    name: str
    low: float = 0.0
    high: float = 1.0
    steps: int = 5
    integer: bool = False
    values: tuple = ()

    def candidates(self) -> tuple:
        """The values the search tries, in increasing order."""
        if self.values:
            return tuple(self.values)
        n = max(int(self.steps), 1)
        raw = [self.low + (self.high - self.low) * i / max(n - 1, 1) for i in range(n)]
        if self.integer:
            return tuple(sorted({int(round(v)) for v in raw}))
        return tuple(round(v, 10) for v in raw)


#: The kinds of arrays a post-processing chain passes from step to step:
#: ``probabilities`` (float ``(H, W, C)``, the activated model outputs), ``class_map`` (uint8
#: ``(H, W)`` class ids, e.g. 1 = cell, 2 = contour), ``mask`` (0/1 or bool ``(H, W)``) and
#: ``labels`` (int32/int64 ``(H, W)`` instance ids). A class map serves where a mask is
#: accepted (every non-zero class is foreground) and a mask where a class map is (the class
#: map of classes 0 and 1).
CHAIN_KINDS = ("probabilities", "class_map", "mask", "labels")


@attrs.frozen
class Needs:
    """What a post-processing step needs of its input beyond its kind, checked against the
    model's outputs (the target's heads) when a config is validated.

    ``classes``: class ids that must exist: values of a class map (e.g. the contour class of
    ``watershed_split``) or class channels of probabilities (a one-channel sigmoid output
    counts as classes 0 and 1); ``channels``: channel indices of multi-channel probabilities
    (negative from the end) that must exist (a one-channel output is exempt: a step reads
    its only channel); ``regression``: the model must have a regression head (e.g. the
    predicted distance of the ``distance`` target)."""

    classes: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    regression: bool = False


def _kinds(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    kinds = (value,) if isinstance(value, str) else tuple(value)
    bad = [k for k in kinds if k not in CHAIN_KINDS]
    if bad:
        raise ValueError(f"unknown chain kind(s) {bad}; kinds are {', '.join(CHAIN_KINDS)}")
    return kinds


def _gives(instance, attribute, value) -> None:
    if value is not None and value != "same" and value not in CHAIN_KINDS:
        raise ValueError(f"gives={value!r}: expected one of {', '.join(CHAIN_KINDS)} or 'same'")


@attrs.frozen
class PostprocessorSpec(PluginSpec):
    """One step of the post-processing chain (probabilities -> mask -> instances).
    ``tunable`` lists the parameters a validation search may tune (:class:`Tunable`).

    Typed chains: ``accepts`` the kinds of input the step takes (:data:`CHAIN_KINDS`; a
    string or a tuple), ``gives`` the kind it returns (a kind, or ``"same"``: the kind it was
    given), ``needs`` a :class:`Needs` (or a callable ``needs(params) -> Needs``) of what
    its input must hold. ``dlsuite config validate`` follows the chain from the model's
    outputs and refuses a step given a kind it does not accept or an input without what it
    needs. ``None`` (the default) declares nothing: any input is accepted and the kind after
    the step is unknown, so the steps after it are checked only from the next step that
    declares ``gives``."""

    tunable: tuple[Tunable, ...] = ()
    accepts: tuple[str, ...] | None = attrs.field(default=None, converter=_kinds)
    gives: str | None = attrs.field(default=None, validator=_gives)
    needs: Needs | Callable[[Any], Needs] | None = None

    def needs_for(self, params: Any) -> Needs:
        """The :class:`Needs` of this step with ``params`` (an empty Needs when none are
        declared)."""
        if self.needs is None:
            return Needs()
        return self.needs(params) if callable(self.needs) else self.needs
