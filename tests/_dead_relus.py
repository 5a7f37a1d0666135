"""A test plugin that makes a real model collapse (used by tests/test_collapse_recovery.py and
by the training processes of tests/test_distribute.py).

:class:`DeadRelus` adds a callback that, when epoch ``at`` (1-based) begins, sets the bias of
every layer but the outputs to -1000: no ReLU fires again, the model predicts the background
everywhere and no gradient brings it back, as the instance recipe's U-Net did at a high
learning rate. :func:`collapse_config` is the tiny run the tests make collapse that way.
"""

from __future__ import annotations

from pathlib import Path

from dlsuite import hookimpl

#: the epoch whose start kills the ReLUs, the epochs trained, the Adam learning rate
KILLED_EPOCH, EPOCHS, LR = 8, 11, 0.01


def collapse_config(folder: Path, name: str, epochs: int = EPOCHS, **train) -> dict:
    """The config of the collapse tests: the tiny U-Net of ``test_lr_warmup.tiny_config`` with
    8 filters, 8 steps of 2 example frames per epoch, Adam at ``LR``, no TensorBoard, and
    ``train`` added to its train section."""
    from test_lr_warmup import tiny_config

    cfg = tiny_config(folder, name, {"name": "adam", "learning_rate": LR},
                      {"epochs": epochs, "tensorboard": {"enabled": False}, **train})
    cfg["datagen"]["steps_per_epoch"] = 8
    cfg["model"]["n_filters"] = 8
    return cfg


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
