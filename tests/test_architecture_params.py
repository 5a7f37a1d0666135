"""Parameter parity with the original suite: the parameter counts of its models (its U-Nets
once their broken ``Concatenate`` call is fixed so they build).

Counts do not depend on the spatial size, so models are built small; ``encoder_weights`` is
always None (never download).
"""

from __future__ import annotations

import pytest

from dlsuite_plugins.architectures import params as P
from dlsuite.keras_helpers import summarize

# original MobileNet configs: n_filters, pools, alpha, encoder, 2D MobileUNet, LSTM total, LSTM trainable,
# LSTM trainable with frozen encoder.
MOBILENET_TABLE = [
    pytest.param(16, 3, 0.35, 17_584, 38_722, 57_218, 55_026, 39_186, id="template"),
    pytest.param(16, 5, 0.35, 261_280, 472_034, 490_530, 477_250, 227_266, id="config_1"),
    pytest.param(25, 4, 0.35, 98_512, 243_270, 288_370, 280_326, 188_358, id="config_2_3"),
    pytest.param(50, 4, 0.35, 98_512, 543_320, 723_520, 713_976, 622_008, id="config_4"),
    pytest.param(25, 3, 0.35, 17_584, 56_614, 101_714, 99_270, 83_430, id="config_5"),
    pytest.param(32, 5, 0.35, 261_280, 939_954, 1_013_810, 998_546, 748_562, id="code_defaults"),
    pytest.param(16, 5, 1.0, 1_841_984, 2_172_610, 2_191_106, 2_158_210, 347_138, id="alpha_1"),
]


@pytest.mark.parametrize("n, pools, alpha, encoder, total_2d, total, trainable, frozen_trainable",
                         MOBILENET_TABLE)
def test_mobilenet_counts_equal_the_original(n, pools, alpha, encoder, total_2d, total, trainable,
                                              frozen_trainable):
    from dlsuite_plugins.architectures.mobilenet import (
        build_mobilenet_mobileunet,
        build_mobilenet_mobileunet_lstm,
    )

    common = {"n_filters": n, "pools": pools, "alpha": alpha, "encoder_weights": None}
    model_2d = build_mobilenet_mobileunet(P.MobileUNetParams(**common), n_classes=2)
    assert model_2d.get_layer("encoder").count_params() == encoder
    assert summarize(model_2d)["total"] == total_2d

    shape = (5, 32, 32, 1)
    lstm = summarize(build_mobilenet_mobileunet_lstm(
        P.MobileUNetLSTMParams(**common, dilation_rate=2), n_classes=2, input_shape=shape))
    assert (lstm["total"], lstm["trainable"]) == (total, trainable)
    assert lstm["non_trainable"] == total - trainable

    frozen = summarize(build_mobilenet_mobileunet_lstm(
        P.MobileUNetLSTMParams(**common, train_decoder_only=True), n_classes=2, input_shape=shape))
    assert (frozen["total"], frozen["trainable"]) == (total, frozen_trainable)


def test_mobilenet_lstm_parts_match_the_notebook_log():
    """time_distributed 38,688 + conv_lst_m2d 18,496 + time_distributed_1 34 (template)."""
    from dlsuite_plugins.architectures.mobilenet import build_mobilenet_mobileunet_lstm

    params = P.MobileUNetLSTMParams(n_filters=16, pools=3, alpha=0.35, dilation_rate=2)
    model = build_mobilenet_mobileunet_lstm(params, n_classes=2, input_shape=(5, 64, 64, 1))
    parts = [model.get_layer(name).count_params() for name in ("frames", "convlstm", "slog")]
    assert parts == [38_688, 18_496, 34]


def test_mobilenet_contour_head_adds_only_the_extra_class():
    """3 classes (contour target): the 1x1 head grows by n_filters + 1."""
    from dlsuite_plugins.architectures.mobilenet import build_mobilenet_mobileunet

    params = P.MobileUNetParams(n_filters=16, pools=3)
    assert build_mobilenet_mobileunet(params, n_classes=3).count_params() == 38_722 + 17


# original U-Net counts with the Concatenate call fixed (k=3, no batch norm, 2 classes).
UNET_TABLE = [
    ("categorical_unet_transpose", P.TransposeUNetParams, 3, 573_266, 2_290_850),
    ("categorical_unet_transpose", P.TransposeUNetParams, 4, 2_310_994, 9_239_714),
    ("categorical_unet_fc", P.FCUNetParams, 3, 621_762, 2_484_610),
    ("categorical_unet_fc", P.FCUNetParams, 4, 2_507_074, 10_023_554),
    ("categorical_unet_fc_dil", P.FCDilUNetParams, 3, 624_082, 2_493_858),
    ("categorical_unet_fc_dil", P.FCDilUNetParams, 4, 2_509_394, 10_032_802),
    ("categorical_unet", P.CategoricalUNetParams, 4, 1_962_354, 7_846_114),
    # Deliberate difference: our `unet` outputs n_classes logits (the original: 1 channel,
    # 1,962,337 / 7,846,081), so with 2 classes it counts as `categorical_unet`.
    ("unet", P.UNetParams, 4, 1_962_354, 7_846_114),
]


@pytest.mark.parametrize("name, params_cls, pools, n16, n32", UNET_TABLE)
def test_unet_family_counts_equal_the_fixed_original(name, params_cls, pools, n16, n32):
    from dlsuite_plugins.architectures import unet

    build = getattr(unet, f"build_{name}")
    for n, expected in ((16, n16), (32, n32)):
        model = build(params_cls(n_filters=n, pools=pools), n_classes=2)
        assert summarize(model)["non_trainable"] == 0  # no batch norm by default
        assert model.count_params() == expected


def test_unet_options_change_counts_as_documented():
    from dlsuite_plugins.architectures.unet import build_unet

    base = build_unet(P.UNetParams(n_filters=16, pools=4), n_classes=2).count_params()
    # batch norm: 4 parameters per channel after each of the 2*(2*pools+1) convolutions
    bn = summarize(build_unet(P.UNetParams(n_filters=16, pools=4, batch_norm=True), n_classes=2))
    channels = 2 * sum(16 * 2**p for p in range(4)) * 2 + 2 * 16 * 2**4
    assert bn["total"] == base + 4 * channels and bn["non_trainable"] == 2 * channels
    # classic transposed up-convolution halving channels: 2x2 kernels n*2**(p+1) -> n*2**p
    tr = build_unet(P.UNetParams(n_filters=16, pools=4, upsampling="transpose"), n_classes=2)
    extra = sum(4 * 16 * 2 ** (p + 1) * 16 * 2**p + 16 * 2**p for p in range(4))
    concat_saving = sum(9 * 16 * 2**p * 16 * 2**p for p in range(4))  # up branch has half the channels
    assert tr.count_params() == base + extra - concat_saving


def test_unet_lstm_count():
    """The original UNetLSTM had about 1.56 M parameters at n=16, pools=3: same structure,
    exactly 1,561,842."""
    from dlsuite_plugins.architectures.unet_lstm import build_unet_lstm

    model = build_unet_lstm(P.UNetLSTMParams(n_filters=16, pools=3), n_classes=2,
                            input_shape=(5, 32, 32, 1))
    assert model.count_params() == 1_561_842
