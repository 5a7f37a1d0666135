"""Training pipeline on the real usiigaci T98G phase-contrast data (../shared/data).

* Frames: the 40 annotated 1022x1024 images (``setN/raw.tif`` + ``setN/instances_ids.png``) are
  written as a frames-layout folder (``inputs/raw_NNN.tif``, ``labels/instance_ids_NNN.tif``
  through :func:`dlsuite.data.io.write_tiff`) and fed to :func:`build_datasets`.
* Time-lapse: the 37-frame sequence has no labels. For pipeline testing only, a *stand-in*
  label video is derived reproducibly from it (:func:`standin_labels`: Gaussian smoothing,
  Otsu threshold, connected components). These labels are not a segmentation of the cells;
  they only give the pipeline a real-sized, real-looking video with instance ids.

Skipped with a reason when the data folder is absent (a user's clone has no ``../shared``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import threshold_otsu

from dlsuite.config import parse_config
from dlsuite.data.io import read_image, write_tiff
from dlsuite.data.pipeline import build_datasets, grid_positions, make_normalizer
from dlsuite.data.windows import window_indices
from dlsuite.registry import Registry

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "usiigaci_t98g_phc"
ANNOTATED = REAL / "annotated"
TIMELAPSE = REAL / "video_T98G_sample"
T = 5
FULL_AUGMENTATION = [{"name": "affine", "rotation": 30, "shift": 0.2, "zoom": 0.2},
                     {"name": "flip"}, {"name": "intensity"}, {"name": "noise"}]

pytestmark = [
    pytest.mark.skipif(not (ANNOTATED.is_dir() and TIMELAPSE.is_dir()),
                       reason=f"real data not found at {REAL} (only in the dev checkout)"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


# -------------------------------------------------------------------------------- helpers
def standin_labels(frame: np.ndarray) -> np.ndarray:
    """Stand-in instance labels of one phase-contrast frame, for pipeline tests only:
    Gaussian smoothing (sigma 2), Otsu threshold, 4-connected components, uint16. Deterministic
    (same frame -> same labels); not a cell segmentation."""
    smooth = ndimage.gaussian_filter(frame.astype(np.float32), 2.0)
    labels, _ = ndimage.label(smooth > threshold_otsu(smooth))
    return labels.astype(np.uint16)


def annotated_sets() -> list[Path]:
    return sorted(ANNOTATED.glob("set*"), key=lambda p: int(p.name[3:]))


def write_frames_layout(root: Path, sets: list[Path]) -> Path:
    for i, folder in enumerate(sets, start=1):
        write_tiff(root / "inputs" / f"raw_{i:03d}.tif", read_image(folder / "raw.tif"))
        labels = read_image(folder / "instances_ids.png").astype(np.uint16)
        write_tiff(root / "labels" / f"instance_ids_{i:03d}.tif", labels)
    return root


def config(registry, train, *, val=None, layout="frames", seed=0, **datagen):
    data = {"train": str(train), "layout": layout}
    if val is not None:
        data["val"] = str(val)
    return parse_config({"seed": seed, "data": data, "datagen": datagen}, registry,
                        check_paths=False).config


def take(dataset, n):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


# -------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def registry():
    return Registry.from_entry_points()


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Frames layout of all 40 annotated images (train) and of 3 of them (val)."""
    sets = annotated_sets()
    assert len(sets) == 40
    root = tmp_path_factory.mktemp("real_frames")
    return write_frames_layout(root / "train", sets), write_frames_layout(root / "val", sets[:3])


@pytest.fixture(scope="module")
def timelapse():
    """The 37 real frames ``(37, 1022, 1024)`` uint16 and their stand-in labels."""
    files = sorted(TIMELAPSE.glob("*.tif"))
    video = np.stack([read_image(f) for f in files])
    return video, np.stack([standin_labels(f) for f in video])


def write_video_layout(root: Path, video: np.ndarray, labels: np.ndarray) -> Path:
    write_tiff(root / "inputs" / "T98G.tif", video)
    write_tiff(root / "labels" / "T98G.tif", labels)
    return root


# -------------------------------------------------------------------------------- frames
@pytest.mark.slow
def test_real_frames_batches_full_augmentation(registry, frames):
    train, _ = frames
    cfg = config(registry, train, patch_size=[256, 256], batch_size=2, patches_per_image=2,
                 sampling={"name": "foreground_pdf", "pdf": 500000},
                 target={"name": "weight_map"}, augmentation=FULL_AUGMENTATION)
    data = build_datasets(cfg, registry, temporal=False)
    assert data.steps_per_epoch == 20 and data.val is None  # 40 images // batch 2
    assert data.target_channels == ("class", "weight")
    for x, y in take(data.train, 5):
        assert x.shape == (4, 256, 256, 1) and x.dtype == np.float32
        assert y.shape == (4, 256, 256, 2) and y.dtype == np.float32
        assert np.isfinite(x).all() and np.isfinite(y).all()
        assert set(np.unique(y[..., 0])) <= {0.0, 1.0}
        np.testing.assert_allclose(y[..., 1].mean(axis=(1, 2)), 1.0, atol=1e-4)
        assert (y[..., 0].mean(axis=(1, 2)) > 0).all()  # every patch shows cells
        # percentile-normalised [0, 1] data, then contrast/brightness jitter and noise
        assert -0.5 < x.min() and x.max() < 1.6 and x.std() > 0.05


@pytest.mark.slow
def test_real_frames_foreground_pdf_centres_patches_on_cells(registry, frames):
    train, _ = frames
    common = dict(patch_size=[128, 128], batch_size=4, patches_per_image=4)
    fg = build_datasets(config(registry, train, sampling={"name": "foreground_pdf",
                                                          "pdf": 500000}, **common),
                        registry, temporal=False)
    un = build_datasets(config(registry, train, sampling={"name": "uniform"}, **common),
                        registry, temporal=False)
    fg_y = np.concatenate([y for _, y in take(fg.train, 10)])[..., 0]  # 160 patches
    un_y = np.concatenate([y for _, y in take(un.train, 10)])[..., 0]
    dataset_fraction = np.mean([np.mean(read_image(p) > 0)
                                for p in sorted((train / "labels").iterdir())])
    assert 0.05 < dataset_fraction < 0.6
    assert fg_y[:, 64, 64].mean() == 1.0  # pdf 500000: the centre is on a cell
    assert abs(un_y[:, 64, 64].mean() - dataset_fraction) < 0.15
    assert fg_y.mean() > un_y.mean() + 0.1  # patches hold more foreground than uniform ones


def test_real_frames_validation_is_deterministic(registry, frames):
    train, val = frames
    cfg = config(registry, train, val=val, patch_size=[256, 256], batch_size=2,
                 patches_per_image=2, augmentation=FULL_AUGMENTATION)
    data = build_datasets(cfg, registry, temporal=False)
    tiles = 3 * len(grid_positions(1022, 256)) * len(grid_positions(1024, 256))  # 3 * 4 * 4
    assert data.validation_steps == tiles // 4
    first, second = take(data.val, -1), take(data.val, -1)
    assert len(first) == len(second) == data.validation_steps
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # no augmentation in validation: tile 0 is the normalised top-left corner of image 1
    image = read_image(val / "inputs" / "raw_001.tif")
    np.testing.assert_allclose(first[0][0][0, ..., 0],
                               make_normalizer(cfg, registry)(image)[:256, :256], atol=1e-6)
    labels = read_image(val / "labels" / "instance_ids_001.tif")
    np.testing.assert_array_equal(first[0][1][0, ..., 0], labels[:256, :256] > 0)
    # the last tile is flush with the bottom-right corner of image 3
    image3 = make_normalizer(cfg, registry)(read_image(val / "inputs" / "raw_003.tif"))
    np.testing.assert_allclose(first[-1][0][-1, ..., 0], image3[-256:, -256:], atol=1e-6)


# -------------------------------------------------------------------------------- time-lapse
def test_standin_labels_are_reproducible_instances(timelapse):
    video, labels = timelapse
    assert video.shape == (37, 1022, 1024) and video.dtype == np.uint16
    np.testing.assert_array_equal(standin_labels(video[5]), labels[5])
    fraction = (labels > 0).mean()
    assert 0.02 < fraction < 0.8 and labels.max(axis=(1, 2)).min() > 10


@pytest.mark.slow
def test_real_timelapse_windows_full_augmentation(registry, timelapse, tmp_path):
    root = write_video_layout(tmp_path / "video", *timelapse)
    cfg = config(registry, root, layout="videos", patch_size=[256, 256], batch_size=2,
                 patches_per_image=1, sampling={"name": "foreground_pdf", "pdf": 500000},
                 augmentation=FULL_AUGMENTATION)
    data = build_datasets(cfg, registry, temporal=True, time_windows=T)
    assert data.steps_per_epoch == 37 // 2
    for x, y in take(data.train, 4):
        assert x.shape == (2, T, 256, 256, 1) and x.dtype == np.float32
        assert y.shape == (2, 256, 256, 1) and y.dtype == np.float32
        assert np.isfinite(x).all() and set(np.unique(y)) <= {0.0, 1.0}
        assert (y.mean(axis=(1, 2, 3)) > 0).all()


def test_real_timelapse_window_frames_and_targets(registry, timelapse, tmp_path):
    """All 37 frames of a 64x64 crop of the time-lapse, patch = crop, no augmentation, no
    normalization: every window frame is identified exactly among the 37 real frames."""
    video, labels = timelapse
    crop, crop_labels = video[:, 400:464, 500:564], labels[:, 400:464, 500:564]
    means = crop.reshape(37, -1).astype(np.float64).mean(axis=1)
    assert len(np.unique(means)) == 37  # frames are told apart by their mean
    root = write_video_layout(tmp_path / "crop", crop, crop_labels)
    cfg = config(registry, root, layout="videos", patch_size=[64, 64], batch_size=1,
                 patches_per_image=8, normalization={"name": "none"})
    data = build_datasets(cfg, registry, temporal=True, time_windows=T)
    seen = set()
    for x, y in take(data.train, 60):  # 480 windows
        assert x.shape == (8, T, 64, 64, 1) and y.shape == (8, 64, 64, 1)
        for b in range(8):
            window = [int(np.argmin(np.abs(means - x[b, k, ..., 0].mean()))) for k in range(T)]
            for k, f in enumerate(window):
                np.testing.assert_array_equal(x[b, k, ..., 0], crop[f].astype(np.float32))
            t = window[-1]
            assert window == window_indices(t, T)  # mirrored front fill for t < T-1
            np.testing.assert_array_equal(y[b, ..., 0], crop_labels[t] > 0)
            seen.add(t)
    assert {0, 1, 2, 3, 36} <= seen  # first and last frames are targets, mirrored windows too
    assert len(seen) > 30
