"""Cells out to Fiji, QuPath and OME-TIFF: outlines that fill back to the same pixels, ids that join, clear errors."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest
import roifile
import tifffile
from shapely.geometry import shape as geometry_shape

from core.cli import main
from core.datasets.importer import ImportOptions, import_dataset
from core.interop.cell_files import geojson_collection, imagej_rois, label_dtype, read_ome_zarr_labels
from core.interop.export import ExportError, export_cells, prediction_sources, resolve_sources
from core.interop.geometry import cell_outlines, fill_outline, ring_area
from tests.helpers import blobs, make_splits, random_discs, write_image

RING = np.array([[0, 0], [3, 0], [3, 2], [0, 2]])

# label image, what each cell's outline must say: (label, pixels, outer rings, holes)
OUTLINE_CASES = [
    (np.array([[1]]), [(1, 1, 1, 0)]),
    (np.array([[0, 0, 0], [0, 4, 4], [0, 4, 0]]), [(4, 3, 1, 0)]),
    (np.array([[2, 0], [0, 2]]), [(2, 2, 1, 0)]),  # corner-touching pixels: one 8-connected cell
    (np.array([[3, 3, 3], [3, 0, 3], [3, 3, 3]]), [(3, 8, 1, 1)]),  # a ring of pixels around a hole
    (np.array([[5, 0, 5]]), [(5, 2, 2, 0)]),  # one id in two pieces
    (np.array([[0, 9, 9], [7, 7, 0]]), [(7, 2, 1, 0), (9, 2, 1, 0)]),  # ids need not be consecutive
    (np.zeros((3, 3), int), []),
]


@pytest.mark.parametrize("labels, expected", OUTLINE_CASES)
def test_outlines_say_what_each_cell_is(labels, expected):
    outlines = cell_outlines(labels)
    assert [(c.label, c.area, len(c.outer), len(c.holes)) for c in outlines] == expected
    for cell in outlines:
        assert sum(ring_area(r) for r in cell.rings) == cell.area  # holes count negative
        assert np.array_equal(fill_outline(cell.rings, labels.shape), labels == cell.label)
        assert all(np.array_equal(r, np.round(r)) for r in cell.rings)  # pixel corners: whole numbers


@pytest.mark.parametrize("seed", range(5))
def test_random_cells_fill_back_pixel_for_pixel(seed):
    labels = random_discs(seed, (64, 80), tries=40, radii=(2, 9))
    labels[np.random.default_rng(seed).random(labels.shape) < 0.05] = 0  # ragged edges and holes
    back = np.zeros_like(labels)
    for cell in cell_outlines(labels):
        back[fill_outline(cell.rings, labels.shape)] = cell.label
    assert np.array_equal(back, labels)


@pytest.mark.parametrize("ring, area", [(RING, 6.0), (RING[::-1], -6.0)])
def test_ring_area_is_signed_by_direction(ring, area):
    assert ring_area(ring) == area


def test_a_ring_is_at_least_a_triangle():
    with pytest.raises(ValueError, match="at least 3"):
        fill_outline([np.array([[0, 0], [1, 1]])], (2, 2))


@pytest.mark.parametrize("labels", [np.zeros((2, 2, 2), int), np.zeros((2, 2), float)])
def test_labels_must_be_a_2d_integer_image(labels):
    with pytest.raises(ValueError, match="labels must"):
        cell_outlines(labels)


def _roi_labels(rois, shape):
    back = np.zeros(shape, np.int64)
    for roi in rois:
        back[fill_outline(roi.coordinates(multi=True), shape)] = int(roi.name)
    return back


def test_roi_zip_round_trips_through_roifile_with_holes_and_pieces(tmp_path):
    labels = random_discs(3, (60, 70), tries=30, radii=(3, 8)).astype(np.int64)
    labels[2:8, 2:8] = 999
    labels[4:6, 4:6] = 0  # a hole
    labels[50, 60] = 999  # a second piece of the same cell
    source = tmp_path / "x.tif"
    tifffile.imwrite(source, labels.astype(np.uint16))
    (tmp_path / "labels").mkdir()
    source.rename(tmp_path / "labels" / "x.tif")
    export_cells(prediction_sources(tmp_path), "imagej-roi", tmp_path / "out")
    rois = roifile.roiread(tmp_path / "out" / "x.roi.zip")
    assert np.array_equal(_roi_labels(rois, labels.shape), labels)
    kinds = {roi.name: roi.roitype.name for roi in rois}
    assert kinds["999"] == "RECT" and rois[-1].composite  # a shape ROI carries the hole and the piece
    assert {kind for name, kind in kinds.items() if name != "999"} == {"POLYGON"}


def test_roi_names_sort_like_the_cells():
    labels = np.zeros((4, 30), int)
    labels[1, 1], labels[1, 5], labels[1, 20] = 3, 10, 120
    assert [roi.name for roi in imagej_rois(labels)] == ["003", "010", "120"]


def test_geojson_features_fill_back_with_measurements_and_holes():
    labels = np.zeros((9, 9), int)
    labels[1:8, 1:8] = 6
    labels[3:5, 3:5] = 0
    labels[0, 8] = 2
    collection = geojson_collection(labels, {6: {"Mean intensity": 1.5}}, object_type="annotation", image_name="a")
    by_id = {f["id"]: f for f in collection["features"]}
    assert set(by_id) == {"2", "6"}
    assert by_id["6"]["properties"] == {
        "objectType": "annotation",
        "name": "cell 6",
        "cell_id": 6,
        "classification": {"name": "Cell"},
        "image": "a",
        "measurements": {"Area px": 45, "Mean intensity": 1.5},
    }
    polygon = geometry_shape(by_id["6"]["geometry"])
    assert polygon.is_valid and len(polygon.interiors) == 1 and polygon.area == 45
    rings = [np.array(polygon.exterior.coords)[:-1], np.array(polygon.interiors[0].coords)[:-1]]
    assert np.array_equal(fill_outline(rings, labels.shape), labels == 6)


def test_geojson_refuses_an_unknown_object_type():
    with pytest.raises(ValueError, match="detection, annotation"):
        geojson_collection(np.ones((2, 2), int), object_type="cell")


@pytest.mark.parametrize("top, dtype", [(65535, np.uint16), (65536, np.uint32)])
def test_label_images_widen_beyond_65535_cells(top, dtype):
    assert label_dtype(np.array([[0, top]])) == dtype


@pytest.fixture
def dataset(settings, tmp_path):
    source = make_splits(tmp_path / "src", {"train": 2, "valid": 1, "test": 1})
    import_dataset(source, ImportOptions(name="cells"), settings)
    return settings


@pytest.mark.parametrize(
    "fmt, suffix",
    [
        ("imagej-roi", ".roi.zip"),
        ("geojson", ".geojson"),
        ("ome-tiff", ".ome.tif"),
        ("ome-zarr", ".ome.zarr"),
        ("csv", None),
    ],
)
def test_a_dataset_exports_in_every_format_with_ids_that_join(dataset, tmp_path, fmt, suffix):
    kind, sources = resolve_sources(dataset, "cells", split="test")
    assert kind == "dataset" and len(sources) == 1
    summary = export_cells(sources, fmt, tmp_path / fmt, pixel_size_um=0.5)
    labels = sources[0].read_labels()
    with (tmp_path / fmt / "cells.csv").open() as table:
        rows = list(csv.DictReader(table))
    ids = sorted(int(row["label"]) for row in rows)
    assert ids == sorted(int(v) for v in np.unique(labels) if v) and summary.cells == len(ids)
    assert float(rows[0]["area_um2"]) == pytest.approx(int(rows[0]["area_px"]) * 0.25)
    if suffix is None:
        return
    path = tmp_path / fmt / f"{sources[0].name}{suffix}"
    if fmt == "imagej-roi":
        names = sorted(int(n[:-4]) for n in zipfile.ZipFile(path).namelist())
    elif fmt == "geojson":
        names = sorted(int(f["id"]) for f in json.loads(path.read_text())["features"])
    elif fmt == "ome-tiff":
        with tifffile.TiffFile(path) as tif:
            assert tif.is_ome and 'PhysicalSizeX="0.5"' in tif.ome_metadata
            assert np.array_equal(tif.asarray(), labels)
        names = ids
    else:
        assert np.array_equal(read_ome_zarr_labels(path), labels)
        scales = json.loads((path / "labels" / "cells" / "zarr.json").read_text())["attributes"]["ome"]
        assert scales["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"] == [0.5, 0.5]
        assert not list(tmp_path.joinpath(fmt).glob(".*partial"))  # built aside, then moved into place
        names = ids
    assert names == ids


def test_prediction_csv_brightness_comes_from_the_input_image(tmp_path):
    image, labels = blobs(1, 48)
    write_image(tmp_path / "in" / "a.png", image)
    write_image(tmp_path / "pred" / "labels" / "a.tif", labels)
    (tmp_path / "pred" / "images.csv").write_text(f"image,output,source\na.png,a,{tmp_path / 'in' / 'a.png'}\n")
    export_cells(prediction_sources(tmp_path / "pred"), "csv", tmp_path / "out")
    with (tmp_path / "out" / "cells.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert rows and all(float(row["mean_intensity"]) > 150 for row in rows)
    assert "area_um2" not in rows[0]  # no pixel size given: pixels only, and the columns say so


def test_an_unreadable_label_image_is_skipped_and_named(tmp_path):
    write_image(tmp_path / "labels" / "good.tif", np.pad(np.ones((4, 4), np.uint16), 2))
    (tmp_path / "labels" / "bad.tif").write_bytes(b"not a tiff")
    summary = export_cells(prediction_sources(tmp_path), "geojson", tmp_path / "out")
    assert summary.images == 1 and summary.cells == 1
    assert len(summary.skipped) == 1 and summary.skipped[0].startswith("bad:")


@pytest.mark.parametrize(
    "source, message",
    [
        ("nowhere", "neither a prediction folder"),
        ("cells", r"no masks to export in split 'train' in state\(s\) corrected"),
    ],
)
def test_sources_that_cannot_be_exported_say_why(dataset, source, message):
    with pytest.raises(ExportError, match=message):
        resolve_sources(dataset, source, split="train", states=("corrected",))


def test_a_prediction_folder_without_labels_says_what_was_expected(tmp_path):
    with pytest.raises(ExportError, match="labels/"):
        prediction_sources(tmp_path)


@pytest.mark.parametrize("fmt, size, message", [("png", None, "unknown format"), ("csv", 0.0, "positive")])
def test_bad_format_or_pixel_size_is_refused(tmp_path, fmt, size, message):
    with pytest.raises(ExportError, match=message):
        export_cells([], fmt, tmp_path, pixel_size_um=size)


def test_the_command_line_exports_and_reports(data_env, tmp_path, capsys):
    make_splits(tmp_path / "src", {"train": 2, "valid": 1, "test": 1})
    assert main(["datasets", "import", str(tmp_path / "src"), "--name", "cells"]) == 0
    capsys.readouterr()
    masks = sorted((data_env.datasets_dir / "cells").rglob("*.png")) + sorted((tmp_path / "src").rglob("*.png"))
    before = {path: path.read_bytes() for path in masks}
    assert main(["export-cells", "cells", "--format", "imagej-roi", "--out", str(tmp_path / "out"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "dataset" and printed["images"] == 4 and printed["cells"] > 0
    assert len(before) >= 8 and {path: path.read_bytes() for path in masks} == before, "the images read are untouched"
    assert main(["export-cells", "missing", "--format", "csv", "--out", str(tmp_path / "x")]) == 2
    assert "neither a prediction folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export-cells", "cells", "--format", "csv", "--out", str(tmp_path / "x"), "--pixel-size", "-1"])
    assert "must be positive" in capsys.readouterr().err


def test_a_datasets_own_pixel_size_gives_areas_in_um2_unless_another_is_given(dataset, tmp_path):
    from core.datasets.manage import set_pixel_size

    set_pixel_size(dataset, "cells", 0.25)
    _, sources = resolve_sources(dataset, "cells", split="test")
    for given, expected in ((None, 0.0625), (2.0, 4.0)):
        export_cells(sources, "csv", tmp_path / str(given), pixel_size_um=given)
        with (tmp_path / str(given) / "cells.csv").open() as table:
            row = next(csv.DictReader(table))
        assert float(row["area_um2"]) == pytest.approx(int(row["area_px"]) * expected)


def test_an_evaluated_datasets_hand_set_pixel_size_reaches_the_export(data_env, tmp_path, monkeypatch):
    from core.datasets.manage import set_pixel_size
    from core.interop.export import evaluation_sources
    from tests.evaluation_helpers import evaluated_run

    run = evaluated_run(data_env, tmp_path, monkeypatch)
    assert {source.pixel_size_um for source in evaluation_sources(run.path, "test")} == {None}
    set_pixel_size(data_env, "cells", 0.4)
    assert {source.pixel_size_um for source in evaluation_sources(run.path, "test")} == {0.4}
