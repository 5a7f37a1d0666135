"""Entry-point module of the built-in losses plugins: hook implementations returning specs.

Importing this module never imports TensorFlow: the factories are lazy
``"module:function"`` strings pointing at :mod:`dlsuite_plugins.losses.losses` and
:mod:`dlsuite_plugins.losses.metrics`.
"""

from dlsuite import LossSpec, MetricSpec, hookimpl

from .catalog import HEAD_LOSSES, LOSSES, METRICS

_LOSS_MODULE = "dlsuite_plugins.losses.losses"
_HEADS_MODULE = "dlsuite_plugins.losses.heads_loss"
_METRIC_MODULE = "dlsuite_plugins.losses.metrics"


@hookimpl
def dlsuite_losses():
    """The built-in losses (see :data:`dlsuite_plugins.losses.catalog.LOSSES` and
    ``HEAD_LOSSES``, the multi-head ones)."""
    return [
        LossSpec(
            name=info.name,
            factory=f"{_LOSS_MODULE}:build_{info.name}",
            params=info.params,
            description=info.description,
            target_channels=info.target_channels,
        )
        for info in LOSSES.values()
    ] + [
        LossSpec(name=info.name, factory=f"{_HEADS_MODULE}:build_{info.name}",
                 params=info.params, description=info.description,
                 target_channels=info.target_channels, multi_head=True)
        for info in HEAD_LOSSES.values()
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
