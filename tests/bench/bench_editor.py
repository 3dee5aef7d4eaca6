"""Mask editor speed and memory on real images: a 512×512 phase-contrast tile and a 1600×1200 blood slide.

Figures:
- engine: stroke applied → mask saved (history copy, atomic write, log, manifest) → canvas background
  re-rendered, each step and in total; baseline: a plain ``cv2.imwrite`` of the same mask;
- server: one page run after a stroke (AppTest, the page's real code without a browser);
- browser: mouse released → page shows the applied stroke, and Save clicked → "Saved version" shown,
  in chromium against a running dashboard;
- memory: the undo history after 100 strokes; baseline: 100 full copies of the mask.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import read_manifest
from core.io import read_image
from core.masks.drawing import fit_view
from core.masks.editor import apply_drawing
from core.masks.undo import MaskState, UndoHistory
from core.masks.versions import current_version, save_mask
from core.settings import Settings
from tests.bench.common import Results, data_settings, median, timed
from tests.e2e.server import SHARED, DashboardServer, launch_chromium

CANVAS = 640
SOURCES = {
    "512×512": ("phase", SHARED / "datasets" / "usiigaci_phase_contrast"),
    "1600×1200": ("blood-full", SHARED / "datasets" / "blood_cells_fullsize"),
}


def _stroke(window, y_fraction: float) -> dict:
    """A freehand-like horizontal stroke across the middle 60% of the canvas."""
    width, height = window.canvas_size
    y = height * y_fraction
    points = [(width * (0.2 + 0.6 * k / 30), y + 3 * np.sin(k)) for k in range(31)]
    path = [["M", *points[0]]] + [["Q", *points[k - 1], *points[k]] for k in range(1, len(points))]
    return {
        "type": "Path",
        "originX": "center",
        "originY": "center",
        "left": width / 2,
        "top": y,
        "width": width * 0.6,
        "height": 6,
        "scaleX": 1,
        "scaleY": 1,
        "angle": 0,
        "path": path,
    }


def _prepare(workdir: Path) -> Settings:
    settings = data_settings(workdir / "editor-root")
    for name, source in SOURCES.values():
        import_dataset(source, ImportOptions(name=name), settings)
    return settings


def _first_row(settings: Settings, dataset: str) -> dict:
    return sorted(read_manifest(settings.datasets_dir / dataset)["images"], key=lambda r: r["stem"])[0]


def _background_png(display: np.ndarray, mask: np.ndarray, window) -> bytes:
    """What the page sends after a stroke: the editor's own canvas background for this window."""
    from dashboard.editor.canvas import background
    from dashboard.editor.session import EditSession
    from dashboard.mask_style import MaskStyle

    session = EditSession(
        dataset="bench",
        stem="bench",
        dataset_dir=Path("."),
        row={},
        base_version=0,
        state=MaskState(mask),
        display=display,
    )
    return background(session, window, MaskStyle())


def engine(results: Results, settings: Settings, repeat: int) -> None:
    from core.display import to_display_rgb

    for label, (dataset, _) in SOURCES.items():
        folder = settings.datasets_dir / dataset
        row = _first_row(settings, dataset)
        display = to_display_rgb(read_image(folder / row["image"]))
        instances = read_image(folder / row["instances"]) if row.get("instances") else None
        state = MaskState(read_image(folder / row["mask"]), instances)
        window = fit_view(state.binary.shape, CANVAS)
        steps: dict[str, list[float]] = {"apply": [], "save": [], "refresh": [], "total": [], "imwrite": []}
        for k in range(repeat + 1):
            t_apply, edit = timed(lambda: apply_drawing(state, [_stroke(window, 0.3 + 0.05 * k)], window, "add", 6))
            version = current_version(folder, row["stem"])
            t_save, _ = timed(lambda: save_mask(folder, row, edit.state, version, tool="paint"))
            t_refresh, _ = timed(lambda: _background_png(display, edit.state.binary, window))
            with tempfile.TemporaryDirectory() as scratch:
                t_raw, _ = timed(lambda: cv2.imwrite(str(Path(scratch) / "m.png"), edit.state.binary))
            state = edit.state
            if k == 0:
                continue  # the first round warms caches and imports
            for name, value in zip(steps, (t_apply, t_save, t_refresh, t_apply + t_save + t_refresh, t_raw)):
                steps[name].append(value)
        raw = results.add(
            "editor", f"{label}: plain cv2.imwrite of the mask", median(steps["imwrite"]), "s", samples=steps["imwrite"]
        )
        results.add(
            "editor",
            f"{label}: stroke applied to the mask",
            median(steps["apply"]),
            "s",
            samples=steps["apply"],
            note="rasterise at full resolution, update instance ids",
        )
        results.add(
            "editor",
            f"{label}: save (history copy, atomic write, log, manifest)",
            median(steps["save"]),
            "s",
            baseline=raw,
            samples=steps["save"],
        )
        results.add(
            "editor",
            f"{label}: canvas background re-rendered (PNG)",
            median(steps["refresh"]),
            "s",
            samples=steps["refresh"],
        )
        results.add(
            "editor",
            f"{label}: stroke → saved → overlay refreshed",
            median(steps["total"]),
            "s",
            baseline=raw,
            samples=steps["total"],
        )


def undo_memory(results: Results, settings: Settings) -> None:
    folder = settings.datasets_dir / "blood-full"
    row = _first_row(settings, "blood-full")
    state = MaskState(read_image(folder / row["mask"]))
    window = fit_view(state.binary.shape, CANVAS)
    history = UndoHistory()
    rng = np.random.default_rng(0)
    for _ in range(100):
        edit = apply_drawing(
            state,
            [_stroke(window, float(rng.uniform(0.1, 0.9)))],
            window,
            "add" if rng.random() < 0.7 else "erase",
            int(rng.integers(3, 20)),
        )
        history.record(state, edit.state, "paint")
        state = edit.state
    copies = results.add(
        "editor", "undo memory: 100 full copies of a 1600×1200 mask", 100 * state.binary.nbytes / 1024, "KiB"
    )
    results.add(
        "editor", "undo memory: 100 strokes as kept by the editor", history.nbytes / 1024, "KiB", baseline=copies
    )


def server_rerun(results: Results, settings: Settings, repeat: int) -> None:
    """One page run after a stroke arrives, headless (AppTest), on the 1600×1200 slide."""
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.canvas_state import canvas_key, draw

    os.environ["CELLSEG_DATA"] = str(settings.data_root)
    st.cache_resource.clear()
    app = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "pages" / "annotate.py"), default_timeout=120)
    app.query_params.update({"dataset": "blood-full", "stem": _first_row(settings, "blood-full")["stem"]})
    app.run()
    idle = []
    strokes = []
    for k in range(repeat + 1):
        t_idle, _ = timed(app.run)
        window = fit_view(app.session_state["editor-session"].shape, CANVAS)
        t_stroke, _ = timed(lambda: draw(app, canvas_key(app), [_stroke(window, 0.2 + 0.1 * k)]))
        if k:
            idle.append(t_idle)
            strokes.append(t_stroke)
    assert not app.exception, app.exception
    plain = results.add("editor", "server: page run with nothing new (1600×1200)", median(idle), "s", samples=idle)
    results.add(
        "editor",
        "server: page run after a stroke (1600×1200)",
        median(strokes),
        "s",
        baseline=plain,
        samples=strokes,
        note="the stroke's run plus the rerun that shows it",
    )
    st.cache_resource.clear()


def browser_round_trips(results: Results, settings: Settings, workdir: Path, repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.ui import wait_idle

    server = DashboardServer(data_root=settings.data_root, import_roots=(workdir,), log_path=workdir / "editor.log")
    with server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for label, (dataset, _) in SOURCES.items():
            stem = _first_row(settings, dataset)["stem"]
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{server.url}/annotate?dataset={dataset}&stem={stem}")
            status = page.locator("[data-testid=stCaptionContainer]").filter(has_text="ersion")
            applied, saved = [], []
            for k in range(repeat):
                wait_idle(page)
                canvas = page.locator("canvas.upper-canvas").first
                box = canvas.bounding_box()
                y = box["y"] + box["height"] * (0.3 + 0.1 * k)
                page.mouse.move(box["x"] + box["width"] * 0.2, y)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * 0.8, y, steps=20)
                started = time.perf_counter()
                page.mouse.up()
                page.locator("[data-testid=stCaptionContainer]").filter(has_text="Unsaved changes").wait_for()
                applied.append(time.perf_counter() - started)
                wait_idle(page, timeout_s=60)
                expected = current_version(settings.datasets_dir / dataset, stem) + 1
                started = time.perf_counter()
                page.get_by_role("button", name="Save").filter(visible=True).click()
                page.get_by_text(f"Saved version {expected}:").wait_for()
                saved.append(time.perf_counter() - started)
            assert status.count() >= 1
            results.add(
                "editor",
                f"browser {label}: mouse up → stroke shown",
                median(applied),
                "s",
                samples=applied,
                note="includes the canvas component's own send delay",
            )
            results.add(
                "editor", f"browser {label}: Save clicked → saved version shown", median(saved), "s", samples=saved
            )
            page.close()
        browser.close()


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    print("editor: importing a 512×512 and a 1600×1200 dataset", flush=True)
    settings = _prepare(workdir)
    print("editor: engine timings", flush=True)
    engine(results, settings, repeat)
    undo_memory(results, settings)
    print("editor: browser round trips", flush=True)
    browser_round_trips(results, settings, workdir, repeat)
    # last: AppTest opens the catalogue inside this process, after which no server may open it
    print("editor: page run after a stroke (headless)", flush=True)
    server_rerun(results, settings, repeat)
    shutil.rmtree(settings.data_root / "cache", ignore_errors=True)
