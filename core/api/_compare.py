"""Comparing runs in :mod:`dlsuite.api`: testing a finished run, comparing runs, sweeps.
TensorFlow is imported only by :func:`test_run`, when it predicts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import DlsuiteInputError
from ..registry import get_registry

__all__ = ["test_run", "compare", "sweep"]


def test_run(target: Any, *, weights: str = "best", quiet: bool = False,
             overrides: Any = None):
    """Test a finished run as the original suite's ``test.py`` did: predict, post-process,
    export and evaluate the test set with the run's ``weights`` checkpoint (``best`` or
    ``last``), without training. ``target`` is a run directory (its ``config.json`` gives
    the config) or a config (path, dict or LoadedConfig; ``overrides`` as in
    :func:`load_config`) whose ``output_dir`` holds the trained run. Results go into
    ``RUN/test/<weights>/`` (labels, CTC folders, ``metrics.json``), recorded in the run's
    marker; nothing else is touched. Returns a ``TestResult(run_dir, results, checkpoint,
    metrics)`` (``metrics["test"]``: the evaluation). DlsuiteInputError for a folder without
    a run or checkpoint, or a config without ``data.test``."""
    from ..runtest import test_run as _test_run
    from ._config import loaded

    path = Path(target) if isinstance(target, (str, os.PathLike)) else None
    if path is not None and path.is_dir():
        if overrides:
            raise DlsuiteInputError(f"{path}: --set applies to a CONFIG, not to a run "
                                    "directory (its config.json is the run's own)")
        return _test_run(path, weights=weights, quiet=quiet, registry=get_registry())
    return _test_run(loaded(target, overrides=overrides), weights=weights, quiet=quiet,
                     registry=get_registry())


test_run.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def compare(paths: Sequence[str | os.PathLike], *, metric: str | None = None,
            plot: str | os.PathLike | None = None) -> Any:
    """Compare finished runs (run directories, or folders of runs such as a sweep's output):
    returns a ``Comparison`` whose ``.to_json()`` is ``{"runs", "differing_keys",
    "metrics", "sort_by"}`` -- the config keys whose values differ between the runs, each
    run's values of them and its ``--set`` overrides, and its metrics (``<monitor>/best``,
    ``<monitor>/final``, ``test/SEG``, ``test/DET``, ``test/TRA``, ``test/f1``, ...), runs
    sorted by ``metric`` (default: the validation monitor at its best), best first. With
    ``plot``, a PNG of the validation curves (shared axes) and the test metrics (bars) is
    written there; an existing file is refused (DlsuiteInputError, before anything is read).
    DlsuiteInputError for a path that holds no run, or an unknown metric."""
    from ..compare import compare_runs, plot_comparison
    from ..output_file import check_output_file

    if plot is not None:
        plot = check_output_file(plot, str(plot), writer="dlsuite compare")
        if plot.suffix.lower() != ".png":
            raise DlsuiteInputError(f"{plot}: --plot writes a PNG; name it *.png")
    if not paths:
        raise DlsuiteInputError("no run given: pass run directories or a sweep folder")
    comparison = compare_runs(paths, metric)
    if plot is not None:
        plot_comparison(comparison, plot)
    return comparison


def sweep(path: str | os.PathLike, *, output: str | os.PathLike | None = None,
          parallel: int = 1, resume: bool = False, quiet: bool = False,
          on_trial: Callable[[dict], None] | None = None, wandb: bool = False):
    """Run the sweep described by the file at ``path`` (YAML or JSON, the W&B sweep format:
    ``method`` grid | random, ``metric`` {name, goal}, ``parameters`` with value / values /
    distribution + min/max (dotted config paths as in ``--set``; nested ``parameters``
    blocks join with dots), ``run_cap``, ``name``; plus ``base``: the config, relative to
    the sweep file). Each trial is an ordinary ``dlsuite run`` with its parameters as
    overrides in ``OUTPUT/trial-NNN`` (``output`` default ``runs/<sweep name>``), all in the
    W&B group named after the sweep with the overrides as tags, ``parallel`` at a time.
    ``resume`` skips finished trials and resumes an interrupted one. Returns a
    ``SweepResult(output, name, trials, metric)``; raises ``SweepInterrupted``
    (``exit_code`` 130/143) after SIGINT/SIGTERM once the running trials saved their state,
    DlsuiteInputError for a bad sweep file or parameter before any trial starts.

    ``wandb``: W&B's sweep controller chooses the trials (``method`` bayes too) and W&B's
    sweep dashboard shows them (:mod:`dlsuite.wandb_sweep`); needs W&B online with an API
    key (else DlsuiteInputError at once, nothing written); not with ``parallel`` > 1 or
    ``resume``."""
    from ..sweep import run_sweep

    if wandb:
        from ..wandb_sweep import run_wandb_sweep

        if parallel != 1 or resume:
            raise DlsuiteInputError("--wandb: --parallel and --resume are for local sweeps "
                                    "(W&B's controller keeps the sweep's state; start more "
                                    "agents for parallel trials)")
        return run_wandb_sweep(path, output=output, quiet=quiet, registry=get_registry())

    return run_sweep(path, output=output, parallel=parallel, resume=resume, quiet=quiet,
                     on_trial=on_trial, registry=get_registry())

