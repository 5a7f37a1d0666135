"""The contracts of the data plugins: :class:`NormalizerContract`, :class:`SamplerContract`,
:class:`TargetContract` and :class:`AugmentationContract`.
"""

from __future__ import annotations

import numpy as np
import pytest

from .contract_base import PluginContract


class NormalizerContract(PluginContract):
    """Float32 output of the input's shape, for images and videos; finite on constant input."""

    kind = "normalizers"

    @pytest.mark.parametrize("shape", [(24, 20), (3, 24, 20)])
    def test_shape_dtype_finite(self, entry, built_params, shape):
        norm = entry.load()(built_params)
        image = np.random.default_rng(0).integers(0, 4000, size=shape).astype(np.uint16)
        out = norm(image)
        assert out.shape == shape and out.dtype == np.float32 and np.isfinite(out).all()
        assert np.isfinite(norm(np.full(shape, 7, np.uint16))).all()


class SamplerContract(PluginContract):
    """Patches always fully inside the image."""

    kind = "samplers"

    def test_patch_inside_image(self, entry, built_params):
        sample = entry.load()(built_params)
        labels = np.zeros((40, 30), np.int32)
        labels[5:10, 20:28] = 3
        rng = np.random.default_rng(0)
        for _ in range(50):
            top, left = sample(labels, (16, 12), rng)
            assert 0 <= top <= 40 - 16 and 0 <= left <= 30 - 12


class TargetContract(PluginContract):
    """``(H, W, C)`` float32 with C = len(spec.channels); classes below spec.n_classes; the
    declared heads are consistent (:func:`dlsuite.heads.heads_of`) and each regression head's
    channel holds finite values."""

    kind = "targets"

    def test_heads_are_consistent(self, entry, built_params):
        from ..heads import heads_of

        heads = heads_of(entry.spec)
        make = entry.load()(built_params)
        labels = np.zeros((24, 24), np.int32)
        labels[3:12, 3:12], labels[12:20, 6:18] = 1, 2
        target = make(labels)
        for h in heads:
            if h.role == "regression":
                assert np.isfinite(target[..., entry.spec.channels.index(h.name)]).all()

    def test_shape_and_classes(self, entry, built_params):
        make = entry.load()(built_params)
        labels = np.zeros((32, 32), np.uint32)
        labels[4:14, 4:14], labels[14:24, 10:20], labels[20:30, 22:30] = 1, 300, 70000
        target = make(labels)
        assert target.shape == (32, 32, len(entry.spec.channels)) and target.dtype == np.float32
        classes = target[..., 0]
        assert set(np.unique(classes)) <= set(range(entry.spec.n_classes))
        assert classes[labels == 0].max() == 0 or entry.spec.n_classes > 2


class AugmentationContract(PluginContract):
    """Keeps shapes and dtypes; the class channel stays integral (nearest interpolation)."""

    kind = "augmentations"

    def test_shapes_and_integral_classes(self, entry, built_params):
        augment = entry.load()(built_params)
        rng = np.random.default_rng(0)
        image = rng.random((3, 32, 32), dtype=np.float32)
        target = np.zeros((32, 32, 1), np.float32)
        target[8:20, 8:24] = 1
        for _ in range(5):
            img2, tgt2 = augment(image, target, rng)
            assert img2.shape == image.shape and tgt2.shape == target.shape
            assert np.array_equal(tgt2[..., 0], np.round(tgt2[..., 0]))
