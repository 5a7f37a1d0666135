"""dlsuite.data.io: real TIFF/PNG files written and read back."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from dlsuite.data.io import read_image, read_info, read_shape, write_text_atomic, write_tiff
from dlsuite.errors import DataError


def test_uint16_label_300_round_trips(tmp_path):
    labels = np.zeros((8, 9), np.uint16)
    labels[2:4, 2:4] = 300
    labels[5, 5] = 65535
    path = write_tiff(tmp_path / "lab.tif", labels)
    back = read_image(path)
    assert back.dtype == np.uint16
    assert np.array_equal(back, labels)
    assert 300 in back


@pytest.mark.parametrize("dtype", [np.uint32, np.int32, np.int64])
def test_wide_integer_labels_round_trip(tmp_path, dtype):
    labels = np.zeros((3, 6, 7), dtype)
    labels[0, 1:3, 1:3] = 70000
    labels[2, 4, 4] = 123456
    back = read_image(write_tiff(tmp_path / "lab.tif", labels))
    assert back.dtype == dtype
    assert np.array_equal(back, labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_image_round_trip(tmp_path, dtype):
    image = np.random.default_rng(0).normal(size=(2, 5, 6)).astype(dtype)
    back = read_image(write_tiff(tmp_path / "img.tif", image))
    assert back.dtype == dtype
    assert np.array_equal(back, image)


def test_imagej_axes_metadata(tmp_path):
    video = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    write_tiff(tmp_path / "v.tif", video)
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert tif.is_imagej
        assert tif.imagej_metadata["frames"] == 3
        assert tif.series[0].axes == "TYX"
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK
    write_tiff(tmp_path / "f.tif", video[0].astype(np.float32))
    with tifffile.TiffFile(tmp_path / "f.tif") as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "YX"


def test_non_imagej_dtype_keeps_axes_in_metadata(tmp_path):
    write_tiff(tmp_path / "l.tif", np.zeros((3, 4, 5), np.uint32))  # 3 frames, not RGB
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        assert not tif.is_imagej
        assert tif.shaped_metadata[0]["axes"] == "TYX"
        assert tif.series[0].axes == "TYX"
        assert len(tif.pages) == 3  # one page per frame, not planar RGB
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK


def test_single_frame_video_keeps_its_time_axis(tmp_path):
    video = np.arange(20, dtype=np.uint16).reshape(1, 4, 5)
    path = write_tiff(tmp_path / "one.tif", video)
    assert read_image(path).shape == (1, 4, 5)
    assert read_shape(path) == (1, 4, 5)


def test_explicit_axes_and_bool(tmp_path):
    mask = np.zeros((4, 5), bool)
    mask[1, 1] = True
    back = read_image(write_tiff(tmp_path / "m.tif", mask, axes="yx"))
    assert back.dtype == np.uint8 and back[1, 1] == 1
    with pytest.raises(ValueError):
        write_tiff(tmp_path / "bad.tif", np.zeros((4, 5)), axes="TYX")


def test_read_info_from_header(tmp_path):
    write_tiff(tmp_path / "v.tif", np.zeros((4, 6, 7), np.int32))
    info = read_info(tmp_path / "v.tif")
    assert info.shape == (4, 6, 7)
    assert info.dtype == np.int32


def test_foreign_tiffs_are_squeezed(tmp_path):
    # plain multi-page TIFF (no metadata) -> (T, H, W); singleton channel -> dropped
    tifffile.imwrite(tmp_path / "pages.tif", np.ones((3, 4, 5), np.uint16), metadata=None,
                     photometric="minisblack")
    assert read_image(tmp_path / "pages.tif").shape == (3, 4, 5)
    tifffile.imwrite(tmp_path / "c1.tif", np.ones((2, 1, 4, 5), np.uint8), imagej=True,
                     metadata={"axes": "TCYX"})
    assert read_image(tmp_path / "c1.tif").shape == (2, 4, 5)
    assert read_shape(tmp_path / "c1.tif") == (2, 4, 5)


def test_grey_rgb_is_reduced_true_colour_is_refused(tmp_path):
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5)
    tifffile.imwrite(tmp_path / "grey.tif", np.stack([grey] * 3, -1), photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "grey.tif"), grey)
    colour = np.stack([grey, grey + 1, grey], -1)
    tifffile.imwrite(tmp_path / "colour.tif", colour, photometric="rgb")
    with pytest.raises(DataError, match="colour.tif"):
        read_image(tmp_path / "colour.tif")


def test_a_short_video_stored_as_colour_planes_is_refused_with_the_way_out(tmp_path):
    """``tifffile.imwrite`` stores a (3, H, W) or (4, H, W) array as RGB(A) planes: such a
    3-frame video is refused as a colour image, saying how to write it as a video; a true
    colour image (channels last) gets no such hint."""
    frames = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    tifffile.imwrite(tmp_path / "planes.tif", frames, photometric="rgb", planarconfig="separate")
    with pytest.raises(DataError, match="planes.tif.*the 3 frames of a video.*photometric="
                                        "'minisblack'"):
        read_image(tmp_path / "planes.tif")
    tifffile.imwrite(tmp_path / "video.tif", frames, photometric="minisblack")
    assert read_image(tmp_path / "video.tif").shape == (3, 4, 5)
    tifffile.imwrite(tmp_path / "colour.tif", np.moveaxis(frames, 0, -1), photometric="rgb")
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "colour.tif")
    assert "frames of a video" not in str(info.value)


def test_png_2d(tmp_path):
    image = np.arange(30, dtype=np.uint8).reshape(5, 6)
    iio.imwrite(tmp_path / "a.png", image)
    assert np.array_equal(read_image(tmp_path / "a.png"), image)
    assert read_shape(tmp_path / "a.png") == (5, 6)
    iio.imwrite(tmp_path / "rgb.png", np.stack([image] * 3, -1))
    assert np.array_equal(read_image(tmp_path / "rgb.png"), image)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.tif.*not found"):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(DataError, match="junk.tif.*unreadable"):
        read_image(tmp_path / "junk.tif")
    with pytest.raises(DataError, match="junk.tif"):
        read_shape(tmp_path / "junk.tif")
    (tmp_path / "x.bmp").write_bytes(b"BM")
    with pytest.raises(DataError, match=r"x.bmp.*unsupported"):
        read_image(tmp_path / "x.bmp")
    tifffile.imwrite(tmp_path / "4d.tif", np.zeros((2, 3, 4, 5), np.uint8),
                     metadata={"axes": "TZYX"}, photometric="minisblack")
    with pytest.raises(DataError, match="4d.tif.*unsupported image shape"):
        read_image(tmp_path / "4d.tif")


def test_write_is_atomic_and_creates_folders(tmp_path):
    target = tmp_path / "a" / "b" / "img.tif"
    write_tiff(target, np.zeros((4, 4), np.uint16))
    assert target.is_file()
    assert sorted(os.listdir(target.parent)) == ["img.tif"]  # no temp file left
    mode = target.stat().st_mode & 0o777
    assert mode & 0o044  # readable by others like a normal file (umask permitting)
    # a failing write leaves the old file intact and no temp file
    with pytest.raises(ValueError):
        write_tiff(target, np.zeros((4, 4, 4, 4, 4)))
    assert np.array_equal(read_image(target), np.zeros((4, 4)))
    assert sorted(os.listdir(target.parent)) == ["img.tif"]
    write_text_atomic(tmp_path / "t" / "x.txt", "hello\n")
    assert (tmp_path / "t" / "x.txt").read_text() == "hello\n"


@pytest.mark.parametrize("shape, axes", [((3, 64, 1), "CYX"), ((2, 1, 40), "CYX"),
                                         ((64, 1), "YX"), ((4, 1, 1), "TYX")])
def test_one_pixel_wide_images_are_written_readable(tmp_path, shape, axes):
    """A one-pixel-wide prediction (a 64 x 1 input) was written ImageJ-style, which tifffile
    reads back as damaged ("ImageJ series metadata invalid"): written as a plain TIFF now."""
    from dlsuite.data.io import tifffile_damage

    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    path = write_tiff(tmp_path / "x.tif", array, axes=axes)
    with tifffile_damage(path):
        assert np.array_equal(tifffile.imread(path), array)


def test_complex_pixels_are_refused_naming_the_file(tmp_path):
    """A complex TIFF (an FFT's output) was predicted from its real part, with only NumPy's
    ComplexWarning to say so."""
    path = tmp_path / "fft.tif"
    tifffile.imwrite(path, np.ones((8, 8), np.complex64) * (1 + 2j))
    for read in (read_info, read_image):
        with pytest.raises(DataError, match=r"fft.tif: complex64 pixels: dlsuite reads"):
            read(path)


def test_a_grey_rgba_tiff_with_an_opaque_alpha_reads_as_grey(tmp_path):
    """Equal RGB channels beside a constant (opaque) alpha were refused as '4 different
    channels'; the alpha carries nothing and is set aside. Different RGB still refused."""
    grey = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    opaque = np.full_like(grey, 255)
    tifffile.imwrite(tmp_path / "grey.tif", np.stack([grey, grey, grey, opaque], -1),
                     photometric="rgb", extrasamples=["unassalpha"])
    assert np.array_equal(read_image(tmp_path / "grey.tif"), grey)
    tifffile.imwrite(tmp_path / "colour.tif", np.stack([grey, grey // 2, grey, opaque], -1),
                     photometric="rgb", extrasamples=["unassalpha"])
    with pytest.raises(DataError, match="colour.tif: colour/multi-channel images are not"):
        read_image(tmp_path / "colour.tif")
