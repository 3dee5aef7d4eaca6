"""Fiji ROI zips and QuPath GeoJSON as masks: tiny outlines with known pixels, bad files, a real round trip,
and an import through the real importer."""

import json
import zipfile

import numpy as np
import pytest
import roifile
from roifile import ROI_OPTIONS, ROI_TYPE, ImagejRoi
from skimage.segmentation import relabel_sequential

from core.config import ImportOptions
from core.datasets.adding import add_images
from core.datasets.importer import check_source, import_dataset
from core.datasets.layouts import scan_source
from core.datasets.manifest import read_manifest
from core.interop.annotations import (
    AnnotationReadError,
    CellPolygon,
    GeoJsonError,
    RoiFileError,
    annotation_stem,
    labels_from_polygons,
    read_annotations,
    read_geojson,
    read_imagej_rois,
)
from core.interop.geometry import cell_outlines
from core.io import read_image
from tests.helpers import blobs, make_flat, write_image


# --- building ROIs and GeoJSON -------------------------------------------------------------------------------


def _rect(left, top, right, bottom, name="rect", roitype=ROI_TYPE.RECT):
    return ImagejRoi(roitype=roitype, left=left, top=top, right=right, bottom=bottom, name=name)


def _polygon(points, name="poly", roitype=ROI_TYPE.POLYGON):
    roi = ImagejRoi.frompoints(np.asarray(points), name=name)
    roi.roitype = roitype
    return roi


def _composite(rings, name="ring"):
    """A composite (shape) ROI: MOVETO/LINETO/CLOSE path operations, as Fiji saves ROIs combined with XOR."""
    path = []
    for ring in rings:
        (x0, y0), *rest = ring
        path += [0, x0, y0] + [v for x, y in rest for v in (1, x, y)] + [4]
    xs, ys = [p[0] for r in rings for p in r], [p[1] for r in rings for p in r]
    return ImagejRoi(
        roitype=ROI_TYPE.RECT,
        left=min(xs),
        top=min(ys),
        right=max(xs),
        bottom=max(ys),
        name=name,
        shape_roi_size=len(path),
        multi_coordinates=np.array(path, np.float32),
    )


def _point(x, y, name="count"):
    roi = ImagejRoi.frompoints([[x, y]], name=name)
    roi.roitype = ROI_TYPE.POINT
    return roi


def _square(x, y, side):
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side]]


def _write_rois(path, rois):
    roifile.roiwrite(path, rois, mode="w")
    return path


def _feature(rings_or_parts, kind="annotation", name=None, multi=False, **extra):
    geometry = {"type": "MultiPolygon" if multi else "Polygon", "coordinates": rings_or_parts}
    properties = {"objectType": kind, **({"name": name} if name else {}), **extra}
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _pixels(labels):
    """Pixel count per id, in id order."""
    return np.bincount(labels.ravel())[1:].tolist()


def _oval_pixels(left, top, right, bottom, shape):
    """The pixels whose centres lie inside or on the ellipse in the bounds (ImageJ's OvalRoi mask)."""
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    radius_x, radius_y = (right - left) / 2, (bottom - top) / 2
    return ((columns + 0.5 - centre_x) / radius_x) ** 2 + ((rows + 0.5 - centre_y) / radius_y) ** 2 <= 1  # as ImageJ


# --- ImageJ ROIs: known pixels ---------------------------------------------------------------------------------

ROI_CASES = [
    # (id, ROIs, expected pixels per cell, expected note codes)
    ("rectangle-3x2", [_rect(1, 1, 4, 3)], [6], []),
    ("polygon", [_polygon(_square(2, 2, 3))], [9], []),
    ("freehand", [_polygon(_square(0, 0, 2), roitype=ROI_TYPE.FREEHAND)], [4], []),
    ("traced", [_polygon([[1, 1], [3, 1], [3, 2], [2, 2], [2, 3], [1, 3]], roitype=ROI_TYPE.TRACED)], [3], []),
    ("subpixel-polygon", [_polygon([[0.9, 0.9], [3.1, 0.9], [3.1, 2.1], [0.9, 2.1]])], [2], []),
    ("composite-with-hole", [_composite([_square(1, 1, 6), _square(3, 3, 2)])], [32], []),
    ("small-over-large", [_rect(4, 4, 6, 6, "small"), _rect(0, 0, 8, 8, "large")], [4, 60], ["overlapping-objects"]),
    ("half-outside", [_rect(-3, 0, 3, 2, "edge")], [6], ["clipped-cells"]),
    ("fully-outside", [_rect(1, 1, 3, 3), _rect(20, 20, 22, 22, "away")], [4], ["cells-outside"]),
    ("tiny", [_rect(1, 1, 3, 3), _polygon([[4.1, 4.1], [4.4, 4.1], [4.1, 4.4]], "speck")], [4], ["tiny-cells"]),
    ("point-skipped", [_point(5, 5), _rect(0, 0, 2, 2)], [4], ["not-a-cell"]),
]


@pytest.mark.parametrize("rois, pixels, codes", [c[1:] for c in ROI_CASES], ids=[c[0] for c in ROI_CASES])
def test_imagej_rois_fill_the_pixels_whose_centres_they_hold(tmp_path, rois, pixels, codes):
    labels, notes = labels_from_polygons(read_imagej_rois(_write_rois(tmp_path / "a.roi.zip", rois)), (10, 10))
    assert labels.dtype == np.uint16
    assert _pixels(labels) == pixels
    assert [note.code for note in notes] == codes


def test_rectangle_lands_exactly_where_drawn(tmp_path):
    _rect(1, 1, 4, 3).tofile(tmp_path / "one.roi")
    labels, _ = labels_from_polygons(read_imagej_rois(tmp_path / "one.roi"), (4, 5))
    assert labels.tolist() == [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]]


@pytest.mark.parametrize(
    "bounds", [(2, 3, 10, 9), (0, 0, 4, 4), (3, 2, 20, 13), (16, 6, 84, 124), (1, 1, 2, 60), (-5, 10, 30, 30)]
)
def test_oval_holds_the_pixel_centres_inside_its_ellipse(tmp_path, bounds):
    roi = ImagejRoi(roitype=ROI_TYPE.OVAL, left=bounds[0], top=bounds[1], right=bounds[2], bottom=bounds[3])
    labels, _ = labels_from_polygons(read_imagej_rois(_write_rois(tmp_path / "o.zip", [roi])), (128, 96))
    assert np.array_equal(labels > 0, _oval_pixels(*bounds, (128, 96)))


def test_subpixel_oval_keeps_its_float_bounds(tmp_path):
    roi = ImagejRoi(
        roitype=ROI_TYPE.OVAL,
        options=ROI_OPTIONS.SUB_PIXEL_RESOLUTION,
        left=1,
        top=1,
        right=9,
        bottom=7,
        xd=1.3,
        yd=1.2,
        widthd=7.4,
        heightd=5.5,
    )
    labels, _ = labels_from_polygons(read_imagej_rois(_write_rois(tmp_path / "o.zip", [roi])), (10, 10))
    assert np.array_equal(labels > 0, _oval_pixels(1.3, 1.2, 8.7, 6.7, (10, 10)))


def test_overlap_goes_to_the_smaller_cell_which_stays_whole(tmp_path):
    rois = [_rect(0, 0, 6, 6, "large"), _rect(4, 4, 8, 8, "small")]
    labels, notes = labels_from_polygons(read_imagej_rois(_write_rois(tmp_path / "a.zip", rois)), (10, 10))
    assert (labels[4:8, 4:8] == 2).all() and _pixels(labels) == [32, 16]
    assert "4 pixels belong to more than one cell (2 cells overlap)" in notes[0].message


def test_warnings_name_the_cells(tmp_path):
    rois = [
        _rect(-2, 0, 2, 2, "0001-0002"),
        _rect(30, 30, 32, 32, "far away"),
        _point(1, 1, "Count 3"),
        _rect(5, 5, 7, 7),
    ]
    _, notes = labels_from_polygons(read_imagej_rois(_write_rois(tmp_path / "a.zip", rois)), (10, 10))
    messages = {note.code: note.message for note in notes}
    assert (
        "1 cell reaches beyond the 10×10 image and was clipped to it (rectangle '0001-0002')"
        in messages["clipped-cells"]
    )
    assert "rectangle 'far away'" in messages["cells-outside"]
    assert "point 'Count 3'" in messages["not-a-cell"]


# --- GeoJSON: known pixels ----------------------------------------------------------------------------------

_HOLED = [_square(0, 0, 4) + [[0, 0]], _square(1, 1, 2) + [[1, 1]]]  # a 4×4 square with a 2×2 hole: 12 pixels
GEOJSON_CASES = [
    ("polygon-with-hole", _feature(_HOLED), [12], []),
    ("multipolygon-is-one-cell", _feature([[_square(0, 0, 2)], [_square(5, 5, 1)]], multi=True), [5], []),
    (
        "feature-collection",
        {
            "type": "FeatureCollection",
            "features": [_feature([_square(0, 0, 2)]), _feature([_square(4, 4, 3)], "detection")],
        },
        [4, 9],
        [],
    ),
    ("list-of-features", [_feature([_square(0, 0, 2)]), _feature([_square(4, 4, 3)])], [4, 9], []),
    (
        "qupath-cell-uses-its-outline",
        _feature([_square(2, 2, 4)], "cell", nucleusGeometry={"type": "Polygon", "coordinates": [_square(3, 3, 1)]}),
        [16],
        [],
    ),
    (
        "qupath-0.2-legacy-id",
        {"type": "Feature", "id": "PathCellObject", "geometry": {"type": "Polygon", "coordinates": [_square(1, 1, 2)]}},
        [4],
        [],
    ),
    (
        "overlap",
        [_feature([_square(0, 0, 6)], name="big"), _feature([_square(1, 1, 2)], name="small")],
        [32, 4],
        ["overlapping-objects"],
    ),
    (
        "point-and-tile-skipped",
        [
            _feature([_square(0, 0, 2)]),
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]}},
            _feature([_square(4, 4, 4)], "tile"),
        ],
        [4],
        ["not-a-cell"],
    ),
]


@pytest.mark.parametrize("content, pixels, codes", [c[1:] for c in GEOJSON_CASES], ids=[c[0] for c in GEOJSON_CASES])
def test_geojson_polygons_fill_the_pixels_whose_centres_they_hold(tmp_path, content, pixels, codes):
    (tmp_path / "a.geojson").write_text(json.dumps(content))
    labels, notes = labels_from_polygons(read_geojson(tmp_path / "a.geojson"), (10, 10))
    assert _pixels(labels) == pixels
    assert [note.code for note in notes] == codes


# --- bad files ------------------------------------------------------------------------------------------------


def _zip_of(entries):
    def build(path):
        with zipfile.ZipFile(path, "w") as archive:
            for name, payload in entries.items():
                archive.writestr(name, payload)

    return build


BAD_FILES = [
    # (id, file name, how to build it, error class, part of the message)
    ("zip-of-pngs", "a.zip", _zip_of({"mask.png": b"\x89PNG not really"}), RoiFileError, "holds no .roi entries"),
    ("not-a-zip", "a.roi.zip", lambda p: p.write_bytes(b"Rar!\x1a\x07 nope"), RoiFileError, "not a readable zip"),
    ("corrupt-roi", "a.roi", lambda p: p.write_bytes(b"Iout" + bytes(10)), RoiFileError, "not a readable ImageJ ROI"),
    ("corrupt-entry", "a.zip", _zip_of({"0001-0002.roi": b"garbage" * 20}), RoiFileError, "entry '0001-0002.roi'"),
    (
        "points-only",
        "a.zip",
        lambda p: _write_rois(p, [_point(1, 1), _point(2, 2, "b")]),
        RoiFileError,
        "none outlines a cell",
    ),
    ("invalid-json", "a.geojson", lambda p: p.write_text('{"type": "Feature",'), GeoJsonError, "is not valid JSON"),
    (
        "not-geojson",
        "a.json",
        lambda p: p.write_text('{"images": [], "annotations": []}'),
        GeoJsonError,
        "expected a FeatureCollection",
    ),
    (
        "no-polygons",
        "a.geojson",
        lambda p: p.write_text(
            json.dumps({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [3, 3]]}})
        ),
        GeoJsonError,
        "none outlines a cell (linestring 'feature 1'); expected polygons",
    ),
    (
        "bad-coordinates",
        "a.geojson",
        lambda p: p.write_text(json.dumps(_feature([[[0, 0], [1]]], name="c7"))),
        GeoJsonError,
        "feature 'c7' has malformed coordinates",
    ),
    ("not-utf8", "a.geojson", lambda p: p.write_bytes(b"\xff\xfe\x00junk"), GeoJsonError, "is not UTF-8"),
]


@pytest.mark.parametrize("name, build, error, message", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_files_raise_an_error_naming_the_file(tmp_path, name, build, error, message):
    build(tmp_path / name)
    with pytest.raises(error) as raised:
        read_annotations(tmp_path / name)
    assert isinstance(raised.value, AnnotationReadError) and isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(f"{name}: ") and message in str(raised.value)


@pytest.mark.parametrize(
    "mask_name, content, message",
    [
        ("masks/a.geojson", "not json", "is not valid JSON"),
        ("images/a.roi.zip", "not a zip", "is not a readable zip archive"),
    ],
)
def test_the_import_report_names_the_bad_file(tmp_path, settings, mask_name, content, message):
    write_image(tmp_path / "src" / "images" / "a.png", blobs(0)[0])
    (tmp_path / "src" / mask_name).parent.mkdir(exist_ok=True)
    (tmp_path / "src" / mask_name).write_text(content)
    report = check_source(tmp_path / "src", ImportOptions(name="x"), settings)
    [error] = report.errors
    assert (error.code, error.file) == ("unreadable-mask", mask_name) and message in error.message


def test_more_cells_than_a_dataset_mask_holds_is_an_error(tmp_path, settings, monkeypatch):
    write_image(tmp_path / "src" / "a.png", blobs(0, size=256)[0])
    _write_rois(tmp_path / "src" / "a.roi.zip", [_rect(1, 1, 3, 3)])
    too_many = np.arange(1, 256 * 256 + 1, dtype=np.uint32).reshape(256, 256)  # 65,536 one-pixel cells
    monkeypatch.setattr("core.datasets.analyse.labels_from_polygons", lambda cells, shape: (too_many, []))
    [error] = check_source(tmp_path / "src", ImportOptions(name="x"), settings).errors
    assert (error.code, error.file) == ("too-many-cells", "a.roi.zip")
    assert "65,536 cells" in error.message and "at most 65,535" in error.message and "16-bit" in error.message


# --- where the files sit --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, outline",
    [
        ("images/a.png", "images/a.roi.zip"),
        ("a.tif", "a.geojson"),
        ("images/a.png", "masks/a.json"),
        ("images/a.png", "masks/a_RoiSet.zip"),
        ("images/a.png", "masks/RoiSet_a.zip"),
        ("a.png", "a.roi"),
        ("images/a.png", "masks/a.tif.geojson"),
    ],
)
def test_outline_files_pair_with_their_images(tmp_path, image, outline):
    write_image(tmp_path / "src" / image, blobs(0)[0])
    (tmp_path / "src" / outline).parent.mkdir(exist_ok=True)
    (tmp_path / "src" / outline).write_text("{}")  # scanning reads nothing
    scan = scan_source(tmp_path / "src")
    assert [(p.stem, scan.rel(p.masks[0])) for p in scan.pairs] == [("a", outline)]
    assert not scan.findings


def test_plain_json_beside_an_image_is_not_taken_for_its_mask(tmp_path):
    write_image(tmp_path / "src" / "images" / "a.png", blobs(0)[0])
    (tmp_path / "src" / "images" / "a.json").write_text("{}")
    scan = scan_source(tmp_path / "src", images_only=True)
    assert scan.pairs[0].unlabelled
    assert any(f.code == "not-an-image" and "rename it to .geojson" in f.hint for f in scan.findings)


def test_outline_beside_an_image_that_has_a_mask_is_ignored_with_a_warning(tmp_path):
    image, labels = blobs(0)
    write_image(tmp_path / "src" / "images" / "a.png", image)
    write_image(tmp_path / "src" / "masks" / "a.png", labels)
    (tmp_path / "src" / "images" / "a.geojson").write_text("{}")
    scan = scan_source(tmp_path / "src")
    assert scan.pairs[0].masks[0].name == "a.png"
    assert [(f.code, f.file) for f in scan.findings] == [("mask-ignored", "images/a.geojson")]


def test_annotation_stem_matches_the_image_name():
    assert [annotation_stem(n) for n in ("x.roi.zip", "x.zip", "x.roi", "x.geojson", "x.png.json")] == ["x"] * 5


# --- round trip and import ------------------------------------------------------------------------------------


def _as_rois(labels):
    """One ROI per cell: a freehand ROI for a simple outline, a composite one for a cell with holes or pieces."""
    rois = []
    for cell in cell_outlines(labels):
        name = f"cell{cell.label}"
        rings = [ring.astype(int).tolist() for ring in cell.rings]
        rois.append(ImagejRoi.frompoints(cell.outer[0], name=name) if len(rings) == 1 else _composite(rings, name))
    return rois


def _as_geojson(labels):
    return {
        "type": "FeatureCollection",
        "features": [
            _feature([np.vstack([ring, ring[:1]]).tolist() for ring in cell.rings], "detection", f"cell{cell.label}")
            for cell in cell_outlines(labels)
        ],
    }


def test_real_masks_round_trip_through_roi_zips_and_geojson(shared, tmp_path):
    labels = read_image(sorted((shared / "datasets/dsb2018_nuclei/test/masks_instances").glob("*.png"))[0])
    labels[:8, :8] = labels.max() + 1  # and a cell with a hole (ids stay in increasing order)
    labels[3:5, 3:5] = 0
    expected = relabel_sequential(labels.astype(np.int64))[0]
    (tmp_path / "a.geojson").write_text(json.dumps(_as_geojson(labels)))
    for path in (_write_rois(tmp_path / "a.roi.zip", _as_rois(labels)), tmp_path / "a.geojson"):
        read_back, notes = labels_from_polygons(read_annotations(path), labels.shape)
        assert np.array_equal(read_back, expected), path.name
        assert notes == []


def test_import_takes_outlines_beside_images_and_in_masks(tmp_path, settings):
    source, truth = tmp_path / "src", {}
    for stem, seed in (("a", 1), ("b", 2), ("c", 3)):
        image, truth[stem] = blobs(seed)
        write_image(source / "images" / f"{stem}.png", image)
    _write_rois(source / "images" / "a.roi.zip", _as_rois(truth["a"]))
    (source / "masks").mkdir()
    (source / "masks" / "b.geojson").write_text(json.dumps(_as_geojson(truth["b"])))
    write_image(source / "masks" / "c.png", truth["c"])
    result = import_dataset(source, ImportOptions(name="outlined"), settings)
    rows = {row["stem"]: row for row in read_manifest(result.path)["images"]}
    for stem in ("a", "b"):
        instances = read_image(result.path / rows[stem]["instances"])
        assert instances.dtype == np.uint16
        assert np.array_equal(instances, relabel_sequential(truth[stem].astype(np.int64))[0])
        assert rows[stem]["object_count"] == len(np.unique(truth[stem])) - 1
    assert any(
        f.code == "mask-converted" and f.file == "images/a.roi.zip" and "ImageJ ROIs" in f.message
        for f in result.report.findings
    )


def test_records_are_frozen():
    cell = CellPolygon("c", (np.zeros((3, 2)),), "polygon")
    with pytest.raises(AttributeError):
        cell.name = "d"


def test_images_added_with_outlines_beside_them_join_as_truth(tmp_path, settings):
    import_dataset(make_flat(tmp_path / "first", n=3), ImportOptions(name="lab"), settings)
    image, labels = blobs(7)
    write_image(tmp_path / "more" / "new.tif", image)
    (tmp_path / "more" / "new.geojson").write_text(json.dumps(_as_geojson(labels)))
    write_image(tmp_path / "more" / "raw.tif", blobs(8)[0])
    added = add_images(settings, "lab", tmp_path / "more")
    assert added.labels == {"truth": 1, "unlabelled": 1}


def test_an_outline_that_crosses_itself_is_filled_even_odd_and_named():
    from core.interop.annotations import CellPolygon, labels_from_polygons

    bow_tie = CellPolygon("knot", (np.array([[0, 0], [4, 4], [4, 0], [0, 4]], float),), "polygon")
    labels, notes = labels_from_polygons([bow_tie], (4, 4))
    assert labels.any() and [n.code for n in notes] == ["self-crossing"] and "'knot'" in notes[0].message


def test_outlines_touching_themselves_at_a_corner_are_not_crossing():
    from core.interop.annotations import CellPolygon, labels_from_polygons
    from core.interop.geometry import cell_outlines

    [cell] = cell_outlines(np.array([[3, 0], [0, 3]]))  # two pixels meeting diagonally: one cell
    labels, notes = labels_from_polygons([CellPolygon("3", cell.rings, "polygon")], (2, 2))
    assert notes == [] and np.array_equal(labels > 0, np.eye(2, dtype=bool))


def test_most_cells_outside_the_image_suggest_another_unit():
    from core.interop.annotations import CellPolygon, labels_from_polygons

    far = [
        CellPolygon(str(k), (np.array([[100, 100], [104, 100], [104, 104], [100, 104]]) * (k + 1),), "polygon")
        for k in range(3)
    ]
    _, notes = labels_from_polygons(far, (20, 20))
    assert [n.code for n in notes] == ["cells-outside"] and "instead of pixels" in notes[0].message
