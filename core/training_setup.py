"""What a fit sets up before training: seeds, precision, the model built and compiled
(architecture, loss, metrics, optimizer through the registry) and the monitored metric.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import keras

from .checkpoints import Monitor
from .errors import DlsuiteInputError

log = logging.getLogger("dlsuite.training")


# --------------------------------------------------------------------------------------------
# seeds, precision


def seed_everything(seed: int | None, deterministic: bool = False) -> int:
    """Seed Python, NumPy and TensorFlow; a ``None`` seed draws one. Returns the seed used.
    ``deterministic`` enables TensorFlow op determinism (it stays on for the process)."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**31 - 1)
        log.info("seed: null in the config, drew %d", seed)
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        log.info("TensorFlow op determinism enabled")
    return int(seed)


def set_precision(mixed: bool) -> str:
    """Set the Keras global dtype policy: ``mixed_float16`` on GPU, ``mixed_bfloat16`` on CPU
    when ``mixed``, else ``float32``. Returns the policy name."""
    if mixed:
        import tensorflow as tf

        name = "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    else:
        name = "float32"
    keras.mixed_precision.set_global_policy(name)
    return name


# --------------------------------------------------------------------------------------------
# model, loss, metrics, optimizer


def build_model(config, registry, *, n_classes: int) -> tuple[keras.Model, Any]:
    """Build the architecture the config names; returns ``(model, architecture entry)``.

    ``train.pretrained_weights`` (``.keras`` or ``.weights.h5``) is loaded into it; with
    ``train.load_from_frozen`` the encoder is unfrozen after loading.
    """
    from .models import build_model as build_architecture

    entry = registry.resolve("architectures", config.model.name)
    model = build_architecture(config, registry, n_classes=n_classes)
    weights = config.train.pretrained_weights
    if weights:
        try:
            model.load_weights(weights)
        except Exception as exc:  # noqa: BLE001 - any Keras loading failure is bad input
            raise DlsuiteInputError(
                f"$.train.pretrained_weights: cannot load {weights} into model "
                f"{config.model.name!r}: {type(exc).__name__}: {exc}") from None
        log.info("loaded pretrained weights from %s", weights)
        if config.train.load_from_frozen:
            from .keras_helpers import set_encoder_trainable

            set_encoder_trainable(model, True)
            log.info("encoder unfrozen after loading weights of a frozen-encoder run")
    return model, entry


# optimizer name -> Keras class; every Keras 3 optimizer takes these options (weight decay
# decoupled from the gradient in all of them, AdamW being Adam with a default decay)
_OPTIMIZERS: dict[str, str] = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD",
                               "rmsprop": "RMSprop"}
_OPTIMIZER_OPTIONS = ("clipnorm", "global_clipnorm", "weight_decay")


def make_optimizer(opt_config) -> keras.optimizers.Optimizer:
    """A Keras optimizer from the config's ``optimizer`` section (unset options omitted;
    ``ema_momentum`` turns on the optimizer's own moving average of the weights, which
    :class:`dlsuite.training_callbacks.AveragedWeights` swaps in for validation and
    checkpoints)."""
    cls_name = _OPTIMIZERS[opt_config.name]
    kwargs = {k: getattr(opt_config, k) for k in _OPTIMIZER_OPTIONS
              if getattr(opt_config, k) is not None}
    if opt_config.ema_momentum is not None:
        kwargs.update(use_ema=True, ema_momentum=opt_config.ema_momentum)
    return getattr(keras.optimizers, cls_name)(learning_rate=opt_config.learning_rate, **kwargs)


def compile_model(model: keras.Model, config, registry, *, n_classes: int) -> keras.Model:
    """Compile ``model`` with the config's optimizer, loss plugin and metric plugins (for the
    target's heads, :func:`dlsuite.head_losses.build_loss_and_metrics`)."""
    from .head_losses import build_loss_and_metrics

    loss, metrics = build_loss_and_metrics(config, registry, n_classes=n_classes)
    if config.train.distribute.strategy != "none":
        from .replica_loss import ReplicaMeanLoss

        loss = ReplicaMeanLoss(loss)  # a scalar loss is not divided by the replicas by Keras
    model.compile(optimizer=make_optimizer(config.optimizer), loss=loss, metrics=metrics)
    return model


def resolve_monitor(config, registry, *, has_validation: bool) -> Monitor:
    """The monitored metric and its direction.

    Without validation data a ``val_`` metric falls back to its training twin (if that
    metric is logged) or to ``loss``, with a logged note. Mode ``auto`` takes the metric
    plugin's declared mode (``loss``: min).
    """
    name = config.train.monitor
    logged = {"loss"} | {c.name.rpartition(":")[2] for c in config.metrics}
    if name.startswith("val_") and not has_validation:
        twin = name[4:]
        fallback = twin if twin in logged else "loss"
        log.warning("no validation data: monitoring %r instead of %r", fallback, name)
        name = fallback
    mode = config.train.monitor_mode
    if mode == "auto":
        from .head_losses import metric_modes

        base = name[4:] if name.startswith("val_") else name
        mode = metric_modes(config, registry).get(base, "min")  # loss: min
    return Monitor(name, mode)
