"""Building the configured model: architecture plugin + the number of classes of the target.

TensorFlow is imported by the architecture factory, not by this module.
"""

from __future__ import annotations

from typing import Any

from pathlib import Path

from .config.schema import Config
from .errors import DlsuiteInputError
from .registry import Registry

__all__ = ["model_geometry", "build_model", "load_model_file"]


def model_geometry(config: Config, registry: Registry) -> dict[str, Any]:
    """What the pipeline needs to know about the configured architecture, without TF:
    ``temporal``, ``time_windows``, ``n_classes`` (the model's output channels: the sum of the
    target plugin's head channels, :mod:`dlsuite.heads`), ``heads``, ``size_multiple``,
    ``receptive_field`` and ``supports_dynamic_size``."""
    from .heads import heads_of, output_channels

    arch = registry.resolve("architectures", config.model.name).spec
    target = registry.resolve("targets", config.datagen.target.name).spec
    params = config.model.params
    heads = heads_of(target)
    return {
        "temporal": arch.temporal,
        "time_windows": getattr(params, "time_windows", None) if arch.temporal else None,
        "n_classes": output_channels(heads),
        "heads": heads,
        "size_multiple": arch.size_multiple(params) if arch.size_multiple else 1,
        "receptive_field": arch.receptive_field(params) if arch.receptive_field else None,
        "supports_dynamic_size": arch.supports_dynamic_size,
    }


def build_model(config: Config, registry: Registry, *, spatial: tuple[int, int] | None = None,
                n_classes: int | None = None):
    """Build the configured Keras model (uncompiled, no weights loaded).

    ``spatial`` = (H, W) fixes the input size; by default 2D models take any size and models
    that need static shapes (ConvLSTM) are built at ``datagen.patch_size``. ``n_classes``
    defaults to the target plugin's.
    """
    geo = model_geometry(config, registry)
    if spatial is None and not geo["supports_dynamic_size"]:
        spatial = tuple(config.datagen.patch_size)
    h, w = spatial if spatial is not None else (None, None)
    shape = (geo["time_windows"], h, w, 1) if geo["temporal"] else (h, w, 1)
    build = registry.resolve("architectures", config.model.name).load()
    return build(config.model.params, n_classes=n_classes or geo["n_classes"], input_shape=shape)


def load_model_file(path: Path):
    """Load the Keras model at ``path`` without compiling it (for prediction).

    Raises DlsuiteInputError naming the file when it cannot be loaded. Custom Keras objects
    of plugins must be registered first (import the architecture's factory).
    """
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - report which file could not be loaded
        raise DlsuiteInputError(
            f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from None
