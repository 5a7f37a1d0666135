"""Target plugins: binary, contours, weight_map, distance, contours_distance, marks; no wrap
of label ids."""

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, distance_transform_edt
from skimage.morphology import disk
from skimage.segmentation import find_boundaries

from dlsuite.errors import DataError
from dlsuite.registry import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


def build(registry, name, **params):
    entry = registry.resolve("targets", name)
    return entry, entry.load()(entry.spec.params(**params))


def cells(dtype=np.uint16):
    """Touching cells, a close pair with a 3-px gap, an isolated cell, ids 256 and 512."""
    lab = np.zeros((80, 90), dtype)
    lab[10:30, 10:30] = 256   # 256 would vanish with a uint8 wrap
    lab[10:30, 30:50] = 2     # touches 256
    lab[45:65, 10:30] = 512
    lab[45:65, 33:53] = 7     # 3-pixel gap to 512 (columns 30..32)
    lab[40:60, 65:85] = 9     # isolated
    return lab


def test_binary(registry):
    entry, target = build(registry, "binary")
    lab = cells()
    y = target(lab)
    assert entry.spec.n_classes == 2 and entry.spec.channels == ("class",)
    assert y.dtype == np.float32 and y.shape == lab.shape + (1,)
    np.testing.assert_array_equal(y[..., 0], (lab > 0).astype(np.float32))
    assert y[20, 20, 0] == 1  # id 256 kept


@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("mode", ["inner", "outer", "thick"])
def test_contours_equal_find_boundaries(registry, mode, connectivity):
    entry, target = build(registry, "contours", mode=mode, connectivity=connectivity)
    lab = cells(np.int64)
    lab[0:6, 0:8] = 3  # a cell on the image border
    lab[70:80, 84:90] = 4
    y = target(lab)[..., 0]
    assert entry.spec.n_classes == 3
    fb = find_boundaries(lab, mode=mode, connectivity=connectivity)
    np.testing.assert_array_equal(y == 2, fb)
    np.testing.assert_array_equal(y == 1, (lab > 0) & ~fb)
    np.testing.assert_array_equal(y == 0, (lab == 0) & ~fb)


def test_contours_between_touching_cells(registry):
    _, target = build(registry, "contours")
    y = target(cells())[..., 0]
    assert y[20, 29] == 2 and y[20, 30] == 2  # both sides of the 256|2 border
    assert y[20, 20] == 1


def test_weight_map_mean_one_and_borders_heavier(registry):
    entry, target = build(registry, "weight_map")
    assert entry.spec.channels == ("class", "weight")
    lab = cells()
    y = target(lab)
    assert y.shape == lab.shape + (2,) and y.dtype == np.float32
    np.testing.assert_array_equal(y[..., 0], lab > 0)
    w = y[..., 1]
    assert w.mean() == pytest.approx(1.0, abs=1e-5)
    assert len(np.unique(w)) > 10  # float, not truncated to a few uint8 levels
    interior = w[48:62, 68:82].mean()       # inside the isolated cell
    far_background = w[72:80, 60:90].mean()
    gap = w[50:60, 30:33].mean()            # background between close cells
    touching = w[12:28, 29:31].mean()       # border between touching cells
    contour = w[40, 66:84].mean()           # top contour of the isolated cell
    assert gap > 2 * interior and touching > 2 * interior
    assert contour > interior and gap > far_background


def test_weight_map_without_cells(registry):
    _, target = build(registry, "weight_map")
    y = target(np.zeros((16, 16), np.uint8))
    np.testing.assert_allclose(y[..., 1], 1.0)


def reference_weight_map(lab, w0=10.0, sigma=5.0, contour_weight=2.0, background_weight=1.0):
    """Straightforward weight map of the documented definition: one full-image EDT per
    instance, which counts for a pixel only inside its bounding box grown by ceil(4 sigma)."""
    H, W = lab.shape
    r = int(np.ceil(4 * sigma))
    ids = [i for i in np.unique(lab) if i != 0]
    dists = []
    for i in ids:
        d = distance_transform_edt(lab != i)
        ys, xs = np.nonzero(lab == i)
        inside = np.zeros(lab.shape, bool)
        inside[max(ys.min() - r, 0):ys.max() + 1 + r, max(xs.min() - r, 0):xs.max() + 1 + r] = True
        dists.append(np.where(inside, d, np.inf))
    weight = np.where(lab > 0, 1.0, background_weight)
    weight = weight + contour_weight * find_boundaries(lab, connectivity=1, mode="thick")
    if len(dists) >= 2:
        two = np.sort(np.stack(dists), axis=0)[:2]
        total = two[0] + two[1]
        near = np.isfinite(total)
        weight[near] += w0 * np.exp(-total[near] ** 2 / (2 * sigma ** 2))
    return weight / weight.mean()


def random_labels(rng, shape, n, touching, high_ids):
    """Random rectangles/discs (overlapping ones touch), or a Voronoi tiling (all touching)."""
    H, W = shape
    if touching:
        pts = rng.integers(0, min(shape), (n, 2))
        yy, xx = np.mgrid[:H, :W]
        lab = ((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2).argmin(-1) + 1
        lab[rng.random(shape) < 0.05] = 0
    else:
        lab = np.zeros(shape, np.int64)
        for i in range(1, n + 1):
            y, x = rng.integers(0, H), rng.integers(0, W)
            h, w = rng.integers(1, 20, 2)
            lab[y:y + h, x:x + w] = i
    lab = lab.astype(np.int64)
    if high_ids:
        lab[lab > 0] += 70000  # ids above 65535
    return lab


@pytest.mark.parametrize("params", [{}, {"sigma": 2.5, "background_weight": 0.5},
                                    {"w0": 3.0, "sigma": 8.0, "contour_weight": 0.0}])
def test_weight_map_equals_reference(registry, params):
    _, target = build(registry, "weight_map", **params)
    rng = np.random.default_rng(7)
    cases = [np.zeros((20, 30), np.uint16), np.pad(np.ones((8, 8), np.uint8), 12),
             np.ones((25, 25), np.uint32), cells(), cells(np.int64) * 1000]
    for k in range(8):
        cases.append(random_labels(rng, (int(rng.integers(30, 90)), int(rng.integers(30, 90))),
                                   int(rng.integers(1, 15)), touching=k % 2 == 0,
                                   high_ids=k % 3 == 0))
    for lab in cases:
        got = target(lab)[..., 1]
        np.testing.assert_array_less(np.abs(got - reference_weight_map(lab, **params)), 1e-5)


def test_marks_equal_per_instance_erosion(registry):
    _, target = build(registry, "marks", radius=3)
    lab = cells(np.uint32)
    y = target(lab)[..., 0]
    expected = np.zeros(lab.shape, bool)
    for i in np.unique(lab)[1:]:
        expected |= binary_erosion(lab == i, disk(3), border_value=0)
    np.testing.assert_array_equal(y.astype(bool), expected)
    assert y[20, 20] == 1 and y[20, 29] == 0  # touching border eroded


def test_float_labels_rejected(registry):
    for name in ("binary", "contours", "weight_map", "distance", "contours_distance", "marks"):
        _, target = build(registry, name)
        with pytest.raises(DataError, match="float"):
            target(cells().astype(np.float32))


def reference_instance_distances(lab):
    """StarDist's edt_prob rule, plainly: per instance a full-image SciPy EDT of its mask,
    divided by its maximum (an instance filling the image is measured to the image edge)."""
    out = np.zeros(lab.shape, np.float64)
    for i in np.setdiff1d(np.unique(lab), [0]):
        mask = lab == i
        d = (distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1] if mask.all()
             else distance_transform_edt(mask))
        out[mask] = d[mask] / d[mask].max()
    return out


def test_distance_target_equals_reference(registry):
    entry, target = build(registry, "distance")
    assert entry.spec.channels == ("class", "distance") and entry.spec.n_classes == 2
    rng = np.random.default_rng(11)
    cases = [cells(), cells(np.int64) * 1000, np.ones((25, 31), np.uint32),
             np.zeros((12, 14), np.uint16), np.pad(np.full((9, 9), 3, np.uint8), ((0, 5), (4, 0)))]
    for k in range(10):
        cases.append(random_labels(rng, (int(rng.integers(20, 120)), int(rng.integers(20, 120))),
                                   int(rng.integers(1, 25)), touching=k % 2 == 0,
                                   high_ids=k % 3 == 0))
    for lab in cases:
        y = target(lab)
        assert y.shape == (*lab.shape, 2) and y.dtype == np.float32
        np.testing.assert_array_equal(y[..., 0], (lab > 0).astype(np.float32))
        np.testing.assert_allclose(y[..., 1], reference_instance_distances(lab), atol=1e-6)
        for i in np.setdiff1d(np.unique(lab), [0]):  # every instance peaks at exactly 1
            assert y[..., 1][lab == i].max() == 1.0


def test_distance_target_separates_touching_cells(registry):
    _, target = build(registry, "distance")
    lab = cells()
    d = target(lab)[..., 1]
    # the column where 256 (x 10..29) touches 2 (x 30..49) is a minimum of the distance
    assert d[20, 29] == d[20, 30] < d[20, 25] < d[20, 20]
    assert d[20, 29] == pytest.approx(1 / 10)  # 1 px from the other cell, max 10 at the centre
    # an instance cut by the image edge continues beyond it: distances grow towards the edge
    edge = np.zeros((20, 20), np.uint8)
    edge[:, :6] = 1
    assert np.all(np.diff(target(edge)[10, :6, 1]) < 0)


def test_instance_and_separation_distances_equal_scipy():
    from dlsuite_plugins.datagen.distances import instance_distances, separation_distances

    lab = cells()
    got = instance_distances(lab)
    want = np.zeros(lab.shape, np.float32)
    for i in np.setdiff1d(np.unique(lab), [0]):
        want[lab == i] = distance_transform_edt(lab == i)[lab == i].astype(np.float32)
    np.testing.assert_array_equal(got, want)  # float64 distances rounded once
    d1, d2 = separation_distances(lab, 20.0)
    # (20, 5): 5 px left of 256 and outside cell 2's box grown by 20 (x >= 10): d2 = inf
    assert d1[20, 5] == 5.0 and np.isinf(d2[20, 5])
    assert (d1[20, 12], d2[20, 12]) == (0.0, 18.0)  # in 256, 18 px from cell 2 (x 30..49)
    assert d1[20, 20] == 0.0 and d2[20, 20] == 10.0
    assert np.isinf(d2[75, 75])  # only cell 9 counts there


@pytest.mark.parametrize("name", ["weight_map", "distance", "contours_distance"])
def test_crop_mode_equals_the_centre_of_the_full_target(registry, name):
    """The training pipeline asks these targets for the kept centre only (takes_crop)."""
    _, target = build(registry, name)
    assert target.takes_crop
    rng = np.random.default_rng(5)
    cases = [cells(), np.pad(cells(), ((3, 0), (0, 5)))]
    cases += [random_labels(rng, (70, 64), 20, touching=k % 2 == 0, high_ids=k == 1)
              for k in range(4)]
    for lab in cases:
        full = target(lab)
        h, w = lab.shape[0] - 21, lab.shape[1] - 30
        y0, x0 = (lab.shape[0] - h) // 2, (lab.shape[1] - w) // 2
        centre = full[y0:y0 + h, x0:x0 + w]
        got = target(lab, crop=(h, w))
        assert got.shape == (h, w, 2)
        np.testing.assert_array_equal(got[..., 0], centre[..., 0])
        if name != "weight_map":
            np.testing.assert_array_equal(got[..., 1], centre[..., 1])
        else:  # the weight map is mean 1 over what it returns
            np.testing.assert_allclose(got[..., 1], centre[..., 1] / centre[..., 1].mean(),
                                       rtol=1e-5)


def test_contours_distance_is_contours_class_plus_distance_and_crops_exactly(registry):
    """``contours_distance``: channel 0 is the ``contours`` target's class (0 background,
    1 cell, 2 boundary, in every mode), channel 1 the ``distance`` target's distance; a crop
    (as the generator asks for the centre of a cut context) is exactly that part of the
    whole, boundaries at its edge included."""
    from dlsuite_plugins.datagen.targets import centre_region

    entry, _ = build(registry, "contours_distance")
    assert entry.spec.channels == ("class", "distance") and entry.spec.n_classes == 3
    assert [(h.name, h.channels) for h in entry.spec.heads] == [("class", 3), ("distance", 1)]
    _, distance = build(registry, "distance")
    rng = np.random.default_rng(5)
    cases = [cells(), random_labels(rng, (70, 90), 12, touching=True, high_ids=True)]
    for mode in ("inner", "outer", "thick"):
        _, target = build(registry, "contours_distance", mode=mode)
        _, contours = build(registry, "contours", mode=mode)
        for lab in cases:
            y = target(lab)
            assert y.shape == (*lab.shape, 2) and y.dtype == np.float32
            np.testing.assert_array_equal(y[..., 0], contours(lab)[..., 0])
            np.testing.assert_array_equal(y[..., 1], distance(lab)[..., 1])
            assert {1.0, 2.0} <= set(np.unique(y[..., 0]))
            for crop in ((16, 16), (lab.shape[0] - 1, 9)):
                y0, y1, x0, x1 = centre_region(lab.shape, crop)
                np.testing.assert_array_equal(target(lab, crop), y[y0:y1, x0:x1])
