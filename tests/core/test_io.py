"""Reading every image flavour labs bring, and clear messages for the ones we cannot read."""

import numpy as np
import pytest
import tifffile

from core.io import ImageReadError, read_image, write_bytes_atomic, write_png
from tests.helpers import write_image

GREY8 = np.arange(64, dtype=np.uint8).reshape(8, 8)
GREY16 = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
RGB = np.dstack([GREY8, GREY8 // 2, 255 - GREY8])
RGBA = np.dstack([RGB, np.full((8, 8), 255, np.uint8)])


@pytest.mark.parametrize(
    "name, array",
    [
        ("grey.png", GREY8),
        ("grey16.png", GREY16),
        ("rgb.png", RGB),
        ("rgba.png", RGBA),
        ("grey.tif", GREY8),
        ("grey16.tif", GREY16),
        ("rgb.tiff", RGB),
        ("grey.bmp", GREY8),
        ("rgb.bmp", RGB),
    ],
)
def test_lossless_round_trip(tmp_path, name, array):
    path = write_image(tmp_path / name, array)
    read = read_image(path)
    assert read.dtype == array.dtype
    np.testing.assert_array_equal(read, array)


def test_jpeg_reads_as_8bit_rgb(tmp_path):
    read = read_image(write_image(tmp_path / "x.jpg", RGB))
    assert read.shape == RGB.shape and read.dtype == np.uint8


def test_channels_first_tiff_is_moved_to_channels_last(tmp_path):
    tifffile.imwrite(tmp_path / "cf.tif", np.moveaxis(RGB, -1, 0), photometric="minisblack")
    assert read_image(tmp_path / "cf.tif").shape == (8, 8, 3)


def test_int32_labels_tiff_becomes_uint16(tmp_path):
    tifffile.imwrite(tmp_path / "labels.tif", GREY16.astype(np.int32))
    assert read_image(tmp_path / "labels.tif").dtype == np.uint16


def test_unicode_and_space_file_names(tmp_path):
    path = write_image(tmp_path / "Zellkern ø 1 – µm.png", GREY8)
    np.testing.assert_array_equal(read_image(path), GREY8)


@pytest.mark.parametrize(
    "name, payload, problem",
    [
        ("empty.png", b"", "is empty (0 bytes)"),
        ("broken.png", b"\x89PNG\r\n\x1a\nthis is not really a png", "could not be decoded"),
        ("broken.tif", b"II*\x00garbage-garbage", "could not be decoded"),
        ("notes.txt", b"hello", "is not an image file"),
    ],
)
def test_unreadable_files_are_named_with_the_problem(tmp_path, name, payload, problem):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(ImageReadError) as raised:
        read_image(path)
    assert name in str(raised.value) and problem in str(raised.value)


def test_truncated_png_is_refused(tmp_path):
    good = write_image(tmp_path / "good.png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="could not be decoded"):
        read_image(cut)


def test_float_tiff_is_refused_with_a_fix(tmp_path):
    tifffile.imwrite(tmp_path / "float.tif", np.random.default_rng(0).random((8, 8), dtype=np.float32))
    with pytest.raises(ImageReadError, match="only 8- and 16-bit") as raised:
        read_image(tmp_path / "float.tif")
    assert "16-bit" in raised.value.hint


def test_z_stack_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((7, 16, 16), np.uint16))
    with pytest.raises(ImageReadError, match="stack of 7 planes"):
        read_image(tmp_path / "stack.tif")


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "mask.png"
    write_png(target, GREY8)
    before = target.read_bytes()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("core.io.os.fsync", full_disk)
    with pytest.raises(OSError):
        write_bytes_atomic(target, b"new content")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mask.png"]  # no temp file left behind
