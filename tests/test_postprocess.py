"""Built-in post-processors (plugins/postprocess): each step on small crafted arrays."""

from __future__ import annotations

import numpy as np
import pytest

from dlsuite.errors import DlsuiteInputError
from dlsuite.inference import run_postprocess
from dlsuite_plugins.postprocess import params as P
from dlsuite_plugins.postprocess import steps as S
from dlsuite_plugins.postprocess.plugin import dlsuite_postprocessors


def _step(name, **kw):
    spec = {s.name: s for s in dlsuite_postprocessors()}[name]
    return spec.load()(spec.params(**kw))


def _probs(classes: np.ndarray, n: int) -> np.ndarray:
    """One-hot-ish probabilities (0.8 on the class) of a class map."""
    p = np.full(classes.shape + (n,), 0.2 / (n - 1), np.float32)
    np.put_along_axis(p, classes[..., None], 0.8, axis=-1)
    return p


def test_plugin_lists_every_step_with_lazy_factory():
    specs = dlsuite_postprocessors()
    names = {s.name for s in specs}
    assert names == {"argmax", "threshold", "closing", "fill_holes", "remove_small_objects",
                     "remove_border_objects", "label", "watershed_split", "distance_watershed"}
    assert all(isinstance(s.factory, str) for s in specs)
    assert P.RemoveSmallObjectsParams().min_size == 150 and P.ClosingParams().radius == 3


def test_argmax_keeps_class_ids_and_threshold_gives_binary():
    classes = np.array([[0, 1, 2], [2, 1, 0]])
    probs = _probs(classes, 3)
    out = _step("argmax")(probs)
    assert out.dtype == np.uint8 and np.array_equal(out, classes)
    thr = _step("threshold", threshold=0.5, channel=2)(probs)
    assert np.array_equal(thr, (classes == 2).astype(np.uint8))
    one = np.array([[[0.2], [0.7]]], np.float32)
    assert np.array_equal(_step("argmax")(one), [[0, 1]])
    assert np.array_equal(_step("threshold", threshold=0.6)(one), [[0, 1]])


def test_closing_bridges_a_gap_without_shrinking_at_the_border():
    mask = np.zeros((12, 12), np.uint8)
    mask[:, 0:5] = 1
    mask[:, 6:12] = 1  # a 1-px gap at column 5, objects touch every border
    out = _step("closing", radius=2)(mask)
    assert out.all()
    # class ids of existing pixels survive; new pixels are class 1
    mask[0, 0] = 2
    assert _step("closing", radius=2)(mask)[0, 0] == 2


def test_closing_on_labels_keeps_objects_apart():
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8] = 7
    labels[4, 4] = 0  # a pinhole closed by the closing
    labels[12:18, 2:8] = 300
    out = _step("closing", radius=1)(labels)
    assert out[4, 4] == 7 and set(np.unique(out)) == {0, 7, 300}
    assert np.array_equal(out[10:12], labels[10:12])


def test_fill_holes_mask_and_labels():
    mask = np.zeros((9, 9), np.uint8)
    mask[1:8, 1:8] = 1
    mask[3:6, 3:6] = 0
    assert _step("fill_holes")(mask)[4, 4] == 1
    labels = mask.astype(np.int32) * 5
    labels[4, 4] = 9  # an object inside the hole of object 5 is not overwritten
    out = _step("fill_holes")(labels)
    assert out[4, 4] == 9 and out[3, 3] == 5


def test_remove_small_objects_on_mask_and_labels_keeps_ids():
    mask = np.zeros((20, 20), np.uint8)
    mask[1:3, 1:3] = 2  # 4 px
    mask[10:20, 10:20] = 1  # 100 px
    out = _step("remove_small_objects", min_size=5)(mask)
    assert out[1:3, 1:3].sum() == 0 and out[10:20, 10:20].min() == 1
    labels = np.zeros((20, 20), np.uint32)
    labels[1:3, 1:3] = 70000
    labels[10:20, 10:20] = 65537
    out = _step("remove_small_objects", min_size=5)(labels)
    assert out.dtype == np.uint32 and set(np.unique(out)) == {0, 65537}


def test_remove_border_objects():
    mask = np.zeros((10, 10), np.uint8)
    mask[0:3, 0:3] = 1
    mask[4:7, 4:7] = 1
    out = _step("remove_border_objects")(mask)
    assert out[0:3, 0:3].sum() == 0 and out[4:7, 4:7].all()
    labels = np.zeros((10, 10), np.int32)
    labels[4:7, 4:7] = 3
    labels[7:10, 4:7] = 4
    assert set(np.unique(_step("remove_border_objects")(labels))) == {0, 3}


def test_label_gives_int32_components_beyond_255():
    mask = np.zeros((2, 800), np.uint8)
    mask[0, ::2] = 1  # 400 separate pixels
    out = _step("label")(mask)
    assert out.dtype == np.int32 and out.max() == 400


def test_watershed_split_separates_touching_cells_that_label_merges():
    classes = np.zeros((12, 22), np.uint8)
    classes[2:10, 2:20] = 2  # contour everywhere in the blob ...
    classes[3:9, 3:10] = 1  # ... around two interiors
    classes[3:9, 12:19] = 1
    merged = _step("label")(_step("closing", radius=1)(classes))
    assert merged.max() == 1
    split = _step("watershed_split")(classes)
    assert split.dtype == np.int32 and split.max() == 2
    assert (split > 0).sum() == (classes > 0).sum()  # every foreground pixel assigned
    assert split[5, 5] != split[5, 16]
    assert split[5, 2] == split[5, 5] and split[5, 19] == split[5, 16]


def test_chain_from_probabilities_to_instances():
    classes = np.zeros((40, 40), np.int64)
    classes[5:20, 5:20] = 1
    classes[10, 10] = 0  # a hole
    classes[30:32, 30:32] = 1  # too small
    classes[35:40, 0:10] = 1  # touches the border
    chain = [_step("argmax"), _step("fill_holes"), _step("remove_small_objects", min_size=10),
             _step("remove_border_objects"), _step("label")]
    out = run_postprocess(chain, _probs(classes, 2))
    assert out.dtype == np.int32 and out.max() == 1
    assert (out == 1).sum() == 15 * 15


def test_wrong_kind_is_a_clear_error():
    with pytest.raises(DlsuiteInputError, match="'closing'.*argmax"):
        _step("closing")(np.zeros((4, 4, 2), np.float32))
    with pytest.raises(DlsuiteInputError, match="watershed_split"):
        _step("watershed_split")(np.zeros((4, 4), np.int32))
    assert S.array_kind(np.zeros(2, np.uint16)) == "labels"


# The dlsuite.testing contract runs on every built-in step in tests/test_contracts_builtin.py.
