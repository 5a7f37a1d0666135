"""``dlsuite run``'s export of the trained model in the formats of the config's
``export.formats`` (what ``dlsuite export RUN_DIR --format F`` writes, into
``RUN_DIR/export``), and the W&B model artifact carrying them.

:func:`export_problems` runs before the run starts (no TensorFlow): a format whose optional
packages are missing, or bioimage.io metadata a package cannot hold (a bad ORCID iD, DOI,
licence), stops the run with exit 2 before anything is written. An export failing after training (e.g. validation images
smaller than the package's minimum input) is recorded as a note of the run, which keeps its
results.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from .errors import DlsuiteInputError
from .steps import RunContext, TrainOutput

__all__ = ["export_problems", "export_models_step"]

log = logging.getLogger("dlsuite")


def export_problems(config, registry) -> list[tuple[str, str]]:
    """``(json_path, message)`` for every format of ``export.formats`` the run could not
    write: its packages are not installed, or (``bioimageio``) a value of the ``export``
    section a package cannot hold (:func:`dlsuite.export.metadata.metadata_problems`)."""
    from .export import FORMATS, missing_modules

    problems = []
    for i, fmt in enumerate(config.export.formats):
        missing = missing_modules(FORMATS[fmt])
        if missing:
            problems.append((f"$.export.formats[{i}]", f"{fmt!r} needs {', '.join(missing)}: "
                             "pip install 'dlsuite[export]'"))
        elif fmt == "bioimageio":
            from .export.metadata import metadata_problems

            problems += metadata_problems(config)
    return problems


def _remove_earlier(path: Path) -> None:
    """An export of an earlier (resumed) run of this run directory: dlsuite wrote it."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def export_models_step(ctx: RunContext, trained: TrainOutput) -> dict[str, Path]:
    """Export the checkpoint ``trained.model_path`` in every format of ``export.formats``
    to ``RUN_DIR/export/<name><suffix>`` (replacing an export of this run directory, e.g.
    before ``--resume``); then, when ``wandb.log_model``, log the W&B model artifact with the
    checkpoint and the exports. Returns ``{format: path}`` of what was written; a failed
    format is a note of the run."""
    from .export import FORMATS, default_export_path, export_run

    cfg = ctx.config
    written: dict[str, Path] = {}
    if trained.model_path is None:
        if cfg.export.formats:
            ctx.note("export.formats: no checkpoint to export")
        return written
    for fmt in cfg.export.formats:
        out = default_export_path(ctx.run.root, cfg.name, fmt)
        _remove_earlier(out)
        try:
            result = export_run(ctx.run.root, fmt, weights=str(trained.model_path),
                                registry=ctx.registry)
        except DlsuiteInputError as exc:
            ctx.note(f"export {fmt} failed: {exc}")
            continue
        written[fmt] = result.path
        log.info("exported %s to %s", fmt, result.path)
    if cfg.wandb.log_model:
        train = trained.metrics.get("train", {})
        ctx.wandb.log_model(trained.model_path, name=cfg.name, aliases=["latest"],
                            metadata={"monitor": train.get("monitor"), "best": train.get("best"),
                                      "exports": {f: p.name for f, p in written.items()}},
                            extra=list(written.values()))
    return written
