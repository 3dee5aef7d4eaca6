"""Bad input gets a clear finding: the file, the problem and what to do; errors import nothing.

Each case builds a small source with exactly one defect and checks the user-facing message.
"""

import io
import os
import stat
import zipfile

import numpy as np
import pytest
import tifffile

from core.config import ImportOptions
from core.datasets.importer import check_source, import_dataset
from core.datasets.report import ImportFailed
from tests.helpers import binary, blobs, make_dsb, make_flat, make_splits, write_image


def _missing_mask(src):
    make_flat(src, n=4)
    (src / "masks" / "cell02.png").unlink()


def _size_mismatch(src):
    make_flat(src, n=4)
    write_image(src / "masks" / "cell01.png", binary(blobs(1, size=40)[1]))


def _zero_byte_image(src):
    make_flat(src, n=4)
    (src / "images" / "cell03.png").write_bytes(b"")


def _corrupt_mask(src):
    make_flat(src, n=4)
    (src / "masks" / "cell00.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))


def _non_image_file(src):
    make_flat(src, n=4)
    (src / "images" / "protocol.docx").write_bytes(b"PK\x03\x04 not an image")


def _empty_mask(src):
    make_flat(src, n=4)
    write_image(src / "masks" / "cell01.png", np.zeros((48, 48), np.uint8))


def _grey_image_as_mask(src):
    make_flat(src, n=4)
    write_image(src / "masks" / "cell02.png", np.random.default_rng(0).integers(0, 255, (48, 48)).astype(np.uint8))


def _duplicate_stem_same_folder(src):
    make_flat(src, n=4)
    write_image(src / "images" / "cell01.tif", blobs(1)[0])


def _same_stem_in_two_splits(src):
    make_splits(src)
    image, labels = blobs(999)
    write_image(src / "test" / "images" / "img000.png", image)
    write_image(src / "test" / "masks" / "img000.png", binary(labels))


def _same_image_in_two_splits(src):
    make_splits(src)
    for kind in ("images", "masks"):
        (src / "test" / kind / "leak.png").write_bytes((src / "train" / kind / "img000.png").read_bytes())


def _near_duplicate_in_two_splits(src):
    make_splits(src)
    from core.io import read_image

    brighter = np.clip(read_image(src / "train" / "images" / "img001.png").astype(int) + 12, 0, 255).astype(np.uint8)
    write_image(src / "valid" / "images" / "nearly.png", brighter)
    (src / "valid" / "masks" / "nearly.png").write_bytes((src / "train" / "masks" / "img001.png").read_bytes())


def _inverted_mask(src):
    make_flat(src, n=4)
    write_image(src / "masks" / "cell00.png", 255 - binary(blobs(100)[1]))


def _orphan_mask(src):
    make_flat(src, n=4)
    write_image(src / "masks" / "forgotten.png", binary(blobs(5)[1]))


def _float_image(src):
    make_flat(src, n=4)
    (src / "images" / "cell00.png").unlink()
    tifffile.imwrite(src / "images" / "cell00.tif", np.random.default_rng(0).random((48, 48), dtype=np.float32))


def _dsb_object_of_wrong_size(src):
    make_dsb(src, n=3)
    write_image(src / "sample01" / "masks" / "obj1.png", np.full((20, 20), 255, np.uint8))


def _tiny_image(src):
    make_flat(src, n=4)
    write_image(src / "images" / "cell03.png", np.full((8, 8), 9, np.uint8))
    write_image(src / "masks" / "cell03.png", np.zeros((8, 8), np.uint8))


def _blank_image(src):
    make_flat(src, n=4)
    write_image(src / "images" / "cell02.png", np.full((48, 48), 17, np.uint8))


def _unknown_layout(src):
    (src / "notes").mkdir(parents=True)
    (src / "notes" / "readme.txt").write_text("no images here")


def _images_without_masks(src):
    write_image(src / "photos" / "a.png", blobs(0)[0])


def _large_image(src):
    make_flat(src, n=4, size=64)


CASES = [
    # (builder, options, severity, code, file part, message part)
    (_missing_mask, {}, "error", "missing-mask", "images/cell02.png", "has no mask in masks"),
    (_size_mismatch, {}, "error", "size-mismatch", "masks/cell01.png", "is 40×40 but its image cell01.png is 48×48"),
    (_zero_byte_image, {}, "error", "unreadable-image", "images/cell03.png", "is empty (0 bytes)"),
    (_corrupt_mask, {}, "error", "unreadable-mask", "cell00.png", "could not be decoded"),
    (_non_image_file, {}, "warning", "not-an-image", "images/protocol.docx", "is not an image file"),
    (_empty_mask, {}, "warning", "empty-mask", "masks/cell01.png", "is empty (no foreground pixels)"),
    (_grey_image_as_mask, {}, "error", "not-a-mask", "masks/cell02.png", "neither a binary mask nor instance ids"),
    (_duplicate_stem_same_folder, {}, "error", "duplicate-stem", "images/cell01", "has the same name as"),
    (_same_stem_in_two_splits, {}, "error", "duplicate-stem", "img000.png", "names must be unique"),
    (_same_image_in_two_splits, {}, "error", "leak-duplicate", "leak.png", "tested on an image it trained on"),
    (_near_duplicate_in_two_splits, {}, "warning", "leak-near-duplicate", "nearly.png", "looks almost the same"),
    (_inverted_mask, {}, "warning", "mostly-foreground", "masks/cell00.png", "is it inverted"),
    (_orphan_mask, {}, "warning", "orphan-mask", "masks/forgotten.png", "has no image with a matching name"),
    (_float_image, {}, "error", "unreadable-image", "images/cell00.tif", "only 8- and 16-bit"),
    (_dsb_object_of_wrong_size, {}, "error", "size-mismatch", "sample01/masks/obj1.png", "but the image is 48×48"),
    (_tiny_image, {}, "error", "tiny-image", "images/cell03.png", "at least 16×16"),
    (_blank_image, {}, "warning", "blank-image", "images/cell02.png", "same value (17) everywhere"),
    (_unknown_layout, {}, "error", "unknown-layout", "src", "Could not recognise the layout"),
    (_images_without_masks, {}, "error", "no-masks", "", "Import them as unlabelled images"),
    (_large_image, {"large_image_pixels": 60 * 60}, "warning", "large-image", "images/cell00.png", "tile it first"),
]


@pytest.mark.parametrize(
    "builder, options, severity, code, file_part, message_part",
    CASES,
    ids=[case[0].__name__.strip("_") for case in CASES],
)
def test_bad_input_is_reported_clearly(tmp_path, settings, builder, options, severity, code, file_part, message_part):
    src = tmp_path / "src"
    src.mkdir()
    builder(src)
    report = check_source(src, ImportOptions(name="x", **options), settings)
    matching = [f for f in report.findings if f.code == code]
    assert matching, report.to_text()
    finding = matching[0]
    assert finding.severity == severity
    assert file_part in finding.file
    assert message_part in finding.message + " " + finding.hint
    if severity == "error":
        with pytest.raises(ImportFailed):
            import_dataset(src, ImportOptions(name="x", **options), settings)
        assert not (settings.datasets_dir / "x").exists()
        assert not list(settings.datasets_dir.glob(".staging-*"))


def _zip_bytes(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in entries.items():
            archive.writestr(name, payload)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _valid_entries(tmp_path) -> dict[str, bytes]:
    src = make_flat(tmp_path / "zsrc", n=3)
    return {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*.png")}


ZIP_CASES = [
    ("traversal", lambda e: _zip_bytes({**e, "../../escape.png": b"x"}), "points outside the archive"),
    ("absolute", lambda e: _zip_bytes({**e, "/etc/cron.d/evil": b"x"}), "points outside the archive"),
    ("symlink", lambda e: _zip_bytes(e, symlink="images/link.png"), "symbolic link"),
    ("bomb", lambda e: _zip_bytes({**e, "images/huge.png": b"\0" * (80 * 2**20)}), "expands"),
    ("truncated", lambda e: _zip_bytes(e)[:-200], "not a valid zip archive or is truncated"),
    ("not-a-zip", lambda e: b"Rar!\x1a\x07\x00 this is a rar", "not a valid zip archive"),
]


@pytest.mark.parametrize("label, build, message", ZIP_CASES, ids=[c[0] for c in ZIP_CASES])
def test_unsafe_or_damaged_zip_is_rejected(tmp_path, settings, label, build, message):
    archive = tmp_path / "upload.zip"
    archive.write_bytes(build(_valid_entries(tmp_path)))
    with pytest.raises(ImportFailed) as raised:
        import_dataset(archive, ImportOptions(name="z"), settings, source_label="cells.zip")
    errors = raised.value.report.errors
    assert errors[0].code == "bad-zip" and message in errors[0].message and "cells.zip" in errors[0].message
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "escape.png").exists()
    assert not (settings.datasets_dir / "z").exists()
    assert not settings.scratch_dir.exists() or list(settings.scratch_dir.iterdir()) == []


def test_unpacked_size_cap_is_enforced(tmp_path, settings):
    random_payload = os.urandom(3 * 2**20)  # incompressible, so the ratio check does not fire first
    archive = tmp_path / "big.zip"
    archive.write_bytes(_zip_bytes({f"images/{k}.png": random_payload for k in range(25)}))
    with pytest.raises(ImportFailed) as raised:
        import_dataset(archive, ImportOptions(name="big"), settings)
    assert "would unpack to 75 MB; the limit is 64 MB" in raised.value.report.errors[0].message


@pytest.mark.parametrize(
    "name, message",
    [
        ("my dataset", "is not allowed"),
        ("../escape", "is not allowed"),
        ("", "is not allowed"),
    ],
)
def test_bad_dataset_names_are_refused(tmp_path, settings, name, message):
    with pytest.raises(ImportFailed) as raised:
        import_dataset(make_flat(tmp_path / "src", n=3), ImportOptions(name=name), settings)
    assert message in raised.value.report.errors[0].message


def test_source_that_is_neither_folder_nor_zip(tmp_path, settings):
    archive = tmp_path / "cells.rar"
    archive.write_bytes(b"Rar!")
    with pytest.raises(ImportFailed) as raised:
        import_dataset(archive, ImportOptions(name="r"), settings)
    assert "neither a folder nor a .zip" in raised.value.report.errors[0].message
