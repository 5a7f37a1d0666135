"""Parameter classes of the built-in post-processors (TF-free, numpy-free).

Each is a frozen attrs class of simple JSON types declared with :func:`dlsuite.param`.
Defaults follow the original suite's post-processing (binary closing radius 3, fill holes,
objects under 150 px and objects touching the border removed, face connectivity).
"""

from __future__ import annotations

from typing import Literal

import attrs

from dlsuite import param
from dlsuite.checks import in_range, non_negative

__all__ = [
    "ArgmaxParams",
    "ThresholdParams",
    "ClosingParams",
    "FillHolesParams",
    "RemoveSmallObjectsParams",
    "RemoveBorderObjectsParams",
    "LabelParams",
    "WatershedSplitParams",
    "DistanceWatershedParams",
]

_UNIT = in_range(0, 1)


def _differs_from(other: str):
    """attrs validator: the value differs from field ``other`` (cross-field)."""

    def check(instance, attribute, value) -> None:
        if value == getattr(instance, other):
            raise ValueError(f"must differ from {other} ({value})")

    return check


_CONNECTIVITY_HELP = "1 = face (4-) connectivity as the original (SimpleITK default), 2 = 8-connectivity"


@attrs.frozen
class ArgmaxParams:
    """``argmax``: probabilities (H, W, C) -> uint8 class map (class ids kept)."""

    threshold: float = param(
        0.5, help="only for 1-channel probabilities: foreground where probability > threshold",
        validator=_UNIT,
    )


@attrs.frozen
class ThresholdParams:
    """``threshold``: probability of one class above a value -> uint8 binary mask."""

    threshold: float = param(0.5, help="foreground where the class probability > threshold",
                             validator=_UNIT)
    channel: int = param(
        1, help="class channel compared with the threshold (ignored for 1-channel input)",
        validator=non_negative(),
    )


@attrs.frozen
class ClosingParams:
    """``closing``: morphological closing of the foreground."""

    radius: int = param(3, help="radius in pixels of the disk structuring element",
                        validator=non_negative())


@attrs.frozen
class FillHolesParams:
    """``fill_holes``: fill background regions enclosed by foreground."""


@attrs.frozen
class RemoveSmallObjectsParams:
    """``remove_small_objects``: drop objects below a size."""

    min_size: int = param(150, help="objects with fewer pixels than this are removed",
                          validator=non_negative())
    connectivity: Literal[1, 2] = param(1, help=_CONNECTIVITY_HELP + " (masks only)")


@attrs.frozen
class RemoveBorderObjectsParams:
    """``remove_border_objects``: drop objects touching the image border."""

    border: int = param(1, help="width in pixels of the border band an object must not touch",
                        validator=non_negative())
    connectivity: Literal[1, 2] = param(1, help=_CONNECTIVITY_HELP + " (masks only)")


@attrs.frozen
class LabelParams:
    """``label``: connected components of the foreground -> int32 instance labels."""

    connectivity: Literal[1, 2] = param(1, help=_CONNECTIVITY_HELP)


@attrs.frozen
class WatershedSplitParams:
    """``watershed_split``: instances separated by the contour class of a class map."""

    cell_class: int = param(1, help="class id of cell interiors in the class map",
                            validator=non_negative())
    contour_class: int = param(2, help="class id of cell contours in the class map",
                               validator=[non_negative(), _differs_from("cell_class")])
    min_marker_size: int = param(
        0, help="interior components smaller than this do not seed an instance",
        validator=non_negative(),
    )
    connectivity: Literal[1, 2] = param(1, help=_CONNECTIVITY_HELP)


@attrs.frozen
class DistanceWatershedParams:
    """``distance_watershed``: instances from a class head and a distance head."""

    threshold: float = param(0.5, help="foreground where its probability > threshold",
                             validator=_UNIT)
    seed_threshold: float = param(
        0.5, help="seeds: foreground regions where the predicted distance (0..1 per cell) "
                  "exceeds this; lower finds more (weaker) cells, higher splits touching "
                  "cells more readily", validator=_UNIT)
    seed_depth: float = param(
        0.0, help="with seed_depth > 0, a seed is a maximum of the predicted distance that "
                  "rises at least this much above the saddle to any higher maximum "
                  "(h-maxima), and above seed_threshold: one seed per peak, so an elongated "
                  "cell with a shallow dip keeps one seed; 0: every region above "
                  "seed_threshold is a seed", validator=_UNIT)
    min_size: int = param(0, help="instances with fewer pixels than this are removed",
                          validator=non_negative())
    foreground_channel: int = param(
        1, help="channel of the foreground probability (1 for the distance target)")
    background_channel: int | None = param(
        None, help="if set, the foreground probability is 1 - this channel's (all cell "
                   "classes together: 0 for the contours_distance target, whose cells are "
                   "class 1 and their boundaries class 2); foreground_channel is then unused")
    distance_channel: int = param(
        -1, help="channel of the predicted distance (-1: last, as the distance target)")
    connectivity: Literal[1, 2] = param(1, help=_CONNECTIVITY_HELP)
