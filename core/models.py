"""The configured model: its geometry (size multiple, receptive field, the halo that follows
from it) and building it from the architecture plugin + the number of classes of the target.

TensorFlow is imported by the architecture factory, not by this module.
"""

from __future__ import annotations

import math
from typing import Any

from pathlib import Path

from .errors import DlsuiteInputError
from .registry import Registry

__all__ = ["model_geometry", "halo_from_receptive_field", "halo_pixels", "used_halo", "build_model",
           "load_model_file"]


def model_geometry(config: Any, registry: Registry) -> dict[str, Any]:
    """What the pipeline needs to know about the configured architecture, without TF:
    ``temporal``, ``time_windows``, ``n_classes`` (the model's output channels: the sum of the
    target plugin's head channels, :mod:`dlsuite.heads`), ``heads``, ``size_multiple``,
    ``receptive_field`` (None when the architecture declares none: it is then measured,
    :func:`dlsuite.steps.resolve_halo`) and ``supports_dynamic_size``. A spec callable that
    raises is reported as its plugin's error (:func:`dlsuite.registry.call_spec`)."""
    from .heads import heads_of, output_channels
    from .registry import call_spec

    entry = registry.resolve("architectures", config.model.name)
    arch = entry.spec
    target = registry.resolve("targets", config.datagen.target.name).spec
    params = config.model.params
    heads = heads_of(target)
    return {
        "temporal": arch.temporal,
        "time_windows": getattr(params, "time_windows", None) if arch.temporal else None,
        "n_classes": output_channels(heads),
        "heads": heads,
        "size_multiple": call_spec(entry, "size_multiple", params) or 1,
        "receptive_field": call_spec(entry, "receptive_field", params),
        "supports_dynamic_size": arch.supports_dynamic_size,
    }



def halo_from_receptive_field(receptive_field: int, fraction: float = 1.0) -> int:
    """Halo (context pixels per side) for ``inference.halo = "auto"``: the reach
    ``ceil((rf - 1) / 2)`` of a receptive field of ``rf = 2 r + 1`` pixels (``r`` the farthest
    input pixel an output pixel depends on, over every pixel phase), times ``fraction``,
    rounded up; never negative. Tiling then rounds it up to the size multiple
    (:func:`used_halo`)."""
    if receptive_field < 1:
        raise DlsuiteInputError(f"receptive field must be >= 1 pixel, got {receptive_field}")
    return max(0, math.ceil(fraction * (receptive_field - 1) / 2))


def used_halo(halo: int, size_multiple: int = 1) -> int:
    """The halo tiling actually uses for a requested ``halo``: rounded up to a multiple of
    ``size_multiple`` (so every tile sees the pooling grid of a whole-image pass)."""
    m = max(1, int(size_multiple))
    return -(-int(halo) // m) * m


def halo_pixels(halo: int | str, receptive_field: int | None) -> int:
    """The halo in pixels for the config value ``halo``: an int as is; ``"auto"`` the reach
    of ``receptive_field`` (:func:`halo_from_receptive_field`), which must then be known
    (declared by the architecture or measured, :func:`dlsuite.steps.resolve_halo`)."""
    if halo != "auto":
        return int(halo)
    if receptive_field is None:
        raise ValueError("inference.halo 'auto' needs the receptive field: declared by the "
                         "architecture or measured (dlsuite.inference.receptive_field)")
    return int(halo_from_receptive_field(receptive_field))

def build_model(config: Any, registry: Registry, *, spatial: tuple[int, int] | None = None,
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
    import zipfile

    import keras

    p = Path(path)
    if p.suffix == ".keras" and p.is_file() and not zipfile.is_zipfile(p):
        # Keras says "File not found" for a file it cannot open as a zip
        raise DlsuiteInputError(f"{path}: cannot load the model: not a .keras archive "
                                f"({p.stat().st_size} bytes, no zip directory): truncated, "
                                "still being written or another kind of file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - report which file could not be loaded
        raise DlsuiteInputError(
            f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from None
