"""``train.warmup_steps``: the learning rate rises linearly over the first optimizer steps.

A small network trained from scratch at a high learning rate (the instance recipe's 3e-3)
can fall in its first steps into predicting background everywhere, and some seeds never
leave it (training Jaccard 0 epoch after epoch). Starting at ``lr / steps`` and reaching the
configured ``optimizer.learning_rate`` after ``steps`` optimizer steps avoids that. The count
is the optimizer's own ``iterations``, so a resumed run continues the ramp where it stopped;
after the ramp the callback never touches the learning rate again (ReduceLROnPlateau owns
it).
"""

from __future__ import annotations

import keras

__all__ = ["LinearWarmup"]


class LinearWarmup(keras.callbacks.Callback):
    """Sets ``optimizer.learning_rate`` to ``base * (i + 1) / steps`` before optimizer step
    ``i < steps`` and to ``base`` before step ``steps``, times ``rate_scale`` (1; a collapse
    recovery lowers it); does nothing afterwards."""

    def __init__(self, base: float, steps: int):
        super().__init__()
        self.base, self.steps = float(base), int(steps)
        self._done = self.steps <= 0
        self.rate_scale = 1.0

    def on_train_batch_begin(self, batch, logs=None):
        if self._done:
            return
        optimizer = self.model.optimizer
        step = int(keras.ops.convert_to_numpy(optimizer.iterations))
        if step >= self.steps:
            self._done = True
            if step > self.steps:  # resumed after the ramp: the saved rate stands
                return
        ramp = min(step + 1, self.steps) / self.steps
        optimizer.learning_rate = self.rate_scale * self.base * ramp
