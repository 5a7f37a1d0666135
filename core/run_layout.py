"""The names a run directory's own files and folders have (no imports: the config's rules
check ``inference.output_folder`` against them, :mod:`dlsuite.rundir` lays runs out by them).
"""

from __future__ import annotations

__all__ = ["RUN_ENTRIES", "RUN_OWN_NAMES", "PERIODIC_ENTRY", "is_resume_folder"]

#: What a run writes in its folder (``inference.output_folder`` is added from the config);
#: ``--overwrite`` removes these and nothing else (``export`` and ``test`` are recorded when
#: ``dlsuite export`` / ``dlsuite test`` first write them). ``checkpoints`` is recorded file
#: by file: a model the user saved there (a copy of best.keras) stays; each periodic
#: ``epoch_NNNN.keras`` is recorded by name when it is written (:data:`PERIODIC_ENTRY`).
RUN_ENTRIES = ("config.json", "run.log", "history.csv", "metrics.json", "postprocess.json",
               "checkpoints/best.keras", "checkpoints/last.keras", "checkpoints/.tmp-*",
               "checkpoints/resume/state.json", "checkpoints/resume/.tmp-*",
               "checkpoints/resume/epoch_[0-9][0-9][0-9][0-9]*", "logs", "predictions",
               "report", "wandb")
#: The entry of one periodic checkpoint (``checkpoints.every_n_epochs``).
PERIODIC_ENTRY = "checkpoints/epoch_{epoch:04d}.keras"
#: Names in a run directory that ``inference.output_folder`` may not start with: the run's
#: own files and folders, its marker and lock file.
RUN_OWN_NAMES = tuple(dict.fromkeys(e.split("/")[0] for e in RUN_ENTRIES
                                    if e != "predictions")) + (
    "export", "test", ".dlsuite-run", ".dlsuite-lock")


def is_resume_folder(name: str) -> bool:
    """A subfolder of ``checkpoints/resume`` that training wrote (``epoch_NNNN``): the only
    ones it removes there."""
    return name.startswith("epoch_") and name[6:].isdigit() and len(name) >= 10
