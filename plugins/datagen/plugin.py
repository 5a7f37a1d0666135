"""Entry-point module of the built-in datagen plugins: hook implementations returning specs.

Importing this module imports neither TensorFlow nor NumPy: the factories are lazy
``"module:function"`` strings pointing at the NumPy/SciPy modules of this package
(:mod:`.normalizers`, :mod:`.samplers`, :mod:`.targets`, :mod:`.augmentations`).
"""

from dlsuite import (AugmentationSpec, HeadSpec, NormalizerSpec, SamplerSpec, TargetSpec,
                     hookimpl)

from . import params as P

_PKG = "dlsuite_plugins.datagen"

# name -> (params class, factory function, description)
NORMALIZERS = {
    "percentile": (P.PercentileParams, "build_percentile",
                   "(x - P0.1) / (P99.1 - P0.1), clipped to [0, 1]"),
    "mean": (P.CentreParams, "build_mean", "scale to [0, 1], shift the mean to 0.5"),
    "median": (P.CentreParams, "build_median", "scale to [0, 1], shift the median to 0.5"),
    "none": (P.NoneNormParams, "build_none", "cast to float32, no rescaling"),
}
SAMPLERS = {
    "uniform": (P.UniformSamplerParams, "build_uniform", "uniformly placed patches"),
    "foreground_pdf": (P.ForegroundPdfParams, "build_foreground_pdf",
                       "patch centres drawn with weight pdf on foreground, 1 on background"),
}
# name -> (params class, factory, n_classes, channels, description)
TARGETS = {
    "binary": (P.BinaryParams, "build_binary", 2, ("class",), "labels > 0"),
    "contours": (P.ContoursParams, "build_contours", 3, ("class",),
                 "0 background, 1 cell, 2 boundary (skimage find_boundaries)"),
    "weight_map": (P.WeightMapParams, "build_weight_map", 2, ("class", "weight"),
                   "labels > 0 plus U-Net separation / contour pixel weights (mean 1)"),
    "distance": (P.DistanceParams, "build_distance", 2, ("class", "distance"),
                 "labels > 0 plus each instance's distance to its border, max 1 per instance"),
    "marks": (P.MarksParams, "build_marks", 2, ("class",), "instances eroded with a disk"),
}
# target name -> its output heads (targets not listed have one softmax class head)
TARGET_HEADS = {
    "distance": (HeadSpec("class", 2, "softmax", "class"),
                 HeadSpec("distance", 1, "sigmoid", "regression")),
}
AUGMENTATIONS = {
    "affine": (P.AffineParams, "build_affine", "random rotation, shift and zoom"),
    "flip": (P.FlipParams, "build_flip", "random horizontal / vertical flips"),
    "intensity": (P.IntensityParams, "build_intensity", "brightness / contrast jitter"),
    "noise": (P.NoiseParams, "build_noise", "additive Gaussian noise"),
}


@hookimpl
def dlsuite_normalizers():
    """The built-in normalizers (table :data:`NORMALIZERS`)."""
    return [NormalizerSpec(name=n, params=p, factory=f"{_PKG}.normalizers:{f}", description=d)
            for n, (p, f, d) in NORMALIZERS.items()]


@hookimpl
def dlsuite_samplers():
    """The built-in patch samplers (table :data:`SAMPLERS`)."""
    return [SamplerSpec(name=n, params=p, factory=f"{_PKG}.samplers:{f}", description=d)
            for n, (p, f, d) in SAMPLERS.items()]


@hookimpl
def dlsuite_targets():
    """The built-in training targets (table :data:`TARGETS`, heads :data:`TARGET_HEADS`)."""
    return [TargetSpec(name=n, params=p, factory=f"{_PKG}.targets:{f}", n_classes=k,
                       channels=c, description=d, heads=TARGET_HEADS.get(n, ()))
            for n, (p, f, k, c, d) in TARGETS.items()]


@hookimpl
def dlsuite_augmentations():
    """The built-in augmentations (table :data:`AUGMENTATIONS`)."""
    return [AugmentationSpec(name=n, params=p, factory=f"{_PKG}.augmentations:{f}",
                             description=d)
            for n, (p, f, d) in AUGMENTATIONS.items()]
