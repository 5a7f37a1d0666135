"""The names a run directory's own files and folders have (no imports: the config's rules
check ``inference.output_folder`` against them, :mod:`dlsuite.rundir` lays runs out by them).
"""

from __future__ import annotations

__all__ = ["RUN_ENTRIES", "RUN_OWN_NAMES"]

#: What a run writes directly in its folder (``inference.output_folder`` is added from the
#: config); ``--overwrite`` removes these and nothing else (``export`` and ``test`` are
#: recorded when ``dlsuite export`` / ``dlsuite test`` first write them).
RUN_ENTRIES = ("config.json", "run.log", "history.csv", "metrics.json", "postprocess.json",
               "checkpoints", "logs", "predictions", "report", "wandb")
#: Names in a run directory that ``inference.output_folder`` may not start with: the run's
#: own files and folders, its marker and lock file.
RUN_OWN_NAMES = tuple(e for e in RUN_ENTRIES if e != "predictions") + (
    "export", "test", ".dlsuite-run", ".dlsuite-lock")
