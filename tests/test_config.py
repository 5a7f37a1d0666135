"""Typed config: defaults, plugin schemas, path-precise errors, and a property test."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from dlsuite.config import Config, parse_config
from dlsuite.config.converter import unstructure_config
from dlsuite.config.jsonschema import config_json_schema
from dlsuite.errors import ConfigError
from dlsuite.registry import get_registry


def parse(data):
    return parse_config(data, get_registry(), check_paths=False).config


def problems_of(data):
    with pytest.raises(ConfigError) as info:
        parse(data)
    return dict(info.value.problems)


def test_empty_config_gets_every_default_and_plugin_params():
    config = parse({})
    assert isinstance(config, Config)
    assert config.model.name == "unet" and config.model.params is not None
    assert config.loss.params is not None and all(m.params is not None for m in config.metrics)
    assert config.datagen.sampling.params is not None


def test_plugin_parameters_are_structured_with_the_plugin_schema():
    config = parse({"model": {"name": "unet", "n_filters": 4}})
    assert config.model.params.n_filters == 4
    assert type(config.model.params) is get_registry().resolve("architectures", "unet").spec.params


def test_round_trip_through_json():
    config = parse({"model": {"name": "unet", "n_filters": 4}, "metrics": ["jaccard"]})
    data = json.loads(json.dumps(unstructure_config(config, get_registry())))
    assert parse(data) == config


def test_all_mistakes_are_reported_at_once_with_paths():
    problems = problems_of({
        "model": {"name": "unet", "n_filtres": 4},
        "seed": "seven",
        "datagen": {"batch_size": 1.5, "patch_size": [64]},
        "wandb": {"mode": "ofline"},
        "trian": {},
    })
    assert problems["$.model.n_filtres"] == "unknown key; did you mean n_filters?"
    assert problems["$.trian"] == "unknown key; did you mean train?"
    assert "expected an integer" in problems["$.seed"]
    assert "expected an integer" in problems["$.datagen.batch_size"]
    assert "2 items" in problems["$.datagen.patch_size"]
    assert "did you mean 'offline'" in problems["$.wandb.mode"]
    assert len(problems) == 6


def test_unknown_plugin_name_and_list_positions():
    problems = problems_of({"model": "mobilenet_mobileunet_lsmt", "metrics": ["jaccard", 4]})
    assert "did you mean 'mobilenet_mobileunet_lstm'" in problems["$.model"]
    assert "$.metrics[1]" in problems


def test_json_schema_contains_plugin_parameters():
    schema = config_json_schema(get_registry())
    variants = schema["properties"]["model"]["anyOf"]
    unet = [v for v in variants if v.get("properties", {}).get("name", {}).get("const") == "unet"]
    assert unet and "n_filters" in unet[0]["properties"]
    assert schema["additionalProperties"] is False


# ---- property test: any JSON ends in a Config or a ConfigError with paths ---------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _base() -> dict:
    return unstructure_config(parse({"model": {"name": "unet", "n_filters": 4}}), get_registry())


BASE = None


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_configs(draw):
    global BASE
    BASE = BASE or _base()
    data = copy.deepcopy(BASE)
    paths = [p for p in _paths(data) if p]
    path = draw(st.sampled_from(paths))
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    action = draw(st.sampled_from(["replace", "remove", "misspell"]))
    if action == "replace":
        parent[key] = draw(json_values)
    elif action == "remove":
        del parent[key]
    elif isinstance(parent, dict):
        pos = draw(st.integers(0, len(key)))
        parent[key[:pos] + draw(st.sampled_from("xqz_")) + key[pos:]] = parent.pop(key)
    else:
        parent[key] = draw(json_values)
    return data


def _check(data):
    try:
        config = parse(data)
    except ConfigError as exc:
        assert exc.problems and all(path.startswith("$") for path, _ in exc.problems)
    else:
        assert isinstance(config, Config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_is_a_config_or_a_config_error(data):
    _check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_mutated_valid_configs_are_a_config_or_a_config_error(data):
    _check(data)


def test_readme_config_reference_is_in_sync():
    from pathlib import Path

    from dlsuite.config.reference import END, START, markdown_reference

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split(START)[1].split(END)[0]
    assert block.strip() == markdown_reference().strip(), (
        "README config reference is stale: run python -m dlsuite.config.reference --write README.md")


def test_data_paths_are_checked_at_validation(tmp_path):
    from dlsuite.data.example import write_example_videos

    write_example_videos(tmp_path / "ex", n_videos=2, frames=3, size=32, seed=1)
    videos = tmp_path / "ex" / "videos"
    ok = parse_config({"data": {"train": str(videos), "test": str(tmp_path / "ex" / "ctc")}},
                      get_registry()).config
    assert ok.data.train == str(videos)
    (videos / "labels" / "cells_01.tif").unlink()
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"train": str(videos), "val": str(tmp_path / "missing")}},
                     get_registry())
    problems = dict(info.value.problems)
    assert "cells_01" in problems["$.data.train"]
    assert "missing" in problems["$.data.val"]


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    from dlsuite.config import load_config
    from dlsuite.data.example import write_example_videos

    write_example_videos(tmp_path / "ex", n_videos=2, frames=2, size=32, seed=1)  # batch 2
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": {"train": "ex/videos"}, "output_dir": "runs/a"}))
    config = load_config(path, get_registry()).config
    assert config.data.train == str(tmp_path / "ex" / "videos")
    assert config.output_dir == str(tmp_path / "runs" / "a")


def test_files_saved_with_a_byte_order_mark_read_as_without(tmp_path):
    """Windows editors (Notepad) save UTF-8 with a BOM: configs and post-processing chain
    files so saved are read as their text says, through the real CLI too."""
    from dlsuite.inference.chain_choice import read_chain

    config = tmp_path / "c.json"
    config.write_bytes(b"\xef\xbb\xbf" + json.dumps({"name": "bom", "seed": 3}).encode())
    proc = run_cli("config", "show", str(config), "--no-paths")
    assert proc.returncode == 0, proc.stderr
    assert '"seed": 3' in proc.stdout and '"name": "bom"' in proc.stdout
    chain = tmp_path / "chain.json"
    chain.write_bytes(b"\xef\xbb\xbf" + b'["argmax", {"name": "label"}]')
    items, source = read_chain(chain)
    assert items == ["argmax", {"name": "label"}] and source == str(chain)


def test_a_plugin_added_to_a_registry_after_a_config_was_read_through_it_is_validated():
    """Configs are structured by one converter per registry (it keeps cattrs' hooks); a plugin
    registered later is still found, with its own parameters checked by their JSON path."""
    import attrs as _attrs

    from dlsuite import LossSpec, hookimpl, param
    from dlsuite.config.converter import converter_for
    from dlsuite.registry import Registry

    registry = Registry.from_entry_points()
    assert parse_config({}, registry).config.loss.name != "late_loss"
    assert converter_for(registry) is converter_for(registry)

    @_attrs.define
    class LateParams:
        gamma: float = param(2.0, validator=_attrs.validators.ge(0))

    class Late:
        @hookimpl
        def dlsuite_losses(self):
            return [LossSpec(name="late_loss", factory="x:y", params=LateParams)]

    registry.add_plugin(Late(), "late", None, None)
    loaded = parse_config({"loss": {"name": "late_loss", "gamma": 0.5}}, registry)
    assert loaded.config.loss.params.gamma == 0.5
    with pytest.raises(ConfigError, match=r"\$\.loss\.gamma"):
        parse_config({"loss": {"name": "late_loss", "gamma": -1}}, registry)
    with pytest.raises(ConfigError, match="late_loss"):  # not in another registry
        parse_config({"loss": "late_loss"}, Registry.from_entry_points())
