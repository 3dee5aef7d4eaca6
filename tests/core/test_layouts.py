"""Finding image/mask pairs in each layout, without decoding anything."""

from pathlib import Path

import numpy as np
import pytest

from core.datasets.layouts import LayoutError, detect_layout, match_key, scan_source
from tests.helpers import make_dsb, make_flat, make_splits, make_tif_pairs, write_image, blobs


@pytest.mark.parametrize(
    "builder, layout, n_pairs",
    [
        (make_splits, "splits", 8),
        (make_flat, "flat", 10),
        (make_dsb, "dsb", 4),
        (make_tif_pairs, "tif-pairs", 3),
    ],
)
def test_each_layout_is_detected_and_scanned(tmp_path, builder, layout, n_pairs):
    root = builder(tmp_path / "src")
    assert detect_layout(root) == layout
    scan = scan_source(root)
    assert scan.layout == layout and len(scan.pairs) == n_pairs
    assert not [f for f in scan.findings if f.severity == "error"]


@pytest.mark.parametrize(
    "folder, layout, n_pairs",
    [
        ("formats/ctc_tif", "tif-pairs", 3),
        ("formats/dsb_per_object", "dsb", 8),
        ("formats/jpeg_masks", "splits", 6),
        ("datasets/dsb2018_nuclei", "splits", 400),
    ],
)
def test_real_samples_are_recognised(shared, folder, layout, n_pairs):
    scan = scan_source(shared / folder)
    assert (scan.layout, len(scan.pairs)) == (layout, n_pairs)


def test_wrapper_folder_of_a_zip_is_descended(tmp_path):
    make_flat(tmp_path / "upload" / "my data", n=3)
    scan = scan_source(tmp_path / "upload")
    assert scan.layout == "flat" and scan.root.name == "my data"


def test_split_folder_aliases(tmp_path):
    make_splits(tmp_path / "src", {"training": 2, "val": 1, "testing": 1})
    assert sorted({p.split for p in scan_source(tmp_path / "src").pairs}) == ["test", "train", "valid"]


def test_instance_folder_is_paired(tmp_path):
    root = make_splits(tmp_path / "src", {"train": 2})
    for image in (root / "train" / "images").iterdir():
        write_image(root / "train" / "masks_instances" / image.name, blobs(1)[1])
    assert all(p.instances is not None for p in scan_source(root).pairs)


@pytest.mark.parametrize(
    "image_stem, mask_stem",
    [
        ("cell01", "cell01_mask"),
        ("raw_007", "instance_ids_007"),
        ("img_3", "mask_3"),
        ("t012", "man_seg012"),
    ],
)
def test_masks_match_images_despite_affixes(tmp_path, image_stem, mask_stem):
    image, labels = blobs(0)
    write_image(tmp_path / "src" / "images" / f"{image_stem}.png", image)
    write_image(tmp_path / "src" / "masks" / f"{mask_stem}.png", labels)
    pairs = scan_source(tmp_path / "src").pairs
    assert [(p.stem, p.masks[0].stem) for p in pairs] == [(image_stem, mask_stem)]


def test_match_key_strips_known_affixes_only():
    assert match_key("cell_mask") == "cell"
    assert match_key("masked_cells") == "masked_cells"


def test_unknown_layout_lists_what_was_found_and_expected(tmp_path):
    (tmp_path / "src" / "photos").mkdir(parents=True)
    with pytest.raises(LayoutError) as raised:
        scan_source(tmp_path / "src")
    message = str(raised.value)
    assert "photos" in message and "images/ + masks/" in message


def test_junk_files_are_ignored_silently(tmp_path):
    root = make_flat(tmp_path / "src", n=2)
    (root / "images" / ".DS_Store").write_bytes(b"junk")
    (root / "images" / "Thumbs.db").write_bytes(b"junk")
    scan = scan_source(root)
    assert len(scan.pairs) == 2 and scan.findings == []


def test_ome_tiff_masks_and_label_images_beside_their_images_are_paired(tmp_path, settings):
    from core.datasets.importer import import_dataset
    from core.config import ImportOptions
    from core.datasets.manifest import read_manifest
    from core.interop.cell_files import write_ome_tiff
    from core.io import read_image
    from tests.helpers import blobs, write_image

    truth = {}
    for stem, seed in (("a", 1), ("b", 2)):
        image, truth[stem] = blobs(seed)
        write_image(tmp_path / "src" / "images" / f"{stem}.png", image)
    write_ome_tiff(tmp_path / "src" / "masks" / "a.ome.tif", truth["a"])  # as export-cells writes them
    write_ome_tiff(tmp_path / "src" / "images" / "b_labels.ome.tif", truth["b"])  # beside its image
    result = import_dataset(tmp_path / "src", ImportOptions(name="ome"), settings)
    rows = {row["stem"]: row for row in read_manifest(result.path)["images"]}
    assert sorted(rows) == ["a", "b"], "the label image beside b.png is its mask, not a third image"
    for stem in rows:
        assert np.array_equal(read_image(result.path / rows[stem]["instances"]) > 0, truth[stem] > 0)
    assert any(f.code == "mask-beside" and f.file == "images/b_labels.ome.tif" for f in result.report.findings)


@pytest.mark.parametrize(
    "name, stem",
    [("a.ome.tif", "a"), ("a.OME.TIFF", "a"), ("a.roi.zip", "a"), ("a.tif.geojson", "a"), ("a.b.png", "a.b")],
)
def test_file_stems_drop_compound_suffixes(name, stem):
    from core.datasets.layouts import file_stem

    assert file_stem(Path(name)) == stem
