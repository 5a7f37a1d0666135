"""The ``tversky`` loss: ``1 - TP / (TP + alpha FP + beta FN)`` on the soft foreground."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dlsuite_example")
class TverskyLoss(keras.losses.Loss):
    """Tversky loss from logits; ``y_true[..., 0]`` holds the class index (0 = background)."""

    def __init__(self, alpha=0.5, beta=0.5, smooth=1.0, name="tversky", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha, self.beta, self.smooth = alpha, beta, smooth

    def call(self, y_true, y_pred):
        fg_true = ops.cast(y_true[..., 0] > 0, "float32")
        probs = ops.softmax(y_pred, axis=-1)
        fg_pred = 1.0 - probs[..., 0]
        tp = ops.sum(fg_true * fg_pred)
        fp = ops.sum((1.0 - fg_true) * fg_pred)
        fn = ops.sum(fg_true * (1.0 - fg_pred))
        return 1.0 - (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "smooth": self.smooth}


def build(params, *, n_classes: int) -> TverskyLoss:
    """The Tversky loss with the configured weights."""
    return TverskyLoss(params.alpha, params.beta, params.smooth)
