"""The contract of post-processor plugins: :class:`PostprocessorContract`, with samples of
each kind a typed chain passes between its steps.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
import pytest

from .contract_base import PluginContract


class PostprocessorContract(PluginContract):
    """Accepts the chain's input and returns a 2D array of the image size; every tunable
    parameter (``spec.tunable``) is a field of the params class and each of its candidate
    values builds a step that works; a step declaring ``accepts``/``gives`` works on a
    sample of each accepted kind and returns the kind it declares.

    ``input_kind`` is ``"probabilities"`` (``(H, W, 2)`` float), ``"distance"`` (``(H, W, 3)``:
    the two class probabilities then a distance channel, as the ``distance`` target's model
    gives) or ``"mask"`` (``(H, W)``)."""

    kind = "postprocessors"
    input_kind: ClassVar[str] = "mask"

    def _input(self):
        from scipy import ndimage

        mask = np.zeros((40, 40), np.uint8)
        mask[5:20, 5:20] = 1
        mask[25:35, 22:38] = 1
        if self.input_kind == "mask":
            return mask
        probs = [1.0 - mask, mask]
        if self.input_kind == "distance":
            d = ndimage.distance_transform_edt(mask)
            probs.append(d / d.max())
        return np.stack(probs, axis=-1).astype(np.float32)

    def test_returns_image_sized_array(self, entry, built_params):
        step = entry.load()(built_params)
        out = step(self._input())
        assert out.shape == (40, 40)

    def test_declared_kinds_hold(self, entry, built_params):
        """A step declaring ``accepts``/``gives`` (typed chains) works on a sample of each
        kind it accepts holding what it ``needs``, and returns the kind it gives, read from
        the dtype as the chain does: float probabilities, uint8/bool mask or class map, other
        integers labels. Skipped for a step that declares nothing."""
        spec = entry.spec
        if getattr(spec, "accepts", None) is None:
            pytest.skip("the step declares no accepts/gives (taken as accepting anything)")
        needs = spec.needs_for(built_params)
        for kind in spec.accepts:
            out = np.asarray(entry.load()(built_params)(_kind_sample(kind, needs)))
            assert out.shape[:2] == (40, 40), f"{kind} in: shape {out.shape}"
            if spec.gives is not None:
                want = kind if spec.gives == "same" else spec.gives
                assert _dtype_kind(out) == _dtype_kind_of(want), (
                    f"declared to give {want} for {kind}, returned {out.dtype}")

    def test_tunable_parameters_exist_and_work(self, entry, built_params):
        fields = {f.name for f in attrs.fields(entry.spec.params)}
        for tunable in getattr(entry.spec, "tunable", ()):
            assert tunable.name in fields, f"tunable {tunable.name!r} is not a parameter"
            values = tunable.candidates()
            assert values, f"tunable {tunable.name!r} has no candidate values"
            for value in values:
                step = entry.load()(attrs.evolve(built_params, **{tunable.name: value}))
                assert step(self._input()).shape == (40, 40)


def _dtype_kind(array: np.ndarray) -> str:
    """The chain kind an array's dtype says (class map and mask share uint8/bool)."""
    if array.dtype.kind == "f":
        return "probabilities"
    if array.dtype.kind == "b" or array.dtype == np.uint8:
        return "mask"
    return "labels"


def _dtype_kind_of(kind: str) -> str:
    return "mask" if kind == "class_map" else kind


def _kind_sample(kind: str, needs) -> np.ndarray:
    """A 40 x 40 sample of chain ``kind`` with two objects, holding the classes, channels
    and regression head ``needs`` asks for."""
    from scipy import ndimage

    mask = np.zeros((40, 40), np.uint8)
    mask[5:20, 5:20] = 1
    mask[25:35, 22:38] = 1
    if kind == "mask":
        return mask
    if kind == "labels":
        return ndimage.label(mask)[0].astype(np.int32)
    if kind == "class_map":  # cells (1) inside contours (2), further classes a pixel each
        out = mask.copy()
        out[(mask > 0) & ~ndimage.binary_erosion(mask > 0)] = 2
        for i, c in enumerate(c for c in needs.classes if c > 2):
            out[0, i] = c
        return out
    n_classes = max([2, *(c + 1 for c in (*needs.classes, *needs.channels) if c >= 0)])
    probs = [1.0 - mask, mask] + [np.zeros_like(mask)] * (n_classes - 2)
    if needs.regression:
        d = ndimage.distance_transform_edt(mask)
        probs.append(d / d.max())
    return np.stack(probs, axis=-1).astype(np.float32)
