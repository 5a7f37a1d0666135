"""Freeze / unfreeze encoders generically (importable without TensorFlow).

The two-stage ``train_decoder_only`` -> ``load_from_frozen`` protocol (SPEC A6) needs to
(un)freeze the encoder of whatever model was built. Every built-in architecture with a
pretrainable encoder nests it as a sub-model named exactly ``"encoder"``; these functions find
such layers at any depth (nested models, ``TimeDistributed`` and other wrappers). Keras is
imported lazily inside the functions only.
"""

from __future__ import annotations

from typing import Any, Iterator

__all__ = ["ENCODER_NAME", "find_encoders", "set_encoder_trainable"]

ENCODER_NAME = "encoder"


def _children(layer: Any) -> list:
    inner = getattr(layer, "layer", None)  # keras.layers.Wrapper (TimeDistributed, Bidirectional)
    children = [inner] if inner is not None else []
    children += list(getattr(layer, "layers", None) or [])  # Functional / Sequential models
    return children


def _walk(layer: Any, seen: set[int]) -> Iterator[Any]:
    for child in _children(layer):
        if id(child) in seen:
            continue
        seen.add(id(child))
        yield child
        yield from _walk(child, seen)


def find_encoders(model: Any, name: str = ENCODER_NAME) -> list:
    """All layers named ``name`` inside ``model`` (depth-first, each once; the model itself
    is included when it has that name). Shared layers are listed once."""
    found = [model] if getattr(model, "name", None) == name else []
    return found + [layer for layer in _walk(model, {id(model)}) if layer.name == name]


def set_encoder_trainable(model: Any, trainable: bool) -> int:
    """Set ``trainable`` on every layer named ``"encoder"`` in ``model`` (any depth) and
    return how many were found and set (0 means the model has no encoder). Setting
    ``trainable=False`` also puts the encoder's BatchNorm layers in inference mode. The model
    must be (re)compiled afterwards for the change to affect training."""
    encoders = find_encoders(model)
    for encoder in encoders:
        encoder.trainable = bool(trainable)
    return len(encoders)
