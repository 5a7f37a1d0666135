"""Entry-point module of the built-in postprocess plugins: hook implementations returning specs.

TF-free and numpy-free: factories are lazy strings into :mod:`dlsuite_plugins.postprocess.steps`
(whose module docstring tabulates what each step takes and gives); parameter classes live in
:mod:`dlsuite_plugins.postprocess.params`.
"""

from __future__ import annotations

from dlsuite import Needs, PostprocessorSpec, Tunable, hookimpl

from . import params as p

_STEPS = "dlsuite_plugins.postprocess.steps"

# the parameters a validation search may tune (dlsuite.tuning)
_PROBABILITY = Tunable("threshold", 0.3, 0.7, 5)
_MIN_SIZE = Tunable("min_size", values=(0, 25, 50, 100, 150, 250))

# what each step accepts and gives (dlsuite.chains checks a config's chain with them)
_MORPHOLOGY = {"accepts": ("mask", "labels"), "gives": "same"}


def _threshold_needs(params: p.ThresholdParams) -> Needs:
    return Needs(channels=(params.channel,))  # any channel: a class or e.g. the distance


def _watershed_needs(params: p.WatershedSplitParams) -> Needs:
    return Needs(classes=(params.cell_class, params.contour_class))


def _distance_needs(params: p.DistanceWatershedParams) -> Needs:
    fg = params.foreground_channel if params.background_channel is None else \
        params.background_channel
    return Needs(classes=(fg,), channels=(params.distance_channel,), regression=True)


POSTPROCESSORS = [
    PostprocessorSpec(
        name="argmax",
        factory=f"{_STEPS}:build_argmax",
        params=p.ArgmaxParams,
        description="probabilities -> uint8 class map (class ids kept: 1 = cell, 2 = contour)",
        accepts="probabilities",
        gives="class_map",
    ),
    PostprocessorSpec(
        name="threshold",
        factory=f"{_STEPS}:build_threshold",
        params=p.ThresholdParams,
        description="probability of one class > threshold -> uint8 0/1 mask",
        tunable=(_PROBABILITY,),
        accepts="probabilities",
        gives="mask",
        needs=_threshold_needs,
    ),
    PostprocessorSpec(
        name="closing",
        factory=f"{_STEPS}:build_closing",
        params=p.ClosingParams,
        description="morphological closing (disk) of a mask or of each object",
        **_MORPHOLOGY,
    ),
    PostprocessorSpec(
        name="fill_holes",
        factory=f"{_STEPS}:build_fill_holes",
        params=p.FillHolesParams,
        description="fill holes of a mask or of each object",
        **_MORPHOLOGY,
    ),
    PostprocessorSpec(
        name="remove_small_objects",
        factory=f"{_STEPS}:build_remove_small_objects",
        params=p.RemoveSmallObjectsParams,
        description="drop objects below min_size pixels (mask or labels, ids kept)",
        tunable=(_MIN_SIZE,),
        **_MORPHOLOGY,
    ),
    PostprocessorSpec(
        name="remove_border_objects",
        factory=f"{_STEPS}:build_remove_border_objects",
        params=p.RemoveBorderObjectsParams,
        description="drop objects touching the image border (mask or labels)",
        **_MORPHOLOGY,
    ),
    PostprocessorSpec(
        name="label",
        factory=f"{_STEPS}:build_label",
        params=p.LabelParams,
        description="connected components -> int32 instance labels",
        accepts=("mask", "labels"),
        gives="labels",
    ),
    PostprocessorSpec(
        name="watershed_split",
        factory=f"{_STEPS}:build_watershed_split",
        params=p.WatershedSplitParams,
        description="class map -> int32 instances, touching cells split at the contour class",
        tunable=(Tunable("min_marker_size", values=(0, 5, 10, 20, 40)),),
        accepts="class_map",
        gives="labels",
        needs=_watershed_needs,
    ),
    PostprocessorSpec(
        name="distance_watershed",
        factory=f"{_STEPS}:build_distance_watershed",
        params=p.DistanceWatershedParams,
        description="probabilities + distance -> int32 instances (seeds where distance "
                    "> seed_threshold, or its h-maxima of seed_depth; watershed on -distance)",
        tunable=(_PROBABILITY, Tunable("seed_threshold", 0.0, 0.8, 9),
                 Tunable("seed_depth", values=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3)), _MIN_SIZE),
        accepts="probabilities",
        gives="labels",
        needs=_distance_needs,
    ),
]


@hookimpl
def dlsuite_postprocessors() -> list[PostprocessorSpec]:
    """The built-in post-processing steps (:data:`POSTPROCESSORS`)."""
    return list(POSTPROCESSORS)
