"""Beyond one process: batch prediction on a Dask cluster and images larger than memory.

* :mod:`.cluster` -- ``--scheduler`` (``local[:N]`` or a scheduler address) to a
  ``dask.distributed`` client; the per-worker model cache;
* :mod:`.batch` -- ``dlsuite predict --scheduler``: one task per input, results written by the
  workers as they finish (atomic, never twice), restartable;
* :mod:`.omezarr` -- OME-Zarr (NGFF) images and large TIFFs read lazily (window by window,
  or as dask arrays), OME-Zarr predictions written (probabilities, ``labels/instances``);
* :mod:`.blocks` -- block-wise prediction with the model's halo as tasks; :mod:`.normalize`
  -- normalization statistics of the whole image; :mod:`.labels` -- instance labels made
  globally unique and merged across block borders; :mod:`.image` -- ``dlsuite predict`` of
  OME-Zarr / ``--block-size`` inputs and ``api.predict(..., scheduler=...)``;
* :mod:`.convert` -- ``dlsuite prepare ome-zarr`` / ``prepare tiff``.

dask, distributed, zarr and ome-zarr are the optional extra ``dlsuite[scale]``; nothing here
imports them (or TensorFlow) at module level.
"""

from __future__ import annotations

__all__: list[str] = []
