"""The post-processing chain: probabilities -> instance labels, built and run in one place.

The config's ``postprocess`` list names post-processor plugins in order, each with its
parameters (defaults filled in from the plugin's spec). :func:`build_postprocess` turns such a
list into a :class:`PostprocessChain`: the steps are built once, and the chain keeps the
choices it was built from, so a caller can rebuild it with other parameters
(:meth:`PostprocessChain.with_params`, e.g. to tune them on validation data).

Running the chain (:meth:`PostprocessChain.labels`): each frame's probabilities ``(H, W, C)``
go through the steps in order; a chain that ends without instance labels is completed: still
probabilities -> argmax, a mask (bool / uint8) -> connected components. Every caller (``run``
on the test set, ``predict`` on new images) goes through :meth:`PostprocessChain.labels`.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import attrs
import numpy as np

__all__ = ["PostprocessChain", "build_postprocess", "instance_labels", "run_postprocess"]


def run_postprocess(steps: Iterable[Callable[[np.ndarray], np.ndarray]], probs: np.ndarray):
    """Apply post-processing ``steps`` in order to ``probs`` ``(H, W, C)``; returns the last
    result (an empty chain returns ``probs`` unchanged)."""
    out = probs
    for step in steps:
        out = step(out)
    return out


def instance_labels(result) -> np.ndarray:
    """A chain's result for one frame as int64 instance labels ``(H, W)``: probabilities
    (float) are reduced by argmax, a mask (bool or uint8) is labelled by connected components
    (4-connectivity), integer labels are kept."""
    from scipy import ndimage

    res = np.asarray(result)
    if res.dtype.kind == "f":  # still probabilities: take the argmax
        res = np.argmax(res, axis=-1).astype(np.uint8)
    if res.dtype.kind == "b" or res.dtype == np.uint8:  # a mask: label it
        res = ndimage.label(res > 0)[0]
    return res.astype(np.int64)


@attrs.frozen
class PostprocessChain:
    """A built post-processing chain: ``choices`` (the config entries it was built from,
    parameters filled in) and ``steps`` (one callable per choice, same order)."""

    choices: tuple
    steps: tuple
    registry: Any = attrs.field(default=None, eq=False, repr=False)

    def __call__(self, probs: np.ndarray):
        """The raw result of the steps on one frame's probabilities ``(H, W, C)``."""
        return run_postprocess(self.steps, probs)

    def frame_labels(self, probs: np.ndarray) -> np.ndarray:
        """Instance labels ``(H, W)`` int64 of one frame's probabilities ``(H, W, C)``."""
        return instance_labels(self(probs))

    def labels(self, probs: np.ndarray) -> np.ndarray:
        """Instance labels ``(T, H, W)`` int64 of a video's probabilities ``(T, H, W, C)``,
        frame by frame."""
        return np.stack([self.frame_labels(frame) for frame in probs])

    def with_params(self, index: int, **changes) -> "PostprocessChain":
        """The chain rebuilt with step ``index``'s parameters changed (``attrs.evolve`` of
        its params); the other steps are reused as built."""
        choice = self.choices[index]
        changed = attrs.evolve(choice, params=attrs.evolve(choice.params, **changes))
        step = _build_step(changed, self.registry)
        return attrs.evolve(self, choices=_replace(self.choices, index, changed),
                            steps=_replace(self.steps, index, step))


def _replace(items: tuple, index: int, value) -> tuple:
    return items[:index] + (value,) + items[index + 1:]


def _with_defaults(choice, registry):
    """``choice`` with its plugin's default parameters filled in when it has none."""
    if choice.params is not None:
        return choice
    entry = registry.resolve("postprocessors", choice.name)
    return attrs.evolve(choice, params=entry.spec.params())


def _build_step(choice, registry) -> Callable:
    return registry.resolve("postprocessors", choice.name).load()(choice.params)


def build_postprocess(choices: Sequence, registry) -> PostprocessChain:
    """The chain of the post-processor ``choices`` (the config's ``postprocess`` list: items
    with ``name`` and ``params``; params None means the plugin's defaults), each step built
    once through ``registry``. Unknown names raise the registry's DlsuiteInputError."""
    filled = tuple(_with_defaults(choice, registry) for choice in choices)
    return PostprocessChain(filled, tuple(_build_step(c, registry) for c in filled), registry)
