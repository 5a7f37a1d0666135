"""The public Python API of dlsuite: the one door.

Every ``dlsuite`` command parses its arguments, calls exactly one function of this module and
prints the result; the same functions serve Python users with the same behaviour. Heavy
modules (TensorFlow, the training pipeline) are imported only by the functions that need
them: importing ``dlsuite.api`` is cheap and TF-free.

Config and plugins: :func:`load_config`, :func:`check_config`, :func:`validate_config`,
:func:`show_config`, :func:`migrate_config`, :func:`config_schema`, :func:`plugins`,
:func:`describe_plugins`, :func:`new_plugin`, :func:`tracking_defaults`,
:func:`plugin_failure`. Training:
:func:`train`, :func:`run`,
:func:`model_summary`. Data: :func:`example_data`, :func:`prepare_frames`,
:func:`prepare_videos`, :func:`prepare_clips`, :func:`prepare_ctc`, :func:`prepare_omezarr`,
:func:`prepare_tiff`, :func:`track`. Results:
:func:`evaluate`, :func:`predict`, :func:`predict_folder`, :func:`tune`, :func:`export`. Comparing runs:
:func:`test_run`,
:func:`compare`, :func:`sweep`. ``train``, ``run``, ``load_config``, ``validate_config``,
``check_config``, ``show_config`` and ``test_run`` take ``overrides`` (what ``--set`` gives).
"""

from __future__ import annotations

from ._config import (
    Migration,
    ResolvedConfig,
    check_config,
    config_schema,
    describe_plugins,
    load_config,
    migrate_config,
    new_plugin,
    plugins,
    show_config,
    tracking_defaults,
    validate_config,
)
from ._plugins import plugin_failure
from ._data import (example_data, prepare_clips, prepare_ctc, prepare_frames, prepare_omezarr,
                    prepare_tiff, prepare_videos, track)
from ._export import export
from ._results import evaluate, predict, predict_folder, tune
from ._compare import compare, sweep, test_run
from ._training import model_summary, run, train

__all__ = [
    "load_config", "check_config", "validate_config", "show_config", "migrate_config",
    "config_schema", "plugins", "describe_plugins", "new_plugin", "tracking_defaults",
    "plugin_failure",
    "train", "run", "model_summary",
    "example_data", "prepare_frames", "prepare_videos", "prepare_clips", "prepare_ctc", "track",
    "prepare_omezarr", "prepare_tiff",
    "evaluate", "predict", "predict_folder", "tune", "export",
    "test_run", "compare", "sweep",
    "ResolvedConfig", "Migration", "TrainingInterrupted", "SweepInterrupted",
]


def __getattr__(name: str):
    # The exception classes of training live with the pipeline; resolved on first use so that
    # importing the API stays light.
    if name == "TrainingInterrupted":
        from ..pipeline import TrainingInterrupted

        return TrainingInterrupted
    if name == "SweepInterrupted":
        from ..sweep import SweepInterrupted

        return SweepInterrupted
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
