"""Canvas drawings → image pixels: Fabric objects as the canvas sends them, views and zoom round trips."""

import numpy as np
import pytest

from core.masks.drawing import ViewWindow, click_positions, fit_view, objects_to_layer, raster_to_layer, zoom_view

# Objects as streamlit-drawable-canvas 0.13 (Fabric 7) sends them, trimmed to the keys that matter.
FREEDRAW = {
    "type": "Path",
    "originX": "center",
    "originY": "center",
    "left": 14,
    "top": 6,
    "width": 16,
    "height": 0,
    "scaleX": 1,
    "scaleY": 1,
    "angle": 0,
    "strokeWidth": 4,
    "path": [["M", 6, 6], ["Q", 6, 6, 10, 6], ["L", 22, 6]],
}
POLYGON = {
    "type": "Polygon",
    "originX": "center",
    "originY": "center",
    "left": 8,
    "top": 8,
    "width": 8,
    "height": 8,
    "scaleX": 1,
    "scaleY": 1,
    "angle": 0,
    "points": [{"x": 4, "y": 4}, {"x": 12, "y": 4}, {"x": 12, "y": 12}, {"x": 4, "y": 12}],
}
RECT = {
    "type": "Rect",
    "originX": "left",
    "originY": "top",
    "left": 0,
    "top": 0,
    "width": 8,
    "height": 4,
    "scaleX": 1,
    "scaleY": 1,
    "angle": 0,
}
POINT = {
    "type": "Circle",
    "originX": "left",
    "originY": "center",
    "left": 5,
    "top": 10,
    "radius": 3,
    "strokeWidth": 8,
    "width": 6,
    "height": 6,
    "scaleX": 1,
    "scaleY": 1,
    "angle": 0,
}


def pixels(layer):
    return sorted(map(tuple, np.argwhere(layer).tolist()))


@pytest.mark.parametrize(
    "objects, window, brush, expected",
    [
        # A 4×4 canvas square at scale 1 fills exactly image pixels 4..11 × 4..11.
        ([POLYGON], ViewWindow(0, 0, 16, 16, 1.0), 1, [(r, c) for r in range(4, 12) for c in range(4, 12)]),
        # The same square at scale 4 covers image pixels 1..2 (8 canvas px = 2 image px).
        ([POLYGON], ViewWindow(0, 0, 4, 4, 4.0), 1, [(1, 1), (1, 2), (2, 1), (2, 2)]),
        # …and in a zoomed window whose origin is (10, 20) it lands at rows 21..22, columns 11..12.
        ([POLYGON], ViewWindow(10, 20, 4, 4, 4.0), 1, [(21, 11), (21, 12), (22, 11), (22, 12)]),
        ([RECT], ViewWindow(0, 0, 8, 8, 4.0), 1, [(0, 0), (0, 1)]),
        # A horizontal stroke along canvas y = 6 (image row 1 at scale 4) from x 6 to 22 (image columns 1..5).
        ([FREEDRAW], ViewWindow(0, 0, 8, 8, 4.0), 1, [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]),
    ],
)
def test_objects_land_on_the_right_image_pixels(objects, window, brush, expected):
    assert pixels(objects_to_layer(objects, window, (30, 30), brush)) == expected


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_brush_width_is_in_image_pixels_whatever_the_zoom(scale):
    stroke = {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "path": [["M", 0, 20 * scale], ["L", 40 * scale, 20 * scale]],
    }
    stroke.update(left=20 * scale, top=20 * scale, width=40 * scale, height=0)
    layer = objects_to_layer([stroke], ViewWindow(0, 0, 64, 64, scale), (64, 64), brush_px=5)
    column = layer[:, 20]
    assert column.sum() in (5, 6), f"stroke is {column.sum()} px thick at zoom {scale}"


def test_moved_object_is_drawn_where_it_was_moved():
    moved = dict(POLYGON, left=POLYGON["left"] + 8)  # dragged 8 canvas px to the right in edit mode
    assert pixels(objects_to_layer([moved], ViewWindow(0, 0, 16, 16, 1.0), (16, 16), 1)) == [
        (r, c) for r in range(4, 12) for c in range(12, 16)
    ]


def test_click_in_point_mode_gives_the_image_pixel():
    # The canvas reports the dot's left edge (centre − radius − stroke/2): left 5 → centre x 12.
    assert click_positions([POINT], ViewWindow(100, 200, 50, 50, 4.0)) == [(103, 202)]


@pytest.mark.parametrize(
    "window", [ViewWindow(0, 0, 64, 48, 2.5), ViewWindow(37, 11, 20, 20, 8.0), ViewWindow(5, 5, 300, 200, 0.4)]
)
def test_canvas_image_round_trip(window):
    points = np.array([[0.0, 0.0], [13.25, 7.5], [window.width, window.height]]) + (window.x0, window.y0)
    np.testing.assert_allclose(window.to_image(window.to_canvas(points)), points)


def test_zoom_window_stays_inside_the_image():
    window = zoom_view((1200, 1600), (1599, 1199), 2.0, 800)
    assert (window.x0 + window.width, window.y0 + window.height) == (1600, 1200)
    assert window.canvas_size == (800, 800)


def test_small_image_is_never_cut():
    window = zoom_view((40, 60), (30, 20), 4.0, 800)
    assert (window.x0, window.y0, window.width, window.height) == (0, 0, 60, 40)


def test_fit_view_keeps_aspect_ratio():
    assert fit_view((1200, 1600), 800).canvas_size == (800, 600)


def test_raster_and_objects_agree_for_an_axis_aligned_rectangle():
    window = ViewWindow(3, 2, 10, 10, 4.0)
    canvas = np.zeros((40, 40, 4), np.uint8)
    canvas[8:20, 4:24, 3] = 255  # canvas rows 8..19, columns 4..23
    rect = {"type": "Rect", "originX": "left", "originY": "top", "left": 4, "top": 8, "width": 20, "height": 12}
    from_raster = raster_to_layer(canvas, window, (20, 20))
    from_objects = objects_to_layer([rect], window, (20, 20), 1)
    assert pixels(from_raster) == pixels(from_objects)
