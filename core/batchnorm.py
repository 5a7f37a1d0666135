"""BatchNorm during training: precise moving statistics and a watch on validation metrics.

In inference mode (validation, prediction, the saved checkpoints) a BatchNorm layer normalises
with its moving mean and variance. When these lag training (a momentum close to 1, few
steps), a model that trains well validates as garbage. Two tools:

* :func:`recompute_bn_statistics` / :class:`PreciseBN` ("precise BN"): before each validation
  (and at each epoch end when there is none, so checkpoints get them too) the moving
  statistics are re-estimated as the plain average of the batch statistics over ``n_batches``
  training batches under the current weights. Pretrained-encoder BatchNorm layers can be left
  out (:func:`bn_layers_to_estimate`).
* :class:`BatchNormWatch` warns once when a validation metric stays near 0 for a few epochs
  while its training twin rises, naming BatchNorm moving statistics as the likely cause when
  the model has BatchNorm layers.

:func:`batchnorm_callbacks` assembles them from a config for the training pipeline
(``train.precise_bn_batches``, 8 by default). Measured on the real data
(``benchmarks/batchnorm.py``, from scratch, val_jaccard after 25 / 50 steps): the legacy-size
MobileUNet with Keras' momenta 0.000 / 0.000 (still 0.000 after 100 steps, training Jaccard
0.53), with ``bn_momentum`` 0.8 0.427 / 0.503 and with 0.8 plus precise BN 0.466 / 0.514; a
``batch_norm`` U-Net 0.168 / 0.135 at 0.99, 0.566 / 0.615 at 0.8, 0.513 / 0.608 at 0.8 plus
precise BN. Precise BN matters most for the first validations; it costs ``n_batches``
forward passes per validation, only for models with BatchNorm.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

import keras
import numpy as np

from .keras_helpers import batchnorm_layers, find_encoders

__all__ = [
    "BatchNormEstimator",
    "BatchNormWatch",
    "PreciseBN",
    "batchnorm_callbacks",
    "bn_layers_to_estimate",
    "recompute_bn_statistics",
]

log = logging.getLogger("dlsuite.training")


def _bn_layers(model) -> list:
    return batchnorm_layers(model)


def bn_layers_to_estimate(model, model_params: Any = None) -> list:
    """The BatchNorm layers of ``model`` whose statistics precise BN re-estimates: the
    trainable ones (a frozen layer runs in inference mode and keeps its statistics), minus
    those of a pretrained encoder (``encoder_weights`` set and ``encoder_bn_momentum`` null in
    ``model_params``), whose statistics are kept unless asked."""
    keep: set[int] = set()
    if (model_params is not None and getattr(model_params, "encoder_weights", None) is not None
            and getattr(model_params, "encoder_bn_momentum", None) is None):
        for encoder in find_encoders(model):
            keep.update(id(layer) for layer in _bn_layers(encoder))
    return [layer for layer in _bn_layers(model) if layer.trainable and id(layer) not in keep]


def _inputs(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


class BatchNormEstimator:
    """Re-estimates the moving statistics of ``layers`` (BatchNorm layers of ``model``) as
    the plain average of their batch statistics over some batches, in a compiled forward pass
    traced once (shapes permitting) and reused for every call."""

    def __init__(self, model, layers: Sequence):
        import tensorflow as tf

        self.model, self.layers = model, list(layers)
        chosen = {id(layer) for layer in self.layers}
        self._others = [layer for layer in _bn_layers(model)
                        if id(layer) not in chosen and layer.trainable]
        # traced while the chosen layers have momentum 0: each pass sets moving = batch stats
        self._forward = tf.function(lambda x: model(x, training=True), reduce_retracing=True)

    def __call__(self, batches: Iterable) -> int:
        """Estimate over ``batches`` (``x`` or ``(x, y, ...)``); returns how many were used
        (0: nothing changed). No weight and no other layer's statistics change."""
        if not self.layers:
            return 0
        # the other BatchNorm layers also update in training mode: their statistics go back
        kept = [(layer, layer.moving_mean.numpy(), layer.moving_variance.numpy())
                for layer in self._others]
        saved = [(layer.momentum, layer.moving_mean.numpy(), layer.moving_variance.numpy())
                 for layer in self.layers]
        sums = [[0.0, 0.0] for _ in self.layers]
        n = 0
        try:
            for layer in self.layers:
                layer.momentum = 0.0
            for batch in batches:
                self._forward(_inputs(batch))
                n += 1
                for total, layer in zip(sums, self.layers):
                    total[0] = total[0] + layer.moving_mean.numpy().astype(np.float64)
                    total[1] = total[1] + layer.moving_variance.numpy().astype(np.float64)
        finally:
            for layer, (momentum, mean, variance) in zip(self.layers, saved):
                layer.momentum = momentum
                if n == 0:
                    layer.moving_mean.assign(mean)
                    layer.moving_variance.assign(variance)
            for layer, mean, variance in kept:
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(variance)
        for (mean, variance), layer in zip(sums, self.layers):
            if n:
                layer.moving_mean.assign((mean / n).astype(np.float32))
                layer.moving_variance.assign((variance / n).astype(np.float32))
        return n


def recompute_bn_statistics(model, batches: Iterable, layers: Sequence | None = None) -> int:
    """Replace the moving mean and variance of ``layers`` (default: every trainable BatchNorm
    of ``model``) by the average of their batch statistics over ``batches`` (``x`` or
    ``(x, y, ...)``), running ``model`` in training mode without changing any weight or the
    statistics of the other BatchNorm layers. Returns the number of batches used (0: nothing
    changed). Repeated calls should share one :class:`BatchNormEstimator` instead."""
    layers = [layer for layer in _bn_layers(model) if layer.trainable] if layers is None \
        else list(layers)
    return BatchNormEstimator(model, layers)(batches)


class PreciseBN(keras.callbacks.Callback):
    """Re-estimate BatchNorm moving statistics over ``n_batches`` batches of ``dataset``
    before each validation, or at epoch end when the epoch had none (place it before the
    checkpoint callback). Batches are drawn from one iterator kept across epochs."""

    def __init__(self, dataset, n_batches: int, model_params: Any = None):
        super().__init__()
        self.dataset, self.n_batches, self.model_params = dataset, int(n_batches), model_params
        self._iterator = None
        self._estimator: BatchNormEstimator | None = None
        self._estimated_epoch: int | None = None
        self._epoch = 0

    def _estimate(self) -> None:
        self._estimated_epoch = self._epoch
        if self._estimator is None:
            layers = bn_layers_to_estimate(self.model, self.model_params)
            self._estimator = BatchNormEstimator(self.model, layers)
        if not self._estimator.layers or self.n_batches < 1:
            return
        if self._iterator is None:
            self._iterator = iter(self.dataset)
        self._estimator(next(self._iterator) for _ in range(self.n_batches))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_test_begin(self, logs=None):
        self._estimate()

    def on_epoch_end(self, epoch, logs=None):
        if self._estimated_epoch != epoch:
            self._estimate()


class BatchNormWatch(keras.callbacks.Callback):
    """Warn once when, for one of ``metrics`` (higher is better), ``val_<m>`` stayed below
    ``near_zero`` for the last ``patience`` epochs while the training ``<m>`` rose by at least
    ``min_rise`` since the first epoch. The warning names BatchNorm moving statistics as the
    likely cause when the model has BatchNorm layers. ``warned`` holds the message."""

    def __init__(self, metrics: Sequence[str] = ("jaccard", "dice"), *, patience: int = 3,
                 near_zero: float = 0.02, min_rise: float = 0.1, precise_bn_batches: int = 0):
        super().__init__()
        self.metrics, self.patience = tuple(metrics), int(patience)
        self.precise_bn_batches = int(precise_bn_batches)
        self.near_zero, self.min_rise = float(near_zero), float(min_rise)
        self.history: list[dict[str, float]] = []
        self.warned: str | None = None

    def on_train_begin(self, logs=None):
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        if self.warned is not None:
            return
        self.history.append({k: float(v) for k, v in (logs or {}).items()
                             if isinstance(v, (int, float)) or hasattr(v, "__float__")})
        message = self.check(self.history)
        if message is not None:
            self.warned = message
            log.warning(message)

    def check(self, history: Sequence[dict[str, float]]) -> str | None:
        """The warning for epoch logs ``history`` (oldest first), or None when they look fine."""
        if len(history) < self.patience:
            return None
        for m in self.metrics:
            val = [row.get(f"val_{m}") for row in history[-self.patience:]]
            train = [row.get(m) for row in history]
            if any(v is None for v in val) or any(t is None for t in train):
                continue
            if max(val) < self.near_zero and train[-1] - train[0] >= self.min_rise:
                return self._message(m, val, train)
        return None

    def _message(self, m: str, val: list, train: list) -> str:
        head = (f"val_{m} stayed below {self.near_zero:g} for the last {self.patience} epochs "
                f"(latest {val[-1]:.3g}) while training {m} rose from {train[0]:.3g} to "
                f"{train[-1]:.3g}")
        layers = _bn_layers(self.model) if self.model is not None else []
        if not layers:
            return (head + ": the model has no BatchNorm layers; check that the validation "
                    "data and labels look like the training data (normalization, label ids)")
        slowest = max(float(layer.momentum) for layer in layers)
        if self.precise_bn_batches:
            fix = (f"precise BN re-estimates them on {self.precise_bn_batches} training "
                   "batches before each validation: raise train.precise_bn_batches, lower "
                   "model.bn_momentum, or check that validation images look like the "
                   "training ones")
        else:
            fix = ("lower model.bn_momentum (e.g. 0.8; model.encoder_bn_momentum for a "
                   "pretrained MobileNetV2 encoder) or set train.precise_bn_batches (e.g. 8)")
        return (head + f": likely cause: BatchNorm moving statistics ({len(layers)} layers, "
                f"momentum up to {slowest:g}) lag training, and validation runs BatchNorm in "
                f"inference mode with them; {fix}")


def batchnorm_callbacks(config, registry, data) -> list[keras.callbacks.Callback]:
    """The BatchNorm callbacks of a training run of ``config`` (put them before the
    checkpoint callback): :class:`PreciseBN` over ``train.precise_bn_batches`` batches of
    ``data.train`` when that is > 0 (a no-op for models without BatchNorm), and with
    validation data :class:`BatchNormWatch` on the config's higher-is-better metrics."""
    n = int(config.train.precise_bn_batches)  # >= 0: checked by the config schema
    out: list[keras.callbacks.Callback] = []
    if n:
        out.append(PreciseBN(data.train, n, config.model.params))
    metrics = []
    for choice in config.metrics:
        spec = registry.resolve("metrics", choice.name).spec
        if getattr(spec, "mode", "max") == "max":
            metrics.append(choice.name.rpartition(":")[2])
    if metrics and data.val is not None:
        out.append(BatchNormWatch(metrics, precise_bn_batches=n))
    return out
