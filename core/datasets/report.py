"""The validation report: findings that name the file, the problem and what to do."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Literal

from core.text import plural

Severity = Literal["error", "warning", "info"]
_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about one file or about the whole source.

    ``stem`` is set when the finding belongs to one image/mask pair, so that
    ``skip_invalid`` can drop just that pair.
    """

    severity: Severity
    code: str
    file: str
    message: str
    hint: str = ""
    stem: str | None = None

    def __str__(self) -> str:
        text = f"{self.severity.upper()} {self.file}: {self.message}"
        return f"{text} {self.hint}" if self.hint else text


class ImportFailed(Exception):
    """The import stopped; ``report`` says why. Nothing was written."""

    def __init__(self, report: "Report", summary: str = ""):
        self.report = report
        super().__init__(summary or report.summary())


@dataclass
class Report:
    """Everything the checks found, in the order found."""

    findings: list[Finding] = field(default_factory=list)
    n_pairs: int = 0

    def add(
        self, severity: Severity, code: str, file: str, message: str, hint: str = "", stem: str | None = None
    ) -> None:
        self.findings.append(Finding(severity, code, file, message, hint, stem))

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def stems_with_errors(self) -> set[str]:
        return {f.stem for f in self.errors if f.stem is not None}

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (_ORDER[f.severity], f.code, f.file))

    def counts_by_code(self) -> Counter:
        return Counter((f.severity, f.code) for f in self.findings)

    def summary(self) -> str:
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "ready to import" if self.ok else "cannot be imported as it is"
        return (
            f"{plural(self.n_pairs, 'image/mask pair')} checked: {plural(n_err, 'error')}, "
            f"{plural(n_warn, 'warning')}; {verdict}."
        )

    def to_rows(self) -> list[dict]:
        return [asdict(f) for f in self.sorted()]

    def to_text(self, limit: int = 200) -> str:
        lines = [self.summary()]
        rows = self.sorted()
        lines += [str(f) for f in rows[:limit]]
        if len(rows) > limit:
            lines.append(f"... and {len(rows) - limit} more findings.")
        return "\n".join(lines)
