"""Browser tests: a real dashboard server per test and one Debian chromium per session.

Every test here drives the real dashboard (``streamlit run dashboard/serve.py``) on a free port, with its
own temporary ``CELLSEG_DATA`` (the shipped sample is imported on first start), through Playwright.
They skip only when no chromium exists at ``/usr/bin/chromium`` (or ``$CELLSEG_CHROMIUM``);
on CI (``CI`` set) a missing browser is a failure instead, since CI installs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.server import CHROMIUM, DashboardServer, launch_chromium
from tests.e2e.ui import watch_console

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (fixtures check it), and add the server log to failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    server = getattr(item, "funcargs", {}).get("dashboard")
    if report.failed and isinstance(server, DashboardServer):
        report.sections.append((f"dashboard log tail ({server.log_path})", server.log_tail()))
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``tests/e2e/artifacts/`` (git-ignored): screenshots and logs of browser tests."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, with the flags this project needs; never `playwright install`."""
    if not CHROMIUM.exists():
        reason = f"chromium not found at {CHROMIUM} (apt-get install chromium, or set CELLSEG_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is expected to install it", pytrace=False)
        pytest.skip(reason)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -r requirements-test.txt)"
    )
    with sync_api.sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest, artifacts: Path):
    """A fresh browser context and page (1400×1000); on failure a screenshot goes to the artifacts.

    Every console error, failed request and HTTP error answer the page sees is recorded; a test that
    passes with any of them fails at teardown (the dashboard must work offline and without errors),
    unless it is marked ``allow_console_errors`` (it breaks the server on purpose).
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    new_page = context.new_page()
    problems = watch_console(new_page)
    yield new_page
    if _failed(request):
        try:
            new_page.screenshot(path=str(artifacts / f"{request.node.name}-failure.png"), full_page=True)
        except Exception as exc:  # the page may be gone; the log tail matters more
            print(f"(no failure screenshot: {exc})")
    context.close()
    if problems and not _failed(request) and request.node.get_closest_marker("allow_console_errors") is None:
        pytest.fail(
            f"{len(problems)} console error(s) or failed request(s):\n" + "\n".join(problems[:20]), pytrace=False
        )


@pytest.fixture
def dashboard(browser, tmp_path: Path, request: pytest.FixtureRequest):
    """The dashboard running on a free port; yields the :class:`DashboardServer` (``url``, ``data_root``).

    ``data_root`` is a fresh temporary ``CELLSEG_DATA``; ``import_roots`` (``CELLSEG_IMPORT_ROOTS``) is
    ``tmp_path/imports``, where a test may put folders for server-folder imports. Depends on ``browser``
    so that a missing chromium skips before a server is started. The server log tail is printed when
    the test failed.
    """
    imports = tmp_path / "imports"
    imports.mkdir()
    server = DashboardServer(data_root=tmp_path / "data", import_roots=(imports,), log_path=tmp_path / "server.log")
    server.start()
    yield server
    server.stop()
    if _failed(request):  # also shown in the failure report (see pytest_runtest_makereport)
        print(f"\n----- dashboard log tail ({server.log_path}) -----\n{server.log_tail()}\n-----")
