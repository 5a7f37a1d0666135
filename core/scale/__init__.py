"""Beyond one process: batch prediction on a Dask cluster and images larger than memory.

* :mod:`.cluster` -- ``--scheduler`` (``local[:N]`` or a scheduler address) to a
  ``dask.distributed`` client; the per-worker model cache;
* :mod:`.batch` -- ``dlsuite predict --scheduler``: one task per input, results written by the
  workers as they finish (atomic, never twice), restartable;
* :mod:`.omezarr` -- OME-Zarr (NGFF) and large TIFFs read lazily as dask arrays, OME-Zarr
  written (probabilities, ``labels/``), ``prepare`` conversions TIFF <-> OME-Zarr;
* :mod:`.blocks` -- block-wise prediction with the model's halo, global normalization
  statistics, instance labels made globally unique and merged across block borders.

dask, distributed, zarr and ome-zarr are the optional extra ``dlsuite[scale]``; nothing here
imports them (or TensorFlow) at module level.
"""

from __future__ import annotations

__all__: list[str] = []
