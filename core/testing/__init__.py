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

``ArchitectureContract`` builds tiny models: defaults build, logits of the input size for two
class counts and two input sizes (any multiple of ``size_multiple`` must work; an architecture
that declares none must accept any size), ``T = 3`` and ``T = 5`` windows for temporal models,
``.keras`` round trip in safe mode, a few Adam steps on one tiny batch lower the loss, the
declared ``receptive_field`` is at least the measured one
(:mod:`dlsuite.inference.receptive_field`: the reach of one output pixel over every phase modulo the
size multiple; missing or raising fails too), and the model predicts in graph mode at
production shapes (``dlsuite.inference.predict_video`` on several sizes in one process: the
default 1024 px tile, a non-square size, one needing mirroring to the size multiple;
temporal videos longer and shorter than the window).
To run it on every installed architecture, bind one subclass per entry of
``dlsuite.registry.get_registry().entries("architectures")`` (dlsuite's own
``tests/test_architecture_contract_all.py`` does this; ``tests/test_contracts_builtin.py``
does the same for every other kind, with the contract classes listed below).

The other kinds: ``LossContract``, ``MetricContract`` (class attributes ``n_classes``,
``target_channels``, ``perfect_output``), ``NormalizerContract``, ``SamplerContract``,
``TargetContract``, ``AugmentationContract`` and ``PostprocessorContract`` (``input_kind``).

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
from .tiny import TINY_ARCHITECTURES, architecture_of, tiny_params_by_architecture

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
    "TINY_ARCHITECTURES",
    "architecture_of",
    "tiny_params_by_architecture",
]
