"""Entry-point module of the built-in architectures plugins: hook implementations returning specs.

TF-free: factories are lazy ``"module:function"`` strings; the parameter classes and the
geometry callables live in TF-free modules.
"""

from __future__ import annotations

from dlsuite import ArchitectureSpec, hookimpl

from . import geometry as g
from . import params as p

_PKG = "dlsuite_plugins.architectures"

ARCHITECTURES = [
    ArchitectureSpec(
        name="unet",
        factory=f"{_PKG}.unet:build_unet",
        params=p.UNetParams,
        description="classic 2D U-Net: depth, kernel, dropout schedule, batch norm, "
                    "nearest/transpose upsampling, dilation",
        size_multiple=g.pools_multiple,
        receptive_field=g.unet_receptive_field,
    ),
    ArchitectureSpec(
        name="categorical_unet",
        factory=f"{_PKG}.unet:build_categorical_unet",
        params=p.CategoricalUNetParams,
        description="the original's categorical U-Net: MaxPool/UpSampling, dropout after "
                    "each block's first conv",
        size_multiple=g.pools_multiple,
        receptive_field=g.categorical_unet_receptive_field,
    ),
    ArchitectureSpec(
        name="categorical_unet_transpose",
        factory=f"{_PKG}.unet:build_categorical_unet_transpose",
        params=p.TransposeUNetParams,
        description="U-Net with MaxPool downsampling and 2x2 transposed-convolution upsampling",
        size_multiple=g.pools_multiple,
        receptive_field=g.transpose_unet_receptive_field,
    ),
    ArchitectureSpec(
        name="categorical_unet_fc",
        factory=f"{_PKG}.unet:build_categorical_unet_fc",
        params=p.FCUNetParams,
        description="fully convolutional U-Net: strided-conv downsampling, "
                    "transposed-conv upsampling",
        size_multiple=g.pools_multiple,
        receptive_field=g.fc_unet_receptive_field,
    ),
    ArchitectureSpec(
        name="categorical_unet_fc_dil",
        factory=f"{_PKG}.unet:build_categorical_unet_fc_dil",
        params=p.FCDilUNetParams,
        description="fully convolutional U-Net with dilated encoder blocks",
        size_multiple=g.pools_multiple,
        receptive_field=g.fc_dil_unet_receptive_field,
    ),
    ArchitectureSpec(
        name="mobilenet_mobileunet",
        factory=f"{_PKG}.mobilenet:build_mobilenet_mobileunet",
        params=p.MobileUNetParams,
        description="MobileNetV2 encoder (nested model 'encoder') + MobileUNet separable-conv "
                    "decoder",
        size_multiple=g.pools_multiple,
        receptive_field=g.mobileunet_receptive_field,
    ),
    ArchitectureSpec(
        name="mobilenet_mobileunet_lstm",
        factory=f"{_PKG}.mobilenet:build_mobilenet_mobileunet_lstm",
        params=p.MobileUNetLSTMParams,
        description="mobilenet_mobileunet per frame, then ConvLSTM2D over the window and a 1x1 "
                    "head (prediction for the last frame)",
        temporal=True,
        size_multiple=g.pools_multiple,
        receptive_field=g.mobileunet_lstm_receptive_field,
        supports_dynamic_size=False,
    ),
    ArchitectureSpec(
        name="unet_lstm",
        factory=f"{_PKG}.unet_lstm:build_unet_lstm",
        params=p.UNetLSTMParams,
        description="U-Net with ConvLSTM units in the contracting path; time collapsed before "
                    "the head",
        temporal=True,
        size_multiple=g.pools_multiple,
        receptive_field=g.unet_lstm_receptive_field,
        supports_dynamic_size=False,
    ),
]


@hookimpl
def dlsuite_architectures() -> list[ArchitectureSpec]:
    """The built-in encoder-decoders (:data:`ARCHITECTURES`)."""
    return list(ARCHITECTURES)
