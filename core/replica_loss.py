"""A training loss averaged correctly over the replicas of a ``tf.distribute`` strategy.

Under a strategy each replica computes the loss of its share of the batch and the gradients
are *summed* over replicas, so Keras divides each replica's loss by the number of replicas
(``scale_loss_for_distribution``) — but only when its ``Loss`` reduces a non-scalar result
itself. A loss that returns a scalar (dlsuite's built-in losses and most plugin losses: the
mean over the patch's pixels) is left unscaled: gradients come out ``replicas`` times too
large and the logged ``loss`` ``replicas`` times too high. :class:`ReplicaMeanLoss` wraps
such a loss and scales it, so a distributed step computes the loss and gradients of the
undistributed step on the same global batch.
"""

from __future__ import annotations

import keras

__all__ = ["ReplicaMeanLoss"]


def _replicas() -> int:
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


@keras.saving.register_keras_serializable(package="dlsuite")
class ReplicaMeanLoss(keras.losses.Loss):
    """``inner`` (a Keras loss or a ``(y_true, y_pred)`` function) divided by the replicas
    in sync when it returns a scalar (a non-scalar result is scaled by Keras itself);
    outside a strategy it is ``inner`` unchanged."""

    def __init__(self, inner, name: str | None = None, reduction: str = "none", dtype=None):
        if isinstance(inner, dict):
            inner = keras.saving.deserialize_keras_object(inner)
        if not isinstance(inner, keras.losses.Loss):
            inner = keras.losses.LossFunctionWrapper(inner)
        super().__init__(name=name or inner.name, reduction="none", dtype=dtype)
        self.inner = inner
        self._scalar: bool | None = None

    def _returns_scalar(self, y_true, y_pred) -> bool:
        if self._scalar is None:  # traced symbolically: no op is added to the step
            from keras.src.backend import compute_output_spec

            spec = compute_output_spec(
                self.inner.call, keras.KerasTensor(y_true.shape, y_true.dtype),
                keras.KerasTensor(y_pred.shape, y_pred.dtype))
            self._scalar = len(spec.shape) == 0
        return self._scalar

    def __call__(self, y_true, y_pred, sample_weight=None):
        loss = self.inner(y_true, y_pred, sample_weight)
        replicas = _replicas()
        if replicas > 1 and self._returns_scalar(y_true, y_pred):
            loss = loss * (1.0 / replicas)
        return loss

    def call(self, y_true, y_pred):
        """The inner loss's own values (for Keras' introspection)."""
        return self.inner.call(y_true, y_pred)

    def get_config(self) -> dict:
        """Keras config: the name and the serialized inner loss."""
        return {"name": self.name, "inner": keras.saving.serialize_keras_object(self.inner)}
