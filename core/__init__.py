"""dlsuite: plugin-based deep-learning segmentation of 2D microscopy images and videos.

Importing this package is cheap and never imports TensorFlow; the plugin-facing surface is
:mod:`dlsuite.specs` and :mod:`dlsuite.errors` (both re-exported here), the public Python API
is :mod:`dlsuite.api`.
"""

from .errors import ConfigError, DataError, DlsuiteInputError, PluginError
from .specs import (
    ArchitectureSpec,
    AugmentationSpec,
    HeadSpec,
    LossSpec,
    MetricSpec,
    Needs,
    NoParams,
    NormalizerSpec,
    PostprocessorSpec,
    SamplerSpec,
    TargetSpec,
    Tunable,
    hookimpl,
    param,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "hookimpl",
    "param",
    "NoParams",
    "ArchitectureSpec",
    "LossSpec",
    "MetricSpec",
    "NormalizerSpec",
    "SamplerSpec",
    "TargetSpec",
    "AugmentationSpec",
    "PostprocessorSpec",
    "DlsuiteInputError",
    "DataError",
    "ConfigError",
    "PluginError",
    "HeadSpec",
    "Tunable",
    "Needs",
]
