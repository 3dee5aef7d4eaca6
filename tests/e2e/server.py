"""Start the real dashboard (``streamlit run dashboard/serve.py``, as ``make run`` does) as a subprocess, for browser
tests and benchmarks.

Shared by ``tests/e2e/conftest.py`` and ``tests/bench``; nothing here imports Playwright, so the
module is cheap to import (pytest's ``--doctest-modules`` imports it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
SHARED = (REPO.parent / "shared").resolve()
CHROMIUM = Path(os.environ.get("CELLSEG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 60.0


def entry_point() -> Path:
    """The script to run: ``$CELLSEG_APP``, else ``dashboard/serve.py`` (the server ``make run`` starts)."""
    if os.environ.get("CELLSEG_APP"):
        return Path(os.environ["CELLSEG_APP"]).resolve()
    for candidate in (REPO / "dashboard" / "serve.py", REPO / "dashboard" / "app.py"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no dashboard entry point (dashboard/serve.py or dashboard/app.py) in {REPO}")


# JavaScript predicates for page.wait_for_function: thumbnails of the grid (st.image in the main area,
# outside the modal dialog) that the browser has fully decoded.
GRID_IMAGES_JS = "[...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')]"
GRID_PAINTED_JS = (
    f"n => {{ const imgs = {GRID_IMAGES_JS}; "
    "return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }"
)


def free_port() -> int:
    """A TCP port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DashboardServer:
    """A running dashboard (``streamlit run <entry point>``) with its own data root; a context manager."""

    data_root: Path
    import_roots: tuple[Path, ...]
    log_path: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    started_at: float = 0.0  # time.perf_counter() just before the process was launched
    healthy_after_s: float = 0.0  # launch -> /_stcore/health answered "ok"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> "DashboardServer":
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # the checkout's own `core` and `dashboard` come first on the import path, whatever is installed
        python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {
            **os.environ,
            "CELLSEG_DATA": str(self.data_root),
            "CELLSEG_IMPORT_ROOTS": os.pathsep.join(str(p) for p in self.import_roots),
            "PYTHONPATH": python_path,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(entry_point()),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(self.port),
            "--server.headless",
            "true",
        ]
        log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        # own process group, so that teardown can stop the server and anything it started
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.healthy_after_s = time.perf_counter() - self.started_at
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"dashboard exited with code {self.process.returncode} before it answered; log:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200 and answer.read().strip() == b"ok":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"dashboard did not answer {self.url}/_stcore/health within {timeout:.0f} s; log:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL after ``grace`` seconds)."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> "DashboardServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (``pid`` alone when it is gone).

    >>> process_tree(os.getpid())[0] == os.getpid()
    True
    """
    try:
        return [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return [pid]


def _processes(pid: int, children: bool = True) -> list[psutil.Process]:
    """``pid`` (and its descendants when ``children``) as processes; those already gone are left out."""
    found = []
    for current in process_tree(pid) if children else [pid]:
        try:
            found.append(psutil.Process(current))
        except psutil.NoSuchProcess:
            continue
    return found


def rss_bytes(pid: int, children: bool = True) -> int:
    """Resident memory (VmRSS) of ``pid``, plus its descendants when ``children``.

    >>> rss_bytes(os.getpid(), children=False) > 0
    True
    """
    total = 0
    for process in _processes(pid, children):
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # ended meanwhile, or another user's: not counted
            continue
    return total


def mapped_libraries(pid: int, needle: str) -> list[str]:
    """Files mapped into ``pid`` (or its descendants) whose path contains ``needle``, e.g. ``tensorflow``."""
    hits = set()
    for process in _processes(pid):
        try:
            hits.update(region.path for region in process.memory_maps(grouped=True) if needle in region.path)
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # ended meanwhile, or another user's: not counted
            continue
    return sorted(hits)


def launch_chromium(playwright):
    """Debian's chromium with the flags this project's sandboxes and CI need (never `playwright install`)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def full_page_screenshot(page, path: Path) -> Path:
    """A screenshot of everything in the page.

    Streamlit scrolls inside its main container, so Playwright's ``full_page`` alone only captures the
    viewport; the viewport is stretched to the content's height for the shot and restored after.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(document.documentElement.scrollHeight, "
        "...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]')]"
        ".map(e => e.scrollHeight))"
    )
    if size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
        page.wait_for_timeout(300)  # let the layout settle at the new height
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        if size:
            page.set_viewport_size(size)
    return path
