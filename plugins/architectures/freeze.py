"""Deprecated location, kept only until the core imports :mod:`dlsuite.keras_helpers`
directly; it will be removed. Use ``dlsuite.keras_helpers`` instead."""

from dlsuite.keras_helpers import ENCODER_NAME, find_encoders, set_encoder_trainable

__all__ = ["ENCODER_NAME", "find_encoders", "set_encoder_trainable"]
