"""Contract test classes: what every plugin of a kind must do.

Each class is a pytest test class (its name does not start with ``Test`` so it is not
collected by itself); subclass it with ``plugin``, ``name`` and ``params`` set.

The classes live in one module per kind group (:mod:`~dlsuite.testing.contract_base`,
:mod:`~dlsuite.testing.architecture_contract`, :mod:`~dlsuite.testing.loss_metric_contracts`,
:mod:`~dlsuite.testing.data_contracts`, :mod:`~dlsuite.testing.postprocessor_contract`) and
are re-exported here.
"""

from __future__ import annotations

from .architecture_contract import ArchitectureContract
from .contract_base import PluginContract, plugin_registry
from .data_contracts import (AugmentationContract, NormalizerContract, SamplerContract,
                             TargetContract)
from .loss_metric_contracts import LossContract, MetricContract
from .postprocessor_contract import PostprocessorContract

__all__ = ["plugin_registry", "PluginContract", "ArchitectureContract", "LossContract",
           "MetricContract", "NormalizerContract", "SamplerContract", "TargetContract",
           "AugmentationContract", "PostprocessorContract"]
