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

# (kind, name) -> contract class attributes other than plugin and name
DATA = {
    ("losses", "binary_cce"): {"n_classes": 1},
    ("losses", "l1l2"): {"n_classes": 1, "perfect_output": "target"},
    ("postprocessors", "argmax"): {"input_kind": "probabilities"},
    ("postprocessors", "threshold"): {"input_kind": "probabilities"},
}


def _bind(registry: Registry, kind: str, entry) -> type:
    """A test class running the contract of ``kind`` on one registry entry."""
    ident = re.sub(r"\W", "_", f"{kind}__{entry.name}")
    return type(f"TestContract_{ident}", (CONTRACTS[kind],), {
        "plugin": registry.pm.get_plugin(entry.plugin),
        "name": entry.name,
        **DATA.get((kind, entry.name), {}),
    })


def _bind_all() -> dict[str, type]:
    registry = Registry.from_plugins(PLUGINS, [p.__name__ for p in PLUGINS])
    classes = [_bind(registry, kind, entry)
               for kind in CONTRACTS for entry in registry.entries(kind)]
    return {cls.__name__: cls for cls in classes}


BOUND = _bind_all()
globals().update(BOUND)


def test_every_builtin_plugin_is_bound():
    """All 34 built-in non-architecture plugins run a contract (a broken table would otherwise
    silently run fewer), and every per-plugin data row names a real plugin."""
    bound = {(cls.kind, cls.name) for cls in BOUND.values()}
    assert len(bound) == 34
    assert set(DATA) <= bound
    counts = {kind: sum(k == kind for k, _ in bound) for kind in CONTRACTS}
    assert counts == {"losses": 9, "metrics": 3, "normalizers": 4, "samplers": 2,
                      "targets": 4, "augmentations": 4, "postprocessors": 8}
