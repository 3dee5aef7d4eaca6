"""Where the dashboard keeps its state and what it may read, from the environment.

Everything the dashboard writes (the DuckDB catalogue, imported datasets, runs,
caches) lives under one *data root*: ``data/`` in the repository unless the
environment variable ``CELLSEG_DATA`` names another folder. The shipped sample
dataset stays in the repository (``data/sample``) wherever the data root is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO_ROOT / "data" / "sample"

_MB = 1024 * 1024


@dataclass(frozen=True)
class DataRoot:
    """The layout of a data root: every folder and file the dashboard keeps there, named in one place.

    Modules that hold only a data root (stores, presets) use it directly; the rest reach it through
    :attr:`Settings.layout`.

    >>> layout = DataRoot(Path("/lab/data"))
    >>> layout.runs.as_posix(), layout.augment_presets.as_posix(), layout.audit_log.as_posix()
    ('/lab/data/runs', '/lab/data/presets/augment', '/lab/data/audit/audit.jsonl')
    """

    root: Path

    datasets = property(lambda self: self.root / "datasets", doc="Imported datasets, one folder each.")
    catalogue = property(lambda self: self.root / "catalogue.duckdb", doc="The DuckDB catalogue file.")
    cache = property(lambda self: self.root / "cache", doc="Caches that can be rebuilt (thumbnails, probes).")
    scratch = property(lambda self: self.root / "tmp", doc="Temporary work (unpacked uploads, half-built imports).")
    runs = property(lambda self: self.root / "runs", doc="Training runs, one folder each.")
    models = property(lambda self: self.root / "models", doc="Models added here (shipped ones stay in the repo).")
    augment_presets = property(lambda self: self.root / "presets" / "augment", doc="Saved augmentation presets.")
    tasks = property(lambda self: self.root / "tasks", doc="Background jobs that belong to no run (proposals).")
    predictions = property(lambda self: self.root / "predictions", doc="Predictions started from the pages.")
    model_imports = property(lambda self: self.root / "imports" / "models", doc="bioimage.io packages being added.")
    accounts = property(lambda self: self.root / "accounts", doc="Accounts, roles and sign-in counters.")
    audit_log = property(lambda self: self.root / "audit" / "audit.jsonl", doc="Who did what, one JSON line each.")
    sample_marker = property(
        lambda self: self.root / ".sample-imported",
        doc="Written once the shipped sample was imported (a deleted sample stays deleted).",
    )


@dataclass(frozen=True)
class Settings:
    """Paths and limits of one installation, read once from the environment."""

    data_root: Path
    import_roots: tuple[Path, ...]
    max_upload_mb: int
    max_unzipped_mb: int
    max_zip_members: int
    executor: str = "local"  # where background jobs run: "local" (child processes) or "slurm"
    dask_scheduler: str = ""  # a Dask scheduler's address for batch prediction on a cluster ("" = none)

    @property
    def layout(self) -> DataRoot:
        """Where each thing lives under the data root."""
        return DataRoot(self.data_root)

    @property
    def datasets_dir(self) -> Path:
        return self.layout.datasets

    @property
    def catalogue_path(self) -> Path:
        return self.layout.catalogue

    @property
    def cache_dir(self) -> Path:
        return self.layout.cache

    @property
    def scratch_dir(self) -> Path:
        """Temporary work (unpacked uploads, half-built imports); emptied safely."""
        return self.layout.scratch

    @property
    def max_unzipped_bytes(self) -> int:
        return self.max_unzipped_mb * _MB

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * _MB


def _int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"Environment variable {name}={raw!r} must be a whole number.") from exc
    if value <= 0:
        raise ValueError(f"Environment variable {name}={raw!r} must be positive.")
    return value


def load_settings() -> Settings:
    """Read the settings from the environment (``CELLSEG_*`` variables).

    - ``CELLSEG_DATA``: the data root (default ``<repo>/data``).
    - ``CELLSEG_IMPORT_ROOTS``: folders (separated by ``os.pathsep``) from which the
      browser may import server folders (default: the data root and the home folder).
    - ``CELLSEG_MAX_UPLOAD_MB`` (default 2048), ``CELLSEG_MAX_UNZIPPED_MB`` (default 8192),
      ``CELLSEG_MAX_ZIP_MEMBERS`` (default 100000): caps for uploads and zip archives.
    - ``CELLSEG_EXECUTOR``: where background jobs run, ``local`` (default) or ``slurm`` (settings of the
      cluster: :mod:`core.jobs.slurm`).
    - ``CELLSEG_DASK_SCHEDULER``: a Dask scheduler's address (``tcp://host:8786``) for batch prediction.
    """
    data_root = Path(os.environ.get("CELLSEG_DATA") or REPO_ROOT / "data").expanduser().resolve()
    raw_roots = os.environ.get("CELLSEG_IMPORT_ROOTS", "")
    if raw_roots.strip():
        roots = [Path(p).expanduser().resolve() for p in raw_roots.split(os.pathsep) if p.strip()]
    else:
        roots = [data_root, Path.home().resolve()]
    return Settings(
        data_root=data_root,
        import_roots=tuple(dict.fromkeys(roots)),
        max_upload_mb=_int_from_env("CELLSEG_MAX_UPLOAD_MB", 2048),
        max_unzipped_mb=_int_from_env("CELLSEG_MAX_UNZIPPED_MB", 8192),
        max_zip_members=_int_from_env("CELLSEG_MAX_ZIP_MEMBERS", 100_000),
        executor=_executor_from_env(),
        dask_scheduler=os.environ.get("CELLSEG_DASK_SCHEDULER", "").strip(),
    )


def _executor_from_env() -> str:
    value = os.environ.get("CELLSEG_EXECUTOR", "").strip().lower() or "local"
    if value not in ("local", "slurm"):
        raise ValueError(f"Environment variable CELLSEG_EXECUTOR={value!r} must be 'local' or 'slurm'.")
    return value


def resolve_inside_roots(path: str | Path, roots: tuple[Path, ...]) -> Path:
    """Resolve ``path`` (symlinks included) and require it to lie inside one of ``roots``.

    Raises ``PermissionError`` with a message naming the allowed folders otherwise.
    """
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    allowed = ", ".join(str(r) for r in roots) or "(none configured)"
    raise PermissionError(
        f"{resolved} is outside the folders this server may import from ({allowed}). "
        "Move the data under one of them, or ask the administrator to add its folder "
        "to CELLSEG_IMPORT_ROOTS."
    )
