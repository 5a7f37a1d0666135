"""Augmentation plugins: image/target alignment, identical transform for all
frames, nearest interpolation of classes, context margins of the affine and elastic warps and
of a chain of warps."""

import numpy as np
import pytest

from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


def build(registry, kind, name, **params):
    entry = registry.resolve(kind, name)
    return entry.load()(entry.spec.params(**params))


def scene(size=96, seed=0):
    """Labels with a few rectangles and disks, and their contour target."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for k in range(1, 7):
        cy, cx, r = rng.integers(15, size - 15), rng.integers(15, size - 15), rng.integers(5, 11)
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = k
    lab[5:20, 60:90] = 8
    return lab


def strong_affine(registry, **kw):
    params = dict(rotation=40.0, shift=0.1, zoom=0.3)
    params.update(kw)
    return build(registry, "augmentations", "affine", **params)


def strong(registry, name):
    """A strong instance of the geometric augmentation ``name``."""
    if name == "affine":
        return strong_affine(registry)
    if name == "elastic":
        return build(registry, "augmentations", "elastic", alpha=4.0, spacing=16.0)
    return build(registry, "augmentations", name)


@pytest.mark.parametrize("name", ["affine", "elastic", "flip"])
def test_image_and_target_stay_aligned(registry, name):
    lab = scene()
    target = build(registry, "targets", "contours")(lab)
    image = np.stack([(lab > 0).astype(np.float32)] * 3)  # image built from the labels
    aug = strong(registry, name)
    changed = 0
    for seed in range(10):
        out_img, out_t = aug(image, target, np.random.default_rng(seed))
        assert out_img.shape == image.shape and out_t.shape == target.shape
        assert out_img.dtype == np.float32 and out_t.dtype == np.float32
        mismatch = ((out_img[0] > 0.5) != (out_t[..., 0] > 0)).sum()
        assert mismatch <= 0.01 * lab.size  # a few interpolation pixels at most
        # classes are resampled with nearest neighbour: values stay in {0, 1, 2}
        assert set(np.unique(out_t[..., 0])) <= {0.0, 1.0, 2.0}
        changed += not np.array_equal(out_t, target)
    assert changed >= 5  # the transforms actually do something


def test_all_frames_transformed_identically(registry):
    rng = np.random.default_rng(0)
    base = rng.random((64, 64)).astype(np.float32)
    image = np.stack([base, 2 * base, 3 * base + 1])  # warps are linear in the values
    target = np.zeros((64, 64, 2), np.float32)
    for aug in (strong(registry, "affine"), strong(registry, "elastic"),
                strong(registry, "flip")):
        for seed in range(4):
            out, _ = aug(image, target, np.random.default_rng(seed))
            np.testing.assert_allclose(out[1], 2 * out[0], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(out[2], 3 * out[0] + 1, rtol=1e-5, atol=1e-4)


def test_weight_channel_bilinear_and_aligned(registry):
    lab = scene()
    target = build(registry, "targets", "weight_map")(lab)
    image = (lab > 0).astype(np.float32)[None]
    _, out = strong_affine(registry)(image, target, np.random.default_rng(1))
    w = out[..., 1]
    assert w.min() >= target[..., 1].min() - 1e-5 and w.max() <= target[..., 1].max() + 1e-5
    assert len(np.unique(w)) > len(np.unique(target[..., 1]))  # interpolated, not nearest


@pytest.mark.parametrize("name", ["affine", "elastic"])
def test_context_margin_is_enough(registry, name):
    """Warping a context crop of patch+margin gives the same patch as warping a far larger
    crop: the margin holds every pixel the warp reads (no reflection artefacts)."""
    aug = (strong_affine(registry, shift=0.2, zoom=0.2, rotation=30.0) if name == "affine"
           else strong(registry, name))
    patch = (32, 40)
    my, mx = aug.margin(patch)
    assert my > 0 and mx > 0
    rng = np.random.default_rng(5)
    big = rng.random((1, 400, 400)).astype(np.float32)
    big_t = np.zeros((400, 400, 1), np.float32)
    cy, cx = 200, 200
    small = big[:, cy - my:cy + patch[0] + my, cx - mx:cx + patch[1] + mx]
    small_t = big_t[cy - my:cy + patch[0] + my, cx - mx:cx + patch[1] + mx]
    larger = big[:, cy - my - 50:cy + patch[0] + my + 50, cx - mx - 50:cx + patch[1] + mx + 50]
    larger_t = big_t[cy - my - 50:cy + patch[0] + my + 50, cx - mx - 50:cx + patch[1] + mx + 50]
    for seed in range(5):
        a, _ = aug(small, small_t, np.random.default_rng(seed), patch_size=patch)
        b, _ = aug(larger, larger_t, np.random.default_rng(seed), patch_size=patch)
        assert a.shape == (1,) + patch
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_intensity_and_noise_touch_the_image_only(registry):
    lab = scene()
    target = build(registry, "targets", "binary")(lab)
    image = np.stack([(lab > 0).astype(np.float32) * 0.5 + 0.2] * 2)
    for name in ("intensity", "noise"):
        aug = build(registry, "augmentations", name, probability=1.0)
        out_img, out_t = aug(image, target, np.random.default_rng(3))
        np.testing.assert_array_equal(out_t, target)
        assert not np.allclose(out_img, image)
        assert out_img.dtype == np.float32 and out_img.shape == image.shape
    # intensity jitter is the same for all frames
    out_img, _ = build(registry, "augmentations", "intensity")(image, target,
                                                              np.random.default_rng(4))
    np.testing.assert_allclose(out_img[0], out_img[1])


def test_bad_augmentation_params(registry):
    with pytest.raises(DlsuiteInputError, match="zoom"):
        build(registry, "augmentations", "affine", zoom=1.5)
    with pytest.raises(DlsuiteInputError, match="alpha"):
        build(registry, "augmentations", "elastic", alpha=-1.0)
    with pytest.raises(DlsuiteInputError, match="probability"):
        build(registry, "augmentations", "noise", probability=2.0)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest"])
@pytest.mark.parametrize("order", [0, 1])
def test_warp_equals_scipy_affine_transform(mode, order):
    from scipy import ndimage

    from dlsuite_plugins.datagen.augmentations import warp

    rng = np.random.default_rng(0)
    stack = rng.random((2, 50, 60)).astype(np.float32)
    theta = 0.4
    matrix = 1.1 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    offset = np.array([5.3, -7.1])
    ours = warp(stack, matrix, offset, (40, 45), order, mode)
    ref = np.stack([ndimage.affine_transform(f, matrix, offset, output_shape=(40, 45),
                                             order=order, mode=mode, prefilter=False)
                    for f in stack])
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_elastic_field_is_bounded_and_smooth(registry):
    """Displacements never exceed 3 alpha (so the declared margin holds), vary slowly between
    neighbouring pixels, differ between draws; alpha 0 leaves the sample as it was."""
    aug = build(registry, "augmentations", "elastic", alpha=3.0, spacing=24.0)
    fields = [aug.field((80, 96), np.random.default_rng(seed)) for seed in range(20)]
    for d in fields:
        assert d.shape == (2, 80, 96)
        assert np.abs(d).max() <= 9.0 + 1e-6
        assert np.abs(np.diff(d, axis=-1)).max() < 1.5  # smooth: no pixel-to-pixel jumps
    spread = np.std([d[:, 40, 48] for d in fields], axis=0)
    assert (spread > 1.0).all()  # the centre moves by about alpha from draw to draw
    assert aug.margin((80, 96)) == (10, 10)
    from scipy import ndimage

    from dlsuite_plugins.datagen.augmentations import _spline_weights

    coarse = np.random.default_rng(1).random((5, 5))  # the separable form is scipy's spline
    oy, ox = np.indices((80, 96)) / 24.0
    np.testing.assert_allclose(_spline_weights(80, 24.0) @ coarse @ _spline_weights(96, 24.0).T,
                               ndimage.map_coordinates(coarse, [oy, ox], order=3, mode="nearest"),
                               atol=1e-12)
    image = np.random.default_rng(0).random((1, 40, 40)).astype(np.float32)
    target = np.zeros((40, 40, 1), np.float32)
    still = build(registry, "augmentations", "elastic", alpha=0.0)
    out, _ = still(image, target, np.random.default_rng(0))
    np.testing.assert_array_equal(out, image)


class _Shift:
    """A test warp with a context margin: moves the content by ``m`` pixels down and right."""

    def __init__(self, m):
        self.m = m

    def margin(self, patch_size):
        return self.m, self.m

    def __call__(self, image, target, rng, patch_size):
        h, w = patch_size
        H, W = image.shape[-2:]
        y0, x0 = (H - h) // 2 - self.m, (W - w) // 2 - self.m
        assert y0 >= 0 and x0 >= 0, "asked for more than the input holds"
        return image[..., y0:y0 + h, x0:x0 + w], target[y0:y0 + h, x0:x0 + w]


def test_chain_of_warps_each_reads_real_context():
    """Two steps with margins: the first is asked for the output the second needs, so the
    patch equals the source moved by both, read from real pixels only."""
    from dlsuite.data.datagen_plugins import DatagenPlugins
    from dlsuite.data.patches import TARGET_CONTEXT, PatchMaker

    plugins = DatagenPlugins(None, None, None, 2, ("class",), (_Shift(3), _Shift(5)))
    maker = PatchMaker(plugins, (32, 32), None)
    assert maker.aug_margin == (8, 8)
    size = 32 + 2 * TARGET_CONTEXT + 16
    source = np.arange(size * size, dtype=np.float32).reshape(1, size, size)
    labels = np.arange(size * size).reshape(size, size) % 7
    image, warped = maker._augment(source, labels, np.random.default_rng(0))
    n = 32 + 2 * TARGET_CONTEXT
    np.testing.assert_array_equal(image, source[:, :n, :n])  # moved by 3 + 5 = the margin
    np.testing.assert_array_equal(warped, labels[:n, :n])
