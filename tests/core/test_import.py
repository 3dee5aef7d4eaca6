"""Importing each layout into the internal layout, with originals untouched and nothing left on failure."""

import json
import shutil
import zipfile

import numpy as np
import pytest

from core.config import ImportOptions, SplitOptions
from core.datasets.importer import check_source, import_dataset
from core.datasets.manifest import read_manifest
from core.datasets.report import ImportFailed
from core.io import read_image
from tests.helpers import binary, blobs, make_dsb, make_flat, make_splits, make_tif_pairs, tree_fingerprint, write_image


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "builder, has_instances",
    [
        (make_splits, False),
        (make_flat, False),
        (make_dsb, True),
        (make_tif_pairs, True),
    ],
)
def test_every_layout_lands_in_the_internal_layout(tmp_path, settings, builder, has_instances):
    source = builder(tmp_path / "src")
    before = tree_fingerprint(source)
    result = import_dataset(source, ImportOptions(name="ds"), settings)
    assert tree_fingerprint(source) == before, "the user's files must not change"
    manifest = read_manifest(result.path)
    assert sum(manifest["counts"].values()) == len(manifest["images"]) > 0
    for row in manifest["images"]:
        mask = read_image(result.path / row["mask"])
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert (result.path / row["image"]).is_file()
        assert bool(row["instances"]) == has_instances
        if has_instances:
            instances = read_image(result.path / row["instances"])
            assert instances.dtype == np.uint16 and int(instances.max()) == row["object_count"]
    assert not list(settings.datasets_dir.glob(".staging-*"))


def test_sixteen_bit_images_keep_their_depth(tmp_path, settings):
    result = import_dataset(make_tif_pairs(tmp_path / "src"), ImportOptions(name="deep"), settings)
    row = read_manifest(result.path)["images"][0]
    assert row["dtype"] == "uint16"
    assert read_image(result.path / row["image"]).dtype == np.uint16


def test_jpeg_masks_are_thresholded_to_binary(shared, settings):
    result = import_dataset(shared / "formats" / "jpeg_masks", ImportOptions(name="jpeg"), settings)
    assert result.counts["train"] == 6
    assert any(f.code == "mask-converted" for f in result.report.findings)


def test_real_dsb_per_object_masks_become_instances(shared, settings):
    result = import_dataset(shared / "formats" / "dsb_per_object", ImportOptions(name="dsb"), settings)
    rows = read_manifest(result.path)["images"]
    source_objects = sum(
        len(list((shared / "formats" / "dsb_per_object" / r["stem"] / "masks").glob("*.png"))) for r in rows
    )
    assert sum(r["object_count"] for r in rows) == source_objects


def test_automatic_split_is_reproducible_and_stored(tmp_path, settings):
    source = make_flat(tmp_path / "src", n=20)
    options = ImportOptions(name="a", split=SplitOptions(train=0.6, valid=0.2, test=0.2, seed=5))
    first = read_manifest(import_dataset(source, options, settings).path)
    second = read_manifest(import_dataset(source, ImportOptions(name="b", split=options.split), settings).path)
    assert first["counts"] == {"train": 12, "valid": 4, "test": 4}
    assert [(r["stem"], r["split"]) for r in first["images"]] == [(r["stem"], r["split"]) for r in second["images"]]
    assert first["split"]["seed"] == 5 and first["split_from"] == "seeded"


def test_identical_images_stay_in_one_split_when_splitting_automatically(tmp_path, settings):
    source = make_flat(tmp_path / "src", n=12)
    for copy in range(3):  # three copies of cell00 under other names
        shutil.copy(source / "images" / "cell00.png", source / "images" / f"copy{copy}.png")
        shutil.copy(source / "masks" / "cell00.png", source / "masks" / f"copy{copy}.png")
    result = import_dataset(source, ImportOptions(name="dups"), settings)
    rows = {r["stem"]: r["split"] for r in read_manifest(result.path)["images"]}
    assert len({rows["cell00"], rows["copy0"], rows["copy1"], rows["copy2"]}) == 1
    assert any(f.code == "duplicate-image" for f in result.report.findings)


def test_zip_of_a_layout_is_imported_and_the_unpacked_copy_removed(tmp_path, settings):
    source = make_dsb(tmp_path / "src" / "wrapped")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in source.rglob("*"):
            zipped.write(path, path.relative_to(tmp_path / "src").as_posix())
    result = import_dataset(archive, ImportOptions(name="zipped"), settings, source_label="my cells.zip")
    assert result.counts["train"] >= 1
    assert read_manifest(result.path)["source"] == "my cells.zip"
    assert list(settings.scratch_dir.iterdir()) == []


def test_failed_import_leaves_nothing_behind(tmp_path, settings):
    source = make_splits(tmp_path / "src")
    (source / "train" / "images" / "img000.png").write_bytes(b"")  # one zero-byte image
    with pytest.raises(ImportFailed) as raised:
        import_dataset(source, ImportOptions(name="broken"), settings)
    assert any(f.code == "unreadable-image" and "img000.png" in f.file for f in raised.value.report.errors)
    assert _files(settings.datasets_dir) == []


def test_skip_invalid_imports_the_good_pairs_and_lists_the_rest(tmp_path, settings):
    source = make_splits(tmp_path / "src")
    (source / "train" / "images" / "img000.png").write_bytes(b"")
    result = import_dataset(source, ImportOptions(name="partial", skip_invalid=True), settings)
    stems = {r["stem"] for r in read_manifest(result.path)["images"]}
    assert "img000" not in stems and len(stems) == 7
    report = json.loads((result.path / "import_report.json").read_text())
    assert report["skipped"] == ["img000"]


def test_name_taken_is_refused_before_reading_anything(tmp_path, settings):
    source = make_flat(tmp_path / "src", n=3)
    import_dataset(source, ImportOptions(name="same"), settings)
    with pytest.raises(ImportFailed) as raised:
        import_dataset(source, ImportOptions(name="same"), settings)
    assert raised.value.report.errors[0].code == "name-taken"


def test_check_reports_without_writing(tmp_path, settings):
    source = make_flat(tmp_path / "src", n=4)
    report = check_source(source, ImportOptions(name="x"), settings)
    assert report.ok and report.n_pairs == 4
    assert not settings.datasets_dir.exists() or _files(settings.datasets_dir) == []


def test_progress_reaches_the_total(tmp_path, settings):
    calls = []
    import_dataset(
        make_flat(tmp_path / "src", n=9),
        ImportOptions(name="p"),
        settings,
        progress=lambda done, total, text: calls.append((done, total)),
    )
    assert calls[-1] == (9, 9) and all(total == 9 for _, total in calls)


def test_rgba_image_is_stored_as_rgb(tmp_path, settings):
    image, labels = blobs(3)
    rgba = np.dstack([image, image, image, np.full_like(image, 255)])
    write_image(tmp_path / "src" / "images" / "a.png", rgba)
    write_image(tmp_path / "src" / "masks" / "a.png", binary(labels))
    for k in range(2):
        other, other_labels = blobs(10 + k)
        write_image(tmp_path / "src" / "images" / f"b{k}.png", other)
        write_image(tmp_path / "src" / "masks" / f"b{k}.png", binary(other_labels))
    result = import_dataset(tmp_path / "src", ImportOptions(name="rgba"), settings)
    row = next(r for r in read_manifest(result.path)["images"] if r["stem"] == "a")
    assert read_image(result.path / row["image"]).shape == (48, 48, 3) and row["channels"] == 3


def test_full_disk_while_writing_leaves_nothing_and_says_why(tmp_path, settings, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device", "mask.png")

    monkeypatch.setattr("core.datasets.importer.write_png", no_space)
    with pytest.raises(ImportFailed) as raised:
        import_dataset(make_flat(tmp_path / "src", n=3), ImportOptions(name="full"), settings)
    error = raised.value.report.errors[-1]
    assert error.code == "io-failed" and "No space left on device" in error.message
    assert list(settings.datasets_dir.iterdir()) == []


def test_dataset_created_meanwhile_under_the_same_name_is_not_overwritten(tmp_path, settings, monkeypatch):
    import core.datasets.importer as importer

    real_rename = importer.os.rename

    def someone_else_first(src, dst):
        if str(dst).endswith("/race"):
            (settings.datasets_dir / "race" / "theirs").mkdir(parents=True)
        return real_rename(src, dst)

    monkeypatch.setattr(importer.os, "rename", someone_else_first)
    with pytest.raises(ImportFailed) as raised:
        import_dataset(make_flat(tmp_path / "src", n=3), ImportOptions(name="race"), settings)
    assert raised.value.report.errors[-1].code == "name-taken"
    assert [p.name for p in (settings.datasets_dir / "race").iterdir()] == ["theirs"]
    assert not list(settings.datasets_dir.glob(".staging-*"))
