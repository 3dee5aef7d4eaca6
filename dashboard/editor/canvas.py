"""The drawing canvas of the mask editor, its zoom, and the minimap used to move around big images.

The canvas shows the current view window of the image with the working mask baked
into its background. Each drawing is applied to the mask as soon as it arrives and
the canvas is remounted empty (a new key), so what you see is always the mask itself.
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import streamlit as st

from core.display import fit_within
from core.io import encode_png
from core.masks.drawing import ViewWindow, click_positions, fit_view, zoom_view
from core.masks.editor import apply_drawing
from core.masks.pixels import MASK_COLOURS, overlay
from dashboard.editor.session import EditSession, current
from dashboard.mask_style import MaskStyle

PREDICTION_COLOUR = MASK_COLOURS["cyan"]  # cyan outline of a model's prediction; yellow when the mask itself is cyan
PREDICTION_COLOUR_ON_CYAN = MASK_COLOURS["yellow"]

CANVAS_SIDES = (512, 640, 800, 1024)
MINIMAP_SIDE = 220
MAGNIFICATIONS = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Tool:
    label: str
    drawing_mode: str
    action: str
    help: str


TOOLS = {
    "paint": Tool("Paint", "freedraw", "add", "Draw cells in with a round brush."),
    "erase": Tool("Erase", "freedraw", "erase", "Rub mask pixels out with a round brush."),
    "polygon_fill": Tool(
        "Polygon fill",
        "polygon",
        "add",
        "Click the outline of a cell point by point; click the first point again to fill it.",
    ),
    "polygon_erase": Tool("Polygon erase", "polygon", "erase", "Outline an area point by point to clear it."),
    "rect_fill": Tool("Rectangle fill", "rect", "add", "Drag a box to fill it."),
    "rect_erase": Tool("Rectangle erase", "rect", "erase", "Drag a box to clear it."),
    "delete": Tool(
        "Delete object",
        "point",
        "delete",
        "Click inside a cell to remove that whole cell (its instance when ids exist).",
    ),
}
_STROKE = {"add": "rgba(255, 64, 160, 0.55)", "erase": "rgba(0, 200, 255, 0.6)", "delete": "rgba(255, 200, 0, 1)"}


# The canvas component has its own floating toolbar (undo, redo, reset, edit). Here every drawing is applied
# to the mask at once and the canvas starts empty again, so those buttons would do nothing (and the bar
# covers the caption): it is hidden with a style put inside each canvas's shadow root, as canvases appear.
_HIDE_TOOLBAR_JS = """<script>
if (!window.cellsegToolbarHider) {
  const hide = () => document.querySelectorAll("[data-testid=stBidiComponentIsolated]").forEach((host) => {
    const root = host.shadowRoot;  // its content may arrive later: the style only matches the canvas toolbar
    if (root && !root.querySelector("style[data-cellseg]")) {
      const style = document.createElement("style");
      style.dataset.cellseg = "toolbar";
      style.textContent = ".dc-toolbar { display: none !important; }";
      root.appendChild(style);
    }
  });
  let queued = false;
  window.cellsegToolbarHider = new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; hide(); }); }
  });
  window.cellsegToolbarHider.observe(document.body, { childList: true, subtree: true });
  hide();
}
</script>"""


def hide_canvas_toolbar() -> None:
    """Hide the canvas component's own toolbar on this page (see ``_HIDE_TOOLBAR_JS``)."""
    with st.sidebar:
        st.html(_HIDE_TOOLBAR_JS, unsafe_allow_javascript=True)


def zoom_choices(shape: tuple[int, int], canvas_side: int) -> list[str]:
    """'fit' plus the magnifications that show more detail than fitting the whole image."""
    fit_scale = canvas_side / max(shape)
    return ["fit"] + [f"{m}×" for m in MAGNIFICATIONS if m > fit_scale * 1.05]


def view_window(session: EditSession) -> ViewWindow:
    if session.zoom == "fit" or session.zoom not in zoom_choices(session.shape, session.canvas_side):
        return fit_view(session.shape, session.canvas_side)
    return zoom_view(session.shape, session.centre, float(session.zoom.rstrip("×")), session.canvas_side)


NEIGHBOUR_COLOUR = (235, 235, 235)


def _fingerprint(mask: np.ndarray | None) -> str | None:
    return None if mask is None else hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=8).hexdigest()


def background(
    session: EditSession,
    window: ViewWindow,
    style: MaskStyle,
    prediction: np.ndarray | None = None,
    heat: np.ndarray | None = None,
    neighbours: np.ndarray | None = None,
) -> bytes:
    """The canvas background as PNG bytes: the window of the image at canvas size, the mask drawn on it,
    and (when given) a model's predicted mask outlined on top and its doubt (0–1 per pixel) as a heat map.

    Remembered per tab until the mask, the view, the style or the prediction changes, so reruns that
    change nothing else (a review mark, a slider elsewhere) cost nothing here.
    """
    key = (
        session.nonce,
        window,
        style,
        None if prediction is None else id(prediction),
        None if heat is None else id(heat),
        _fingerprint(neighbours),
    )
    if session.background_key == key:
        return session.background_png
    region = (slice(window.y0, window.y0 + window.height), slice(window.x0, window.x0 + window.width))
    size = window.canvas_size
    enlarge = window.scale >= 1
    thickness = max(1, round(window.scale / 2)) if enlarge else 1
    picture = cv2.resize(session.display[region], size, interpolation=cv2.INTER_NEAREST if enlarge else cv2.INTER_AREA)
    style = replace(style, colour=style.colour_for(session.display))  # one colour for the whole image
    if neighbours is not None:  # the cells one frame before and after, faint, under this frame's mask
        near = cv2.resize(neighbours[region].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        picture = overlay(picture, near, opacity=0.55, mode="contour", colour=NEIGHBOUR_COLOUR, thickness=thickness)
    if style.show:
        mask = cv2.resize(session.state.binary[region], size, interpolation=cv2.INTER_NEAREST)
        picture = style.draw(picture, mask, thickness=thickness)
    if heat is not None:
        picture = _heat_overlay(
            picture, cv2.resize(heat[region].astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        )
    if prediction is not None:
        predicted = cv2.resize(prediction[region].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
        colour = PREDICTION_COLOUR_ON_CYAN if style.colour == PREDICTION_COLOUR else PREDICTION_COLOUR
        picture = overlay(picture, predicted, opacity=1.0, mode="contour", colour=colour, thickness=thickness + 1)
    session.background_key, session.background_png = key, encode_png(picture)
    return session.background_png


def _heat_overlay(picture: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Blend a warm colour map of ``heat`` (0–1) over the picture, stronger where the heat is higher.

    >>> out = _heat_overlay(np.zeros((1, 2, 3), np.uint8), np.array([[0.0, 1.0]], np.float32))
    >>> out[0, 0].tolist(), bool(out[0, 1].any())
    ([0, 0, 0], True)
    """
    colours = cv2.cvtColor(
        cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB
    )
    weight = (0.65 * np.clip(heat, 0, 1))[..., None]
    return (picture.astype(np.float32) * (1 - weight) + colours.astype(np.float32) * weight + 0.5).astype(np.uint8)


def _objects(canvas_key: str) -> list[dict[str, Any]]:
    """The objects the canvas component holds in session state (empty if none yet)."""
    state = st.session_state.get(canvas_key)
    drawing = state.get("drawing") if hasattr(state, "get") else None
    raw = drawing.get("raw") if hasattr(drawing, "get") else None
    return list(raw.get("objects") or []) if hasattr(raw, "get") else []


def _apply_canvas(canvas_key: str, tool_name: str, brush_px: int) -> bool:
    """Apply what the canvas holds to the open mask; True when something was applied."""
    session = current()
    objects = _objects(canvas_key)
    if session is None or not objects:
        return False
    tool = TOOLS[tool_name]
    session.apply(apply_drawing(session.state, objects, view_window(session), tool.action, brush_px), tool_name)
    return True


def draw_canvas(
    session: EditSession,
    tool_name: str,
    brush_px: int,
    style: MaskStyle,
    prediction: np.ndarray | None = None,
    heat: np.ndarray | None = None,
    editing: bool = True,
    neighbours: np.ndarray | None = None,
) -> None:
    """Show the canvas (with ``prediction`` outlined, when given); a finished drawing is applied by the
    change callback before the next run. Without ``editing``, the same view as a picture: nothing to draw on."""
    from streamlit_drawable_canvas import st_canvas  # only importable under a running Streamlit

    window = view_window(session)
    if not editing:
        st.caption(
            f"Showing x {window.x0}–{window.x0 + window.width}, y {window.y0}–{window.y0 + window.height} "
            f"of {session.shape[1]}×{session.shape[0]} px at {window.scale:.2g}×"
        )
        st.image(background(session, window, style, prediction, heat, neighbours), width=window.canvas_size[0])
        return
    width, height = window.canvas_size
    tool = TOOLS[tool_name]
    key = f"canvas-{session.dataset}-{session.stem}-{session.nonce}"
    hide_canvas_toolbar()
    st.caption(
        f"{tool.label}: {tool.help} · showing x {window.x0}–{window.x0 + window.width}, "
        f"y {window.y0}–{window.y0 + window.height} of {session.shape[1]}×{session.shape[0]} px at "
        f"{window.scale:.2g}× · brush {brush_px} px"
    )
    st_canvas(
        background_image=background(session, window, style, prediction, heat, neighbours),
        width=width,
        height=height,
        drawing_mode=tool.drawing_mode,
        stroke_width=max(1, round(brush_px * window.scale)),
        stroke_color=_STROKE[tool.action],
        fill_color=_STROKE[tool.action],
        point_display_radius=4,
        update_streamlit=True,
        key=key,
        on_change=lambda: _apply_canvas(key, tool_name, brush_px),
    )
    if _apply_canvas(key, tool_name, brush_px):  # no change callback ran (e.g. headless tests): apply now
        st.rerun()


def _minimap_picture(session: EditSession, window: ViewWindow) -> tuple[np.ndarray, float]:
    small = fit_within(session.display, MINIMAP_SIDE)
    factor = small.shape[1] / session.shape[1]
    picture = overlay(small, fit_within(session.state.binary, MINIMAP_SIDE, nearest=True), opacity=0.35)
    top_left = (int(window.x0 * factor), int(window.y0 * factor))
    bottom_right = (int((window.x0 + window.width) * factor) - 1, int((window.y0 + window.height) * factor) - 1)
    cv2.rectangle(picture, top_left, bottom_right, (255, 230, 0), 2)
    return picture, factor


def _on_minimap(key: str, factor: float) -> None:
    session = current()
    clicks = click_positions(_objects(key), ViewWindow(0, 0, MINIMAP_SIDE, MINIMAP_SIDE, 1.0))
    if session is not None and clicks:
        x, y = clicks[-1]
        session.centre = (x / factor, y / factor)
        st.session_state["minimap-nonce"] = st.session_state.get("minimap-nonce", 0) + 1


def _pan(dx: float, dy: float) -> None:
    session = current()
    if session is not None:
        window = view_window(session)
        x, y = window.x0 + window.width / 2, window.y0 + window.height / 2
        session.centre = (x + dx * window.width / 2, y + dy * window.height / 2)


def minimap(session: EditSession) -> None:
    """Where the zoomed view is: click the minimap to move there, or step with the arrows."""
    from streamlit_drawable_canvas import st_canvas

    window = view_window(session)
    if window.width >= session.shape[1] and window.height >= session.shape[0]:
        return
    picture, factor = _minimap_picture(session, window)
    key = f"minimap-{session.dataset}-{session.stem}-{st.session_state.get('minimap-nonce', 0)}"
    st.caption("Click the map to move the zoomed view")
    st_canvas(
        background_image=encode_png(picture),
        width=picture.shape[1],
        height=picture.shape[0],
        drawing_mode="point",
        point_display_radius=3,
        stroke_width=1,
        stroke_color="#ffe600",
        fill_color="#ffe600",
        key=key,
        on_change=lambda: _on_minimap(key, factor),
    )
    left, up, down, right = st.columns(4)
    left.button("←", key="pan-left", on_click=_pan, args=(-1, 0), help="Move the view left", width="stretch")
    up.button("↑", key="pan-up", on_click=_pan, args=(0, -1), help="Move the view up", width="stretch")
    down.button("↓", key="pan-down", on_click=_pan, args=(0, 1), help="Move the view down", width="stretch")
    right.button("→", key="pan-right", on_click=_pan, args=(1, 0), help="Move the view right", width="stretch")
