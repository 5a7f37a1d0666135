"""Value checks of the config (issue 13 "nothing bad gets through", issue 14 plugin validators):
ranges, finite numbers, choices and cross-field rules are refused at their JSON path, all at
once with the type and key errors, appear in the JSON Schema, and a random valid config with
one value pushed out of range is always refused with that value's path."""

from __future__ import annotations

import copy
import time
import typing

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlsuite import ArchitectureSpec, hookimpl, param
from dlsuite.config import parse_config
from dlsuite.checks import (CheckError, _Each, _Excludes, _MaxLength, _NonEmpty, _OneOf,
                            _Range, _RelativePath, checks_of, greater_than, in_range,
                            positive)
from dlsuite.config.converter import unstructure_config
from dlsuite.config.jsonschema import config_json_schema
from dlsuite.config.schema import Choice, Config
from dlsuite.errors import ConfigError, DlsuiteInputError
from dlsuite.registry import Registry, get_registry


def problems_of(data, registry=None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, registry or get_registry(), check_paths=False)
    return dict(info.value.problems)


# ---- the concrete cases of the issue, in-process ----------------------------------------------
@pytest.mark.parametrize("data, path, words", [
    ({"datagen": {"augmentation": [{"name": "affine", "rotation": 400}]}},
     "$.datagen.augmentation[0].rotation", "must be in [0, 360], got 400"),
    ({"optimizer": {"learning_rate": -1}}, "$.optimizer.learning_rate", "must be > 0, got -1"),
    ({"optimizer": {"learning_rate": -0.01}}, "$.optimizer.learning_rate", "got -0.01"),
    ({"optimizer": {"learning_rate": float("nan")}}, "$.optimizer.learning_rate",
     "finite number, got NaN"),
    ({"optimizer": {"learning_rate": float("inf")}}, "$.optimizer.learning_rate",
     "finite number, got Infinity"),
    ({"datagen": {"batch_size": 0}}, "$.datagen.batch_size", "must be > 0, got 0"),
    ({"evaluation": {"tune_seconds": -5}}, "$.evaluation.tune_seconds", "must be > 0, got -5"),
    ({"evaluation": {"tune_seconds": 0}}, "$.evaluation.tune_seconds", "must be > 0, got 0"),
    ({"train": {"epochs": -5}}, "$.train.epochs", "must be > 0, got -5"),
    ({"model": {"name": "unet", "n_filters": -3}}, "$.model.n_filters", "must be > 0, got -3"),
    ({"model": {"name": "unet", "pools": 0}}, "$.model.pools", "must be in [1, 8], got 0"),
    ({"model": {"name": "unet", "pools": 12}}, "$.model.pools", "must be in [1, 8], got 12"),
    ({"model": {"name": "unet", "pools": 10**30}}, "$.model.pools", "must be in [1, 8]"),
    ({"model": {"name": "mobilenet_mobileunet", "pools": 6}}, "$.model.pools", "[1, 5]"),
    ({"model": {"name": "unet", "dropout": 1.7}}, "$.model.dropout", "must be in [0, 1), got 1.7"),
    ({"datagen": {"normalization": {"name": "percentile", "low": 99, "high": 1}}},
     "$.datagen.normalization.high", "must be greater than low (99), got 1"),
    ({"datagen": {"normalization": {"name": "percentile", "high": 101}}},
     "$.datagen.normalization.high", "must be in [0, 100], got 101"),
    ({"datagen": {"patch_size": [64, 0]}}, "$.datagen.patch_size[1]", "must be > 0, got 0"),
    ({"model": {"name": "unet", "pools": 3}, "datagen": {"patch_size": [36, 36]}},
     "$.datagen.patch_size", "divisible by 8"),
    ({"model": {"name": "unet", "pools": 7}, "datagen": {"patch_size": [64, 64]}},
     "$.datagen.patch_size", "$.model.pools at most 6"),
    ({"model": {"name": "mobilenet_mobileunet", "alpha": 0.6}}, "$.model.alpha",
     "closest: 0.5"),
    ({"seed": -1}, "$.seed", "must be in [0, 4294967295]"),
    ({"schema_version": 2}, "$.schema_version", "must be one of 1, got 2"),
    ({"output_dir": ""}, "$.output_dir", "must not be empty"),
    # the W&B model artifact (model-<name>) and export file names must stay short enough
    ({"name": "x" * 101}, "$.name", "must be at most 100 characters long, got 101"),
    # W&B refuses these at wandb.init: the run would train without W&B
    ({"wandb": {"project": "lab/cells"}}, "$.wandb.project",
     "must not contain / (any of / \\ # ? % :); W&B refuses them in a project name (the "
     "team goes in wandb.entity), got 'lab/cells'"),
    ({"wandb": {"project": "p" * 129}}, "$.wandb.project", "at most 128 characters"),
    ({"wandb": {"tags": ["ok", "t" * 65]}}, "$.wandb.tags[1]",
     "must be at most 64 characters long, got 65"),
    ({"wandb": {"tags": [""]}}, "$.wandb.tags[0]", "must not be empty"),
    # predictions go inside the run, never over its own files or outside it
    ({"inference": {"output_folder": "../data/test"}}, "$.inference.output_folder",
     "must stay inside its folder (no '..')"),
    ({"inference": {"output_folder": "/home/me/data"}}, "$.inference.output_folder",
     "must be a relative path"),
    ({"inference": {"output_folder": "."}}, "$.inference.output_folder",
     "must name a subfolder"),
    ({"evaluation": {"metrics": ["SEG", "jacard"]}}, "$.evaluation.metrics[1]",
     "did you mean 'jaccard'?"),
    ({"train": {"reduce_lr": {"factor": 1.0}}}, "$.train.reduce_lr.factor", "(0, 1)"),
    ({"loss": {"name": "sparse_cce", "class_weights": [1, -1]}}, "$.loss.class_weights[1]",
     "must be >= 0, got -1"),
    ({"loss": {"name": "l1l2", "kernel_size": 14}}, "$.loss.kernel_size", "must be odd"),
    ({"postprocess": ["argmax", {"name": "watershed_split", "contour_class": 1}]},
     "$.postprocess[1].contour_class", "must differ from cell_class"),
    ({"datagen": {"augmentation": [{"name": "affine", "zoom": 1.5}]}},
     "$.datagen.augmentation[0].zoom", "must be in [0, 1), got 1.5"),
    ({"loss": "weighted_bce"}, "$.loss",
     "needs the y_true channel(s) weight, which target 'binary' ($.datagen.target) does not "
     "give; targets that do: weight_map"),
])
def test_each_bad_value_is_refused_at_its_path(data, path, words):
    problems = problems_of(data)
    assert path in problems, problems
    assert words in problems[path], problems[path]
    assert len(problems) == 1, problems


@pytest.mark.parametrize("path, value, ok", [
    ("inference.output_folder", "preds/v2", True), ("inference.output_folder", "./x", True),
    ("inference.output_folder", "..x/y", True), ("inference.output_folder", "a/../b", False),
    ("inference.output_folder", "..", False), ("inference.output_folder", "/abs", False),
    ("inference.output_folder", "a\\b", False), ("inference.output_folder", "./", False),
    ("inference.output_folder", "C:x", False), ("inference.output_folder", "a\nb", False)])
def test_folder_schema_pattern_agrees_with_its_check(path, value, ok):
    """What the JSON Schema's pattern accepts (an editor's check) is what dlsuite accepts."""
    import re
    schema = config_json_schema(get_registry())
    node, data = schema, {"seed": -1}
    for key in path.split("."):
        node = node["properties"][key]
        node = schema["$defs"][node["$ref"].split("/")[-1]] if "$ref" in node else node
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    assert bool(re.search(node["pattern"], value)) is ok
    assert (f"$.{path}" not in problems_of(data)) is ok


@pytest.mark.parametrize("folder, first", [("./checkpoints", "checkpoints"),
                                           ("report/test", "report"), ("test", "test")])
def test_predictions_never_mix_with_the_runs_own_files(folder, first):
    """Refused for a run about to start (paths checked: config validate, run, train); a
    trained run's own config reopened (predict, tune) is not refused for it."""
    data = {"inference": {"output_folder": folder}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, get_registry())
    problems = dict(info.value.problems)
    assert problems["$.inference.output_folder"].startswith(
        f"{first!r} is one of the run's own files or folders")
    parse_config(data, get_registry(), check_paths=False)


def test_pools_beyond_the_range_does_not_advise_a_patch_size():
    problems = problems_of({"model": {"name": "unet", "pools": 9}})
    assert list(problems) == ["$.model.pools"] and "patch" not in problems["$.model.pools"]


def test_all_problems_at_once_type_key_range_and_cross_field_in_one_section():
    problems = problems_of({
        "datagen": {"batch_size": 0.5, "patch_size": [0, 64], "patches_per_image": 0,
                    "normalization": {"name": "percentile", "low": 50, "high": 10},
                    "cahce": True},
        "optimizer": {"learning_rate": -1, "clipnorm": "x"},
        "model": {"name": "unet", "pools": 0, "dropout": 2.0, "n_filtres": 3},
    })
    assert problems == {
        "$.datagen.patch_size[0]": "must be > 0, got 0",
        "$.datagen.batch_size": "expected an integer, got number 0.5",
        "$.datagen.patches_per_image": "must be > 0, got 0",
        "$.datagen.normalization.high": "must be greater than low (50), got 10",
        "$.datagen.cahce": "unknown key; did you mean cache?",
        "$.optimizer.learning_rate": "must be > 0, got -1",
        "$.optimizer.clipnorm": "expected a number, got string 'x'",
        "$.model.pools": "must be in [1, 8], got 0",
        "$.model.dropout": "must be in [0, 1), got 2",
        "$.model.n_filtres": "unknown key; did you mean n_filters?",
    }


def test_a_null_is_named_once():
    """``metrics: null`` read "expected an array, got null None"."""
    assert problems_of({"metrics": None}) == {"$.metrics": "expected an array, got null"}
    assert problems_of({"seed": "x"})["$.seed"].endswith("got string 'x'")


def test_cross_field_check_is_skipped_when_the_other_field_has_a_type_error():
    problems = problems_of({"datagen": {"normalization": {"name": "percentile", "low": "x",
                                                          "high": 1}}})
    assert list(problems) == ["$.datagen.normalization.low"]


def test_cross_field_check_runs_against_a_default():
    problems = problems_of({"datagen": {"normalization": {"name": "percentile", "low": 99.5}}})
    assert problems == {"$.datagen.normalization.high":
                        "must be greater than low (99.5), got 99.1"}


def test_valid_edges_pass():
    parse_config({"model": {"name": "unet", "pools": 1, "dropout": 0.0},
                  "datagen": {"patch_size": [2, 2],
                              "normalization": {"name": "percentile", "low": 0, "high": 100}},
                  "seed": None, "optimizer": {"weight_decay": 0.0}}, check_paths=False)


# ---- the receptive-field walk is bounded ----------------------------------------------------------
def test_receptive_field_is_closed_form_and_fast_at_any_depth():
    from types import SimpleNamespace

    from dlsuite_plugins.architectures import geometry as g
    from dlsuite_plugins.architectures.params import UNetParams

    start = time.perf_counter()
    deep = UNetParams(pools=8)
    assert g.unet_receptive_field(deep) > g.unet_receptive_field(attrs.evolve(deep, pools=7))
    with attrs.validators.disabled():  # far beyond what validation lets through
        assert g.unet_receptive_field(UNetParams(pools=60)) > 2**60
    # a billion recurrent 3x3 kernels: each adds one pixel per side, no list of a billion ops
    lstm = SimpleNamespace(kernel_size=3, time_windows=10**9, pools=3)
    assert g.unet_lstm_receptive_field(lstm) > 2 * 10**9
    # a hang guard, not a speed measurement: a loop over the billion kernels takes minutes
    assert time.perf_counter() - start < 30


def _brute_force(ops) -> int:
    """The former walk over every alignment of the output pixel (reference)."""
    period = 1
    for op in ops:
        period *= op[3] if op[0] == "conv" else op[1]
    radius = 0
    for p in range(period):
        a = b = p
        for op in reversed(ops):
            if op[0] == "conv":
                _, k, d, s = op
                k_eff = (k - 1) * d + 1
                before = max(k_eff - s, 0) // 2
                a, b = a * s - before, b * s - before + k_eff - 1
            elif op[0] == "pool":
                a, b = a * op[1], b * op[1] + op[1] - 1
            else:
                a, b = a // op[1], b // op[1]
        radius = max(radius, p - a, b - p)
    return 2 * radius + 1


@st.composite
def encoder_decoders(draw):
    conv = st.tuples(st.just("conv"), st.integers(1, 7), st.integers(1, 3), st.just(1))
    factors = draw(st.lists(st.sampled_from([2, 3]), max_size=3))
    ops = []
    for f in factors:
        ops += draw(st.lists(conv, max_size=2))
        ops.append(draw(st.sampled_from([("pool", f), ("conv", 3, 1, f), ("conv", 2, 1, f)])))
    ops += draw(st.lists(conv, max_size=2))
    for f in draw(st.permutations(factors)):
        ops.append(("up", f))
        ops += draw(st.lists(conv, max_size=2))
    return ops


@settings(max_examples=300, deadline=None)
@given(encoder_decoders())
def test_closed_form_receptive_field_equals_the_walk_over_every_alignment(ops):
    from dlsuite_plugins.architectures.geometry import walk_receptive_field

    assert walk_receptive_field(ops) == _brute_force(ops)


@pytest.mark.parametrize("name", ["unet", "categorical_unet", "categorical_unet_fc_dil",
                                  "mobilenet_mobileunet", "mobilenet_mobileunet_lstm",
                                  "unet_lstm"])
def test_builtin_receptive_fields_equal_the_walk_over_every_alignment(name):
    from dlsuite_plugins.architectures import geometry as g

    spec = get_registry().resolve("architectures", name).spec
    for pools in (1, 2, 3):
        params = attrs.evolve(spec.params(), pools=pools)
        if hasattr(params, "time_windows"):
            params = attrs.evolve(params, time_windows=2)
        captured = []
        original = g.walk_receptive_field
        g.walk_receptive_field = lambda ops: captured.append(list(ops)) or original(ops)
        try:
            got = spec.receptive_field(params)
        finally:
            g.walk_receptive_field = original
        ops = [op[:4] for op in captured[0] for _ in range(op[4] if len(op) > 4 else 1)]
        assert got == _brute_force(ops), (name, pools)


# ---- JSON Schema ------------------------------------------------------------------------------
def test_json_schema_shows_the_ranges():
    schema = config_json_schema(get_registry())
    props = schema["properties"]
    assert props["optimizer"]["properties"]["learning_rate"]["exclusiveMinimum"] == 0
    assert props["train"]["properties"]["epochs"]["exclusiveMinimum"] == 0
    patch = props["datagen"]["properties"]["patch_size"]
    assert all(item["exclusiveMinimum"] == 0 for item in patch["prefixItems"])
    steps = props["datagen"]["properties"]["steps_per_epoch"]["anyOf"]
    assert {"type": "integer", "exclusiveMinimum": 0} in steps and {"type": "null"} in steps
    update = props["train"]["properties"]["tensorboard"]["properties"]["update_freq"]["anyOf"]
    assert {"enum": ["epoch", "batch"]} in update  # no numeric keyword on the string branch
    assert props["schema_version"]["enum"] == [1]

    def variant(section, name):
        return next(v for v in section["anyOf"]
                    if v.get("properties", {}).get("name", {}).get("const") == name)

    unet = variant(props["model"], "unet")["properties"]
    assert (unet["pools"]["minimum"], unet["pools"]["maximum"]) == (1, 8)
    assert (unet["dropout"]["minimum"], unet["dropout"]["exclusiveMaximum"]) == (0, 1)
    mobile = variant(props["model"], "mobilenet_mobileunet")["properties"]
    assert mobile["alpha"]["enum"] == [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]
    percentile = variant(props["datagen"]["properties"]["normalization"], "percentile")
    assert percentile["properties"]["high"]["maximum"] == 100


def test_json_schema_agrees_with_validation_on_the_bounds():
    """Every value at a schema bound is accepted or refused as the keyword says."""
    schema = config_json_schema(get_registry())
    lr = schema["properties"]["optimizer"]["properties"]["learning_rate"]
    assert "learning_rate" in str(problems_of({"optimizer": {"learning_rate":
                                                             lr["exclusiveMinimum"]}}))
    parse_config({"optimizer": {"learning_rate": lr["exclusiveMinimum"] + 1e-9}},
                 check_paths=False)


# ---- plugin parameters with attrs validators (issue 14) ---------------------------------------
@attrs.frozen
class _ValidatedParams:
    depth: int = param(2, help="plain attrs validator", validator=attrs.validators.ge(1))
    mode: str = param("a", help="attrs in_", validator=attrs.validators.in_(["a", "b"]))
    width: float = param(1.0, help="dlsuite check", validator=positive())
    low: float = param(0.0, help="cross-field base", validator=in_range(0, 1))
    high: float = param(1.0, help="cross-field", validator=[in_range(0, 1), greater_than("low")])


class _Plugin:
    @hookimpl
    def dlsuite_architectures(self):
        return [ArchitectureSpec(name="validated_net", factory="nowhere:build",
                                 params=_ValidatedParams, size_multiple=lambda p: 2 ** p.depth),
                ArchitectureSpec(name="fragile_net", factory="nowhere:build",
                                 params=_ValidatedParams,
                                 size_multiple=lambda p: 2 // (p.depth - 3))]


@pytest.fixture(scope="module")
def registry_with_validated_plugin():
    import dlsuite_plugins.architectures.plugin as a
    import dlsuite_plugins.datagen.plugin as d
    import dlsuite_plugins.losses.plugin as lo
    import dlsuite_plugins.postprocess.plugin as po

    return Registry.from_plugins([a, d, lo, po, _Plugin()],
                                 ["architectures", "datagen", "losses", "postprocess",
                                  "validated"])


def test_plugin_validators_report_at_the_field_path_with_the_other_errors(
        registry_with_validated_plugin):
    problems = problems_of({"model": {"name": "validated_net", "depth": 0, "mode": "c",
                                      "width": -1, "low": 0.5, "high": 0.2},
                            "optimizer": {"learning_rate": 0}}, registry_with_validated_plugin)
    assert set(problems) == {"$.model.depth", "$.model.mode", "$.model.width", "$.model.high",
                             "$.optimizer.learning_rate"}, problems
    assert "'depth' must be >= 1: 0" == problems["$.model.depth"]
    assert "'mode' must be in ['a', 'b']" in problems["$.model.mode"]
    assert problems["$.model.width"] == "must be > 0, got -1"
    assert problems["$.model.high"] == "must be greater than low (0.5), got 0.2"


def test_plugin_size_multiple_feeds_the_patch_rule(registry_with_validated_plugin):
    problems = problems_of({"model": {"name": "validated_net", "depth": 5},
                            "datagen": {"patch_size": [48, 48]}}, registry_with_validated_plugin)
    assert "divisible by 32" in problems["$.datagen.patch_size"]
    assert "$.model.pools" in problems["$.datagen.patch_size"]  # it has no pools: generic hint


def test_a_failing_plugin_geometry_is_a_config_error_not_a_crash(registry_with_validated_plugin):
    problems = problems_of({"model": {"name": "fragile_net", "depth": 3}},
                           registry_with_validated_plugin)
    assert "ZeroDivisionError" in problems["$.model"], problems


def test_checks_raise_a_dlsuite_input_error_naming_the_field_in_python():
    from dlsuite_plugins.architectures.params import UNetParams

    with pytest.raises(CheckError, match=r"pools must be in \[1, 8\], got 9") as info:
        UNetParams(pools=9)
    assert isinstance(info.value, DlsuiteInputError) and isinstance(info.value, ValueError)


# ---- property: a random valid config with one value pushed out of range ------------------------
REGISTRY = get_registry()
_BUILTIN_ARCHS = ["unet", "categorical_unet", "categorical_unet_transpose", "categorical_unet_fc",
                  "categorical_unet_fc_dil", "mobilenet_mobileunet", "mobilenet_mobileunet_lstm",
                  "unet_lstm"]


def _names(kind):
    return sorted(n for n in REGISTRY.names(kind) if ":" not in n)


def checked_fields(config: Config):
    """(json_path, attrs field, owner class) of every field of ``config`` (plugin params
    included) carrying a range, choice, non-empty or per-item check."""
    out = []

    def walk(obj, path):
        if isinstance(obj, Choice):
            walk(obj.params, path)
            return
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                if isinstance(item, Choice):
                    walk(item, f"{path}[{i}]")
            return
        if not attrs.has(type(obj)):
            return
        attrs.resolve_types(type(obj))
        for field in attrs.fields(type(obj)):
            sub = f"{path}.{field.name}"
            if any(isinstance(c, (_Range, _OneOf, _NonEmpty, _MaxLength, _Excludes, _Each,
                                  _RelativePath)) for c in checks_of(field)):
                out.append((sub, field))
            walk(getattr(obj, field.name), sub)

    walk(config, "$")
    return out


def _steps(path):
    return [int(s) if s.isdigit() else s
            for s in path[2:].replace("[", ".").replace("]", "").split(".")]


def _get(data, path):
    for step in _steps(path):
        data = data[step]
    return data


def _set(data, path, value):
    steps = _steps(path)
    node = data
    for step in steps[:-1]:
        node = node[step]
    node[steps[-1]] = value


def _bad_values(field):
    """Values the field's checks refuse: ``(subpath, value)``; subpath ``[0]`` puts the value
    as the first item of the list."""
    args = typing.get_args(field.type)
    integer = field.type is int or int in args
    floating = field.type is float or float in args
    out = []
    for check in checks_of(field):
        if isinstance(check, _Range):
            step = 1 if integer else 0.25
            if check.lo is not None:
                out.append(("", check.lo if check.lo_open else check.lo - step))
            if check.hi is not None:
                out.append(("", check.hi if check.hi_open else check.hi + step))
        elif isinstance(check, _OneOf):
            out.append(("", max(check.values) + 1))
        elif isinstance(check, _NonEmpty):
            out.append(("", [] if typing.get_origin(field.type) is list else " "))
        elif isinstance(check, _RelativePath):
            out += [("", "../x"), ("", "/x")]
        elif isinstance(check, _MaxLength):
            out.append(("", "x" * (check.limit + 1)))
        elif isinstance(check, _Excludes):
            out.append(("", f"a{check.chars[-1]}b"))
        elif isinstance(check, _Each):
            for inner in check.checks:
                if isinstance(inner, _Range) and inner.lo is not None:
                    out.append(("[0]", inner.lo if inner.lo_open else inner.lo - 1))
                elif isinstance(inner, _NonEmpty):
                    out.append(("[0]", ""))
                elif isinstance(inner, _MaxLength):
                    out.append(("[0]", "x" * (inner.limit + 1)))
    if floating:
        out += [("", float("nan")), ("", float("inf")), ("", -float("inf"))]
    return out


@st.composite
def valid_configs(draw):
    """A valid config: random plugins, random valid patch, random in-range values (a value
    that a cross-field rule refuses is put back to its default)."""
    arch = draw(st.sampled_from(_BUILTIN_ARCHS))
    spec = REGISTRY.resolve("architectures", arch).spec
    fields = attrs.fields_dict(spec.params)
    pools_check = next(c for c in checks_of(fields["pools"]) if isinstance(c, _Range))
    pools = draw(st.integers(int(pools_check.lo), min(int(pools_check.hi), 5)))
    model = {"name": arch, "pools": pools, "n_filters": draw(st.integers(1, 64)),
             "dropout": draw(st.floats(0, 0.99))}
    m = spec.size_multiple(attrs.evolve(spec.params(), pools=pools))
    data = {
        "model": model,
        "loss": draw(st.sampled_from(_names("losses"))),
        "datagen": {
            "patch_size": [m * draw(st.integers(1, 4)), m * draw(st.integers(1, 4))],
            "batch_size": draw(st.integers(1, 16)),
            "normalization": {"name": draw(st.sampled_from(_names("normalizers")))},
            "sampling": draw(st.sampled_from(_names("samplers"))),
            "target": draw(st.sampled_from(_names("targets"))),
            "augmentation": draw(st.lists(st.sampled_from(_names("augmentations")), max_size=3)),
        },
        "optimizer": {"learning_rate": draw(st.floats(1e-6, 1.0))},
        "train": {"epochs": draw(st.integers(1, 500))},
        "postprocess": ["argmax"] + draw(st.lists(st.sampled_from(
            [n for n in _names("postprocessors") if n != "argmax"]), max_size=3)),
        "inference": {"halo": draw(st.sampled_from(["auto", 0, 8]))},
    }
    if data["datagen"]["normalization"]["name"] == "percentile":
        low = draw(st.floats(0, 50))
        data["datagen"]["normalization"].update(low=low, high=draw(st.floats(low + 1, 100)))
    try:
        config = parse_config(data, REGISTRY, check_paths=False).config
    except ConfigError as exc:  # a cross-section rule: a value that passes instead
        for path, _ in exc.problems:
            if path == "$.inference.halo":  # no core left in a static model's tile
                data["inference"]["halo"] = 0
            if path == "$.loss":  # the target lacks a channel the loss needs
                data["loss"] = "sparse_cce"
            if path.startswith("$.postprocess["):  # a step that cannot work there (typed
                # chains): keep the steps before it
                data["postprocess"] = data["postprocess"][:int(path[len("$.postprocess["):-1])]
        config = parse_config(data, REGISTRY, check_paths=False).config
    return unstructure_config(config, REGISTRY), config


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_configs(), st.data())
def test_one_value_pushed_out_of_range_is_refused_at_its_path(base, data):
    json_config, config = base
    parse_config(json_config, REGISTRY, check_paths=False)  # the base is valid
    fields = checked_fields(config)
    path, field = data.draw(st.sampled_from(fields), label="field")
    bad = _bad_values(field)
    assert bad, (path, field)
    subpath, value = data.draw(st.sampled_from(bad), label="value")
    mutated = copy.deepcopy(json_config)
    if subpath:  # the first item of the list (a one-item list if it was null or empty)
        current = _get(mutated, path)
        value = [value] + list(current or [])[1:]
    _set(mutated, path, value)
    with pytest.raises(ConfigError) as info:
        parse_config(mutated, REGISTRY, check_paths=False)
    paths = [p for p, _ in info.value.problems]
    assert path + subpath in paths, (path + subpath, value, info.value.problems)


def test_every_checked_field_of_the_builtins_has_a_refused_value():
    """The property test can push every checked field: each yields at least one bad value."""
    for name in _BUILTIN_ARCHS:
        config = parse_config({"model": name, "datagen": {"patch_size": [256, 256]}},
                              REGISTRY, check_paths=False).config
        for path, field in checked_fields(config):
            assert _bad_values(field), path
