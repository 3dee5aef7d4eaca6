"""Shared fixtures: an isolated data root per test, and the real datasets beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from tests.helpers import SHARED


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data root is a fresh temporary folder (never the repository's data/)."""
    return Settings(
        data_root=tmp_path / "data",
        import_roots=(tmp_path,),
        max_upload_mb=50,
        max_unzipped_mb=64,
        max_zip_members=2000,
    )


@pytest.fixture
def data_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The same isolated data root, also exported as CELLSEG_* for code that reads the environment."""
    monkeypatch.setenv("CELLSEG_DATA", str(settings.data_root))
    monkeypatch.setenv("CELLSEG_IMPORT_ROOTS", str(settings.import_roots[0]))
    return settings


@pytest.fixture(scope="session")
def shared() -> Path:
    """The real datasets and format samples (../shared); tests needing them skip if it is absent."""
    if not (SHARED / "datasets").is_dir():
        pytest.skip(f"real datasets not found at {SHARED}")
    return SHARED
