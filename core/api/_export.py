"""Export function of :mod:`dlsuite.api`: a trained model for tools outside dlsuite."""

from __future__ import annotations

import os

from ..registry import get_registry

__all__ = ["export"]


def export(run_dir: str | os.PathLike, format: str = "keras",  # noqa: A002 - the CLI's name
           out: str | os.PathLike | None = None, *, weights: str | None = None,
           overwrite: bool = False):
    """Export the model of the trained run ``run_dir`` as ``format``: ``keras`` (a ``.keras``
    file of plain Keras layers that ``keras.models.load_model`` opens without dlsuite),
    ``savedmodel`` (a TensorFlow SavedModel, signature ``serve``, any height and width that
    are multiples of the size multiple), ``onnx`` or ``bioimageio`` (a bioimage.io model
    package, spec 0.5, of a 2D model: both weights, the run's normalizer as preprocessing,
    softmax, halo, test tensors from a validation image; authors/licence/citations from the
    config's ``export`` section); ``onnx`` and ``bioimageio`` need
    ``pip install 'dlsuite[export]'``.
    ``out`` defaults to ``RUN_DIR/export/<run name><suffix>`` and must not exist, unless
    ``overwrite`` and it is an export dlsuite wrote (it carries the run's metadata, or it
    lies in a run's ``export/``), replaced once the new export is complete (e.g. after
    ``dlsuite tune`` changed the post-processing values an export carries);
    ``weights`` is ``best``/``last``/a checkpoint path (default: the run's
    ``inference.weights``). The model takes images normalized as the run normalized them and
    gives logits. Returns a :class:`dlsuite.export.ExportResult` (path, checkpoint, shapes,
    size multiple, normalization, notes). Raises DlsuiteInputError before anything is
    written for an unknown format, a missing run/checkpoint, an existing ``out`` (not
    replaced), a missing
    package or custom layers that cannot become plain Keras.
    """
    from ..export import export_run

    return export_run(run_dir, format, out, weights=weights, overwrite=overwrite,
                      registry=get_registry())
