"""Prediction of 2D images and videos of any size, by role.

* :mod:`~dlsuite.inference.tiling` -- the tile grid, the halo, tiled prediction of one image
  (:func:`predict_image`), the rebuild of static-size models (:func:`rebuild_at_size`) and
  :class:`TileSettings`;
* :mod:`~dlsuite.inference.temporal` -- videos: temporal windows, the per-frame feature
  cache and the split contract of temporal models (:func:`predict_video`);
* :mod:`~dlsuite.inference.postprocess` -- the post-processing chain, built from the config
  and the registry and run in one place (:func:`build_postprocess`);
* :mod:`~dlsuite.inference.outputs` -- probability and label TIFFs
  (:func:`write_predictions`);
* :mod:`~dlsuite.inference.checkpoint` -- which checkpoint predicts
  (:func:`choose_checkpoint`: ``best`` / ``last`` / a path) and loading it.

Nothing here imports TensorFlow or Keras at module level.
"""

from __future__ import annotations

from .checkpoint import choose_checkpoint, load_checkpoint
from .outputs import write_predictions
from .postprocess import PostprocessChain, build_postprocess, instance_labels, run_postprocess
from .temporal import FRAME_FEATURES, predict_video, split_temporal_model
from .tiling import (TileSettings, halo_from_receptive_field, halo_pixels, model_tile_settings,
                     predict_image, rebuild_at_size, tile_grid)

__all__ = [
    "FRAME_FEATURES",
    "halo_from_receptive_field",
    "halo_pixels",
    "tile_grid",
    "predict_image",
    "predict_video",
    "split_temporal_model",
    "rebuild_at_size",
    "TileSettings",
    "model_tile_settings",
    "PostprocessChain",
    "build_postprocess",
    "instance_labels",
    "run_postprocess",
    "write_predictions",
    "choose_checkpoint",
    "load_checkpoint",
]
