"""Loss and metrics for the configured target's heads (Keras; imported by training only).

One head (every target before heads existed): the loss and metric plugins are built with
``n_classes`` exactly as before. Several heads: the loss must be a ``multi_head`` loss
(:attr:`dlsuite.specs.LossSpec.multi_head`), built with ``heads`` and ``target_channels``;
every metric plugin is built for the class head and sees only its logits
(:class:`ClassHeadMetric`), so ``jaccard``/``dice``/``accuracy`` keep their meaning.
"""

from __future__ import annotations

from typing import Any

import keras

from .errors import DlsuiteInputError
from .heads import class_head, config_heads, output_channels

__all__ = ["build_loss_and_metrics", "ClassHeadMetric", "metric_modes"]


@keras.saving.register_keras_serializable(package="dlsuite")
class ClassHeadMetric(keras.metrics.Metric):
    """A metric plugin's metric applied to the class head's channels ``[start, stop)`` of
    ``y_pred`` only (``y_true`` unchanged). Named like the wrapped metric."""

    def __init__(self, metric, start: int, stop: int, name: str | None = None, **kwargs):
        if isinstance(metric, dict):
            metric = keras.metrics.deserialize(metric)
        super().__init__(name=name or metric.name, **kwargs)
        self.metric = metric
        self.start, self.stop = int(start), int(stop)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Update the wrapped metric with the class-head logits."""
        return self.metric.update_state(y_true, y_pred[..., self.start:self.stop],
                                        sample_weight=sample_weight)

    def result(self):
        """The wrapped metric's result."""
        return self.metric.result()

    def reset_state(self):
        """Reset the wrapped metric."""
        self.metric.reset_state()

    def get_config(self) -> dict:
        """Keras config: the wrapped metric (serialized) and the channel range."""
        return {"name": self.name, "metric": keras.metrics.serialize(self.metric),
                "start": self.start, "stop": self.stop}


def metric_modes(config, registry) -> dict[str, str]:
    """``{logged name: "max" | "min"}`` for the config's metrics: whether each grows or
    shrinks as the model improves (the plugin's declared ``mode``; ``max`` when it declares
    none)."""
    return {choice.name.rpartition(":")[2]:
            getattr(registry.resolve("metrics", choice.name).spec, "mode", "max")
            for choice in config.metrics}


def _plugin(registry, kind: str, choice) -> tuple[Any, Any]:
    entry = registry.resolve(kind, choice.name)
    params = choice.params if choice.params is not None else entry.spec.params()
    return entry, params


def build_loss_and_metrics(config, registry, *, n_classes: int) -> tuple[Any, list]:
    """``(loss, metrics)`` of the config's ``loss`` and ``metrics`` plugins for the model's
    ``n_classes`` output channels (see the module docstring). Raises DlsuiteInputError when a
    multi-head target is paired with a loss that trains only the class head."""
    heads = config_heads(config, registry)
    loss_entry, loss_params = _plugin(registry, "losses", config.loss)
    metric_plugins = [_plugin(registry, "metrics", choice) for choice in config.metrics]
    if len(heads) == 1:
        loss = loss_entry.load()(loss_params, n_classes=n_classes)
        return loss, [entry.load()(params, n_classes=n_classes)
                      for entry, params in metric_plugins]
    if not getattr(loss_entry.spec, "multi_head", False):
        raise DlsuiteInputError(
            f"$.loss: loss {config.loss.name!r} trains only the class head, but target "
            f"{config.datagen.target.name!r} has heads {[h.name for h in heads]}")
    target = registry.resolve("targets", config.datagen.target.name).spec
    loss = loss_entry.load()(loss_params, n_classes=output_channels(heads), heads=heads,
                             target_channels=tuple(target.channels))
    head, channels = class_head(heads)
    metrics = [ClassHeadMetric(entry.load()(params, n_classes=head.channels),
                               channels.start, channels.stop)
               for entry, params in metric_plugins]
    return loss, metrics
