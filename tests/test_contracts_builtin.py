"""Every built-in non-architecture plugin passes the contract class of its kind from
``dlsuite.testing``, the same classes third-party authors run.

One contract class is bound to each entry of a registry holding dlsuite's built-in plugin
modules (losses, metrics, normalizers, samplers, targets, augmentations, post-processors);
``DATA`` holds the few per-plugin class attributes a contract needs beyond its defaults.
Architectures: tests/test_architecture_contract_all.py binds ``ArchitectureContract`` the same
way to every registered architecture.
"""

from __future__ import annotations

import re

import dlsuite_plugins.datagen.plugin as datagen_plugin
import dlsuite_plugins.losses.plugin as loss_plugin
import dlsuite_plugins.postprocess.plugin as post_plugin
from dlsuite.registry import Registry
from dlsuite.testing import (AugmentationContract, LossContract, MetricContract,
                             NormalizerContract, PostprocessorContract, SamplerContract,
                             TargetContract)

CONTRACTS = {
    "losses": LossContract,
    "metrics": MetricContract,
    "normalizers": NormalizerContract,
    "samplers": SamplerContract,
    "targets": TargetContract,
    "augmentations": AugmentationContract,
    "postprocessors": PostprocessorContract,
}
PLUGINS = [loss_plugin, datagen_plugin, post_plugin]

# (kind, name) -> contract class attributes other than plugin and name; a list binds one
# class per variant
DATA = {
    ("losses", "binary_cce"): [{"n_classes": 1}, {"n_classes": 2}],
    ("losses", "l1l2"): {"n_classes": 1, "perfect_output": "target"},
    ("metrics", "jaccard"): [{}, {"n_classes": 3}],
    ("metrics", "dice"): [{}, {"n_classes": 3}],
    ("metrics", "accuracy"): [{}, {"n_classes": 3}],
    ("postprocessors", "argmax"): {"input_kind": "probabilities"},
    ("postprocessors", "threshold"): {"input_kind": "probabilities"},
    ("postprocessors", "distance_watershed"): {"input_kind": "distance"},
}


def _bind(registry: Registry, kind: str, entry) -> list[type]:
    """Test classes running the contract of ``kind`` on one registry entry (one per variant
    of its ``DATA`` row)."""
    data = DATA.get((kind, entry.name), {})
    variants = data if isinstance(data, list) else [data]
    ident = re.sub(r"\W", "_", f"{kind}__{entry.name}")
    return [type(f"TestContract_{ident}" + (f"_{i}" if len(variants) > 1 else ""),
                 (CONTRACTS[kind],),
                 {"plugin": registry.pm.get_plugin(entry.plugin), "name": entry.name, **extra})
            for i, extra in enumerate(variants)]


def _bind_all() -> dict[str, type]:
    registry = Registry.from_plugins(PLUGINS, [p.__name__ for p in PLUGINS])
    classes = [cls for kind in CONTRACTS for entry in registry.entries(kind)
               for cls in _bind(registry, kind, entry)]
    return {cls.__name__: cls for cls in classes}


BOUND = _bind_all()
globals().update(BOUND)


def test_every_builtin_plugin_is_bound():
    """All 40 built-in non-architecture plugins run a contract (a broken table would otherwise
    silently run fewer), and every per-plugin data row names a real plugin."""
    bound = {(cls.kind, cls.name) for cls in BOUND.values()}
    assert len(bound) == 40
    assert set(DATA) <= bound
    counts = {kind: sum(k == kind for k, _ in bound) for kind in CONTRACTS}
    assert counts == {"losses": 10, "metrics": 3, "normalizers": 4, "samplers": 3,
                      "targets": 6, "augmentations": 5, "postprocessors": 9}
