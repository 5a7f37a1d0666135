"""Every registered architecture (built-in or installed third-party) passes the generic
architecture contract of ``dlsuite.testing``: defaults build, logits of the input size for two
sizes and two class counts, T=3 and T=5 windows for temporal models, ``.keras`` round trip,
training steps lower the loss.

One contract class is bound to each entry of the process registry; models are kept tiny with
per-name parameter overrides (unknown third-party names run with their defaults).
"""

from __future__ import annotations

import re

from dlsuite.registry import get_registry
from dlsuite.testing import ArchitectureContract, tiny_params_by_architecture

# tiny overrides per architecture name (a few thousand parameters at 32 px)
TINY = {**tiny_params_by_architecture(),
        "residual_unet": {"n_filters": 4, "pools": 2}}  # the example third-party plugin


def _bind(registry, entry) -> type:
    """A test class running :class:`ArchitectureContract` on one registry entry."""
    ident = re.sub(r"\W", "_", f"{entry.plugin}__{entry.name}")
    return type(f"TestContract_{ident}", (ArchitectureContract,), {
        "plugin": registry.pm.get_plugin(entry.plugin),
        "name": entry.name,
        "params": TINY.get(entry.name, {}),
    })


def _bind_all() -> dict[str, type]:
    registry = get_registry()
    classes = [_bind(registry, e) for e in registry.entries("architectures")]
    assert classes, "no architecture registered"
    return {cls.__name__: cls for cls in classes}


globals().update(_bind_all())


def test_every_builtin_architecture_is_bound():
    """The registry-driven binding really covers the built-ins (a broken entry-point table
    would otherwise silently run zero contracts)."""
    bound = {cls.name for name, cls in globals().items() if name.startswith("TestContract_")}
    assert set(TINY) - {"residual_unet"} <= bound
