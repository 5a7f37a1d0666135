"""Keras helpers the core relies on; importing this module never imports TensorFlow.

* Encoders: an architecture with a pretrainable encoder nests it as a sub-model named exactly
  ``"encoder"`` (:data:`ENCODER_NAME`), found at any depth (nested models, ``TimeDistributed``
  and other wrappers). The two-stage ``train_decoder_only`` -> ``load_from_frozen`` protocol
  (un)freezes it through :func:`set_encoder_trainable`, whatever architecture built the model.
* :func:`batchnorm_layers`: every BatchNormalization inside a model at any depth (their
  momentum and moving statistics decide what validation and prediction see).
* :func:`summarize`: parameter counts and input/output shapes as plain data
  (``dlsuite model summary``).
* :func:`infer_size_multiple`: the multiple a built model needs its H and W to have, from the
  strides of its layers (for bare models whose architecture spec is unknown).
* :func:`activation_elements`: how many values the layers of a functional model output for
  one sample of a given size (training and prediction memory estimates).

The functions but :func:`activation_elements` (which traces shapes with Keras) only walk
attributes of the model they are given, so they work on any Keras 3 model without importing
Keras themselves.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

__all__ = [
    "ENCODER_NAME",
    "batchnorm_layers",
    "find_encoders",
    "set_encoder_trainable",
    "summarize",
    "infer_size_multiple",
    "activation_elements",
]

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


def batchnorm_layers(model: Any) -> list:
    """Every ``keras.layers.BatchNormalization`` (or subclass) inside ``model`` at any depth
    (nested models, ``TimeDistributed`` and other wrappers), depth-first, each once."""
    return [layer for layer in _walk(model, {id(model)})
            if any(cls.__name__ == "BatchNormalization" for cls in type(layer).__mro__)]


def _size(weights) -> int:
    return int(sum(math.prod(int(d) for d in w.shape) for w in weights))


def _shape(shape: Any) -> list:
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_shape(s) for s in shape]
    return [None if d is None else int(d) for d in shape]


def summarize(model: Any) -> dict:
    """``{"name", "total", "trainable", "non_trainable", "input_shape", "output_shape"}``:
    the model's name, parameter counts (ints; trainable + non_trainable == total, each shared
    weight once) and shapes (lists with ``None`` for unknown axes, batch first; a list of such
    lists when the model has several inputs or outputs)."""
    trainable = _size(model.trainable_weights)
    non_trainable = _size(model.non_trainable_weights)
    return {
        "name": model.name,
        "total": trainable + non_trainable,
        "trainable": trainable,
        "non_trainable": non_trainable,
        "input_shape": _shape(model.input_shape),
        "output_shape": _shape(model.output_shape),
    }


def _stride(layer: Any) -> int:
    """Spatial down-sampling factor of one layer (1 for transposed convs and up-sampling)."""
    name = type(layer).__name__
    strides = getattr(layer, "strides", None)
    if strides is None or "Transpose" in name or "UpSampling" in name:
        return 1
    strides = tuple(strides) if isinstance(strides, (list, tuple)) else (int(strides),)
    return max(int(s) for s in strides[-2:]) if strides else 1


def infer_size_multiple(model: Any) -> int:
    """Product of the spatial strides of the layers of ``model`` (nested models and wrappers
    included, each layer once): a multiple H and W must have. It over-estimates for parallel
    strided branches, which costs only padding."""
    total = 1
    for layer in _walk(model, {id(model)}):
        total *= _stride(layer)
    return total


#: Values a ConvLSTM cell keeps per output pixel, filter and time step for the gradient:
#: the input and recurrent convolutions of its 4 gates (the gates' activations and the cell
#: state are not counted, so the figure stays a lower bound).
CONVLSTM_STEP_VALUES = 8


def _hidden_elements(op: Any, args: tuple, out: Any, training: bool) -> int:
    """Values a layer holds beyond its output ``out``: the inner model of a
    ``TimeDistributed`` (its layers' outputs for every frame) and the unrolled states of a
    ConvLSTM (every time step when ``training``, else one)."""
    import keras

    if not args or not hasattr(args[0], "shape"):
        return 0
    shape = tuple(args[0].shape)
    if isinstance(op, keras.layers.TimeDistributed) and len(shape) > 2:
        inner = activation_elements(op.layer, [(1,) + shape[2:]], training=training)
        return int(shape[1] or 1) * (inner or 0)
    if isinstance(op, keras.layers.ConvLSTM2D) and len(shape) == 5:
        out = out[0] if isinstance(out, (list, tuple)) else out
        h, w = int(out.shape[-3] or 1), int(out.shape[-2] or 1)
        steps = int(shape[1] or 1) if training else 1
        return steps * h * w * int(op.filters) * CONVLSTM_STEP_VALUES
    return 0


def activation_elements(model: Any, input_shapes: list[tuple[int, ...]], *,
                        training: bool = False) -> int | None:
    """The number of values every layer of the functional Keras ``model`` outputs for one
    sample of ``input_shapes`` (batch dimension included, 1), nested functional models and
    the models wrapped in ``TimeDistributed`` (once per frame) followed into, plus the
    states of ConvLSTM cells (:data:`CONVLSTM_STEP_VALUES`; every time step when
    ``training``, as the gradient keeps them); None for a model whose graph cannot be walked
    (a subclassed model). Imports Keras."""
    import keras
    from keras import tree

    total = 0

    def count(op, *args, **kwargs):
        nonlocal total
        if hasattr(op, "_run_through_graph") and hasattr(op, "_nodes_by_depth"):
            return op._run_through_graph(tree.flatten(args[0]), call_fn=count)
        out = op.compute_output_spec(*args, **kwargs)
        total += sum(math.prod(int(d or 1) for d in t.shape[1:]) for t in tree.flatten(out))
        total += _hidden_elements(op, args, out, training)
        return out

    if not hasattr(model, "_run_through_graph"):
        return None
    model._run_through_graph([keras.KerasTensor(s) for s in input_shapes], call_fn=count)
    return total
