"""Parameter classes of the built-in data-generation plugins (TF-free, NumPy-free).

Each class is a frozen attrs class whose fields are declared with :func:`dlsuite.param`
(default + help text) and carry simple JSON types only, so configs validate them without
importing the factories. Values are checked again by the factories (bad values raise
:class:`dlsuite.errors.DlsuiteInputError` naming the plugin and key).
"""

from __future__ import annotations

from typing import Literal, Optional

import attrs

from dlsuite import param
from dlsuite.checks import (greater_than, in_range, non_negative, one_of,
                                   positive)

__all__ = [
    "PercentileParams",
    "CentreParams",
    "NoneNormParams",
    "UniformSamplerParams",
    "ForegroundPdfParams",
    "BinaryParams",
    "ContoursParams",
    "WeightMapParams",
    "MarksParams",
    "DistanceParams",
    "AffineParams",
    "ElasticParams",
    "FlipParams",
    "IntensityParams",
    "NoiseParams",
]

_PERCENT = in_range(0, 100)
_PROBABILITY = in_range(0, 1)

_PER_HELP = (
    "'video': statistics over the whole (T, H, W) array (a 2D image is a 1-frame video); "
    "'image': statistics per frame"
)
_ILLUM_HELP = (
    "uneven-illumination correction before normalization: subtract a Gaussian blur of this "
    "sigma (pixels, per frame) and add back the frame mean; null disables it"
)


# ---------------------------------------------------------------------------- normalizers
@attrs.frozen
class PercentileParams:
    """``percentile``: ``(x - P_low) / (P_high - P_low)``, optionally clipped to [0, 1]."""

    low: float = param(0.1, help="lower percentile (0-100) mapped to 0", validator=_PERCENT)
    high: float = param(99.1, help="upper percentile (0-100) mapped to 1, above low",
                        validator=[_PERCENT, greater_than("low")])
    clip: bool = param(True, help="clip the result to [0, 1]")
    per: Literal["image", "video"] = param("video", help=_PER_HELP)
    illumination_sigma: Optional[float] = param(None, help=_ILLUM_HELP, validator=non_negative())


@attrs.frozen
class CentreParams:
    """``mean`` / ``median``: scale to [0, 1], then shift so the mean (median) is 0.5."""

    scale: Literal["dtype", "minmax"] = param(
        "dtype",
        help="how values are first brought to [0, 1]: 'dtype' divides integer images by their "
             "dtype range (uint16 by 65535, int16 maps [-32768, 32767]); float images have no "
             "range and always use min/max; 'minmax' uses the data's min and max")
    clip: bool = param(True, help="clip the shifted result to [0, 1]")
    per: Literal["image", "video"] = param("video", help=_PER_HELP)
    illumination_sigma: Optional[float] = param(None, help=_ILLUM_HELP, validator=non_negative())


@attrs.frozen
class NoneNormParams:
    """``none``: values cast to float32 unchanged (optionally illumination-corrected)."""

    illumination_sigma: Optional[float] = param(None, help=_ILLUM_HELP, validator=non_negative())


# ---------------------------------------------------------------------------- samplers
@attrs.frozen
class UniformSamplerParams:
    """``uniform``: every valid patch position equally likely."""


@attrs.frozen
class ForegroundPdfParams:
    """``foreground_pdf``: patch centre drawn with weight 1 on background, ``pdf`` on
    foreground pixels (uniform when the frame has no foreground)."""

    pdf: float = param(500000.0, help="weight of a foreground pixel relative to background (> 0)",
                       validator=positive())


@attrs.frozen
class InstancesSamplerParams:
    """``instances``: patch centred on a uniformly drawn instance (each cell equally likely,
    whatever its size), else uniform."""

    background: float = param(0.1, help="probability of a uniformly placed patch instead "
                                        "(background and debris are seen too)",
                              validator=_PROBABILITY)


# ---------------------------------------------------------------------------- targets
@attrs.frozen
class BinaryParams:
    """``binary``: class 1 where labels > 0."""


@attrs.frozen
class ContoursParams:
    """``contours``: 0 background, 1 cell, 2 boundary (scikit-image ``find_boundaries``)."""

    mode: Literal["inner", "outer", "thick"] = param(
        "inner", help="skimage.segmentation.find_boundaries mode: 'inner' marks boundary pixels "
                      "inside the cells, 'outer' outside, 'thick' both")
    connectivity: int = param(1, help="1: 4-connected neighbours, 2: 8-connected",
                              validator=one_of(1, 2))


@attrs.frozen
class WeightMapParams:
    """``weight_map``: class = labels > 0 plus a float border weight channel (mean 1)."""

    w0: float = param(10.0, help="separation weight between close cells (U-Net w0)",
                      validator=non_negative())
    sigma: float = param(5.0, help="decay (pixels) of the separation weight (U-Net sigma)",
                         validator=positive())
    contour_weight: float = param(
        2.0, help="extra weight on cell contour pixels (find_boundaries 'thick')",
        validator=non_negative())
    background_weight: float = param(
        1.0, help="base weight of background pixels (cells have base weight 1)",
        validator=non_negative())


@attrs.frozen
class DistanceParams:
    """``distance``: class = labels > 0 plus each instance's distance to its border,
    normalised to a maximum of 1 per instance."""


@attrs.frozen
class MarksParams:
    """``marks``: each instance eroded with a disk (detection marks)."""

    radius: int = param(5, help="radius of the disk each instance is eroded with",
                        validator=non_negative())


# ---------------------------------------------------------------------------- augmentations
@attrs.frozen
class AffineParams:
    """``affine``: random rotation, shift and zoom (one interpolation for all three)."""

    rotation: float = param(30.0, help="maximum rotation in degrees (uniform in [-r, r]; "
                                       "180 or 360: any angle)",
                            validator=in_range(0, 360))
    shift: float = param(0.2, help="maximum shift as a fraction of the patch size, per axis",
                         validator=in_range(0, 0.5, hi_open=True))
    zoom: float = param(0.2, help="zoom factor drawn uniformly in [1 - zoom, 1 + zoom]",
                        validator=in_range(0, 1, hi_open=True))
    independent_zoom: bool = param(False, help="draw the zoom independently for y and x")
    fill: Literal["reflect", "mirror", "nearest", "constant"] = param(
        "reflect", help="how pixels outside the cut context are filled (scipy.ndimage modes; "
                        "constant fills 0, like scipy grid-constant)")
    probability: float = param(1.0, help="probability that a sample is transformed",
                               validator=_PROBABILITY)


@attrs.frozen
class ElasticParams:
    """``elastic``: a smooth random displacement field (image, frames and target alike)."""

    alpha: float = param(4.0, help="standard deviation of the displacement at each control "
                                   "point, in pixels of the model's images (after data.scale); "
                                   "displacements are clipped to 3 * alpha",
                         validator=non_negative())
    spacing: float = param(32.0, help="distance between the control points, in pixels; the "
                                      "field is cubic between them", validator=positive())
    probability: float = param(1.0, help="probability that a sample is deformed",
                               validator=_PROBABILITY)


@attrs.frozen
class FlipParams:
    """``flip``: random horizontal and/or vertical flips."""

    horizontal: bool = param(True, help="flip left-right with probability 0.5")
    vertical: bool = param(True, help="flip up-down with probability 0.5")


@attrs.frozen
class IntensityParams:
    """``intensity``: brightness/contrast jitter of the image (all frames alike)."""

    brightness: float = param(0.1, help="additive offset drawn uniformly in [-b, b]",
                              validator=non_negative())
    contrast: float = param(0.2, help="contrast factor drawn uniformly in [1 - c, 1 + c], "
                                      "applied around the window mean",
                            validator=non_negative())
    probability: float = param(1.0, help="probability that a sample is jittered",
                               validator=_PROBABILITY)


@attrs.frozen
class NoiseParams:
    """``noise``: additive Gaussian noise on the image."""

    sigma: float = param(0.03, help="largest noise standard deviation; each sample draws one "
                                    "uniformly in [0, sigma]", validator=non_negative())
    probability: float = param(0.5, help="probability that a sample gets noise",
                               validator=_PROBABILITY)
