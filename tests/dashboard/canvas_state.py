"""Injecting a drawing into streamlit-drawable-canvas under AppTest.

AppTest cannot draw on the canvas (it is an unknown element to it). The component keeps
its value in session state under its key as ``{"drawing": {"raw": {...}, "data": ...}}``;
setting that and rerunning is what a finished stroke looks like to the page. This relies
on the component's private state layout, so it lives here and nowhere else.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def canvas_key(app: AppTest) -> str:
    """The key of the editor canvas currently shown (it changes after every applied drawing)."""
    session = app.session_state["editor-session"]
    return f"canvas-{session.dataset}-{session.stem}-{session.nonce}"


def draw(app: AppTest, key: str, objects: list[dict]) -> AppTest:
    """Pretend the canvas ``key`` sent ``objects`` (Fabric JSON) and rerun the page."""
    app.session_state[key] = {
        "drawing": {"raw": {"version": "7.4.0", "objects": objects}, "data": None},
        "backgroundFit": None,
    }
    return app.run()


def rect(left: float, top: float, width: float, height: float) -> dict:
    return {
        "type": "Rect",
        "originX": "left",
        "originY": "top",
        "left": left,
        "top": top,
        "width": width,
        "height": height,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "strokeWidth": 1,
    }


def stroke(points: list[tuple[float, float]], width: float = 4) -> dict:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    path = [["M", *points[0]]] + [["L", *p] for p in points[1:]]
    return {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "left": (min(xs) + max(xs)) / 2,
        "top": (min(ys) + max(ys)) / 2,
        "width": max(xs) - min(xs),
        "height": max(ys) - min(ys),
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "strokeWidth": width,
        "path": path,
    }


def click(x: float, y: float) -> dict:
    """A point-mode dot at canvas (x, y), as the component reports it (radius 4, stroke 1)."""
    return {
        "type": "Circle",
        "originX": "left",
        "originY": "center",
        "left": x - 4 - 0.5,
        "top": y,
        "radius": 4,
        "strokeWidth": 1,
        "width": 8,
        "height": 8,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
    }
