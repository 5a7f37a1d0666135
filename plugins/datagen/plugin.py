"""Entry-point module of the built-in datagen plugins: hook implementations returning specs.

Importing this module imports neither TensorFlow nor NumPy: the factories are lazy
``"module:function"`` strings pointing at the NumPy/SciPy modules of this package
(:mod:`.normalizers`, :mod:`.samplers`, :mod:`.targets`, :mod:`.augmentations`).
"""

from dlsuite import (AugmentationSpec, HeadSpec, NormalizerSpec, SamplerSpec, TargetSpec,
                     hookimpl)

from . import params as P

_PKG = "dlsuite_plugins.datagen"

NORMALIZERS = [
    NormalizerSpec(
        name="percentile",
        factory=f"{_PKG}.normalizers:build_percentile",
        params=P.PercentileParams,
        description="(x - P0.1) / (P99.1 - P0.1), clipped to [0, 1]",
    ),
    NormalizerSpec(
        name="mean",
        factory=f"{_PKG}.normalizers:build_mean",
        params=P.CentreParams,
        description="scale to [0, 1], shift the mean to 0.5",
    ),
    NormalizerSpec(
        name="median",
        factory=f"{_PKG}.normalizers:build_median",
        params=P.CentreParams,
        description="scale to [0, 1], shift the median to 0.5",
    ),
    NormalizerSpec(
        name="none",
        factory=f"{_PKG}.normalizers:build_none",
        params=P.NoneNormParams,
        description="cast to float32, no rescaling",
    ),
]

SAMPLERS = [
    SamplerSpec(
        name="uniform",
        factory=f"{_PKG}.samplers:build_uniform",
        params=P.UniformSamplerParams,
        description="uniformly placed patches",
    ),
    SamplerSpec(
        name="foreground_pdf",
        factory=f"{_PKG}.samplers:build_foreground_pdf",
        params=P.ForegroundPdfParams,
        description="patch centres drawn with weight pdf on foreground, 1 on background",
    ),
    SamplerSpec(
        name="instances",
        factory=f"{_PKG}.samplers:build_instances",
        params=P.InstancesSamplerParams,
        description="patches centred on a uniformly drawn instance (each cell equally "
                    "likely, whatever its size)",
    ),
]

TARGETS = [
    TargetSpec(
        name="binary",
        factory=f"{_PKG}.targets:build_binary",
        params=P.BinaryParams,
        description="labels > 0",
        n_classes=2,
        channels=("class",),
    ),
    TargetSpec(
        name="contours",
        factory=f"{_PKG}.targets:build_contours",
        params=P.ContoursParams,
        description="0 background, 1 cell, 2 boundary (skimage find_boundaries)",
        n_classes=3,
        channels=("class",),
    ),
    TargetSpec(
        name="weight_map",
        factory=f"{_PKG}.targets:build_weight_map",
        params=P.WeightMapParams,
        description="labels > 0 plus U-Net separation / contour pixel weights (mean 1)",
        n_classes=2,
        channels=("class", "weight"),
    ),
    TargetSpec(
        name="distance",
        factory=f"{_PKG}.targets:build_distance",
        params=P.DistanceParams,
        description="labels > 0 plus each instance's distance to its border, max 1 per instance",
        n_classes=2,
        channels=("class", "distance"),
        heads=(HeadSpec("class", 2, "softmax", "class"),
               HeadSpec("distance", 1, "sigmoid", "regression")),
    ),
    TargetSpec(
        name="contours_distance",
        factory=f"{_PKG}.targets:build_contours_distance",
        params=P.ContoursParams,
        description="0 background, 1 cell, 2 boundary plus each instance's distance to its "
                    "border, max 1 per instance",
        n_classes=3,
        channels=("class", "distance"),
        heads=(HeadSpec("class", 3, "softmax", "class"),
               HeadSpec("distance", 1, "sigmoid", "regression")),
    ),
    TargetSpec(
        name="marks",
        factory=f"{_PKG}.targets:build_marks",
        params=P.MarksParams,
        description="instances eroded with a disk",
        n_classes=2,
        channels=("class",),
    ),
]

AUGMENTATIONS = [
    AugmentationSpec(
        name="affine",
        factory=f"{_PKG}.augmentations:build_affine",
        params=P.AffineParams,
        description="random rotation, shift and zoom",
    ),
    AugmentationSpec(
        name="elastic",
        factory=f"{_PKG}.augmentations:build_elastic",
        params=P.ElasticParams,
        description="smooth random elastic deformation",
    ),
    AugmentationSpec(
        name="flip",
        factory=f"{_PKG}.augmentations:build_flip",
        params=P.FlipParams,
        description="random horizontal / vertical flips",
    ),
    AugmentationSpec(
        name="intensity",
        factory=f"{_PKG}.augmentations:build_intensity",
        params=P.IntensityParams,
        description="brightness / contrast jitter",
    ),
    AugmentationSpec(
        name="noise",
        factory=f"{_PKG}.augmentations:build_noise",
        params=P.NoiseParams,
        description="additive Gaussian noise",
    ),
]


@hookimpl
def dlsuite_normalizers():
    """The built-in normalizers (:data:`NORMALIZERS`)."""
    return list(NORMALIZERS)


@hookimpl
def dlsuite_samplers():
    """The built-in patch samplers (:data:`SAMPLERS`)."""
    return list(SAMPLERS)


@hookimpl
def dlsuite_targets():
    """The built-in training targets (:data:`TARGETS`)."""
    return list(TARGETS)


@hookimpl
def dlsuite_augmentations():
    """The built-in augmentations (:data:`AUGMENTATIONS`)."""
    return list(AUGMENTATIONS)
