"""Datasets in the catalogue: ingest from dataset folders, keep in sync, and the queries pages use.

The dataset folders (their ``dataset.json``) are the truth; these tables are an index
that :func:`sync_datasets` rebuilds from them whenever they change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.datasets.manifest import IMAGE_FIELDS, MANIFEST_NAME, ManifestError, list_dataset_dirs, read_manifest

log = logging.getLogger(__name__)


def manifest_stamp(dataset_dir: Path) -> str:
    """Modification time and size of the manifest: a change is noticed without reading it."""
    info = (dataset_dir / MANIFEST_NAME).stat()
    return f"{info.st_mtime_ns}:{info.st_size}"


def _dataset_row(manifest: dict[str, Any], path: Path, stamp: str) -> list[Any]:
    counts = manifest.get("counts", {})
    images = manifest.get("images", [])
    split = manifest.get("split") or {}
    return [manifest["name"], manifest.get("revision", ""), stamp, manifest.get("created"), manifest.get("source"),
            manifest.get("layout"), manifest.get("split_from"), split.get("seed"), str(path), len(images),
            counts.get("train", 0), counts.get("valid", 0), counts.get("test", 0),
            any(row.get("has_instances") for row in images)]


def _images_frame(manifest: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame(manifest.get("images", []), columns=list(IMAGE_FIELDS))
    frame = frame.rename(columns={"image": "image_path", "mask": "mask_path", "instances": "instances_path"})
    frame.insert(0, "dataset", manifest["name"])
    return frame[["dataset", "split", "stem", "image_path", "mask_path", "instances_path", "width", "height",
                  "dtype", "channels", "foreground_fraction", "object_count", "checksum", "phash", "mask_kind",
                  "source"]]


def register_dataset(con: duckdb.DuckDBPyConnection, dataset_dir: Path) -> str:
    """(Re-)ingest one dataset folder from its manifest; idempotent. Returns the dataset name."""
    stamp = manifest_stamp(dataset_dir)
    manifest = read_manifest(dataset_dir)
    name = manifest["name"] = dataset_dir.name  # the folder name wins over a stale name inside
    frame = _images_frame(manifest)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM images WHERE dataset = ?", [name])
        con.execute("DELETE FROM datasets WHERE name = ?", [name])
        con.execute("INSERT INTO datasets VALUES (" + ", ".join("?" * 14) + ")",
                    _dataset_row(manifest, dataset_dir, stamp))
        con.register("incoming_images", frame)
        con.execute("INSERT INTO images SELECT * FROM incoming_images")
        con.unregister("incoming_images")
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise
    return name


def forget_dataset(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute("DELETE FROM images WHERE dataset = ?", [name])
    con.execute("DELETE FROM datasets WHERE name = ?", [name])


def sync_datasets(con: duckdb.DuckDBPyConnection, datasets_dir: Path) -> dict[str, list[str]]:
    """Make the catalogue match the dataset folders on disk (new, changed and removed ones).

    Cheap when nothing changed: a directory listing, a ``stat`` per dataset and one small query;
    a manifest is only read when its file changed.
    """
    known = dict(con.execute("SELECT name, manifest_stamp FROM datasets").fetchall())
    changes: dict[str, list[str]] = {"added": [], "removed": [], "broken": []}
    present = set()
    for folder in list_dataset_dirs(datasets_dir):
        present.add(folder.name)
        try:
            if known.get(folder.name) != manifest_stamp(folder):
                register_dataset(con, folder)
                changes["added"].append(folder.name)
        except (ManifestError, OSError) as exc:
            log.warning("dataset folder %s skipped: %s", folder.name, exc)
            changes["broken"].append(folder.name)
    for name in known:
        if name not in present:
            forget_dataset(con, name)
            changes["removed"].append(name)
    return changes

SORT_KEYS = {"name": "stem", "foreground": "foreground_fraction", "objects": "object_count", "size": "width * height"}
SPLIT_ORDER = "CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END"


def list_datasets(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per dataset with image counts per split, newest first."""
    return con.execute(
        "SELECT name, n_images, n_train, n_valid, n_test, has_instances, layout, created, source, path "
        "FROM datasets ORDER BY created DESC, name"
    ).df()


def _image_filter(dataset: str, splits: list[str], search: str) -> tuple[str, list[Any]]:
    where = "dataset = ? AND list_contains(?, split)"
    params: list[Any] = [dataset, list(splits)]
    if search:
        where += " AND stem ILIKE ?"
        params.append(f"%{search}%")
    return where, params


def count_images(con: duckdb.DuckDBPyConnection, dataset: str, splits: list[str], search: str = "") -> int:
    where, params = _image_filter(dataset, splits, search)
    return int(con.execute(f"SELECT count(*) FROM images WHERE {where}", params).fetchone()[0])


def page_of_images(con: duckdb.DuckDBPyConnection, dataset: str, splits: list[str], *, sort: str = "name",
                   descending: bool = False, limit: int = 24, offset: int = 0, search: str = "") -> pd.DataFrame:
    """One page of a dataset's images, filtered by split and name, sorted by a known key."""
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    where, params = _image_filter(dataset, splits, search)
    direction = "DESC" if descending else "ASC"
    return con.execute(
        f"SELECT * FROM images WHERE {where} ORDER BY {SORT_KEYS[sort]} {direction}, stem LIMIT ? OFFSET ?",
        params + [int(limit), int(offset)],
    ).df()


def image_stats(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    """Per-image measurements of a dataset, for the histograms."""
    return con.execute(
        f"SELECT split, stem, width, height, foreground_fraction, object_count FROM images "
        f"WHERE dataset = ? ORDER BY {SPLIT_ORDER}, stem",
        [dataset],
    ).df()


def image_row(con: duckdb.DuckDBPyConnection, dataset: str, stem: str) -> dict[str, Any] | None:
    frame = con.execute("SELECT * FROM images WHERE dataset = ? AND stem = ?", [dataset, stem]).df()
    return None if frame.empty else frame.iloc[0].to_dict()
