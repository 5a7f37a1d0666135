"""Entry-point module of the built-in losses plugins: hook implementations returning specs.

Importing this module never imports TensorFlow: the factories are lazy
``"module:function"`` strings pointing at :mod:`dlsuite_plugins.losses.losses` and
:mod:`dlsuite_plugins.losses.metrics`.
"""

from dlsuite import LossSpec, MetricSpec, hookimpl

from .catalog import LOSSES, METRICS

_LOSS_MODULE = "dlsuite_plugins.losses.losses"
_METRIC_MODULE = "dlsuite_plugins.losses.metrics"


@hookimpl
def dlsuite_losses():
    """The built-in losses (see :data:`dlsuite_plugins.losses.catalog.LOSSES`)."""
    return [
        LossSpec(
            name=info.name,
            factory=f"{_LOSS_MODULE}:build_{info.name}",
            params=info.params,
            description=info.description,
            target_channels=info.target_channels,
        )
        for info in LOSSES.values()
    ]


@hookimpl
def dlsuite_metrics():
    """The built-in metrics (see :data:`dlsuite_plugins.losses.catalog.METRICS`)."""
    return [
        MetricSpec(
            name=info.name,
            factory=f"{_METRIC_MODULE}:build_{info.name}",
            params=info.params,
            description=info.description,
            mode=info.mode,
        )
        for info in METRICS.values()
    ]
