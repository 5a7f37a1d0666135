"""The network's output heads, as the target plugin declares them (no TensorFlow).

A target's :class:`~dlsuite.specs.TargetSpec` lists its heads (:class:`~dlsuite.specs.HeadSpec`:
name, channels, activation, role) in channel order; a target that lists none has one softmax
``class`` head of ``n_classes`` channels, which is exactly the behaviour of every model before
heads existed. The model outputs the logits of all heads concatenated on the last axis
(:func:`output_channels` of them); :func:`activate` turns them into what the post-processing
chain starts with: per head softmax / sigmoid / identity, in the same channel order.

Where things are called:

- :func:`dlsuite.models.model_geometry` reports ``n_classes`` = :func:`output_channels` and
  ``heads``; the architecture is built with that many output channels;
- inference calls :func:`activate` on the logits of each predicted batch (with ``heads=None``
  it is today's softmax over all channels, sigmoid for one channel);
- training builds the loss and metrics through :mod:`dlsuite.head_losses`;
- :func:`heads_problems` is a preflight check (a multi-head target needs a multi-head loss).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import DlsuiteInputError
from .specs import HeadSpec

__all__ = ["heads_of", "output_channels", "head_slices", "class_head", "activate",
           "softmax", "sigmoid", "heads_problems", "config_heads"]


def heads_of(target_spec) -> tuple[HeadSpec, ...]:
    """The heads of a :class:`~dlsuite.specs.TargetSpec` (its ``heads``, or one softmax class
    head of ``n_classes`` channels). Raises DlsuiteInputError naming the target when the
    declaration is inconsistent: not exactly one ``class`` head, its channels differ from
    ``n_classes``, a regression head without a target channel of its name, duplicate names or
    a head with fewer than one channel."""
    heads = tuple(getattr(target_spec, "heads", ()) or ())
    name = getattr(target_spec, "name", "?")
    if not heads:
        return (HeadSpec("class", int(target_spec.n_classes), "softmax", "class"),)
    problems = []
    classes = [h for h in heads if h.role == "class"]
    if len(classes) != 1:
        problems.append(f"{len(classes)} heads with role 'class' (need exactly one)")
    elif classes[0].channels != target_spec.n_classes:
        problems.append(f"class head {classes[0].name!r} has {classes[0].channels} channels "
                        f"but n_classes is {target_spec.n_classes}")
    names = [h.name for h in heads]
    if len(set(names)) != len(names):
        problems.append(f"duplicate head names {names}")
    for h in heads:
        if h.channels < 1:
            problems.append(f"head {h.name!r} has {h.channels} channels")
        if h.role == "regression" and h.name not in target_spec.channels:
            problems.append(f"regression head {h.name!r} has no target channel of that name "
                            f"(channels {list(target_spec.channels)})")
    if problems:
        raise DlsuiteInputError(f"target {name!r}: " + "; ".join(problems))
    return heads


def output_channels(heads: Sequence[HeadSpec]) -> int:
    """Number of model output channels: the sum of the head channels."""
    return int(sum(h.channels for h in heads))


def head_slices(heads: Sequence[HeadSpec]) -> dict[str, slice]:
    """Head name -> slice of the output channels it occupies (heads in order)."""
    out, start = {}, 0
    for h in heads:
        out[h.name] = slice(start, start + h.channels)
        start += h.channels
    return out


def class_head(heads: Sequence[HeadSpec]) -> tuple[HeadSpec, slice]:
    """The ``class`` head and its channel slice."""
    slices = head_slices(heads)
    for h in heads:
        if h.role == "class":
            return h, slices[h.name]
    raise DlsuiteInputError("no head with role 'class'")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """float32 logistic function."""
    logits = np.asarray(logits, dtype=np.float32)
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """float32 softmax over the last axis (sigmoid for one channel). Loops over the (few)
    channels: numpy reductions over a short last axis are several times slower."""
    logits = np.asarray(logits, dtype=np.float32)
    channels = logits.shape[-1]
    if channels == 1:
        return sigmoid(logits)
    top = logits[..., 0].copy()
    for c in range(1, channels):
        np.maximum(top, logits[..., c], out=top)
    out = logits - top[..., None]
    np.exp(out, out=out)
    total = out[..., 0].copy()
    for c in range(1, channels):
        total += out[..., c]
    out /= total[..., None]
    return out


_ACTIVATE = {"softmax": softmax, "sigmoid": sigmoid,
             "linear": lambda x: np.asarray(x, dtype=np.float32)}


def activate(logits: np.ndarray, heads: Sequence[HeadSpec] | None = None) -> np.ndarray:
    """Activated outputs float32 ``(..., C)`` of model logits ``(..., C)``: each head's
    channels through its activation, in channel order. ``heads=None`` (or one softmax head):
    softmax over all channels, sigmoid for a single channel. Raises DlsuiteInputError when
    the channel count differs from the heads'."""
    if heads is None or (len(heads) == 1 and heads[0].activation == "softmax"):
        return softmax(logits)
    logits = np.asarray(logits, dtype=np.float32)
    if logits.shape[-1] != output_channels(heads):
        raise DlsuiteInputError(
            f"model outputs {logits.shape[-1]} channels but the target's heads "
            f"{[h.name for h in heads]} have {output_channels(heads)}")
    parts = [_ACTIVATE[h.activation](logits[..., s])
             for h, s in zip(heads, head_slices(heads).values())]
    return np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]


def config_heads(config, registry) -> tuple[HeadSpec, ...]:
    """The heads of the config's target plugin (``datagen.target``)."""
    return heads_of(registry.resolve("targets", config.datagen.target.name).spec)


def heads_problems(config, registry) -> list[tuple[str, str]]:
    """Preflight check: the target's heads are consistent, and a target with several heads
    is trained by a ``multi_head`` loss (a plain loss would leave the other heads untrained).
    Returns ``(json_path, message)`` problems; unknown plugins are left to the plugin check."""
    try:
        target = registry.resolve("targets", config.datagen.target.name).spec
        loss = registry.resolve("losses", config.loss.name).spec
    except DlsuiteInputError:
        return []
    try:
        heads = heads_of(target)
    except DlsuiteInputError as exc:
        return [("$.datagen.target", str(exc))]
    if len(heads) > 1 and not getattr(loss, "multi_head", False):
        return [("$.loss", f"loss {loss.name!r} trains only the class head, but target "
                           f"{target.name!r} has heads {[h.name for h in heads]}: choose a "
                           "multi-head loss (e.g. 'class_distance')")]
    return []
