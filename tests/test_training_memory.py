"""A training batch that cannot fit in memory is refused before the run directory is made
(it used to be killed by the kernel minutes into the first epoch, exit 137, no message): the
activation count it rests on is exact on small real Keras models, nested ones included, and
the real CLI refuses a 8192 x 8192 patch in seconds naming the key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import keras
import pytest

from conftest import run_cli
from dlsuite.config.loader import load_config
from dlsuite.registry import get_registry
from dlsuite.keras_helpers import activation_elements
from dlsuite.training_memory import training_memory_problem


def _nested_model() -> keras.Model:
    inner_in = keras.Input((None, None, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 3, padding="same")(inner_in))
    x = keras.Input((None, None, 1))
    y = keras.layers.Conv2D(3, 3, padding="same")(x)  # 8 x 8 x 3 = 192 values
    y = inner(y)  # 8 x 8 x 2 = 128, inside the nested model
    y = keras.layers.MaxPooling2D()(y)  # 4 x 4 x 2 = 32
    return keras.Model(x, keras.layers.Conv2D(1, 1)(y))  # 4 x 4 x 1 = 16


def test_every_layer_output_is_counted_nested_models_included():
    assert activation_elements(_nested_model(), [(1, 8, 8, 1)]) == 192 + 128 + 32 + 16
    # the count follows the size asked for, not the size the model was built with
    assert activation_elements(_nested_model(), [(1, 16, 16, 1)]) == 4 * (192 + 128 + 32 + 16)


def test_the_frames_of_a_time_distributed_model_and_convlstm_states_are_counted():
    """The per-frame network inside ``TimeDistributed`` is counted once per frame (a
    temporal MobileNet's 12.7 GiB training step was estimated at 0.4 GiB from its outer
    layers alone) and a ConvLSTM's gate convolutions once per time step when training."""
    from dlsuite.keras_helpers import CONVLSTM_STEP_VALUES

    frame = keras.Input((None, None, 1))
    per_frame = keras.Model(frame, keras.layers.Conv2D(3, 3, padding="same")(frame))
    x = keras.Input((5, 8, 8, 1))
    y = keras.layers.TimeDistributed(per_frame)(x)  # 5 x 8 x 8 x 3 = 960, and 192 per frame
    y = keras.layers.ConvLSTM2D(2, 3, padding="same")(y)  # 8 x 8 x 2 = 128
    model = keras.Model(x, y)
    layers = 960 + 5 * 192 + 128
    state = 8 * 8 * 2 * CONVLSTM_STEP_VALUES
    assert activation_elements(model, [(1, 5, 8, 8, 1)]) == layers + state
    assert activation_elements(model, [(1, 5, 8, 8, 1)], training=True) == layers + 5 * state


def test_a_subclassed_model_is_not_counted():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    assert activation_elements(Sub(), [(1, 8, 8, 1)]) is None


def _config_file(tmp_path: Path, data: Path, patch: int, batch: int = 2,
                 patches_per_image: int = 1) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "name": "mem", "output_dir": str(tmp_path / "run"), "seed": 1,
        "data": {"train": str(data), "val": str(data)},
        "model": {"name": "unet", "n_filters": 4, "pools": 2},
        "datagen": {"patch_size": [patch, patch], "batch_size": batch,
                    "patches_per_image": patches_per_image, "steps_per_epoch": 1},
        "train": {"epochs": 1}, "inference": {"tile_size": None},
        "wandb": {"mode": "disabled"}}))
    return path


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    from dlsuite.data.example import write_example_frames

    return write_example_frames(tmp_path_factory.mktemp("data"), n=2, size=32, seed=1)["frames"]


def test_the_bound_grows_with_patch_and_batch_and_names_both_amounts(tmp_path, frames, caplog):
    config = load_config(_config_file(tmp_path, frames, 512), check_paths=False).config
    registry = get_registry()
    gib = 2**30
    assert training_memory_problem(config, registry, available=1000 * gib) is None
    problem = training_memory_problem(config, registry, available=gib // 2)
    assert problem.startswith("a training batch of 2 patch(es) of 512 x 512 pixels "
                              "(datagen.batch_size x patches_per_image) needs at least ")
    assert "GiB of memory with model 'unet', 0.5 GiB is available: lower " \
           "datagen.patch_size, batch_size or patches_per_image" in problem
    need = float(problem.split("at least ")[1].split(" GiB")[0])
    # split over 2 worker processes, each holds one patch of the global batch
    half = training_memory_problem(config, registry, workers=2, available=gib // 2)
    assert half.startswith("a training batch of 1 patch(es) of 512 x 512 pixels (datagen."
                           "batch_size x patches_per_image per worker)")
    assert float(half.split("at least ")[1].split(" GiB")[0]) < need
    # every image gives patches_per_image patches to the batch
    three = load_config(_config_file(tmp_path, frames, 512, patches_per_image=3),
                        check_paths=False).config
    six = training_memory_problem(three, registry, available=gib // 2)
    assert six.startswith("a training batch of 6 patch(es)")
    assert float(six.split("at least ")[1].split(" GiB")[0]) > need
    # over half the memory: the run starts, with a warning
    with caplog.at_level(logging.WARNING, logger="dlsuite.training"):
        assert training_memory_problem(config, registry, available=int(need * gib * 1.5)) \
            is None
    assert "over half of the" in caplog.text and "may be killed" in caplog.text
    # the throw-away model leaves Keras' layer names as they were for the real one
    assert keras.layers.Dense(1).name == "dense"


def test_a_temporal_batch_counts_every_frame_and_state(tmp_path, frames):
    """A temporal MobileNet at 1536 x 1536 x 5 frames, 4 patches: over 24 GiB (measured at
    512 x 512: 12.7 GiB, so about 9 times that here), where the outer layers alone gave 3.4
    GiB and the run was left to the kernel's OOM killer."""
    path = tmp_path / "temporal.json"
    path.write_text(json.dumps({
        "output_dir": str(tmp_path / "run"), "data": {"train": str(frames), "val": str(frames)},
        "model": {"name": "mobilenet_mobileunet_lstm", "n_filters": 16, "pools": 3,
                  "alpha": 0.35, "time_windows": 5},
        "datagen": {"patch_size": [1536, 1536], "batch_size": 2, "patches_per_image": 2}}))
    config = load_config(path, check_paths=False).config
    problem = training_memory_problem(config, get_registry(), available=24 * 2**30)
    assert problem is not None and "model 'mobilenet_mobileunet_lstm'" in problem
    assert float(problem.split("at least ")[1].split(" GiB")[0]) > 24


def _large_frames(root: Path, size: int) -> Path:
    """Two ``size`` x ``size`` frames, each with one square cell (a patch at most twice
    the frames' side passes the data checks)."""
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    for k in (1, 2):
        labels = np.zeros((size, size), np.uint16)
        labels[size // 4: size // 2, size // 4: size // 2] = 1
        image = (rng.integers(0, 50, (size, size)) + 100 * (labels > 0)).astype(np.uint8)
        for folder, prefix, array in (("inputs", "raw_", image),
                                      ("labels", "instance_ids_", labels)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(root / folder / f"{prefix}{k:03d}.tif", array)
    return root


def test_run_refuses_a_batch_far_above_memory_before_the_run_directory(tmp_path):
    data = _large_frames(tmp_path / "data", 4096)
    config = _config_file(tmp_path, data, 8192, batch=2)  # tens of GiB at least
    proc = run_cli("run", str(config), timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "$.datagen.patch_size: a training batch of 2 patch(es) of 8192 x 8192 pixels " \
           "(datagen.batch_size x patches_per_image) needs at least" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_model_summary_shows_the_bound_a_run_refuses_by(tmp_path, frames):
    """``dlsuite model summary`` tells, before any run, what a training step of the
    configured batch needs at least: the figure ``dlsuite run`` compares with the memory
    available (and the size multiple and receptive field)."""
    from dlsuite.models import model_geometry
    from dlsuite.training_memory import training_memory_bytes

    path = _config_file(tmp_path, frames, 512, batch=2, patches_per_image=3)
    proc = run_cli("model", "summary", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    config = load_config(path, check_paths=False).config
    need = training_memory_bytes(config, get_registry())
    assert info["training_memory_gib"] == round(need / 2**30, 2) > 0
    geometry = model_geometry(config, get_registry())
    assert info["size_multiple"] == geometry["size_multiple"] == 4
    assert info["receptive_field"] == geometry["receptive_field"]
    table = run_cli("model", "summary", str(path))
    assert table.returncode == 0 and f"at least {need / 2**30:.2f} GiB" in table.stdout
