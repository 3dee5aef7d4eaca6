"""Figures, timing and the result table shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.settings import Settings


@dataclass
class Figure:
    """One measured number; ``ratio`` = value / baseline value (both measured in this run)."""

    group: str
    name: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline_value:
            return None
        return self.value / self.baseline_value

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


class Results:
    """The figures of one benchmark run, in the order they were measured."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        self.missed: list[str] = []  # the targets missed; a suite that misses one fails (tests.bench.__main__)

    def add(
        self,
        group: str,
        name: str,
        value: float | None,
        unit: str,
        *,
        baseline: Figure | None = None,
        note: str = "",
        samples: list[float] | None = None,
    ) -> Figure:
        figure = Figure(
            group,
            name,
            value,
            unit,
            baseline.name if baseline else "",
            baseline.value if baseline else None,
            note,
            list(samples or []),
        )
        self.figures.append(figure)
        return figure

    def require(
        self, figure: Figure, *, at_least: float | None = None, at_most: float | None = None, ratio: bool = False
    ) -> bool:
        """Check ``figure`` (its value, or its ratio to its baseline) against an issue's target; note a miss.

        >>> results = Results()
        >>> fast = results.add("g", "speed", 9.0, "images/s", baseline=results.add("g", "plain", 10.0, "images/s"))
        >>> results.require(fast, at_least=0.9, ratio=True), results.require(fast, at_most=8)
          note: target missed: [g] speed: 9 images/s (target ≤ 8)
        (True, False)
        >>> results.missed
        ['[g] speed: 9 images/s (target ≤ 8)']
        """
        value = figure.ratio if ratio else figure.value
        if at_least is None and at_most is None:
            raise ValueError("a target needs at_least or at_most")
        ok = value is not None and (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
        if not ok:
            bound = " and ".join(
                f"{sign} {limit:g}" for sign, limit in (("≥", at_least), ("≤", at_most)) if limit is not None
            )
            shown = "n/a" if value is None else (f"{value:.3g}×" if ratio else f"{value:.4g} {figure.unit}")
            self.missed.append(f"[{figure.group}] {figure.name}: {shown} (target {bound})")
            self.note(f"target missed: {self.missed[-1]}")
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def data_settings(root: Path) -> Settings:
    """Settings for a private data root (what load_settings() gives with CELLSEG_DATA=root)."""
    return Settings(
        data_root=root, import_roots=(root,), max_upload_mb=2048, max_unzipped_mb=8192, max_zip_members=100_000
    )


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "files":
        return f"{value:.0f}"
    if unit == "MiB":
        return f"{value:,.0f}"
    if unit in ("s",):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def table(results: Results) -> str:
    """The figures as a plain-text table."""
    header = ("benchmark", "value", "unit", "baseline (same run)", "ratio", "note")
    rows = []
    groups = list(dict.fromkeys(f.group for f in results.figures))
    for f in sorted(results.figures, key=lambda f: groups.index(f.group)):  # stable: measuring order in a group
        ratio = "" if f.ratio is None else (f"1/{1 / f.ratio:,.0f}" if 0 < f.ratio < 0.01 else f"{f.ratio:.2f}×")
        baseline = f"{f.baseline} = {_fmt(f.baseline_value, f.unit)}" if f.baseline else ""
        rows.append((f"[{f.group}] {f.name}", _fmt(f.value, f.unit), f.unit, baseline, ratio, f.note))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    widths[-1] = min(widths[-1], 60)

    def line(cells) -> str:
        return "  ".join(
            str(c).ljust(w) if i != 1 and i != 4 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [line(header), line("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)
