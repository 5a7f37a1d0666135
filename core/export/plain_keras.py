"""A trained model as plain Keras: every layer a class of Keras itself, so the ``.keras`` file
loads with ``keras.models.load_model`` where neither dlsuite nor its plugins are installed.

Custom layers are rebuilt from Keras layers through :data:`CONVERTERS`, keyed by the layer's
registered Keras name (``package>Class``), so the core never imports a plugin. A custom layer
without a converter is refused with its name: the model cannot leave dlsuite as plain Keras.
TensorFlow/Keras are imported by the functions, never at module level.
"""

from __future__ import annotations

from typing import Any, Callable

from dlsuite.errors import DlsuiteInputError

__all__ = ["CONVERTERS", "custom_layers", "to_plain_keras"]


def _temporal_reduce(layer) -> Any:
    """``dlsuite_architectures>TemporalReduce`` on ``(B, T, H, W, C)``: ``mean`` is an
    ``AveragePooling3D`` over the whole time axis, ``last`` a ``Cropping3D`` keeping the last
    frame; then an ``EinsumDense`` with the constant kernel ``[1.0]`` drops the time axis of
    length 1 (exactly; unlike a ``Reshape`` it fixes no height and width, so the model can be
    rebuilt at another size, :func:`dlsuite.inference.tiling.rebuild_at_size`). Numerically
    the same as the custom layer."""
    import keras
    import numpy as np

    _, t, h, w, c = layer.input.shape
    if None in (t, c):
        raise DlsuiteInputError(f"layer {layer.name!r} (TemporalReduce): needs a static time "
                                f"and channel size to become plain Keras, got {layer.input.shape}")
    if layer.mode == "mean":
        reduce = keras.layers.AveragePooling3D(pool_size=(t, 1, 1), padding="valid")
    else:
        reduce = keras.layers.Cropping3D(cropping=((t - 1, 0), (0, 0), (0, 0)))
    squeeze = keras.layers.EinsumDense("atyxc,t->ayxc", output_shape=(None, None, c),
                                       trainable=False, name=f"{layer.name}_squeeze")
    block = keras.Sequential([keras.Input((t, h, w, c)), reduce, squeeze], name=layer.name)
    squeeze.set_weights([np.ones((1,), np.float32)])
    return block


#: Registered Keras name of a custom layer -> function giving a plain-Keras replacement (one
#: layer or a ``Sequential`` of Keras layers) computing the same.
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "dlsuite_architectures>TemporalReduce": _temporal_reduce,
}


def _is_plain(layer) -> bool:
    return type(layer).__module__.split(".")[0] == "keras"


def _all_layers(model) -> list:
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found += _all_layers(layer)
    return found


def custom_layers(model) -> list[str]:
    """Names ``"layer (registered class name)"`` of the layers of ``model`` (nested models
    included) whose class is not Keras' own."""
    import keras

    return [f"{layer.name} ({keras.saving.get_registered_name(type(layer))})"
            for layer in _all_layers(model) if not _is_plain(layer)]


def to_plain_keras(model):
    """``model`` itself when all its layers are Keras' own; otherwise a functional copy with
    each custom layer replaced through :data:`CONVERTERS` and the trained weights copied.
    DlsuiteInputError naming the layers no converter knows (and a copy that still holds a
    custom layer)."""
    import keras

    if not custom_layers(model):
        return model
    unknown = sorted({keras.saving.get_registered_name(type(layer))
                      for layer in _all_layers(model)
                      if not _is_plain(layer)} - set(CONVERTERS))
    if unknown:
        raise DlsuiteInputError(
            f"the model uses custom layer classes {', '.join(unknown)}: they cannot be turned "
            "into plain Keras layers, so the .keras file would need their plugin to load; "
            "export to savedmodel or onnx instead (those carry the computation, not the code)")

    def clone(layer):
        name = keras.saving.get_registered_name(type(layer))
        if name in CONVERTERS:
            return CONVERTERS[name](layer)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:  # converted layers hold their own (constant) weights
        if keras.saving.get_registered_name(type(layer)) not in CONVERTERS:
            copy.get_layer(layer.name).set_weights(layer.get_weights())
    left = custom_layers(copy)
    if left:
        raise DlsuiteInputError(f"custom layers left after conversion: {', '.join(left)}")
    return copy
