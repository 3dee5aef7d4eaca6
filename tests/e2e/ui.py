"""Waiting for and checking the Streamlit page in the browser, shared by the browser tests."""

from __future__ import annotations

import re
import time


def wait_idle(page, timeout_s: float = 60.0) -> None:
    """Wait until the script run that the last interaction started has finished.

    While the script runs, Streamlit marks the previous run's elements ``data-stale="true"`` and, after
    500 ms, shows a "Running..." icon; both can appear a moment after the interaction, so they must stay
    absent for a short quiet period, not just once.
    """
    running = page.locator("[data-testid=stStatusWidgetRunningIcon], [data-testid=stElementContainer][data-stale=true]")
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if running.count():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            return
        page.wait_for_timeout(100)
    raise TimeoutError(f"the dashboard was still running its script after {timeout_s:.0f} s")


def no_exception(page) -> None:
    shown = page.locator("[data-testid=stException]")
    assert shown.count() == 0, f"the page shows an exception:\n{shown.first.inner_text()}"


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the visible selectbox called ``label``."""
    page.get_by_role("combobox", name=label, exact=True).filter(visible=True).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def slider_to_smallest(page, label: str) -> None:
    """Move the visible (select-)slider with this label to its first value, with the keyboard."""
    slider = page.locator("[data-testid=stSlider]").filter(has_text=label).filter(visible=True).first
    thumb = slider.locator("input").first
    thumb.focus()
    thumb.press("Home")
    wait_idle(page)


def drawing_canvas(page, timeout_ms: float = 60_000):
    """The mask editor's drawing surface (the canvas that takes the mouse)."""
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=timeout_ms)
    return canvas


def drag(page, canvas, points) -> None:
    """A mouse drag through ``points`` (canvas pixels)."""
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
    page.mouse.up()


def watch_console(page) -> list[str]:
    """A list that fills with the page's console errors, failed requests and HTTP answers of 400 and up."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"console: {message.text[:300]} ({page.url})"),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {str(error)[:300]} ({page.url})"))
    # a request the browser itself abandons (a navigation away, an image replaced) is not an error
    page.on(
        "requestfailed",
        lambda request: (
            "ERR_ABORTED" not in (request.failure or "")
            and problems.append(f"request failed: {request.url[:200]} ({request.failure})")
        ),
    )
    page.on(
        "response",
        lambda response: response.status >= 400 and problems.append(f"HTTP {response.status}: {response.url[:200]}"),
    )
    return problems


def metric_value(page, label: str, showing: str | re.Pattern | None = None):
    """The value box of the metric labelled ``label``; with ``showing``, the one whose value is that text (or
    matches that pattern).

    While a polling fragment is redrawn, the browser can hold the previous copy of a metric beside the new one for
    a moment, so a check waits for *a* copy showing the expected value instead of demanding exactly one copy.
    """
    values = page.locator("[data-testid=stMetric]").filter(has_text=label).locator("[data-testid=stMetricValue]")
    if showing is None:
        return values.last
    pattern = showing if isinstance(showing, re.Pattern) else re.compile(rf"^{re.escape(showing)}$")
    return values.filter(has_text=pattern).first
