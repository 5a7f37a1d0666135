"""Typed post-processing chains: a config's chain checked against the model's outputs.

Each post-processor's spec declares the kinds of arrays it ``accepts`` and ``gives``
(:data:`dlsuite.specs.CHAIN_KINDS`: probabilities, class map, mask, labels) and what it
``needs`` of its input (class ids, probability channels, a regression head;
:class:`dlsuite.specs.Needs`). :func:`check_chain` follows a chain from what the model gives
(:func:`model_output`: the probabilities of the target's heads, :mod:`dlsuite.heads`) step
by step and returns the first step that cannot work, at its JSON path
(``$.postprocess[1]``), naming the step and the kind it got. :func:`chain_problems` is the
config rule (run by ``dlsuite config validate``, before any run and before ``dlsuite
predict`` writes anything).

Rules of the walk:

* a class map serves where a mask is accepted (every non-zero class is foreground), and a
  mask where a class map is (the class map of classes 0 and 1); what distinguishes them is
  the classes they hold, checked by ``needs.classes``;
* ``gives="same"`` passes the kind and classes on; ``class_map`` from probabilities holds
  one class per channel (a one-channel sigmoid output: 0 and 1), ``mask`` classes 0 and 1;
* a step declaring nothing (a third-party step written before typed chains) accepts
  anything; the kind after it is unknown, so the steps after it are checked only from the
  next step declaring ``gives`` on (:func:`undeclared_steps` names such steps for a note);
* any end is fine: the chain is completed as before (probabilities -> argmax, mask ->
  connected components).

No TensorFlow, no numpy.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import attrs

from .errors import DlsuiteInputError
from .heads import heads_of
from .specs import HeadSpec

__all__ = ["Flow", "model_output", "check_chain", "chain_problems", "undeclared_steps"]

Problem = tuple[str, str]

log = logging.getLogger("dlsuite")
_NOTED: set[str] = set()  # undeclared steps already noted in this process

_ARTICLE = {"probabilities": "", "class_map": "a ", "mask": "a ", "labels": ""}
_SERVES_AS = {"class_map": ("mask",), "mask": ("class_map",)}


@attrs.frozen
class Flow:
    """What flows into a step: its ``kind`` (None: unknown, after an undeclared step), the
    class ids it holds (``classes``; None: unknown), the probability ``channels`` (0 when not
    probabilities), whether the model has a ``regression`` head, and ``source``: what gave
    it (for messages)."""

    kind: str | None
    classes: tuple[int, ...] | None = None
    channels: int = 0
    regression: bool = False
    source: str = "the model"

    def describe(self) -> str:
        """``probabilities of classes 0, 1 (3 channels)``, ``a class map of classes 0, 1``..."""
        if self.kind is None:
            return "an unknown kind"
        text = f"{_ARTICLE[self.kind]}{self.kind.replace('_', ' ')}"
        if self.kind in ("probabilities", "class_map") and self.classes is not None:
            text += f" of classes {', '.join(map(str, self.classes))}"
        if self.kind == "probabilities" and self.channels:
            text += f" ({self.channels} channel{'s' if self.channels != 1 else ''})"
        return text


def model_output(heads: Sequence[HeadSpec]) -> Flow:
    """The flow the chain starts with: the probabilities of the model's ``heads`` (class ids
    of the class head; a one-channel head counts as classes 0 and 1), all channels, and
    whether a regression head is among them."""
    channels = int(sum(h.channels for h in heads))
    cls = next((h for h in heads if h.role == "class"), None)
    n = cls.channels if cls is not None else channels
    return Flow("probabilities", tuple(range(max(n, 2))), channels,
                any(h.role == "regression" for h in heads))


def _accepted(kind: str, accepts: tuple[str, ...]) -> bool:
    return kind in accepts or any(k in accepts for k in _SERVES_AS.get(kind, ()))


def _after(flow: Flow, gives: str | None, source: str) -> Flow:
    """The flow a step declaring ``gives`` returns for input ``flow``."""
    if gives is None:
        return Flow(None, None, 0, flow.regression, source)
    if gives == "same" or gives == flow.kind:
        return attrs.evolve(flow, source=source)
    if gives == "mask":
        return Flow("mask", (0, 1), 0, flow.regression, source)
    if gives == "class_map" and flow.kind == "probabilities":
        classes = tuple(range(max(flow.channels, 2)))  # argmax over every channel
        return Flow("class_map", classes, 0, flow.regression, source)
    if gives == "class_map" and flow.kind == "mask":
        return Flow("class_map", (0, 1), 0, flow.regression, source)
    return Flow(gives, None, 0, flow.regression, source)


def _needs_problem(name: str, flow: Flow, needs, target: str) -> str | None:
    """Why ``flow`` lacks what step ``name`` ``needs`` (None when it has it or when what it
    holds is unknown)."""
    where = f" (target {target!r})" if target else ""
    if needs.regression and flow.kind == "probabilities" and not flow.regression:
        return (f"postprocessor {name!r} needs a regression head (e.g. target 'distance'), "
                f"got {flow.describe()} from {flow.source}{where}, which has none")
    if needs.classes and flow.kind in ("probabilities", "class_map", "mask") \
            and flow.classes is not None:
        missing = [c for c in needs.classes if c not in flow.classes]
        if missing:
            return (f"postprocessor {name!r} needs class{'es' if len(missing) > 1 else ''} "
                    f"{', '.join(map(str, missing))}, got {flow.describe()} from "
                    f"{flow.source}{where}")
    if needs.channels and flow.kind == "probabilities" and flow.channels > 1:
        bad = [c for c in needs.channels if not -flow.channels <= c < flow.channels]
        if bad:
            return (f"postprocessor {name!r} needs channel{'s' if len(bad) > 1 else ''} "
                    f"{', '.join(map(str, bad))}, got {flow.describe()} from "
                    f"{flow.source}{where}")
    return None


def check_chain(choices: Sequence[Any], start: Flow, registry, *, at: str = "$.postprocess",
                target: str = "") -> list[Problem]:
    """The first problem of the chain ``choices`` (config items with ``name`` and
    ``params``; None params mean the defaults) run on ``start``, as ``[(json_path,
    message)]``; empty when every step can work. ``at`` is the JSON path of the list,
    ``target`` the target's name for messages. Unknown step names are left to the config's
    plugin check."""
    flow = start
    for i, choice in enumerate(choices):
        path = f"{at}[{i}]"
        try:
            spec = registry.resolve("postprocessors", choice.name).spec
        except DlsuiteInputError:
            return []
        accepts = getattr(spec, "accepts", None)
        if accepts is not None and flow.kind is not None and not _accepted(flow.kind, accepts):
            hint = (" (add 'argmax' or 'threshold' before it)"
                    if flow.kind == "probabilities" else "")
            return [(path, f"postprocessor {choice.name!r} accepts "
                           f"{' or '.join(k.replace('_', ' ') for k in accepts)}, got "
                           f"{flow.describe()} from {flow.source}{hint}")]
        if accepts is not None and hasattr(spec, "needs_for"):
            params = choice.params if choice.params is not None else spec.params()
            try:
                needs = spec.needs_for(params)
            except Exception as exc:  # noqa: BLE001 - a plugin's needs callable
                return [(path, f"postprocessor {choice.name!r}: its needs(params) raised "
                               f"{type(exc).__name__}: {exc}")]
            problem = _needs_problem(choice.name, flow, needs, target)
            if problem:
                return [(path, problem)]
        flow = _after(flow, getattr(spec, "gives", None), f"{choice.name!r} ({path})")
    return []


def undeclared_steps(choices: Sequence[Any], registry) -> list[str]:
    """Names of the chain's steps whose spec declares neither ``accepts`` nor ``gives``
    (accepted as "any"; what follows them is checked less)."""
    out = []
    for choice in choices:
        try:
            spec = registry.resolve("postprocessors", choice.name).spec
        except DlsuiteInputError:
            continue
        if getattr(spec, "accepts", None) is None and getattr(spec, "gives", None) is None:
            out.append(choice.name)
    return out


def chain_problems(config, registry) -> list[Problem]:
    """Config rule: the ``postprocess`` chain can work on the outputs of the model the
    config's target gives (:func:`check_chain` from :func:`model_output`). A target whose
    heads are inconsistent is left to the heads check."""
    try:
        target = registry.resolve("targets", config.datagen.target.name).spec
        heads = heads_of(target)
    except DlsuiteInputError:
        return []
    for name in undeclared_steps(config.postprocess, registry):
        if name not in _NOTED:
            _NOTED.add(name)
            log.info("note: postprocessor %r declares no accepts/gives: it is taken to "
                     "accept any input, and the chain after it is checked less", name)
    return check_chain(config.postprocess, model_output(heads), registry,
                       target=config.datagen.target.name)

