"""Typed post-processing chains (issue 14 item 3): each step declares what it accepts and
gives; a config's chain is checked against the target's heads at ``config validate``
(exit 2 naming the step and the kind it got); undeclared third-party steps keep working.
No TensorFlow here; ``dlsuite predict --postprocess`` is in tests/test_predict_chains.py."""

from __future__ import annotations

import json

import attrs
import pytest

from conftest import run_cli
from dlsuite import Needs, PostprocessorSpec, hookimpl
from dlsuite.chains import check_chain, model_output
from dlsuite.config import parse_config
from dlsuite.errors import ConfigError
from dlsuite.heads import heads_of
from dlsuite.registry import Registry, get_registry


def problems(chain, target="binary", registry=None) -> list[tuple[str, str]]:
    """The config problems of ``chain`` with ``target`` (empty: valid)."""
    try:
        parse_config({"postprocess": chain, "datagen": {"target": target}},
                     registry or get_registry(), check_paths=False)
    except ConfigError as exc:
        return exc.problems
    return []


def test_the_default_chain_and_the_known_good_chains_pass():
    assert problems(["argmax", "fill_holes", "remove_small_objects", "label"]) == []
    assert problems(["threshold", "closing", "label", "remove_border_objects"]) == []
    assert problems(["argmax", "watershed_split", "remove_small_objects"], "contours") == []
    assert problems(["distance_watershed", "fill_holes"], "distance") == []
    assert problems([]) == []


def test_labels_into_argmax_is_refused_at_the_step_naming_the_kind_it_got():
    (problem,) = problems(["argmax", "label", "argmax"])
    path, message = problem
    assert path == "$.postprocess[2]"
    assert message.startswith("postprocessor 'argmax' accepts probabilities, got labels")
    assert "'label' ($.postprocess[1])" in message


def test_a_class_map_without_a_contour_class_into_watershed_split_is_refused():
    (problem,) = problems(["argmax", "watershed_split"], "binary")
    assert problem[0] == "$.postprocess[1]"
    assert "'watershed_split' needs class 2, got a class map of classes 0, 1" in problem[1]
    assert "target 'binary'" in problem[1]
    # its contour_class parameter is what it needs: class 1 is there
    assert problems(["argmax", {"name": "watershed_split", "cell_class": 0,
                                "contour_class": 1}], "binary") == []
    # a 0/1 mask serves as a class map of classes 0 and 1: still no class 2
    (problem,) = problems(["threshold", "watershed_split"], "contours")
    assert "needs class 2, got a mask" in problem[1]


def test_probabilities_into_a_mask_step_and_missing_heads_or_classes_are_refused():
    (problem,) = problems(["fill_holes", "label"])
    assert problem[0] == "$.postprocess[0]"
    assert "accepts mask or labels, got probabilities of classes 0, 1 (2 channels) " \
           "from the model (add 'argmax' or 'threshold' before it)" in problem[1]
    (problem,) = problems([{"name": "threshold", "channel": 2}])
    assert "'threshold' needs channel 2, got probabilities of classes 0, 1 (2 channels)" \
        in problem[1]
    assert problems([{"name": "threshold", "channel": 2}], "contours") == []
    assert problems([{"name": "threshold", "channel": 2}], "distance") == []  # the distance
    (problem,) = problems(["distance_watershed"], "binary")
    assert "needs a regression head" in problem[1] and "target 'binary'" in problem[1]


def test_one_problem_per_chain_listed_with_the_config_s_other_problems():
    try:
        parse_config({"postprocess": ["label", "argmax", "fill_holes"],
                      "datagen": {"patch_size": [30, 30]}}, get_registry(), check_paths=False)
    except ConfigError as exc:
        paths = [p for p, _ in exc.problems]
    else:
        pytest.fail("not refused")
    assert paths == ["$.datagen.patch_size", "$.postprocess[0]"]


def test_an_undeclared_third_party_step_accepts_anything_and_unknowns_what_follows(caplog):
    # the example package's "opening" declares nothing (written before typed chains)
    spec = get_registry().resolve("postprocessors", "opening").spec
    assert spec.accepts is None and spec.gives is None
    caplog.set_level("INFO", logger="dlsuite")
    import dlsuite.chains

    dlsuite.chains._NOTED.discard("opening")  # noted once per process: another test may have
    assert problems(["threshold", "opening", "label"]) == []
    assert problems(["opening", "argmax"]) == []  # nothing known after it: not refused
    assert any("'opening' declares no accepts/gives" in r.getMessage() for r in caplog.records)
    # a declaring step after it sets the kind again: what follows is checked
    (problem,) = problems(["threshold", "opening", "label", "argmax"])
    assert problem[0] == "$.postprocess[3]" and "got labels" in problem[1]


class _Declared:
    """A third-party plugin whose step declares accepts/gives/needs like a built-in."""

    @hookimpl
    def dlsuite_postprocessors(self):
        return [PostprocessorSpec(name="split_cells", factory="x:y", accepts="class_map",
                                  gives="labels", needs=Needs(classes=(3,))),
                PostprocessorSpec(name="to_probs", factory="x:y", accepts="labels",
                                  gives="probabilities")]


def test_declarations_of_a_third_party_step_are_checked_like_built_ins():
    import dlsuite_plugins.postprocess.plugin as builtin

    registry = Registry.from_plugins([builtin, _Declared()], ["postprocess", "third"])
    start = model_output(heads_of(get_registry().resolve("targets", "contours").spec))

    class Step:
        def __init__(self, name):
            self.name, self.params = name, None

    (problem,) = check_chain([Step("argmax"), Step("split_cells")], start, registry,
                             target="contours")
    assert problem == ("$.postprocess[1]", "postprocessor 'split_cells' needs class 3, got a "
                       "class map of classes 0, 1, 2 from 'argmax' ($.postprocess[0]) "
                       "(target 'contours')")
    # probabilities made from labels by a plugin: their classes are unknown, not refused
    assert check_chain([Step("argmax"), Step("label"), Step("to_probs"), Step("argmax")],
                       start, registry) == []


def test_a_spec_declaring_an_unknown_kind_fails_when_it_is_made():
    with pytest.raises(ValueError, match="unknown chain kind"):
        PostprocessorSpec(name="x", factory="x:y", accepts=("probabilites",))
    with pytest.raises(ValueError, match="gives='instances'"):
        PostprocessorSpec(name="x", factory="x:y", gives="instances")


def test_config_validate_refuses_an_incompatible_chain_with_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"postprocess": ["argmax", "label", "argmax"]}))
    proc = run_cli("config", "validate", str(bad))
    assert proc.returncode == 2, proc.stderr
    assert "$.postprocess[2]: postprocessor 'argmax' accepts probabilities, got labels" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"datagen": {"target": "contours"},
                                "postprocess": ["argmax", "watershed_split"]}))
    proc = run_cli("config", "validate", str(good))
    assert proc.returncode == 0, proc.stderr
    # a third-party step declaring nothing is accepted, with a note
    third = tmp_path / "third.json"
    third.write_text(json.dumps({"postprocess": ["threshold", "opening", "label"]}))
    proc = run_cli("config", "validate", str(third))
    assert proc.returncode == 0, proc.stderr
    assert "note: postprocessor 'opening' declares no accepts/gives" in proc.stderr


def _liar(params):
    """A step declared to give labels that returns its uint8 mask unchanged."""
    return lambda mask: mask


def test_the_contract_catches_a_step_giving_another_kind_than_it_declares():
    from dlsuite import NoParams
    from dlsuite.registry import Entry
    from dlsuite.testing import PostprocessorContract

    liar = PostprocessorSpec(name="liar", factory=_liar, accepts="mask", gives="labels")
    with pytest.raises(AssertionError, match="declared to give labels for mask, returned uint8"):
        PostprocessorContract().test_declared_kinds_hold(
            Entry("postprocessors", liar, "third"), NoParams())
    honest = attrs.evolve(liar, gives="same")
    PostprocessorContract().test_declared_kinds_hold(
        Entry("postprocessors", honest, "third"), NoParams())


def test_plugins_lists_what_each_step_takes_and_gives():
    from dlsuite import api

    described = api.describe_plugins(kind="postprocessors")["kinds"]["postprocessors"]
    by_name = {e["name"]: e for e in described}
    assert by_name["watershed_split"]["accepts"] == ["class_map"]
    assert by_name["watershed_split"]["gives"] == "labels"
    assert by_name["closing"]["gives"] == "same"
    assert by_name["opening"]["accepts"] is None and by_name["opening"]["gives"] is None
