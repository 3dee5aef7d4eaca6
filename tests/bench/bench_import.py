"""Import wall time of real data: dsb2018_nuclei (400 pairs) and the 16-bit TIFF sample ctc_tif (3 pairs).

Baselines, measured in the same run:
- the same import forced single-threaded (``core.datasets.importer._workers`` -> 1): the parallel speed-up;
- ``shutil.copytree`` of the same folder: the overhead of checking and converting over a raw copy.
Each figure is the median of ``repeat`` runs into fresh data roots (sources are read once first, so all
variants see a warm OS page cache).
"""

from __future__ import annotations

import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from core.config import ImportOptions
from core.datasets import importer
from tests.bench.common import Results, data_settings, median, timed
from tests.e2e.server import SHARED

DSB = SHARED / "datasets" / "dsb2018_nuclei"
CTC = SHARED / "formats" / "ctc_tif"


@contextmanager
def single_threaded():
    """Force the importer onto one worker thread (the benchmark's baseline)."""
    original = importer._workers
    importer._workers = lambda: 1
    try:
        yield
    finally:
        importer._workers = original


def import_once(source: Path, workdir: Path, name: str, single: bool = False) -> tuple[float, int]:
    """Import ``source`` into a fresh data root; return (seconds, pairs imported)."""
    root = workdir / f"root-{uuid.uuid4().hex[:8]}"
    settings = data_settings(root)
    try:
        if single:
            with single_threaded():
                seconds, result = timed(lambda: importer.import_dataset(source, ImportOptions(name=name), settings))
        else:
            seconds, result = timed(lambda: importer.import_dataset(source, ImportOptions(name=name), settings))
        return seconds, sum(result.counts.values())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def copy_once(source: Path, workdir: Path) -> float:
    target = workdir / f"copy-{uuid.uuid4().hex[:8]}"
    try:
        return timed(lambda: shutil.copytree(source, target))[0]
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _warm_page_cache(source: Path) -> None:
    for path in source.rglob("*"):
        if path.is_file():
            path.read_bytes()


def bench_source(results: Results, group: str, source: Path, name: str, workdir: Path, repeat: int) -> None:
    if not source.is_dir():
        results.note(f"{source} not found; {group} import benchmark skipped")
        return
    _warm_page_cache(source)
    parallel, single, copies, pairs = [], [], [], 0
    for _ in range(repeat):  # interleaved, so that drift in machine load hits every variant alike
        copies.append(copy_once(source, workdir))
        seconds, pairs = import_once(source, workdir, name)
        parallel.append(seconds)
        single.append(import_once(source, workdir, name, single=True)[0])
    workers = importer._workers()
    copy_fig = results.add(
        group,
        "shutil.copytree (raw copy)",
        median(copies),
        "s",
        samples=copies,
        note="naive baseline: bytes only, no checks",
    )
    single_fig = results.add(
        group,
        "import, 1 worker thread",
        median(single),
        "s",
        samples=single,
        baseline=copy_fig,
        note=f"{pairs / median(single):.0f} pairs/s; ratio = overhead vs copy",
    )
    par = results.add(
        group,
        f"import, {workers} worker threads (default)",
        median(parallel),
        "s",
        samples=parallel,
        baseline=copy_fig,
        note=f"{pairs} pairs; ratio = overhead vs raw copy",
    )
    rate = results.add(
        group,
        "import throughput (default)",
        pairs / par.value,
        "pairs/s",
        baseline=results.add(group, "import throughput, 1 worker", pairs / single_fig.value, "pairs/s"),
        note="ratio = parallel speed-up",
    )
    print(
        f"  {group}: {pairs} pairs, default {par.value:.2f} s ({rate.value:.0f} pairs/s), "
        f"1 worker {single_fig.value:.2f} s, copytree {copy_fig.value:.3f} s",
        flush=True,
    )


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    print("import benchmarks …", flush=True)
    bench_source(results, "import dsb2018 400", DSB, "dsb2018", workdir, repeat)
    bench_source(results, "import ctc_tif 16-bit", CTC, "ctc", workdir, repeat)
