"""TensorFlow helpers shared by the built-in losses and metrics.

Conventions: ``y_pred`` are logits ``(B, H, W, n_classes)``; ``y_true`` is float
``(B, H, W, C)`` with the class index in channel 0 (and e.g. a pixel weight map in
channel 1). *Foreground* is every class except 0 (cell or contour for 3-class targets);
for a 1-channel model the single logit is the foreground logit.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from .errors import LossInputError

__all__ = [
    "check_shapes",
    "class_index",
    "foreground_target",
    "foreground_logit",
    "border_weights",
    "outline_band",
    "lovasz_foreground",
]


def check_shapes(what: str, y_true, y_pred, n_classes: int,
                 channels: Sequence[str] = ("class",)) -> None:
    """Raise :class:`LossInputError` naming ``what`` (e.g. ``"loss 'dice'"``) unless the
    static shapes fit: both rank 4, ``y_pred`` with ``n_classes`` channels, ``y_true`` with
    at least ``len(channels)`` channels, and equal batch/height/width where known."""
    tshape, pshape = tf.TensorShape(y_true.shape), tf.TensorShape(y_pred.shape)
    need = len(channels)
    chan_text = f"{need} channel{'s' if need > 1 else ''} ({', '.join(channels)})"
    if tshape.rank is not None and tshape.rank != 4:
        raise LossInputError(
            f"{what} needs y_true of shape (batch, height, width, channels) with {chan_text}; "
            f"got shape {tuple(tshape.as_list())}")
    if pshape.rank is not None and pshape.rank != 4:
        raise LossInputError(
            f"{what} needs y_pred logits of shape (batch, height, width, {n_classes}); "
            f"got shape {tuple(pshape.as_list())}")
    if tshape.rank is None or pshape.rank is None:
        return
    if tshape[-1] is not None and tshape[-1] < need:
        raise LossInputError(
            f"{what} needs y_true with {chan_text}; got shape {tuple(tshape.as_list())}")
    if pshape[-1] is not None and pshape[-1] != n_classes:
        raise LossInputError(
            f"{what} was built for n_classes={n_classes} but y_pred has {pshape[-1]} "
            f"channels (shape {tuple(pshape.as_list())})")
    for axis, label in ((0, "batch"), (1, "height"), (2, "width")):
        a, b = tshape[axis], pshape[axis]
        if a is not None and b is not None and a != b:
            raise LossInputError(
                f"{what}: y_true and y_pred differ in {label}: y_true shape "
                f"{tuple(tshape.as_list())}, y_pred shape {tuple(pshape.as_list())}")


def class_index(y_true) -> tf.Tensor:
    """The class index of every pixel, int32 ``(B, H, W)`` (channel 0 of ``y_true``,
    rounded)."""
    return tf.cast(tf.round(tf.cast(y_true[..., 0], tf.float32)), tf.int32)


def foreground_target(y_true) -> tf.Tensor:
    """1.0 where the true class is not background (class index != 0), else 0.0;
    float32 ``(B, H, W)``."""
    return tf.cast(tf.not_equal(class_index(y_true), 0), tf.float32)


def foreground_logit(y_pred, n_classes: int) -> tf.Tensor:
    """``log(p_fg / p_bg)`` per pixel, float32 ``(B, H, W)``, where ``p_fg = 1 - p_bg``.

    1 channel: the logit itself; 2 channels: ``l1 - l0`` (softmax of two logits equals the
    sigmoid of their difference); more: ``logsumexp(l1..) - l0``. ``sigmoid`` of the result
    is the softmax foreground probability, computed stably.
    """
    y_pred = tf.cast(y_pred, tf.float32)
    if n_classes == 1:
        return y_pred[..., 0]
    if n_classes == 2:
        return y_pred[..., 1] - y_pred[..., 0]
    return tf.reduce_logsumexp(y_pred[..., 1:], axis=-1) - y_pred[..., 0]


def border_weights(fg, pool_size: int = 11, border_weight: float = 2.0) -> tf.Tensor:
    """Pixel weights emphasising object borders (the lyakaap rule), float32 ``(B, H, W)``.

    ``A`` = mean of ``fg`` over a ``pool_size`` square window (stride 1, 'same'; pixels
    outside the image are not counted); border pixels have ``0.005 < A < 0.995``;
    ``w = 1 + border_weight * border``, then rescaled so that its mean over the whole batch
    is 1.
    """
    avg = tf.nn.avg_pool2d(fg[..., None], ksize=pool_size, strides=1, padding="SAME")[..., 0]
    border = tf.cast((avg > 0.005) & (avg < 0.995), tf.float32)
    weight = 1.0 + border_weight * border
    return weight * (tf.cast(tf.size(weight), tf.float32) / tf.reduce_sum(weight))


def outline_band(fg, pool_size: int = 3) -> tf.Tensor:
    """1.0 on pixels whose ``pool_size`` square neighbourhood (inside the image) holds both
    foreground and background in ``fg`` (a band of ``pool_size // 2`` pixels each side of the
    outline), else 0.0; float32 ``(B, H, W)``."""
    fg = tf.cast(fg, tf.float32)[..., None]
    has_fg = tf.nn.max_pool2d(fg, ksize=pool_size, strides=1, padding="SAME")
    has_bg = tf.nn.max_pool2d(1.0 - fg, ksize=pool_size, strides=1, padding="SAME")
    return (has_fg * has_bg)[..., 0]


def _lovasz_gradient(fg_sorted: tf.Tensor) -> tf.Tensor:
    """The Jaccard loss's gradient along pixels sorted by decreasing error (Berman et al.,
    CVPR 2018, Alg. 1)."""
    total = tf.reduce_sum(fg_sorted)
    intersection = total - tf.cumsum(fg_sorted)
    union = total + tf.cumsum(1.0 - fg_sorted)
    jaccard = 1.0 - intersection / union
    return tf.concat([jaccard[:1], jaccard[1:] - jaccard[:-1]], axis=0)


def lovasz_foreground(fg: tf.Tensor, p: tf.Tensor) -> tf.Tensor:
    """The Lovasz-softmax loss of the foreground (Berman et al., CVPR 2018), per image, mean
    over the batch: the tight convex surrogate of ``1 - IoU`` of the foreground probability
    ``p`` against the 0/1 foreground ``fg`` (both ``(B, H, W)``). An image without foreground
    costs its largest false-positive probability."""
    batch = tf.shape(fg)[0]
    fg = tf.reshape(fg, (batch, -1))
    p = tf.reshape(p, (batch, -1))

    def one(args):
        f, q = args
        errors = tf.abs(f - q)
        sorted_errors, order = tf.nn.top_k(errors, k=tf.size(errors))
        grad = tf.stop_gradient(_lovasz_gradient(tf.gather(f, order)))
        return tf.tensordot(sorted_errors, grad, axes=1)

    return tf.reduce_mean(tf.map_fn(one, (fg, p), fn_output_signature=tf.float32))
