"""The rule table of the legacy migration: one :class:`Rule` per key the original knew."""

from __future__ import annotations

from .legacy_custom_rows import (_category_weights, _cnn_name, _datagen_type, _dropout,
                                 _lossfunction, _newinfer_data, _normalization, _output_ch,
                                 _outputpath, _padding_drop, _patience, _sampling_pdf,
                                 _save_best_only, _save_freq, _seed, _tb_update_freq)
from .legacy_rule_kinds import (Rule, _custom, _halo, _model, _obsolete, _pair, _set,
                                _square, _to_bool, _weights_path)

#: One entry per legacy key the original suite knew: keys its code read, keys present in its
#: configs or README but ignored by its code, and undocumented pass-throughs.
RULES: dict[str, Rule] = {
    # keys read by the original code
    "cnn_name": _custom(_cnn_name),
    "OUTPUTPATH": _custom(_outputpath),
    "TRAINPATH": _set("$.data.train", note="training folder (inputs/ + labels/)"),
    "VALPATH": _set("$.data.val", note="validation folder"),
    "TESTPATH": _set("$.data.test", note="test folder predicted and evaluated after training "
                                         "(the original: videos for LSTM models, 2D frames "
                                         "otherwise; dlsuite detects the layout)"),
    "PATH2VIDEOS": _set("$.data.videos_csv", note="frame <-> video relation CSV"),
    "model_n_filters": _model("n_filters"),
    "model_pools": _model("pools"),
    "model_kernel_size": _model("kernel_size", _square, "square kernel side",
                                ignored_by_mobilenets=True),
    "model_dilation_rate": _model("dilation_rate"),
    "model_mobile_alpha": _model("alpha", note="MobileNetV2 width multiplier"),
    "model_time_windows": _model("time_windows", note="frames per window T"),
    "model_lr": _set("$.optimizer.learning_rate", note="Adam learning rate (optimizer adam)"),
    "model_dropout": _custom(_dropout),
    "model_activation": _model("activation"),
    "model_last_activation": _obsolete(
        "dlsuite models output logits and the loss applies the activation (the original "
        "applied it only in the U-Net weighted_bce(_dice) heads; ignored by MobileNets)"),
    "model_padding": _custom(_padding_drop),
    "model_kernel_initializer": _model("kernel_initializer", ignored_by_mobilenets=True),
    "model_lossfunction": _custom(_lossfunction),
    "model_loss_tips": _obsolete(
        "used only by unet4tips (dead code); a tips head is model.tips with loss l1l2"),
    "model_metrics": _obsolete(
        "dlsuite logs the metrics list (jaccard, dice, accuracy by default); the original's "
        "MobileNets ignored it"),
    "model_train_decoder_only": _model("train_decoder_only", _to_bool,
                                       "freeze the MobileNetV2 encoder"),
    "model_category_weights": _custom(_category_weights),
    "model_seed_initializer": _custom(_seed),
    "train_seed_initializer": _custom(_seed),
    "train_max_epochs": _set("$.train.epochs", note="number of epochs"),
    "train_pretrained_weights": _set(
        "$.train.pretrained_weights",
        note='a full path, as the original used it ("None": none)'),
    "train_load_from_frozen": _set("$.train.load_from_frozen", _to_bool,
                                   "weights come from a frozen-encoder run: load, then unfreeze"),
    "callbacks_save_best_only": _custom(_save_best_only),
    "callbacks_save_freq": _custom(_save_freq),
    "callbacks_patience": _custom(_patience),
    "callbacks_tb_update_freq": _custom(_tb_update_freq),
    "datagen_type": _custom(_datagen_type),
    "datagen_patch_batch": _set("$.datagen.patches_per_image",
                                note="patches per image per step (batch = batch_size x this)"),
    "datagen_batch_size": _set("$.datagen.batch_size",
                               note="images per step (the original also used it as the "
                                    "validation and LSTM inference batch)"),
    "datagen_dim_size": _set("$.datagen.patch_size", _pair, "patch [height, width]"),
    "datagen_sampling_pdf": _custom(_sampling_pdf),
    "normalization": _custom(_normalization),
    "newinfer_padding": _set("$.inference.halo", _halo,
                             "halo in px (the original: [h, w] per side; the larger kept; its "
                             "tiles were a hard-coded 960 px)"),
    "newinfer_epoch_process_test": _set(
        "$.inference.weights", _weights_path,
        "weights file joined with OUTPUTPATH/checkpoints unless absolute, as the original "
        "(an original .hdf5 needs the same layer structure)"),
    "newinfer_data": _custom(_newinfer_data),
    "newinfer_output_folder_name": _set(
        "$.inference.output_folder",
        note="predictions subfolder of output_dir (the original's train.py always used "
             "test_output)"),
    # keys present in the original configs or README but ignored by the original code
    "datagen_tips_factor": _obsolete("never read by the original (the tips feature was "
                                     "removed from its release); ignored, as it was"),
    "datagen_sigma": _obsolete("never read by the original (README formula wrong: the batch "
                               "is datagen_batch_size x datagen_patch_batch); ignored, as it "
                               "was"),
    "newinfer_uneven_illumination": _obsolete(
        "never read by the original (always False); ignored, as it was (dlsuite's "
        "normalizers offer the correction as an option)"),
    "newinfer_normalization": _custom(_normalization),
    # undocumented pass-throughs
    "model_output_ch": _custom(_output_ch),
    "model_batch_norm": _model("batch_norm", _to_bool,
                               "undocumented pass-through (the original honoured it only in "
                               "categorical_unet_fc_dil)"),
}
