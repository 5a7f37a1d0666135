"""Entry-point module of the built-in postprocess plugins: hook implementations returning specs.

TF-free and numpy-free: factories are lazy strings into :mod:`dlsuite_plugins.postprocess.steps`
(whose module docstring tabulates what each step takes and gives); parameter classes live in
:mod:`dlsuite_plugins.postprocess.params`.
"""

from __future__ import annotations

from dlsuite import PostprocessorSpec, Tunable, hookimpl

from . import params as p

_STEPS = "dlsuite_plugins.postprocess.steps"

# name -> (params class, description)
_TABLE = {
    "argmax": (p.ArgmaxParams,
               "probabilities -> uint8 class map (class ids kept: 1 = cell, 2 = contour)"),
    "threshold": (p.ThresholdParams, "probability of one class > threshold -> uint8 0/1 mask"),
    "closing": (p.ClosingParams, "morphological closing (disk) of a mask or of each object"),
    "fill_holes": (p.FillHolesParams, "fill holes of a mask or of each object"),
    "remove_small_objects": (p.RemoveSmallObjectsParams,
                             "drop objects below min_size pixels (mask or labels, ids kept)"),
    "remove_border_objects": (p.RemoveBorderObjectsParams,
                              "drop objects touching the image border (mask or labels)"),
    "label": (p.LabelParams, "connected components -> int32 instance labels"),
    "watershed_split": (p.WatershedSplitParams,
                        "class map -> int32 instances, touching cells split at the contour class"),
    "distance_watershed": (p.DistanceWatershedParams,
                           "probabilities + distance -> int32 instances (seeds where distance "
                           "> seed_threshold, watershed on -distance)"),
}

_PROBABILITY = Tunable("threshold", 0.3, 0.7, 5)
_MIN_SIZE = Tunable("min_size", values=(0, 25, 50, 100, 150, 250))
# name -> the parameters a validation search may tune (dlsuite.tuning)
TUNABLE = {
    "threshold": (_PROBABILITY,),
    "remove_small_objects": (_MIN_SIZE,),
    "watershed_split": (Tunable("min_marker_size", values=(0, 5, 10, 20, 40)),),
    "distance_watershed": (_PROBABILITY, Tunable("seed_threshold", 0.2, 0.8, 7), _MIN_SIZE),
}


@hookimpl
def dlsuite_postprocessors() -> list[PostprocessorSpec]:
    """The built-in post-processing steps (see the table above)."""
    return [
        PostprocessorSpec(name=name, factory=f"{_STEPS}:build_{name}", params=params,
                          description=description, tunable=TUNABLE.get(name, ()))
        for name, (params, description) in _TABLE.items()
    ]
