"""The contracts of the Keras-object plugins: :class:`LossContract` and
:class:`MetricContract`, on shared test data of perfect and random predictions.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .contract_base import PluginContract


class _KerasObjectContract(PluginContract):
    """Shared test data of losses and metrics.

    ``n_classes``: the model output channels to test with (1: one foreground logit).
    ``target_channels``: channels of ``y_true`` (channel 0 the class index, the others pixel
    weights, all 1); ``None`` takes ``len(spec.target_channels)`` for losses, else 1.
    ``perfect_output``: what a perfect ``y_pred`` is: ``"logits"`` (+8 for the true class,
    -8 elsewhere) or ``"target"`` (the class index itself, for regression / heatmap losses).
    """

    n_classes: ClassVar[int] = 2
    target_channels: ClassVar[int | None] = None
    perfect_output: ClassVar[str] = "logits"

    def _channels(self, entry) -> int:
        if self.target_channels is not None:
            return int(self.target_channels)
        return len(getattr(entry.spec, "target_channels", ("class",)))

    def _data(self, entry):
        rng = np.random.default_rng(0)
        n_labels = max(self.n_classes, 2)  # 1-channel models predict 0/1 with one logit
        classes = rng.integers(0, n_labels, size=(2, 16, 16, 1)).astype("float32")
        extra = [np.ones((2, 16, 16, 1), "float32")] * (self._channels(entry) - 1)
        y_true = np.concatenate([classes, *extra], axis=-1)
        logits = rng.normal(size=(2, 16, 16, self.n_classes)).astype("float32")
        if self.perfect_output == "target":
            perfect = np.repeat(classes, self.n_classes, axis=-1)
        elif self.n_classes == 1:
            perfect = np.where(classes == 1, 8.0, -8.0).astype("float32")
        else:
            perfect = np.where(np.arange(self.n_classes) == classes, 8.0, -8.0).astype("float32")
        return y_true, logits, perfect


class LossContract(_KerasObjectContract):
    """A finite scalar, lower for a perfect prediction than for a random one, with gradients.

    A ``multi_head`` loss is built with ``heads`` (default: a ``class`` head of ``n_classes``
    channels and a sigmoid ``distance`` regression head) and the matching target channels;
    its data gets a regression target of 1 (perfect logit +8) for every regression head."""

    kind = "losses"
    heads: ClassVar[tuple] = ()

    def _heads(self):
        from ..specs import HeadSpec

        return self.heads or (HeadSpec("class", self.n_classes, "softmax", "class"),
                              HeadSpec("distance", 1, "sigmoid", "regression"))

    def _make(self, entry, built_params):
        if not getattr(entry.spec, "multi_head", False):
            return entry.load()(built_params, n_classes=self.n_classes)
        heads = self._heads()
        channels = ("class",) + tuple(h.name for h in heads if h.role == "regression")
        return entry.load()(built_params, n_classes=sum(h.channels for h in heads),
                            heads=heads, target_channels=channels)

    def _loss_data(self, entry):
        y_true, logits, perfect = self._data(entry)
        if not getattr(entry.spec, "multi_head", False):
            return y_true, logits, perfect
        rng = np.random.default_rng(1)
        extra = [h for h in self._heads() if h.role == "regression"]
        y_true = np.concatenate([y_true[..., :1]] + [np.ones_like(y_true[..., :1])] * len(extra),
                                axis=-1)
        n = sum(h.channels for h in extra)
        logits = np.concatenate(
            [logits, rng.normal(size=logits.shape[:-1] + (n,)).astype("float32")], axis=-1)
        perfect = np.concatenate([perfect, np.full(perfect.shape[:-1] + (n,), 8.0, "float32")],
                                 axis=-1)
        return y_true, logits, perfect

    def test_scalar_lower_for_perfect_prediction(self, entry, built_params):
        loss = self._make(entry, built_params)
        y_true, logits, perfect = self._loss_data(entry)
        bad, good = float(loss(y_true, logits)), float(loss(y_true, perfect))
        assert np.isfinite(bad) and np.isfinite(good)
        assert good < bad

    def test_has_gradients(self, entry, built_params):
        import tensorflow as tf

        loss = self._make(entry, built_params)
        y_true, logits, _ = self._loss_data(entry)
        var = tf.Variable(logits)
        with tf.GradientTape() as tape:
            value = loss(tf.constant(y_true), var)
        grad = tape.gradient(value, var)
        assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


class MetricContract(_KerasObjectContract):
    """A stateful Keras metric named like the spec; perfect predictions score best."""

    kind = "metrics"

    def test_named_like_the_spec_and_perfect_is_best(self, entry, built_params):
        metric = entry.load()(built_params, n_classes=self.n_classes)
        assert metric.name == self.name
        y_true, logits, perfect = self._data(entry)
        metric.update_state(y_true, perfect)
        best = float(metric.result())
        metric.reset_state()
        metric.update_state(y_true, logits)
        other = float(metric.result())
        assert (best >= other) if entry.spec.mode == "max" else (best <= other)
