"""The dashboard in chromium: cold start, server memory, and the grid of a 1,000-image dataset.

- Cold start: server launch -> first grid painted in chromium (every thumbnail of the first page
  decoded: ``img.complete && naturalWidth > 0``), on a fresh data root (the shipped sample is imported
  on this first start) and again on a restart. Baseline: launch -> /_stcore/health.
- Memory: VmRSS of the server process (and any children) after the page rendered, against a bare
  ``python -c "import streamlit"`` (baseline) and, as a reference, ``import tensorflow``; the server's
  memory maps are searched for tensorflow, which the Datasets page must not load.
- 1,000 images: dsb2018_nuclei's 400 real pairs, plus 600 re-stemmed copies with a few pixels changed
  (so every checksum differs), each kept in its original split; imported with the real importer. Time from
  ``page.goto`` to the first grid paint, cold (``<data root>/cache/thumbs`` deleted) and warm. Baseline:
  the same for the 46-image shipped sample.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2

from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.sample import SAMPLE_NAME
from tests.bench.common import Results, data_settings, median, timed
from tests.e2e.server import (
    GRID_IMAGES_JS,
    GRID_PAINTED_JS,
    SHARED,
    DashboardServer,
    launch_chromium,
    mapped_libraries,
    rss_bytes,
)

DSB = SHARED / "datasets" / "dsb2018_nuclei"
BIG_NAME = "nuclei-1000"
BIG_PAIRS = 1000
PAGE = 24  # thumbnails on the grid's first page (default page size)
MiB = 2**20


def build_big_source(target: Path, pairs: int = BIG_PAIRS) -> int:
    """``target/{train,valid,test}/{images,masks,masks_instances}`` with ``pairs`` real pairs.

    Copy 0 of each dsb2018 pair keeps its bytes; later copies get a new stem and a few altered pixels,
    so checksums differ and leakage checks see no duplicates across splits (copies stay in their split).
    """
    originals = sorted(DSB.glob("*/images/*.png"))
    written, copy = 0, 0
    while written < pairs:
        for image_path in originals:
            if written >= pairs:
                break
            split, stem = image_path.parent.parent.name, image_path.stem
            new_stem = stem if copy == 0 else f"{stem}-copy{copy}"
            out = target / split
            (out / "images").mkdir(parents=True, exist_ok=True)
            (out / "masks").mkdir(parents=True, exist_ok=True)
            if copy == 0:
                shutil.copyfile(image_path, out / "images" / f"{new_stem}.png")
            else:
                pixels = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
                flat = pixels.reshape(-1)
                for k in range(1, 9):  # a few pixels change by one grey level: invisible, new checksum
                    index = (k * 7919 * (copy + 1)) % flat.size
                    flat[index] = flat[index] + 1 if flat[index] < 255 else flat[index] - 1
                cv2.imwrite(str(out / "images" / f"{new_stem}.png"), pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            for kind in ("masks", "masks_instances"):
                source = DSB / split / kind / f"{stem}.png"
                if source.is_file():
                    (out / kind).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, out / kind / f"{new_stem}.png")
            written += 1
        copy += 1
    return written


def _python_rss(code: str, timeout: float = 180) -> tuple[int | None, int]:
    """(VmRSS in bytes, number of mapped tensorflow files) of a fresh interpreter after it ran ``code``."""
    script = (
        code + "\nimport re\nstatus = open('/proc/self/status').read()\n"
        "maps = {l.split(maxsplit=5)[-1] for l in open('/proc/self/maps') if 'tensorflow' in l}\n"
        "print(re.search(r'VmRSS:\\s+(\\d+)', status).group(1), len(maps))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=Path(__file__).resolve().parents[2],
        )
        rss_kib, tf_files = done.stdout.strip().splitlines()[-1].split()
        return (int(rss_kib) * 1024, int(tf_files)) if done.returncode == 0 else (None, 0)
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return None, 0


def grid_paint(browser, url: str, count: int = PAGE) -> float:
    """Seconds from page.goto (fresh browser context: no HTTP cache, new Streamlit session) to the grid painted."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(GRID_PAINTED_JS, arg=count, timeout=120_000)
        elapsed = time.perf_counter() - started
        shown = page.locator("[data-testid=stException]")
        if shown.count():
            raise RuntimeError(f"{url}: the page shows an exception: {shown.first.inner_text()}")
        return elapsed
    finally:
        context.close()


_SRCS_JS = f"() => {GRID_IMAGES_JS}.map(i => i.src)"
_REPLACED_JS = (
    f"([n, old]) => {{ const imgs = {GRID_IMAGES_JS}; return imgs.length === n"
    " && imgs.every(i => i.complete && i.naturalWidth > 0 && !old.includes(i.src)); }"
)


def page_turns(browser, url: str, thumbs: Path, repeat: int) -> dict[str, list[float]]:
    """In one session: seconds from clicking "Next ▶" / "◀ Previous" to the new page of thumbnails painted.

    Per round: load page 1, delete the thumbnail cache, Next (cold), Previous (warm), Next (warm).
    """
    times: dict[str, list[float]] = {"next cold": [], "previous warm": [], "next warm": []}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        for _ in range(repeat):
            page.goto(url)
            page.wait_for_function(GRID_PAINTED_JS, arg=PAGE, timeout=120_000)
            page.get_by_text("Page 1 of").wait_for()
            shutil.rmtree(thumbs, ignore_errors=True)
            steps = (("next cold", "Next ▶"), ("previous warm", "◀ Previous"), ("next warm", "Next ▶"))
            for kind, label in steps:
                old = page.evaluate(_SRCS_JS)
                button = page.locator("[data-testid=stMain] button").filter(visible=True).filter(has_text=label)
                started = time.perf_counter()
                button.click()
                page.wait_for_function(_REPLACED_JS, arg=[PAGE, old], timeout=120_000)
                times[kind].append(time.perf_counter() - started)
    finally:
        context.close()
    return times


def cold_start(results: Results, browser, server: DashboardServer, label: str, dataset: str):
    with server:
        painted = grid_paint(browser, f"{server.url}/?dataset={dataset}")
        total = time.perf_counter() - server.started_at
        rss = rss_bytes(server.pid)
        tf = mapped_libraries(server.pid, "tensorflow")
    health = results.add("cold start", f"{label}: launch -> /_stcore/health", server.healthy_after_s, "s")
    results.add(
        "cold start",
        f"{label}: launch -> grid painted",
        total,
        "s",
        baseline=health,
        note=f"page.goto -> painted {painted:.2f} s",
    )
    return rss, tf


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.server import CHROMIUM

    if not CHROMIUM.exists():
        results.note(f"chromium not found at {CHROMIUM}; dashboard benchmarks skipped")
        return
    root = workdir / "dashboard-data"
    logs = workdir / "logs"
    streamlit_rss, _ = _python_rss("import streamlit")
    app_libs_rss, app_libs_tf = _python_rss(
        "import streamlit, core.catalogue.datasets, dashboard.context, "
        "dashboard.grid, dashboard.image_view, dashboard.import_form, "
        "dashboard.dataset_admin, dashboard.figures"
    )
    print("dashboard benchmarks …", flush=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            # c. first start on an empty data root (imports the shipped sample), then a restart
            first_rss, first_tf = cold_start(
                results,
                browser,
                DashboardServer(root, (workdir,), logs / "first-start.log"),
                "first start (imports sample)",
                SAMPLE_NAME,
            )

            # b. the 1,000-image dataset, imported with the real importer while no server runs
            source = workdir / "src-1000"
            build_s, pairs = timed(lambda: build_big_source(source))
            import_s, result = timed(
                lambda: import_dataset(source, ImportOptions(name=BIG_NAME, layout="splits"), data_settings(root))
            )
            shutil.rmtree(source, ignore_errors=True)
            results.add(
                "1000 images",
                f"import {pairs} pairs (splits layout)",
                import_s,
                "s",
                note=f"{pairs / import_s:.0f} pairs/s; {result.report.summary()} (source built in {build_s:.1f} s)",
            )

            server = DashboardServer(root, (workdir,), logs / "restart.log")
            restart_rss, restart_tf = cold_start(results, browser, server, "restart", SAMPLE_NAME)
            server = DashboardServer(root, (workdir,), logs / "pages.log")
            with server:
                grid_paint(browser, f"{server.url}/?dataset={SAMPLE_NAME}")  # warm-up: catalogue, imports
                thumbs = root / "cache" / "thumbs"
                loads: dict[str, list[float]] = {k: [] for k in ("sample cold", "sample warm", "big cold", "big warm")}
                for _ in range(repeat):
                    for dataset, kind in ((SAMPLE_NAME, "sample"), (BIG_NAME, "big")):
                        shutil.rmtree(thumbs / dataset, ignore_errors=True)
                        loads[f"{kind} cold"].append(grid_paint(browser, f"{server.url}/?dataset={dataset}"))
                        loads[f"{kind} warm"].append(grid_paint(browser, f"{server.url}/?dataset={dataset}"))
                turns = page_turns(browser, f"{server.url}/?dataset={BIG_NAME}", thumbs / BIG_NAME, repeat)
                pages_rss = rss_bytes(server.pid)
                pages_tf = mapped_libraries(server.pid, "tensorflow")
        finally:
            browser.close()

    sample_cold = results.add(
        "1000 images",
        f"{SAMPLE_NAME} (46 images): goto -> grid painted, cold thumbs",
        median(loads["sample cold"]),
        "s",
        samples=loads["sample cold"],
    )
    sample_warm = results.add(
        "1000 images",
        f"{SAMPLE_NAME} (46 images): goto -> grid painted, warm thumbs",
        median(loads["sample warm"]),
        "s",
        samples=loads["sample warm"],
    )
    big_cold = results.add(
        "1000 images",
        f"{BIG_NAME}: goto -> grid painted, cold thumbs (cache deleted)",
        median(loads["big cold"]),
        "s",
        samples=loads["big cold"],
        baseline=sample_cold,
        note="ratio vs the 46-image sample, cold",
    )
    results.add(
        "1000 images",
        f"{BIG_NAME}: goto -> grid painted, warm thumbs",
        median(loads["big warm"]),
        "s",
        samples=loads["big warm"],
        baseline=sample_warm,
        note="ratio vs the 46-image sample, warm",
    )
    results.add(
        "1000 images",
        f"{BIG_NAME}: cold / warm",
        big_cold.value / median(loads["big warm"]),
        "×",
        note="page load incl. building 24 thumbnails vs cached",
    )
    warm_next = results.add(
        "1000 images",
        f"{BIG_NAME}: click Next -> page 2 painted, warm thumbs",
        median(turns["next warm"]),
        "s",
        samples=turns["next warm"],
    )
    results.add(
        "1000 images",
        f"{BIG_NAME}: click Previous -> page 1 painted, warm thumbs",
        median(turns["previous warm"]),
        "s",
        samples=turns["previous warm"],
        baseline=warm_next,
    )
    results.add(
        "1000 images",
        f"{BIG_NAME}: click Next -> page 2 painted, cold thumbs",
        median(turns["next cold"]),
        "s",
        samples=turns["next cold"],
        baseline=warm_next,
        note="ratio = cost of building 24 thumbnails",
    )

    # memory and tensorflow
    base = results.add(
        "memory", "python -c 'import streamlit' (baseline)", streamlit_rss / MiB if streamlit_rss else None, "MiB"
    )
    results.add(
        "memory",
        "python importing the app's modules (no server)",
        app_libs_rss / MiB if app_libs_rss else None,
        "MiB",
        baseline=base,
        note="streamlit, duckdb, opencv, pandas, plotly, core, dashboard",
    )
    for label, rss in (
        ("server after first start", first_rss),
        ("server after restart", restart_rss),
        ("server after 1000-image grid loads", pages_rss),
    ):
        results.add("memory", f"{label} (VmRSS incl. children)", rss / MiB, "MiB", baseline=base)
    tf_rss, tf_reference_files = _python_rss("import tensorflow")
    results.add(
        "memory",
        "python -c 'import tensorflow' (reference)",
        tf_rss / MiB if tf_rss else None,
        "MiB",
        baseline=base,
        note=f"what loading tensorflow alone costs; maps {tf_reference_files} tensorflow files "
        "(shows the detector below works)",
    )
    loaded = sorted(set(first_tf + restart_tf + pages_tf))
    results.add(
        "memory",
        "tensorflow files mapped into the server",
        len(loaded),
        "files",
        note="OK: tensorflow not loaded" if not loaded else "tensorflow IS loaded: " + ", ".join(loaded[:3]),
    )
    if app_libs_tf:
        results.note(f"importing the app's modules maps {app_libs_tf} tensorflow files: tensorflow is imported")
    print(
        f"  pages: sample cold {sample_cold.value:.2f} s / warm {sample_warm.value:.2f} s; "
        f"{BIG_NAME} cold {big_cold.value:.2f} s / warm {median(loads['big warm']):.2f} s",
        flush=True,
    )
