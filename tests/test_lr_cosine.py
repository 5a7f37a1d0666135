"""``train.cosine_decay`` (dlsuite.lr_cosine): in a real Keras fit the learning rate falls
along half a cosine from the optimizer's rate to ``min_lr`` at the run's last step, after the
warm-up when there is one; a resumed fit continues the curve; ``dlsuite train`` applies it
and refuses it together with ``reduce_lr``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_lr_warmup import epoch_rates, tiny_config
from test_lr_warmup import fit_rates as _fit


def test_rate_falls_along_half_a_cosine_to_min_lr_at_the_last_step():
    from dlsuite.lr_cosine import CosineDecay

    seen = _fit([CosineDecay(0.1, 0.001)])
    want = [0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * i / 11)) for i in range(12)]
    np.testing.assert_allclose(seen, want, rtol=1e-5)
    assert seen[0] == pytest.approx(0.1) and seen[-1] == pytest.approx(0.001)
    assert np.all(np.diff(seen) < 0)


def test_decay_starts_after_the_warm_up_and_a_resumed_fit_continues_it():
    from dlsuite.lr_cosine import CosineDecay, cosine_rate
    from dlsuite.lr_warmup import LinearWarmup

    seen = _fit([LinearWarmup(0.1, 4), CosineDecay(0.1, 0.0, warmup=4)])
    np.testing.assert_allclose(seen[:4], [0.025, 0.05, 0.075, 0.1], rtol=1e-5)
    want = [0.1 * 0.5 * (1 + math.cos(math.pi * i / 7)) for i in range(8)]
    np.testing.assert_allclose(seen[4:], want, rtol=1e-5, atol=1e-9)
    # resumed at epoch 2 (8 steps done): the last 4 rates of the same curve
    resumed = _fit([LinearWarmup(0.1, 4), CosineDecay(0.1, 0.0, warmup=4)],
                   initial_epoch=2, start_step=8)
    np.testing.assert_allclose(resumed, seen[8:], rtol=1e-5, atol=1e-9)
    assert cosine_rate(50, 12, 0.1, 0.002) == pytest.approx(0.002)  # past the end: min_lr


def test_train_applies_cosine_decay_and_refuses_it_with_reduce_lr(tmp_path):
    from dlsuite import api
    from dlsuite.errors import ConfigError
    from dlsuite.lr_cosine import cosine_rate

    cfg = tiny_config(tmp_path, "cos", {"learning_rate": 0.01},
                      {"epochs": 3, "reduce_lr": {"enabled": False},
                       "cosine_decay": {"enabled": True, "min_lr": 0.001}})
    rates = epoch_rates(api.train(cfg, quiet=True).run_dir)
    # the rate each epoch's last step used: steps 1, 3 and 5 of 6
    np.testing.assert_allclose(rates, [cosine_rate(s, 6, 0.01, 0.001) for s in (1, 3, 5)],
                               rtol=1e-5)
    with pytest.raises(ConfigError, match=r"train\.cosine_decay.*reduce_lr"):
        api.train({**cfg, "train": {"epochs": 1, "cosine_decay": {"enabled": True}}},
                  quiet=True)
