"""Which checkpoint of a run predicts, and loading it (``dlsuite run`` and ``dlsuite predict``).

:func:`choose_checkpoint` is the one rule for ``inference.weights`` / ``--weights``:
``best`` (``last.keras`` when the run has no ``best.keras``), ``last``, or a path.
:func:`load_checkpoint` loads it, with the architecture plugin imported first and the last
models kept in memory.

Nothing here imports TensorFlow at module level; choosing a checkpoint never does.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from dlsuite.errors import DlsuiteInputError
from dlsuite.rundir import RunDir

__all__ = ["choose_checkpoint", "load_checkpoint"]

log = logging.getLogger("dlsuite")


def choose_checkpoint(run: RunDir, weights: str) -> Path:
    """The checkpoint ``weights`` names in ``run``: ``"best"`` (``last.keras`` when there is
    no ``best.keras``, with a warning), ``"last"``, or a path to a ``.keras`` (or legacy
    ``.h5``) file (relative paths are tried from the working directory, then from the run).
    DlsuiteInputError naming the file when it is missing, a folder or of another kind."""
    if weights in ("best", "last"):
        path = run.best if weights == "best" else run.last
        if weights == "best" and not path.is_file() and run.last.is_file():
            log.warning("%s: no best.keras (the monitored metric was never logged), using "
                        "last.keras", run.checkpoints)
            path = run.last
        if not path.is_file() and run.best.is_file():  # last.keras removed by hand
            raise DlsuiteInputError(f"{path}: no checkpoint to predict with (weights "
                                    f"{weights!r}); the run has {run.best.name}: weights best")
        if not path.is_file():
            # neither file: no epoch ended (killed, failed, or still in the first)
            raise DlsuiteInputError(
                f"{path}: no checkpoint to predict with (weights {weights!r}); the run has "
                "no checkpoint yet: it stopped before its first epoch ended, or is still in "
                "it; finish its training first, or give a checkpoint file (dlsuite predict "
                "and export: --weights PATH)")
        return path
    path = Path(weights).expanduser()
    if not path.is_file() and not path.is_absolute() and (run.root / path).is_file():
        path = run.root / path
    if path.is_dir():
        raise DlsuiteInputError(f"{path}: is a folder, not a checkpoint (weights names a "
                                ".keras file, or best, last)")
    if not path.is_file():
        raise DlsuiteInputError(f"{path}: checkpoint not found (weights {weights!r})")
    if path.suffix.lower() not in _MODEL_SUFFIXES:
        raise DlsuiteInputError(f"{path}: not a Keras checkpoint (weights names a .keras "
                                "file, or best, last)")
    return path


#: File endings Keras 3 loads a whole model from.
_MODEL_SUFFIXES = (".keras", ".h5")


_MODELS: "OrderedDict[tuple, Any]" = OrderedDict()
_MAX_CACHED_MODELS = 2


def load_checkpoint(path: str | os.PathLike, config=None, registry=None):
    """Load the Keras model at ``path`` (``compile=False``). With ``config``, the factory of
    its architecture plugin is imported first, so custom layers the plugin registers are
    known in a fresh process. The last two models loaded are cached by path, size and
    modification time. DlsuiteInputError naming the file when it cannot be loaded."""
    from dlsuite.models import load_model_file

    path = Path(path).resolve()
    if config is not None:
        from dlsuite.registry import get_registry

        (registry or get_registry()).resolve("architectures", config.model.name).load()
    try:
        stat = path.stat()
    except OSError as exc:
        raise DlsuiteInputError(f"{path}: cannot read the checkpoint: {exc}") from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    model = load_model_file(path)
    _MODELS[key] = model
    while len(_MODELS) > _MAX_CACHED_MODELS:
        _MODELS.popitem(last=False)
    return model
