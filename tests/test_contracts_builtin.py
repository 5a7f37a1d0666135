"""dlsuite's built-in plugins pass the same contract tests third-party authors run."""

from __future__ import annotations

import pytest

import dlsuite_plugins.datagen.plugin as datagen_plugin
import dlsuite_plugins.losses.plugin as loss_plugin
import dlsuite_plugins.postprocess.plugin as post_plugin
from dlsuite.testing import (AugmentationContract, LossContract, MetricContract,
                             NormalizerContract, PostprocessorContract, SamplerContract,
                             TargetContract)


# architectures: tests/test_architecture_contract_all.py runs ArchitectureContract on every
# registered architecture


class TestSparseCCEContract(LossContract):
    plugin = loss_plugin
    name = "sparse_cce"


class TestDiceLossContract(LossContract):
    plugin = loss_plugin
    name = "dice"


class TestJaccardContract(MetricContract):
    plugin = loss_plugin
    name = "jaccard"


class TestPercentileContract(NormalizerContract):
    plugin = datagen_plugin
    name = "percentile"


class TestForegroundPdfContract(SamplerContract):
    plugin = datagen_plugin
    name = "foreground_pdf"


class TestContoursContract(TargetContract):
    plugin = datagen_plugin
    name = "contours"


class TestDistanceTargetContract(TargetContract):
    plugin = datagen_plugin
    name = "distance"


class TestFlipContract(AugmentationContract):
    plugin = datagen_plugin
    name = "flip"


class TestArgmaxContract(PostprocessorContract):
    plugin = post_plugin
    name = "argmax"
    input_kind = "probabilities"


class TestLabelContract(PostprocessorContract):
    plugin = post_plugin
    name = "label"


class TestBinaryCCEOneChannelContract(LossContract):
    plugin = loss_plugin
    name = "binary_cce"
    n_classes = 1


class TestWeightedBCEContract(LossContract):
    plugin = loss_plugin
    name = "weighted_bce"
    target_channels = 2


class TestClassDistanceLossContract(LossContract):
    plugin = loss_plugin
    name = "class_distance"


class TestDistanceWatershedContract(PostprocessorContract):
    plugin = post_plugin
    name = "distance_watershed"
    input_kind = "distance"


class TestThresholdContract(PostprocessorContract):
    plugin = post_plugin
    name = "threshold"
    input_kind = "probabilities"


class TestRemoveSmallObjectsContract(PostprocessorContract):
    plugin = post_plugin
    name = "remove_small_objects"


class TestWatershedSplitContract(PostprocessorContract):
    plugin = post_plugin
    name = "watershed_split"
