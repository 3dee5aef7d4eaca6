"""From canvas drawings to full-resolution mask pixels.

The editor shows a *view window* of the image (the whole image, or a zoomed region)
on a canvas ``scale`` times larger than the window. Drawings come back in canvas
pixels, either as Fabric.js objects (JSON) or as an RGBA raster; both are mapped back
to the image's own pixels here. JSON objects are re-drawn at full resolution with
the brush width in *image* pixels, so the result does not depend on the zoom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from skimage.draw import polygon as draw_polygon

_CURVE_STEPS = 8


@dataclass(frozen=True)
class ViewWindow:
    """A region ``[x0, x0 + width) × [y0, y0 + height)`` of the image shown ``scale``× on the canvas."""

    x0: int
    y0: int
    width: int
    height: int
    scale: float

    @property
    def canvas_size(self) -> tuple[int, int]:
        """(width, height) of the canvas in canvas pixels."""
        return max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale))

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Canvas (x, y) points → image (x, y) points, as floats.

        >>> ViewWindow(100, 50, 64, 64, 4.0).to_image(np.array([[0.0, 0.0], [8.0, 4.0]])).tolist()
        [[100.0, 50.0], [102.0, 51.0]]
        """
        return np.asarray(points, dtype=np.float64) / self.scale + (self.x0, self.y0)

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        """Image (x, y) points → canvas (x, y) points (inverse of :meth:`to_image`)."""
        return (np.asarray(points, dtype=np.float64) - (self.x0, self.y0)) * self.scale


def fit_view(image_shape: tuple[int, int], canvas_max: int) -> ViewWindow:
    """The whole image, scaled so that its longer side is ``canvas_max`` canvas pixels.

    >>> fit_view((256, 320), 640)
    ViewWindow(x0=0, y0=0, width=320, height=256, scale=2.0)
    """
    height, width = image_shape[:2]
    return ViewWindow(0, 0, width, height, canvas_max / max(height, width))


def zoom_view(image_shape: tuple[int, int], centre: tuple[float, float], zoom: float, canvas_max: int) -> ViewWindow:
    """A region around ``centre`` (image x, y) shown at ``zoom`` canvas pixels per image pixel.

    The region is ``canvas_max / zoom`` image pixels wide (less for small images) and is
    shifted, never shrunk, to stay inside the image.

    >>> zoom_view((1200, 1600), (10, 10), 4.0, 800)
    ViewWindow(x0=0, y0=0, width=200, height=200, scale=4.0)
    >>> zoom_view((1200, 1600), (1590, 600), 4.0, 800)
    ViewWindow(x0=1400, y0=500, width=200, height=200, scale=4.0)
    """
    height, width = image_shape[:2]
    side = max(1, int(canvas_max // zoom))
    region_w, region_h = min(side, width), min(side, height)
    x0 = int(min(max(round(centre[0] - region_w / 2), 0), width - region_w))
    y0 = int(min(max(round(centre[1] - region_h / 2), 0), height - region_h))
    return ViewWindow(x0, y0, region_w, region_h, float(zoom))


def _fabric_transform(obj: dict[str, Any], local: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Fabric object coordinates → canvas coordinates (scale, flip, rotation, origin)."""
    scale = np.array(
        [
            obj.get("scaleX", 1.0) * (-1 if obj.get("flipX") else 1),
            obj.get("scaleY", 1.0) * (-1 if obj.get("flipY") else 1),
        ]
    )
    angle = math.radians(obj.get("angle", 0.0) or 0.0)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    width = obj.get("width", 0.0) * abs(scale[0])
    height = obj.get("height", 0.0) * abs(scale[1])
    fractions = {"left": 0.0, "center": 0.5, "right": 1.0, "top": 0.0, "bottom": 1.0}
    origin_dx = (0.5 - fractions.get(obj.get("originX", "left"), 0.0)) * width
    origin_dy = (0.5 - fractions.get(obj.get("originY", "top"), 0.0)) * height
    centre = np.array([obj.get("left", 0.0), obj.get("top", 0.0)]) + rotation @ np.array([origin_dx, origin_dy])
    return ((local - offset) * scale) @ rotation.T + centre


def _path_points(commands: list[list[Any]]) -> list[np.ndarray]:
    """Polylines (one per sub-path) of an SVG-style path with M, L, Q and C commands."""
    polylines: list[list[tuple[float, float]]] = []
    current: tuple[float, float] = (0.0, 0.0)
    for command in commands:
        op, values = command[0].upper(), [float(v) for v in command[1:]]
        if op == "M":
            current = (values[0], values[1])
            polylines.append([current])
        elif op == "L":
            current = (values[0], values[1])
            polylines[-1].append(current)
        elif op in ("Q", "C"):
            controls = [current] + [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
            for t in np.linspace(0, 1, _CURVE_STEPS + 1)[1:]:
                polylines[-1].append(_bezier(controls, float(t)))
            current = controls[-1]
    return [np.array(p, dtype=np.float64) for p in polylines if p]


def _bezier(controls: list[tuple[float, float]], t: float) -> tuple[float, float]:
    points = [np.array(c) for c in controls]
    while len(points) > 1:
        points = [(1 - t) * a + t * b for a, b in zip(points[:-1], points[1:])]
    return float(points[0][0]), float(points[0][1])


def _bbox_centre(points: np.ndarray) -> np.ndarray:
    return (points.min(axis=0) + points.max(axis=0)) / 2


def object_shapes(obj: dict[str, Any]) -> tuple[str, list[np.ndarray]]:
    """What a Fabric object draws, in canvas coordinates: ``("stroke", polylines)``,
    ``("area", polygons)`` or ``("point", [centre])``."""
    kind = obj.get("type", "").lower()
    if kind == "path":
        polylines = _path_points(obj.get("path") or [])
        if not polylines:
            return "stroke", []
        offset = _bbox_centre(np.vstack(polylines))
        return "stroke", [_fabric_transform(obj, p, offset) for p in polylines]
    if kind == "polygon":
        points = np.array([[p["x"], p["y"]] for p in obj.get("points", [])], dtype=np.float64)
        if len(points) < 3:
            return "area", []
        return "area", [_fabric_transform(obj, points, _bbox_centre(points))]
    if kind == "rect":
        w, h = obj.get("width", 0.0), obj.get("height", 0.0)
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        return "area", [_fabric_transform(obj, corners, np.array([w / 2, h / 2]))]
    if kind == "circle":
        radius = obj.get("radius", 0.0)
        if radius <= 5:  # a point-mode dot: its box includes the stroke, so the click is half a stroke further
            size = 2 * radius + obj.get("strokeWidth", 0.0)
            centre = _fabric_transform({**obj, "width": size, "height": size}, np.zeros((1, 2)), np.zeros(2))
            return "point", [centre[0]]
        size = 2 * radius
        centre = _fabric_transform({**obj, "width": size, "height": size}, np.zeros((1, 2)), np.zeros(2))
        angles = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius * obj.get("scaleX", 1.0) + centre[0]
        return "area", [ring]
    if kind == "line":
        ends = np.array([[obj.get("x1", 0.0), obj.get("y1", 0.0)], [obj.get("x2", 0.0), obj.get("y2", 0.0)]])
        return "stroke", [_fabric_transform(obj, ends, np.zeros(2))]
    return "unknown", []


def objects_to_layer(
    objects: list[dict[str, Any]], window: ViewWindow, image_shape: tuple[int, int], brush_px: int
) -> np.ndarray:
    """Rasterise canvas objects into a boolean image-sized layer.

    Strokes are drawn ``brush_px`` image pixels wide whatever the zoom; closed shapes
    (polygons, rectangles, circles) are filled. Canvas pixel (u, v) covers image
    position ``window.to_image(u, v) - 0.5`` in pixel-centre coordinates.

    Examples
    --------
    >>> rect = {"type": "Rect", "left": 8, "top": 8, "width": 8, "height": 4, "originX": "left", "originY": "top"}
    >>> layer = objects_to_layer([rect], ViewWindow(0, 0, 8, 8, 4.0), (8, 8), 1)
    >>> np.argwhere(layer).min(axis=0).tolist(), np.argwhere(layer).max(axis=0).tolist()
    ([2, 2], [2, 3])
    """
    layer = np.zeros(image_shape[:2], np.uint8)
    for obj in objects:
        kind, shapes = object_shapes(obj)
        for shape in shapes:
            points = window.to_image(np.atleast_2d(shape)) - 0.5
            if kind == "area":  # pixels whose centre lies inside the shape
                rows, cols = draw_polygon(points[:, 1], points[:, 0], shape=layer.shape)
                layer[rows, cols] = 1
            elif kind in ("stroke", "point"):
                _stroke(layer, points, max(1, brush_px) / 2)
    return layer.astype(bool)


def _stroke(layer: np.ndarray, points: np.ndarray, radius: float) -> None:
    """Set every pixel whose centre lies within ``radius`` of the polyline (a single point: a disc)."""
    segments = zip(points[:-1], points[1:]) if len(points) > 1 else [(points[0], points[0])]
    height, width = layer.shape
    for start, end in segments:
        low = np.maximum(np.floor(np.minimum(start, end) - radius), 0).astype(int)
        high = np.minimum(np.ceil(np.maximum(start, end) + radius), [width - 1, height - 1]).astype(int)
        if (high < low).any():
            continue
        xs, ys = np.meshgrid(np.arange(low[0], high[0] + 1), np.arange(low[1], high[1] + 1))
        direction = end - start
        length2 = float(direction @ direction)
        t = (
            np.zeros_like(xs, dtype=np.float64)
            if length2 == 0
            else np.clip(((xs - start[0]) * direction[0] + (ys - start[1]) * direction[1]) / length2, 0, 1)
        )
        distance2 = (xs - start[0] - t * direction[0]) ** 2 + (ys - start[1] - t * direction[1]) ** 2
        layer[low[1] : high[1] + 1, low[0] : high[0] + 1] |= (distance2 <= radius * radius + 1e-9).astype(np.uint8)


def raster_to_layer(rgba: np.ndarray, window: ViewWindow, image_shape: tuple[int, int]) -> np.ndarray:
    """A canvas raster (drawn where alpha > 0) → boolean image-sized layer.

    Each image pixel of the window is on when at least half of the canvas pixels
    that show it are drawn.

    >>> canvas = np.zeros((8, 8, 4), np.uint8); canvas[:4, :4, 3] = 255
    >>> raster_to_layer(canvas, ViewWindow(1, 1, 2, 2, 4.0), (4, 4)).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    drawn = (rgba[..., 3] > 0).astype(np.float32)
    coverage = cv2.resize(drawn, (window.width, window.height), interpolation=cv2.INTER_AREA)
    layer = np.zeros(image_shape[:2], bool)
    layer[window.y0 : window.y0 + window.height, window.x0 : window.x0 + window.width] = coverage >= 0.5
    return layer


def click_positions(objects: list[dict[str, Any]], window: ViewWindow) -> list[tuple[int, int]]:
    """Image (x, y) pixels clicked in point mode (Fabric circles), in drawing order."""
    positions = []
    for obj in objects:
        kind, shapes = object_shapes(obj)
        if kind == "point" and shapes:
            x, y = np.floor(window.to_image(np.atleast_2d(shapes[0]))[0])  # the pixel containing the click
            positions.append((int(x), int(y)))
    return positions
