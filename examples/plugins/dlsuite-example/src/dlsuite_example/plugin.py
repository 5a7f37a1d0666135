"""Entry-point module: hook implementations returning specs (no TensorFlow imported here)."""

from __future__ import annotations

import attrs

from dlsuite import ArchitectureSpec, LossSpec, PostprocessorSpec, hookimpl, param
from dlsuite.checks import in_range, non_negative, positive


@attrs.frozen
class ResidualUNetParams:
    """Parameters of ``residual_unet``."""

    # The checks are attrs validators: `dlsuite config validate` reports a bad value at its
    # JSON path ($.model.pools) and `dlsuite config schema` shows the range.
    n_filters: int = param(16, help="filters of the first level (doubled per level)",
                           validator=positive())
    pools: int = param(3, help="number of down-sampling steps (depth)",
                       validator=in_range(1, 6))
    dropout: float = param(0.0, help="dropout after each decoder block",
                           validator=in_range(0, 1, hi_open=True))


@attrs.frozen
class TverskyParams:
    """Parameters of ``tversky``."""

    alpha: float = param(0.5, help="weight of false positives", validator=non_negative())
    beta: float = param(0.5, help="weight of false negatives", validator=non_negative())
    smooth: float = param(1.0, help="added to numerator and denominator",
                          validator=non_negative())


@attrs.frozen
class OpeningParams:
    """Parameters of ``opening``."""

    radius: int = param(2, help="radius of the disk structuring element (pixels)",
                        validator=non_negative())


def _multiple(params: ResidualUNetParams) -> int:
    return 2 ** params.pools


def _receptive_field(params: ResidualUNetParams) -> int:
    """``2 r + 1`` with ``r`` the farthest input pixel an output pixel depends on, over every
    position in the pooling grid: two 3x3 convolutions per block give ``r = 2`` at the
    bottleneck and ``r -> 2 r + 5`` per level, i.e. ``r = 7 * 2**pools - 5``."""
    return 2 * (7 * 2 ** params.pools - 5) + 1


@hookimpl
def dlsuite_architectures():
    """Contribute ``residual_unet``."""
    return [ArchitectureSpec(
        name="residual_unet", factory="dlsuite_example.residual_unet:build",
        params=ResidualUNetParams, description="2D U-Net with residual blocks",
        size_multiple=_multiple, receptive_field=_receptive_field)]


@hookimpl
def dlsuite_losses():
    """Contribute ``tversky``."""
    return [LossSpec(name="tversky", factory="dlsuite_example.tversky:build",
                     params=TverskyParams, description="Tversky loss on the foreground")]


@hookimpl
def dlsuite_postprocessors():
    """Contribute ``opening``."""
    return [PostprocessorSpec(name="opening", factory="dlsuite_example.opening:build",
                              params=OpeningParams, description="morphological opening of a mask")]
