"""The physical pixel size: read from tiny TIFFs with known answers, stored in manifests and the catalogue,
set by hand, shown on the command line, and used for cell areas in µm²."""

import csv
import json

import numpy as np
import pytest
import tifffile

from core.catalogue import store
from core.catalogue.datasets import list_datasets, register_dataset, sync_datasets
from core.cli import main
from core.config import ImportOptions
from core.datasets.adding import add_images
from core.datasets.importer import import_dataset
from core.datasets.manage import DatasetNotFound, set_pixel_size
from core.datasets.manifest import read_manifest, write_manifest
from core.pixel_size import (
    HAND,
    PixelSize,
    check_pixel_size,
    common_pixel_size,
    dataset_pixel_size,
    from_manifest,
    pixel_size_of,
    pixel_size_um,
    read_pixel_size,
    to_manifest,
    with_summary,
)
from core.prediction.job import PredictOptions, predict_files
from tests.evaluation_helpers import trained_run, use_brightness_model
from tests.helpers import binary, blobs, catalogue_at_schema, write_image

PIXELS = np.zeros((16, 16), np.uint8)


def ome(x, x_unit=None, y=None, y_unit=None):
    metadata = {"PhysicalSizeX": x, "PhysicalSizeY": x if y is None else y}
    if x_unit:
        metadata.update(PhysicalSizeXUnit=x_unit, PhysicalSizeYUnit=y_unit or x_unit)
    return {"ome": True, "metadata": metadata}


def imagej(unit, x_um_per_unit, y_um_per_unit=None):
    return {
        "imagej": True,
        "metadata": {"unit": unit},
        "resolution": (1 / x_um_per_unit, 1 / (y_um_per_unit or x_um_per_unit)),
    }


def resolution(x_per_unit, unit, y_per_unit=None):
    return {"resolution": (x_per_unit, y_per_unit or x_per_unit), "resolutionunit": unit}


@pytest.mark.parametrize(
    "write, expected",
    [
        (ome(0.325, "µm"), (0.325, 0.325, "OME")),
        (ome(325, "nm"), (0.325, 0.325, "OME")),
        (ome(0.5), (0.5, 0.5, "OME")),  # OME's default unit is µm
        (ome(0.0005, "mm"), (0.5, 0.5, "OME")),
        (ome(0.5, "µm", 0.6), (0.5, 0.6, "OME")),
        (imagej("micron", 0.325), (0.325, 0.325, "ImageJ")),
        (imagej("\\u00B5m", 0.65), (0.65, 0.65, "ImageJ")),  # as ImageJ writes it, escaped
        (imagej("nm", 250), (0.25, 0.25, "ImageJ")),
        (imagej("micron", 0.5, 0.25), (0.5, 0.25, "ImageJ")),
        (resolution(20_000, "CENTIMETER"), (0.5, 0.5, "TIFF resolution")),
        (resolution(50_800, "INCH"), (0.5, 0.5, "TIFF resolution")),
        (resolution(20_000, "CENTIMETER", 10_000), (0.5, 1.0, "TIFF resolution")),
    ],
    ids=[
        "ome-um",
        "ome-nm",
        "ome-default-unit",
        "ome-mm",
        "ome-anisotropic",
        "imagej-micron",
        "imagej-escaped-um",
        "imagej-nm",
        "imagej-anisotropic",
        "resolution-cm",
        "resolution-inch",
        "resolution-anisotropic",
    ],
)
def test_pixel_size_is_read_from_tiff_metadata(tmp_path, write, expected):
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, PIXELS, **write)
    size = pixel_size_um(path)
    assert (size.x_um, size.y_um, size.source) == (pytest.approx(expected[0]), pytest.approx(expected[1]), expected[2])
    assert size.square == (expected[0] == expected[1])


@pytest.mark.parametrize(
    "write, reason",
    [
        (resolution(72, "INCH"), "72 dpi"),
        (resolution(300, "INCH"), "300 dpi"),
        (resolution(96 / 2.54, "CENTIMETER"), "96 dpi"),  # a screen resolution written per centimetre
        (imagej("inch", 1 / 72), "72 dpi"),  # ImageJ turns a JPEG's 72 dpi into an inch calibration
        (resolution(10, "CENTIMETER"), "larger than a microscope's pixel"),  # 1 mm per pixel
        (ome(1, "pixel"), "is not a length"),
        (imagej("furlong", 1.0), "not a length"),
    ],
    ids=["72dpi", "300dpi", "96dpi-in-cm", "imagej-72dpi", "1mm-pixels", "ome-pixel-unit", "imagej-odd-unit"],
)
def test_print_and_screen_resolutions_are_not_pixel_sizes(tmp_path, write, reason):
    path = tmp_path / "figure.tif"
    tifffile.imwrite(path, PIXELS, **write)
    size, note = read_pixel_size(path)
    assert size is None and reason in note and "ignored" in note


@pytest.mark.parametrize(
    "name, content",
    [
        ("plain.tif", None),  # tifffile's default: 1 pixel per pixel, no unit
        ("slide.png", None),
        ("damaged.tif", b"II*\x00\x08\x00\x00\x00\xff\xff garbage"),
        ("truncated.tif", "truncate"),
        ("empty.tif", b""),
        ("absent.tif", "absent"),
    ],
)
def test_no_pixel_size_gives_none_and_never_raises(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        write_image(path, PIXELS)
    elif content == "truncate":
        tifffile.imwrite(path, np.zeros((64, 64), np.uint16), **ome(0.5, "µm"))
        path.write_bytes(path.read_bytes()[:100])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    size, note = read_pixel_size(path)
    assert size is None
    assert (note == "") == (content is None), note
    assert pixel_size_um(path) is None


def test_the_real_timelapse_carries_its_documented_pixel_size(shared):
    """The Usiigaci T98G stacks state 0.87 µm per pixel in their resolution tags (per centimetre)."""
    path = next((shared / "datasets" / "usiigaci_t98g_timelapse" / "train" / "input").glob("*.tif"))
    assert pixel_size_um(path) == PixelSize(0.87, 0.87, "TIFF resolution")
    assert pixel_size_um(shared / "formats" / "ctc_tif" / "input" / "raw_000.tif") is None  # 1 pixel per pixel


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.325, PixelSize(0.325, 0.325, "OME")),
        ([0.5, 0.6], PixelSize(0.5, 0.6, "OME")),
        (None, None),
        ("0.5", None),
        (True, None),
        (-1, None),
        (0, None),
        ([0.5], None),
        (float("nan"), None),
    ],
)
def test_manifest_values_are_read_leniently(value, expected):
    assert from_manifest(value, "OME") == expected


def test_manifest_representation_round_trips():
    for size in (PixelSize(0.325, 0.325, "OME"), PixelSize(0.5, 0.6, "ImageJ")):
        assert from_manifest(json.loads(json.dumps(to_manifest(size))), size.source) == size


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([{"pixel_size_um": 0.5, "pixel_size_source": "OME"}] * 3, PixelSize(0.5, 0.5, "OME")),
        (
            [
                {"pixel_size_um": 0.5, "pixel_size_source": "OME"},
                {"pixel_size_um": 0.5000001, "pixel_size_source": "ImageJ"},
            ],
            PixelSize(0.5, 0.5, "metadata"),
        ),
        ([{"pixel_size_um": 0.5}, {"pixel_size_um": 0.6}], None),
        ([{"pixel_size_um": 0.5}, {}], None),
        ([], None),
    ],
)
def test_the_dataset_size_is_the_one_all_images_share(rows, expected):
    assert common_pixel_size(rows) == expected


def test_a_size_set_by_hand_survives_until_cleared():
    rows = [{"pixel_size_um": 0.5, "pixel_size_source": "OME"}]
    hand = with_summary({"images": rows}, hand_um=0.4)
    assert (hand["pixel_size_um"], hand["pixel_size_source"]) == (0.4, HAND)
    assert with_summary(hand)["pixel_size_um"] == 0.4, "re-summarising (images added) keeps the hand-set size"
    assert with_summary(hand, hand_um=0)["pixel_size_um"] == 0.5, "cleared: the images' own size again"


@pytest.mark.parametrize("value", [-0.1, float("nan"), "abc", 5000, None])
def test_bad_hand_sizes_are_refused_with_the_allowed_range(value):
    with pytest.raises(ValueError, match="micrometres per pixel, a number from 0"):
        check_pixel_size(value)


# --- import, add, set by hand, catalogue ----------------------------------------------------------------------


def tiff_source(root, n=3, **write):
    """A flat ``images/*.tif`` + ``masks/*.png`` source whose TIFFs are written with ``write`` options."""
    for k in range(n):
        image, labels = blobs(400 + k, 48)
        (root / "images").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(root / "images" / f"slide{k}.tif", image, **write)
        write_image(root / "masks" / f"slide{k}.png", binary(labels))
    return root


def png_source(root, n=2, first=0):
    for k in range(first, first + n):
        image, labels = blobs(500 + k, 48)
        write_image(root / "images" / f"extra{k}.png", image)
        write_image(root / "masks" / f"extra{k}.png", binary(labels))
    return root


def test_import_stores_each_image_size_and_the_shared_one(tmp_path, settings):
    import_dataset(tiff_source(tmp_path / "src", **ome(325, "nm")), ImportOptions(name="ome"), settings)
    folder = settings.datasets_dir / "ome"
    manifest = read_manifest(folder)
    assert {(r["pixel_size_um"], r["pixel_size_source"]) for r in manifest["images"]} == {(0.325, "OME")}
    assert (manifest["pixel_size_um"], manifest["pixel_size_source"]) == (0.325, "OME")
    assert dataset_pixel_size(folder, "slide1") == 0.325
    assert pixel_size_of(folder, None) == PixelSize(0.325, 0.325, "OME")


def test_images_without_a_size_have_no_keys_and_dpi_defaults_are_noted(tmp_path, settings):
    result = import_dataset(
        tiff_source(tmp_path / "src", **resolution(72, "INCH")), ImportOptions(name="dpi"), settings
    )
    manifest = read_manifest(settings.datasets_dir / "dpi")
    assert not any("pixel_size_um" in row or "pixel_size_source" in row for row in manifest["images"])
    assert "pixel_size_um" not in manifest
    notes = [f for f in result.report.findings if f.code == "pixel-size-ignored"]
    assert len(notes) == 3 and all(n.severity == "info" and "72 dpi" in n.message for n in notes)
    assert dataset_pixel_size(settings.datasets_dir / "dpi", "slide0") is None


def test_added_images_keep_their_own_sizes_and_split_the_shared_one(tmp_path, settings):
    import_dataset(tiff_source(tmp_path / "src", **imagej("micron", 0.5)), ImportOptions(name="ij"), settings)
    add_images(settings, "ij", png_source(tmp_path / "more"))
    folder = settings.datasets_dir / "ij"
    manifest = read_manifest(folder)
    assert "pixel_size_um" not in manifest, "the images no longer agree"
    assert dataset_pixel_size(folder, "slide0") == 0.5 and dataset_pixel_size(folder, "extra0") is None
    assert set_pixel_size(settings, "ij", 0.45) == PixelSize(0.45, 0.45, HAND)
    add_images(settings, "ij", png_source(tmp_path / "later", first=5))
    assert all(dataset_pixel_size(folder, stem) == 0.45 for stem in ("slide0", "extra0", "extra5")), (
        "a size set by hand holds for every image, those added later too"
    )
    assert set_pixel_size(settings, "ij", 0) is None
    assert (dataset_pixel_size(folder, "slide0"), dataset_pixel_size(folder, "extra0")) == (0.5, None)


def test_an_old_manifest_without_sizes_keeps_working(tmp_path, settings):
    import_dataset(tiff_source(tmp_path / "src", **ome(0.5, "µm")), ImportOptions(name="old"), settings)
    folder = settings.datasets_dir / "old"
    manifest = read_manifest(folder)
    for holder in [manifest, *manifest["images"]]:
        holder.pop("pixel_size_um"), holder.pop("pixel_size_source")
    write_manifest(folder, manifest)
    assert dataset_pixel_size(folder, "slide0") is None and dataset_pixel_size(folder, "nope") is None
    con = store.connect(settings.catalogue_path)
    register_dataset(con, folder)
    assert con.execute("SELECT count(*) FROM images WHERE pixel_size_um IS NULL").fetchone()[0] == 3
    assert set_pixel_size(settings, "old", 0.7).x_um == 0.7
    assert dataset_pixel_size(folder, "slide2") == 0.7


def test_setting_by_hand_names_the_problem(settings, tmp_path):
    with pytest.raises(DatasetNotFound, match="No dataset named 'ghost'"):
        set_pixel_size(settings, "ghost", 0.5)
    import_dataset(png_source(tmp_path / "src", n=3), ImportOptions(name="pngs"), settings)
    before = (settings.datasets_dir / "pngs" / "dataset.json").read_bytes()
    with pytest.raises(ValueError, match="got -2"):
        set_pixel_size(settings, "pngs", -2)
    assert (settings.datasets_dir / "pngs" / "dataset.json").read_bytes() == before, "nothing written"
    assert dataset_pixel_size(settings.datasets_dir / "pngs", "extra0") is None
    assert dataset_pixel_size(tmp_path / "not-a-dataset", "x") is None


def test_schema_8_catalogue_gains_a_nullable_pixel_size_keeping_its_rows(settings, tmp_path):
    old = catalogue_at_schema(settings.catalogue_path, 8)
    old.execute(
        "INSERT INTO images (dataset, split, stem, image_path, mask_path) "
        "VALUES ('d', 'train', 'old-image', 'i.png', 'm.png')"
    )
    old.execute("INSERT INTO datasets (name, revision, manifest_stamp, path) VALUES ('d', 'r', 's', '/d')")
    old.close()
    con = store.connect(settings.catalogue_path)
    assert store.schema_version(con) == store.SCHEMA_VERSION
    assert con.execute("SELECT stem, pixel_size_um FROM images").fetchall() == [("old-image", None)]
    assert con.execute("SELECT name, pixel_size_um FROM datasets").fetchall() == [("d", None)]
    con.execute("DELETE FROM images"), con.execute("DELETE FROM datasets")
    import_dataset(tiff_source(tmp_path / "src", **ome(0.25, "µm")), ImportOptions(name="ome"), settings)
    import_dataset(png_source(tmp_path / "pngs"), ImportOptions(name="pngs"), settings)
    sync_datasets(con, settings.datasets_dir)
    assert con.execute("SELECT DISTINCT dataset, pixel_size_um FROM images ORDER BY dataset").fetchall() == [
        ("ome", 0.25),
        ("pngs", None),
    ], "unknown is NULL, not NaN"
    listed = list_datasets(con).set_index("name")["pixel_size_um"]
    assert listed["ome"] == 0.25 and np.isnan(listed["pngs"])
    set_pixel_size(settings, "pngs", 0.4)
    sync_datasets(con, settings.datasets_dir)
    assert con.execute("SELECT DISTINCT pixel_size_um FROM images WHERE dataset = 'pngs'").fetchall() == [(0.4,)]


def test_command_line_prints_and_sets_the_pixel_size(tmp_path, data_env, capsys):
    import_dataset(tiff_source(tmp_path / "src", **ome(0.325, "µm")), ImportOptions(name="ome"), data_env)
    add_images(data_env, "ome", png_source(tmp_path / "more", n=1))

    def run(*argv):
        code = main(["datasets", "pixel-size", *argv])
        return code, *capsys.readouterr()

    code, out, _ = run("ome")
    assert code == 0 and out.strip() == (
        "ome: pixel size unknown for the dataset (3 images at 0.325 µm, 1 image unknown)."
    )
    code, out, _ = run("ome", "0.5")
    assert code == 0 and out.startswith("ome: pixel size 0.5 µm (set by hand).")
    assert run("ome")[1].strip() == "ome: pixel size 0.5 µm (set by hand)"
    code, _, err = run("ome", "-1")
    assert code == 2 and "micrometres per pixel" in err and "Traceback" not in err
    code, _, err = run("ghost")
    assert code == 2 and "No dataset named 'ghost'" in err
    assert main(["datasets", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr()[0])
    assert listed[0]["pixel_size_um"] == 0.5


def test_predicted_cells_get_areas_in_square_micrometres_from_a_tiff(settings, tmp_path, monkeypatch):
    use_brightness_model(monkeypatch)
    run = trained_run(settings, tmp_path)
    image = blobs(7, 96, n=3)[0]
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "scaled.tif", image, **ome(0.5, "µm", 0.25))
    write_image(tmp_path / "in" / "plain.png", image)
    predict_files(run, [tmp_path / "in"], tmp_path / "out", PredictOptions(tile=128, overlap=32))
    cells = list(csv.DictReader((tmp_path / "out" / "cells.csv").open()))
    scaled = [c for c in cells if c["image"] == "scaled.tif"]
    assert scaled and all(float(c["area_um2"]) == pytest.approx(int(c["area"]) * 0.125) for c in scaled)
    assert all(c["area_um2"] == "" for c in cells if c["image"] == "plain.png"), "area stays in pixels only"
    images = {r["image"]: r for r in csv.DictReader((tmp_path / "out" / "images.csv").open())}
    assert (images["scaled.tif"]["pixel_size_um"], images["plain.png"]["pixel_size_um"]) == ("0.5", "")
