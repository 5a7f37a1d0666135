"""pluggy hook specifications of dlsuite.

Each collection hook takes no arguments and returns a list of specs of one kind (see
:mod:`dlsuite.specs`). The registry concatenates the lists of all registered plugins.
"""

from __future__ import annotations

from .specs import hookspec

# kind name -> (hook name, spec class name); the registry and the CLI iterate this table.
KINDS: dict[str, str] = {
    "architectures": "dlsuite_architectures",
    "losses": "dlsuite_losses",
    "metrics": "dlsuite_metrics",
    "normalizers": "dlsuite_normalizers",
    "samplers": "dlsuite_samplers",
    "targets": "dlsuite_targets",
    "augmentations": "dlsuite_augmentations",
    "postprocessors": "dlsuite_postprocessors",
}


@hookspec
def dlsuite_architectures():
    """Return a list of :class:`~dlsuite.specs.ArchitectureSpec`."""


@hookspec
def dlsuite_losses():
    """Return a list of :class:`~dlsuite.specs.LossSpec`."""


@hookspec
def dlsuite_metrics():
    """Return a list of :class:`~dlsuite.specs.MetricSpec`."""


@hookspec
def dlsuite_normalizers():
    """Return a list of :class:`~dlsuite.specs.NormalizerSpec`."""


@hookspec
def dlsuite_samplers():
    """Return a list of :class:`~dlsuite.specs.SamplerSpec`."""


@hookspec
def dlsuite_targets():
    """Return a list of :class:`~dlsuite.specs.TargetSpec`."""


@hookspec
def dlsuite_augmentations():
    """Return a list of :class:`~dlsuite.specs.AugmentationSpec`."""


@hookspec
def dlsuite_postprocessors():
    """Return a list of :class:`~dlsuite.specs.PostprocessorSpec`."""


@hookspec
def dlsuite_callbacks(config):
    """Return a list of extra Keras callbacks for a training run of ``config``."""


@hookspec
def dlsuite_add_commands(cli):
    """Add click commands to the ``dlsuite`` command group ``cli``."""
