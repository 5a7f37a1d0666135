"""Entry-point module of the built-in architectures plugins: hook implementations returning specs.

TF-free: factories are lazy ``"module:function"`` strings; the parameter classes and the
geometry callables live in TF-free modules.
"""

from __future__ import annotations

from dlsuite import ArchitectureSpec, hookimpl

from . import geometry as g
from . import params as p

_PKG = "dlsuite_plugins.architectures"

# name -> (factory, params class, receptive field, temporal, dynamic size, description)
_TABLE = [
    ("unet", f"{_PKG}.unet:build_unet", p.UNetParams, g.unet_receptive_field, False, True,
     "classic 2D U-Net: depth, kernel, dropout schedule, batch norm, nearest/transpose "
     "upsampling, dilation"),
    ("categorical_unet", f"{_PKG}.unet:build_categorical_unet", p.CategoricalUNetParams,
     g.categorical_unet_receptive_field, False, True,
     "the original's categorical U-Net: MaxPool/UpSampling, dropout after each block's first conv"),
    ("categorical_unet_transpose", f"{_PKG}.unet:build_categorical_unet_transpose",
     p.TransposeUNetParams, g.transpose_unet_receptive_field, False, True,
     "U-Net with MaxPool downsampling and 2x2 transposed-convolution upsampling"),
    ("categorical_unet_fc", f"{_PKG}.unet:build_categorical_unet_fc", p.FCUNetParams,
     g.fc_unet_receptive_field, False, True,
     "fully convolutional U-Net: strided-conv downsampling, transposed-conv upsampling"),
    ("categorical_unet_fc_dil", f"{_PKG}.unet:build_categorical_unet_fc_dil", p.FCDilUNetParams,
     g.fc_dil_unet_receptive_field, False, True,
     "fully convolutional U-Net with dilated encoder blocks"),
    ("mobilenet_mobileunet", f"{_PKG}.mobilenet:build_mobilenet_mobileunet", p.MobileUNetParams,
     g.mobileunet_receptive_field, False, True,
     "MobileNetV2 encoder (nested model 'encoder') + MobileUNet separable-conv decoder"),
    ("mobilenet_mobileunet_lstm", f"{_PKG}.mobilenet:build_mobilenet_mobileunet_lstm",
     p.MobileUNetLSTMParams, g.mobileunet_lstm_receptive_field, True, False,
     "mobilenet_mobileunet per frame, then ConvLSTM2D over the window and a 1x1 head "
     "(prediction for the last frame)"),
    ("unet_lstm", f"{_PKG}.unet_lstm:build_unet_lstm", p.UNetLSTMParams,
     g.unet_lstm_receptive_field, True, False,
     "U-Net with ConvLSTM units in the contracting path; time collapsed before the head"),
]


@hookimpl
def dlsuite_architectures() -> list[ArchitectureSpec]:
    """The built-in encoder-decoders (see the table above)."""
    return [
        ArchitectureSpec(
            name=name,
            factory=factory,
            params=params,
            description=description,
            temporal=temporal,
            size_multiple=g.pools_multiple,
            receptive_field=rf,
            supports_dynamic_size=dynamic,
        )
        for name, factory, params, rf, temporal, dynamic, description in _TABLE
    ]
