"""Patch samplers: patches inside the frame, foreground bias of foreground_pdf."""

import numpy as np
import pytest

from dlsuite.errors import DlsuiteInputError
from dlsuite.registry import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


def build(registry, name, **params):
    entry = registry.resolve("samplers", name)
    return entry.load()(entry.spec.params(**params))


def sparse_labels():
    """200x220 frame with ~1% foreground in two small cells (ids > 255, uint16)."""
    labels = np.zeros((200, 220), np.uint16)
    labels[40:52, 60:70] = 300
    labels[150:160, 170:180] = 512
    return labels


def centres(sampler, labels, patch, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        top, left = sampler(labels, patch, rng)
        assert 0 <= top <= labels.shape[0] - patch[0]
        assert 0 <= left <= labels.shape[1] - patch[1]
        out.append((top + patch[0] // 2, left + patch[1] // 2))
    return np.array(out)


def test_foreground_pdf_puts_centres_on_foreground(registry):
    labels = sparse_labels()
    assert (labels > 0).mean() < 0.01
    c = centres(build(registry, "foreground_pdf", pdf=1e6), labels, (32, 32), 500)
    on_fg = (labels[c[:, 0], c[:, 1]] > 0).mean()
    assert on_fg >= 0.99
    # both cells are visited (centre drawn over all foreground pixels)
    ids = set(labels[c[:, 0], c[:, 1]].tolist())
    assert {300, 512} <= ids


def test_uniform_is_not_biased(registry):
    labels = sparse_labels()
    c = centres(build(registry, "uniform"), labels, (32, 32), 500)
    assert (labels[c[:, 0], c[:, 1]] > 0).mean() < 0.1
    # covers the range of valid positions
    assert c[:, 0].min() < 40 and c[:, 0].max() > 160


def test_foreground_pdf_without_foreground_is_uniform_and_inside(registry):
    labels = np.zeros((50, 40), np.int32)
    c = centres(build(registry, "foreground_pdf"), labels, (20, 20), 200)
    assert len(set(map(tuple, c))) > 50  # spread out, not a fixed position


def test_patch_equal_to_frame_gives_origin(registry):
    labels = sparse_labels()[:64, :64]
    for name in ("uniform", "foreground_pdf"):
        assert build(registry, name)(labels, (64, 64), np.random.default_rng(1)) == (0, 0)


def test_small_pdf_matches_expected_foreground_rate(registry):
    # weight pdf on fg vs 1 on bg: P(fg) = pdf*n_fg / (n_bg + pdf*n_fg) over valid centres
    labels = np.zeros((40, 40), np.uint8)
    labels[10:30, 10:20] = 1  # all inside the valid-centre region for patch (1, 1)
    pdf = 3.0
    n_fg = 200
    expected = pdf * n_fg / (1600 - n_fg + pdf * n_fg)
    c = centres(build(registry, "foreground_pdf", pdf=pdf), labels, (1, 1), 4000, seed=3)
    assert (labels[c[:, 0], c[:, 1]] > 0).mean() == pytest.approx(expected, abs=0.03)


def test_same_rng_same_positions(registry):
    s = build(registry, "foreground_pdf")
    labels = sparse_labels()
    a = centres(s, labels, (16, 16), 20, seed=7)
    b = centres(s, labels, (16, 16), 20, seed=7)
    np.testing.assert_array_equal(a, b)


def test_bad_pdf(registry):
    with pytest.raises(DlsuiteInputError, match="pdf"):
        build(registry, "foreground_pdf", pdf=0.0)


def test_instances_draws_every_cell_equally_whatever_its_size(registry):
    """A 6x6 cell and a 60x60 cell: ``instances`` centres half the patches on each (the
    pixel-weighted ``foreground_pdf`` almost always on the large one); with ``background``
    that share of uniform patches; frames without instances are uniform; patches stay
    inside even when the cell is at the border."""
    labels = np.zeros((200, 220), np.int32)
    labels[100:106, 30:36] = 7
    labels[60:120, 120:180] = 9
    c = centres(build(registry, "instances", background=0.0), labels, (32, 32), 1000)
    hit = labels[c[:, 0], c[:, 1]]
    assert set(np.unique(hit)) == {7, 9} and 0.42 < (hit == 7).mean() < 0.58
    huge = labels.astype(np.uint32) * 400_000_000  # ids up to 3.6e9: any id range works
    c = centres(build(registry, "instances", background=0.0), huge, (32, 32), 200)
    assert 0.35 < (huge[c[:, 0], c[:, 1]] == 7 * 400_000_000).mean() < 0.65
    c = centres(build(registry, "foreground_pdf", pdf=1e6), labels, (32, 32), 500)
    assert (labels[c[:, 0], c[:, 1]] == 7).mean() < 0.05
    c = centres(build(registry, "instances", background=0.5), labels, (32, 32), 1000)
    assert 0.4 < (labels[c[:, 0], c[:, 1]] == 0).mean() < 0.6
    c = centres(build(registry, "instances"), np.zeros((50, 40), np.int32), (20, 20), 200)
    assert c[:, 0].min() == 10 and c[:, 0].max() == 40
    corner = np.zeros((64, 64), np.int32)
    corner[:3, :3] = 4  # centre clipped to the nearest valid position: the cell stays inside
    for top, left in [build(registry, "instances", background=0.0)(
            corner, (32, 32), np.random.default_rng(s)) for s in range(20)]:
        assert (top, left) == (0, 0)
    with pytest.raises(Exception, match="background"):
        build(registry, "instances", background=1.5)
