"""The error raised by the built-in losses and metrics for bad shapes or parameters."""

from dlsuite import DlsuiteInputError

__all__ = ["LossInputError"]


class LossInputError(DlsuiteInputError, ValueError):
    """A loss or metric got tensors of the wrong shape, or parameters that do not fit the
    model (e.g. ``class_weights`` of the wrong length). The message names the loss/metric.
    It is a ``ValueError`` too, so generic callers can catch it as such."""
