"""Testing kit for plugin authors (and for dlsuite's own built-ins).

Subclass a contract class in your test module, set ``plugin`` (your entry-point module or
plugin object), ``name`` and optionally ``params`` overrides, and pytest runs the checks
dlsuite runs on its own plugins::

    from dlsuite.testing import ArchitectureContract
    import my_package.plugin

    class TestMyNet(ArchitectureContract):
        plugin = my_package.plugin
        name = "my_net"
        params = {"n_filters": 4}

The ``isolated_registry`` fixture (installed as a pytest plugin through the ``pytest11``
entry point) builds a registry holding only the plugins you pass.
"""

from .contracts import (
    ArchitectureContract,
    AugmentationContract,
    LossContract,
    MetricContract,
    NormalizerContract,
    PostprocessorContract,
    SamplerContract,
    TargetContract,
    plugin_registry,
)

__all__ = [
    "ArchitectureContract",
    "LossContract",
    "MetricContract",
    "NormalizerContract",
    "SamplerContract",
    "TargetContract",
    "AugmentationContract",
    "PostprocessorContract",
    "plugin_registry",
]
