"""``optimizer`` options reach Keras with Keras' meaning: ``weight_decay`` decays the weights
of every optimizer (it was dropped silently for adam and rmsprop), ``clipnorm`` clips each
weight's gradient on its own and ``global_clipnorm`` all of them together; setting both is
refused at the config's JSON path."""

from __future__ import annotations

import numpy as np
import pytest

from dlsuite.config import parse_config
from dlsuite.config.schema import OptimizerConfig
from dlsuite.errors import ConfigError


def _step(opt_config, grads):
    """The values of scalar variables starting at 1 after one step with ``grads``."""
    import keras

    from dlsuite.training_setup import make_optimizer

    variables = [keras.Variable(1.0) for _ in grads]
    opt = make_optimizer(opt_config)
    opt.apply_gradients([(keras.ops.convert_to_tensor(g, "float32"), v)
                         for g, v in zip(grads, variables)])
    return [float(v.numpy()) for v in variables]


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_weight_decay_decays_the_weights_of_every_optimizer(name):
    # a zero gradient moves nothing but the decoupled decay: w - lr * decay * w
    after = _step(OptimizerConfig(name=name, learning_rate=0.1, weight_decay=0.5), [0.0])
    assert after == pytest.approx([0.95])


def test_global_clipnorm_clips_all_gradients_together_clipnorm_each_on_its_own():
    grads = [3.0, 4.0]  # global norm 5
    together = _step(OptimizerConfig(name="sgd", learning_rate=1.0, global_clipnorm=1.0), grads)
    assert together == pytest.approx([1 - 0.6, 1 - 0.8])
    each = _step(OptimizerConfig(name="sgd", learning_rate=1.0, clipnorm=1.0), grads)
    assert each == pytest.approx([0.0, 0.0])
    unclipped = _step(OptimizerConfig(name="sgd", learning_rate=1.0), grads)
    assert unclipped == pytest.approx([-2.0, -3.0])


def test_clipnorm_and_global_clipnorm_together_are_refused_at_their_path():
    with pytest.raises(ConfigError) as info:
        parse_config({"optimizer": {"clipnorm": 1.0, "global_clipnorm": 2.0}},
                     check_paths=False)
    assert ("$.optimizer.global_clipnorm: cannot be set together with clipnorm (1): set one "
            "of them") in str(info.value)
    parse_config({"optimizer": {"global_clipnorm": 2.0}}, check_paths=False)
