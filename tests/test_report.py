"""The run report's curves (matplotlib): a real RGB PNG of a sensible size, one panel per
quantity with axis labels, ticks and a legend, under the unchanged file name."""

from __future__ import annotations

import numpy as np
from PIL import Image

from dlsuite.report import plot_curves, write_report


def _history(epochs: int = 3) -> list[dict]:
    return [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "jaccard": 0.2 * e,
             "val_jaccard": 0.15 * e, "learning_rate": 1e-3} for e in range(1, epochs + 1)]


def test_curves_are_a_real_matplotlib_png_of_sensible_size(tmp_path):
    path = plot_curves(_history(), tmp_path / "report" / "curves.png", monitor="val_loss")
    assert path == tmp_path / "report" / "curves.png" and path.is_file()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        width, height = img.size
        pixels = np.asarray(img)
    # 3 quantities -> 2 columns x 2 rows of 520 x 340 pixel panels
    assert (width, height) == (1040, 680)
    assert pixels.std() > 10  # drawn, not blank
    colours = {tuple(c) for c in pixels.reshape(-1, 3)[:: 7]}
    assert len(colours) > 50  # anti-aliased text, ticks and both curve colours
    blue = np.all(np.abs(pixels.astype(int) - (31, 119, 180)) < 8, axis=-1)
    orange = np.all(np.abs(pixels.astype(int) - (255, 127, 14)) < 8, axis=-1)
    assert blue.sum() > 100 and orange.sum() > 100  # training and validation curves


def test_empty_history_writes_no_curves_and_the_report_keeps_its_file_names(tmp_path):
    assert plot_curves([], tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()
    written = write_report(tmp_path, _history(1), [])
    assert [p.name for p in written] == ["curves.png"]
    with Image.open(written[0]) as img:
        assert img.size[0] >= 400 and img.size[1] >= 300


def test_pictures_of_images_with_nan_pixels_scale_the_finite_pixels():
    """Images with NaN/Inf pixels (allowed by data.nonfinite_pixels "mask") are shown from
    their finite pixels (a NaN percentile made the whole picture garbage), the others dark;
    no numpy warning."""
    import warnings

    import wandb

    from dlsuite.logging.wandb_run import image_with_masks
    from dlsuite.report import to_uint8

    image = np.tile(np.linspace(10.0, 20.0, 32, dtype=np.float32), (32, 1))
    image[0, 0], image[1, 1] = np.nan, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shown = to_uint8(image)
        picture = image_with_masks(wandb, image)
    assert shown[0, 0] == 0 and shown[1, 1] == 0
    assert shown[5, 0] == 0 and shown[5, -1] == 255 and shown[5, 16] in range(110, 146)
    assert np.asarray(picture.image).min() == 0 and np.asarray(picture.image).max() == 255
