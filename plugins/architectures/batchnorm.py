"""BatchNorm momentum of the built-in architectures (importable without TensorFlow).

Why it matters: in inference mode (validation, prediction) a BatchNorm layer normalises with
its *moving* statistics, updated once per training step as
``moving = momentum * moving + (1 - momentum) * batch``. After ``s`` steps the initial
statistics (mean 0, variance 1) still weigh ``momentum**s``: with Keras' MobileNetV2 momentum
0.999 that is 90 % after 100 steps, so a from-scratch model validates with statistics that
describe no real activation, and validation metrics stay near 0 while training metrics rise.
:data:`DEFAULT_BN_MOMENTUM` was chosen by measurement (``benchmarks/batchnorm.py``, real
data, from scratch): Keras' momenta left val_jaccard at 0.000 for 100 steps (MobileUNet) and
0.14-0.17 (U-Net, 0.99) while training Jaccard reached 0.53-0.55; at 0.8 both validate at
0.43-0.57 after 25 steps and 0.50-0.62 after 50, and 0.8 still averages over ~5 steps.

* :func:`set_bn_momentum` sets the momentum of every BatchNorm layer inside a model (the value
  is part of the layer config, so it is saved in ``.keras`` files);
* :func:`encoder_bn_momentum` decides the momentum of a MobileNetV2 encoder: pretrained
  encoders keep Keras' momentum (their statistics barely move) unless asked otherwise.
"""

from __future__ import annotations

from typing import Any

from dlsuite.keras_helpers import batchnorm_layers

__all__ = [
    "DEFAULT_BN_MOMENTUM",
    "batchnorm_layers",
    "encoder_bn_momentum",
    "set_bn_momentum",
]

#: Default ``bn_momentum`` of every built-in architecture with BatchNorm (see module docstring).
DEFAULT_BN_MOMENTUM = 0.8


def set_bn_momentum(model: Any, momentum: float) -> int:
    """Set ``momentum`` on every BatchNormalization inside ``model`` and return how many
    layers were set. Call it before the model is compiled and trained (a traced training
    step keeps the momentum it was traced with)."""
    layers = batchnorm_layers(model)
    for layer in layers:
        layer.momentum = float(momentum)
    return len(layers)


def encoder_bn_momentum(params) -> float | None:
    """The momentum for a MobileNetV2 encoder's BatchNorm layers, or ``None`` to keep Keras'
    (0.999): ``encoder_bn_momentum`` when set; else ``bn_momentum`` for a randomly initialised
    encoder (``encoder_weights`` null) and ``None`` for a pretrained one, whose statistics
    should barely move."""
    explicit = getattr(params, "encoder_bn_momentum", None)
    if explicit is not None:
        return float(explicit)
    if params.encoder_weights is None:
        return float(params.bn_momentum)
    return None
