"""Augmentation presets in the catalogue: an index of the preset JSON files, for listing and joining with runs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import duckdb

from core.catalogue.store import transaction
from core.settings import DataRoot

log = logging.getLogger(__name__)


def sync_presets(con: duckdb.DuckDBPyConnection, data_root: Path) -> int:
    """Make ``augment_presets`` match ``<data root>/presets/augment/*.json``; returns how many are indexed."""
    rows = []
    for path in sorted(DataRoot(data_root).augment_presets.glob("*.json")):
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            rows.append((path.stem, json.dumps(stored["config"]), stored.get("note", ""), stored.get("saved")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("preset %s skipped: %s", path.name, exc)
    with transaction(con):
        con.execute("DELETE FROM augment_presets")
        if rows:
            con.executemany("INSERT INTO augment_presets VALUES (?, ?, ?, ?)", rows)
    return len(rows)
