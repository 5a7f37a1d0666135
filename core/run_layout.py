"""The names a run directory's own files and folders have (no imports: the config's rules
check ``inference.output_folder`` against them, :mod:`dlsuite.rundir` lays runs out by them).
"""

from __future__ import annotations

__all__ = ["RUN_ENTRIES", "RUN_OWN_NAMES"]

#: What a run writes in its folder (``inference.output_folder`` is added from the config);
#: ``--overwrite`` removes these and nothing else (``export`` and ``test`` are recorded when
#: ``dlsuite export`` / ``dlsuite test`` first write them). ``checkpoints`` is recorded file
#: by file: a model the user saved there (a copy of best.keras) stays.
RUN_ENTRIES = ("config.json", "run.log", "history.csv", "metrics.json", "postprocess.json",
               "checkpoints/best.keras", "checkpoints/last.keras", "checkpoints/epoch_*.keras",
               "checkpoints/resume", "checkpoints/.tmp-*", "logs", "predictions", "report",
               "wandb")
#: Names in a run directory that ``inference.output_folder`` may not start with: the run's
#: own files and folders, its marker and lock file.
RUN_OWN_NAMES = tuple(dict.fromkeys(e.split("/")[0] for e in RUN_ENTRIES
                                    if e != "predictions")) + (
    "export", "test", ".dlsuite-run", ".dlsuite-lock")
