"""The plugin registry with real distributions on sys.path (no mocks of importlib)."""

from __future__ import annotations

import pytest

from dlsuite.errors import PluginError
from dlsuite.registry import PluginFailure, Registry

ARCH_PLUGIN = """
import attrs
from dlsuite import hookimpl, param, ArchitectureSpec

@attrs.frozen
class Params:
    width: int = param(8, help="channels")

@hookimpl
def dlsuite_architectures():
    return [ArchitectureSpec(name="{name}", factory="{module}_impl:build", params=Params,
                             description="from {dist}")]
"""


def add_arch(fake_site, dist, module, name="tiny_net", version="1.0"):
    fake_site(dist, version, {module: module},
              {module: ARCH_PLUGIN.format(name=name, module=module, dist=dist),
               f"{module}_impl": "def build(params, *, n_classes, input_shape=None):\n"
                                 "    return ('built', params.width, n_classes)\n"})


def test_builtins_come_from_entry_points_of_the_dlsuite_distribution():
    reg = Registry.from_entry_points()
    builtin = [p for p in reg.plugins if p.plugin.startswith("dlsuite.")]
    assert {p.plugin for p in builtin} >= {"dlsuite.architectures", "dlsuite.losses",
                                           "dlsuite.datagen", "dlsuite.postprocess"}
    assert all(p.dist == "dlsuite" for p in builtin)


def test_third_party_distribution_is_discovered_and_factory_is_lazy(fake_site):
    add_arch(fake_site, "acme-nets", "acme_nets")
    reg = Registry.from_entry_points()
    entry = reg.resolve("architectures", "tiny_net")
    assert (entry.plugin, entry.dist, entry.version) == ("acme_nets", "acme-nets", "1.0")
    import sys

    assert "acme_nets_impl" not in sys.modules  # listing did not import the factory
    build = entry.load()
    # called with the parameters; what it returns is checked (this fake returns no model)
    with pytest.raises(PluginFailure, match=r"architecture 'tiny_net' raised TypeError: "
                                            r"returned tuple \('built', 3, 2\), not a keras"):
        build(entry.spec.params(width=3), n_classes=2)


def test_duplicate_names_error_names_both_and_qualified_name_resolves(fake_site):
    add_arch(fake_site, "acme-nets", "acme_nets")
    add_arch(fake_site, "other-nets", "other_nets", version="2.3")
    reg = Registry.from_entry_points()
    with pytest.raises(PluginError) as info:
        reg.resolve("architectures", "tiny_net")
    msg = str(info.value)
    for needle in ("acme_nets", "acme-nets", "other_nets", "other-nets 2.3",
                   "'acme_nets:tiny_net'", "'other_nets:tiny_net'"):
        assert needle in msg
    assert reg.resolve("architectures", "other_nets:tiny_net").dist == "other-nets"
    assert reg.resolve("architectures", "acme-nets:tiny_net").plugin == "acme_nets"


def test_broken_plugin_is_recorded_and_only_fatal_when_used(fake_site):
    fake_site("broken-dist", "0.1", {"broken_mod": "broken_mod"},
              {"broken_mod": "raise RuntimeError('boom at import')\n"})
    add_arch(fake_site, "acme-nets", "acme_nets")
    reg = Registry.from_entry_points()
    assert [b.plugin for b in reg.broken] == ["broken_mod"]
    assert "boom at import" in reg.broken[0].error and reg.broken[0].dist == "broken-dist"
    assert reg.resolve("architectures", "tiny_net").dist == "acme-nets"  # unrelated use works
    with pytest.raises(PluginError, match="broken_mod.*boom at import"):
        reg.resolve("architectures", "fancy_net")


def test_misspelled_hook_is_reported_as_broken(fake_site):
    fake_site("typo-dist", "0.1", {"typo_mod": "typo_mod"},
              {"typo_mod": "from dlsuite import hookimpl\n"
                           "@hookimpl\ndef dlsuite_architecture():\n    return []\n"})
    reg = Registry.from_entry_points()
    broken = {b.plugin: b.error for b in reg.broken}
    assert "dlsuite_architecture" in broken["typo_mod"]
    assert "typo_mod" not in {p.plugin for p in reg.plugins}


def test_unknown_name_suggests_the_closest():
    reg = Registry.from_entry_points()
    with pytest.raises(PluginError, match="did you mean 'unet'"):
        reg.resolve("architectures", "unte")


def test_failing_factory_import_names_plugin(fake_site):
    fake_site("lazy-dist", "0.2", {"lazy_mod": "lazy_mod"},
              {"lazy_mod": ARCH_PLUGIN.format(name="lazy_net", module="lazy_mod", dist="x"),
               "lazy_mod_impl": "import not_a_module_anywhere\n"})
    entry = Registry.from_entry_points().resolve("architectures", "lazy_net")
    with pytest.raises(PluginError, match="lazy_mod.*lazy-dist.*not_a_module_anywhere"):
        entry.load()


def test_environment_switches(fake_site, monkeypatch):
    add_arch(fake_site, "acme-nets", "acme_nets")
    monkeypatch.setenv("DLSUITE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = Registry.from_entry_points()
    assert "tiny_net" not in reg.tables["architectures"]
    assert "unet" in reg.tables["architectures"]  # built-ins still load
    monkeypatch.delenv("DLSUITE_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("DLSUITE_BLOCK_PLUGINS", "acme-nets")
    assert "tiny_net" not in Registry.from_entry_points().tables["architectures"]
    monkeypatch.setenv("DLSUITE_BLOCK_PLUGINS", "acme_nets")
    assert "tiny_net" not in Registry.from_entry_points().tables["architectures"]


def test_isolated_registry_from_plugin_objects():
    import attrs

    from dlsuite import LossSpec, hookimpl

    class MyLoss:
        @hookimpl
        def dlsuite_losses(self):
            return [LossSpec("my_loss", factory=lambda params, n_classes: loss)]

    def loss(y_true, y_pred):
        return 0.0

    reg = Registry.from_plugins([MyLoss()], ["mine"])
    assert reg.names("losses") == ["my_loss", "mine:my_loss"]
    assert reg.resolve("losses", "my_loss").load()(None, n_classes=2) is loss
    assert reg.tables["architectures"] == {}
    assert attrs.has(type(reg.resolve("losses", "my_loss").spec))
