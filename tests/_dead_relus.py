"""A test plugin that makes a real model collapse (used by tests/test_collapse_recovery.py and
by the training processes of tests/test_distribute.py).

:class:`DeadRelus` adds a callback that, when epoch ``at`` (1-based) begins, sets the bias of
every layer but the outputs to -1000: no ReLU fires again, the model predicts the background
everywhere and no gradient brings it back, as the instance recipe's U-Net did at a high
learning rate.
"""

from __future__ import annotations

from dlsuite import hookimpl


class DeadRelus:
    """The plugin (module docstring); ``at``: the 1-based epoch whose start kills the ReLUs."""

    def __init__(self, at: int):
        self.at = at

    @hookimpl
    def dlsuite_callbacks(self, config):
        import keras

        at = self.at

        class Kill(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch + 1 != at:
                    return
                outputs = {t._keras_history.operation.name for t in self.model.outputs}
                for layer in self.model.layers:
                    bias = getattr(layer, "bias", None)
                    if bias is not None and layer.name not in outputs:
                        bias.assign(keras.ops.full(bias.shape, -1000.0))

        return [Kill()]
