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

from core.catalogue.store import transaction
from core.datasets.labels import LABEL_STATES
from core.datasets.manifest import IMAGE_FIELDS, MANIFEST_NAME, ManifestError, list_dataset_dirs, read_manifest
from core.masks.versions import read_log, reviewed
from core.pixel_size import dataset_level, row_pixel_size

log = logging.getLogger(__name__)


def manifest_stamp(dataset_dir: Path) -> str:
    """Modification time and size of the manifest: a change is noticed without reading it."""
    info = (dataset_dir / MANIFEST_NAME).stat()
    return f"{info.st_mtime_ns}:{info.st_size}"


def _dataset_row(manifest: dict[str, Any], path: Path, stamp: str) -> list[Any]:
    counts = manifest.get("counts", {})
    images = manifest.get("images", [])
    split = manifest.get("split") or {}
    pixel_size = dataset_level(manifest)
    return [
        manifest["name"],
        manifest.get("revision", ""),
        stamp,
        manifest.get("created"),
        manifest.get("source"),
        manifest.get("layout"),
        manifest.get("split_from"),
        split.get("seed"),
        str(path),
        len(images),
        counts.get("train", 0),
        counts.get("valid", 0),
        counts.get("test", 0),
        any(row.get("has_instances") for row in images),
        pixel_size.x_um if pixel_size else None,
        manifest.get("imported_by"),
    ]


def _images_frame(manifest: dict[str, Any], versions: dict[str, int], marks: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(manifest.get("images", []), columns=list(IMAGE_FIELDS))
    frame = frame.rename(columns={"image": "image_path", "mask": "mask_path", "instances": "instances_path"})
    frame = frame.drop(columns=["has_instances"])
    frame["label"] = frame["label"].fillna("truth")  # rows from before label states hold imported masks
    frame.insert(0, "dataset", manifest["name"])
    frame["mask_version"] = frame["stem"].map(versions).fillna(0).astype(int)
    frame["reviewed_at"] = pd.to_datetime(frame["stem"].map(marks), utc=True)
    sizes = [row_pixel_size(manifest, row) for row in manifest.get("images", [])]  # a size set by hand wins
    frame["pixel_size_um"] = pd.Series([s.x_um if s else None for s in sizes], index=frame.index, dtype="float64")
    rows = manifest.get("images", [])
    frame["sequence"] = pd.Series([row.get("sequence") for row in rows], index=frame.index, dtype="object")
    frame["frame"] = pd.Series([row.get("frame") for row in rows], index=frame.index, dtype="Int64")
    return frame


def _edits_frame(name: str, entries: list[dict]) -> pd.DataFrame:
    columns = ["stem", "version", "time", "pixels_added", "pixels_removed", "tool", "note", "previous_path", "user"]
    frame = pd.DataFrame(entries, columns=columns).rename(columns={"time": "ts", "user": "saved_by"})
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame = frame.drop_duplicates(subset=["stem", "version"], keep="last")
    frame.insert(0, "dataset", name)
    return frame


def register_dataset(con: duckdb.DuckDBPyConnection, dataset_dir: Path) -> str:
    """(Re-)ingest one dataset folder (manifest, mask edit log, review marks); idempotent. Returns its name."""
    stamp = manifest_stamp(dataset_dir)
    manifest = read_manifest(dataset_dir)
    name = manifest["name"] = dataset_dir.name  # the folder name wins over a stale name inside
    entries = read_log(dataset_dir)
    versions: dict[str, int] = {}
    for entry in entries:
        versions[entry["stem"]] = max(versions.get(entry["stem"], 0), int(entry["version"]))
    images = _images_frame(manifest, versions, reviewed(dataset_dir))
    edits = _edits_frame(name, entries)
    try:
        with transaction(con):
            for table, column in (("images", "dataset"), ("mask_edits", "dataset"), ("datasets", "name")):
                con.execute(f"DELETE FROM {table} WHERE {column} = ?", [name])
            con.execute(
                "INSERT INTO datasets VALUES (" + ", ".join("?" * 16) + ")", _dataset_row(manifest, dataset_dir, stamp)
            )
            con.register("incoming_images", images)
            con.execute("INSERT INTO images BY NAME SELECT * FROM incoming_images")
            con.register("incoming_edits", edits)
            con.execute("INSERT INTO mask_edits BY NAME SELECT * FROM incoming_edits")
    finally:
        con.unregister("incoming_images")
        con.unregister("incoming_edits")
    return name


def forget_dataset(con: duckdb.DuckDBPyConnection, name: str) -> None:
    for table, column in (("images", "dataset"), ("mask_edits", "dataset"), ("datasets", "name")):
        con.execute(f"DELETE FROM {table} WHERE {column} = ?", [name])


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


SORT_KEYS = {
    "name": "stem",
    "foreground": "foreground_fraction",
    "objects": "object_count",
    "size": "width * height",
    "uncertainty": "coalesce(uncertainty, -1)",
}
SPLIT_ORDER = "CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END"


def list_datasets(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per dataset with image counts per split and per label state, newest first."""
    states = ", ".join(f"count(i.stem) FILTER (WHERE i.label = '{state}') AS n_{state}" for state in LABEL_STATES)
    return con.execute(
        f"SELECT d.name, any_value(d.n_images) AS n_images, any_value(d.n_train) AS n_train, "
        f"any_value(d.n_valid) AS n_valid, any_value(d.n_test) AS n_test, {states}, "
        f"any_value(d.has_instances) AS has_instances, any_value(d.pixel_size_um) AS pixel_size_um, "
        f"any_value(d.layout) AS layout, "
        f"any_value(d.created) AS created, any_value(d.imported_by) AS imported_by, any_value(d.source) AS source, "
        f"any_value(d.path) AS path "
        f"FROM datasets d LEFT JOIN images i ON i.dataset = d.name GROUP BY d.name "
        f"ORDER BY any_value(d.created) DESC, d.name"
    ).df()


def _image_filter(
    dataset: str, splits: list[str], search: str, labels: list[str] | None = None
) -> tuple[str, list[Any]]:
    where = "dataset = ? AND list_contains(?, split)"
    params: list[Any] = [dataset, list(splits)]
    if search:
        where += " AND stem ILIKE ?"
        params.append(f"%{search}%")
    if labels is not None:
        where += " AND list_contains(?, coalesce(label, 'truth'))"
        params.append(list(labels))
    return where, params


def count_images(
    con: duckdb.DuckDBPyConnection, dataset: str, splits: list[str], search: str = "", labels: list[str] | None = None
) -> int:
    where, params = _image_filter(dataset, splits, search, labels)
    return int(con.execute(f"SELECT count(*) FROM images WHERE {where}", params).fetchone()[0])


def page_of_images(
    con: duckdb.DuckDBPyConnection,
    dataset: str,
    splits: list[str],
    *,
    sort: str = "name",
    descending: bool = False,
    limit: int = 24,
    offset: int = 0,
    search: str = "",
    labels: list[str] | None = None,
) -> pd.DataFrame:
    """One page of a dataset's images, filtered by split, label state and name, sorted by a known key."""
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    where, params = _image_filter(dataset, splits, search, labels)
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


def editor_images(con: duckdb.DuckDBPyConnection, dataset: str, splits: list[str]) -> pd.DataFrame:
    """The images the mask editor steps through, in a stable order, with their review state."""
    return con.execute(
        f"SELECT stem, split, foreground_fraction, object_count, mask_version, reviewed_at, width, height, "
        f"coalesce(label, 'truth') AS label, proposed_by, uncertainty "
        f"FROM images WHERE dataset = ? AND list_contains(?, split) ORDER BY {SPLIT_ORDER}, stem",
        [dataset, list(splits)],
    ).df()


def list_sequences(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    """The videos of a dataset: sequence, split, frames, and the fewest / most cells in a frame (empty for stills)."""
    return con.execute(
        "SELECT sequence, any_value(split) AS split, count(*) AS frames, min(object_count) AS min_cells, "
        "max(object_count) AS max_cells, any_value(width) AS width, any_value(height) AS height FROM images "
        "WHERE dataset = ? AND sequence IS NOT NULL GROUP BY sequence ORDER BY sequence",
        [dataset],
    ).df()


def sequence_frames(con: duckdb.DuckDBPyConnection, dataset: str, sequence: str) -> pd.DataFrame:
    """The frames of one video in order: frame, stem, object_count and file paths."""
    return con.execute(
        "SELECT frame, stem, split, object_count, image_path, mask_path, instances_path FROM images "
        "WHERE dataset = ? AND sequence = ? ORDER BY frame",
        [dataset, sequence],
    ).df()


def frame_neighbours(con: duckdb.DuckDBPyConnection, dataset: str, stem: str) -> dict[str, Any] | None:
    """For a frame of a video: its ``sequence``, ``frame``, the video's ``frames`` and the ``previous`` and
    ``next`` frames' rows (None at the ends); None for a still image."""
    here = con.execute("SELECT sequence, frame FROM images WHERE dataset = ? AND stem = ?", [dataset, stem]).fetchone()
    if here is None or here[0] is None:
        return None
    sequence, frame = here
    rows = con.execute(
        "SELECT * FROM images WHERE dataset = ? AND sequence = ? AND frame IN (?, ?) ORDER BY frame",
        [dataset, sequence, frame - 1, frame + 1],
    ).df()
    by_frame = {int(row["frame"]): row for row in rows.to_dict("records")}
    total = con.execute(
        "SELECT count(*) FROM images WHERE dataset = ? AND sequence = ?", [dataset, sequence]
    ).fetchone()
    return {
        "sequence": sequence,
        "frame": int(frame),
        "frames": int(total[0]),
        "previous": by_frame.get(frame - 1),
        "next": by_frame.get(frame + 1),
    }


def record_mask_edit(con: duckdb.DuckDBPyConnection, dataset: str, dataset_dir: Path, saved) -> None:
    """Index one saved edit (a :class:`core.masks.versions.SavedEdit`) without re-reading the dataset."""
    with transaction(con):
        con.execute(
            "INSERT OR REPLACE INTO mask_edits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                dataset,
                saved.stem,
                saved.version,
                saved.time,
                saved.pixels_added,
                saved.pixels_removed,
                saved.tool,
                saved.note,
                saved.previous_path,
                saved.user or None,
            ],
        )
        con.execute(
            "UPDATE images SET foreground_fraction = ?, object_count = ?, mask_version = ?, label = ?, "
            "proposed_by = ?, uncertainty = ? WHERE dataset = ? AND stem = ?",
            [
                saved.foreground_fraction,
                saved.object_count,
                saved.version,
                saved.label,
                saved.proposed_by,
                saved.uncertainty,
                dataset,
                saved.stem,
            ],
        )
        con.execute("UPDATE datasets SET manifest_stamp = ? WHERE name = ?", [manifest_stamp(dataset_dir), dataset])


def record_review(con: duckdb.DuckDBPyConnection, dataset: str, stem: str, when: str | None) -> None:
    con.execute("UPDATE images SET reviewed_at = ? WHERE dataset = ? AND stem = ?", [when, dataset, stem])


def mask_history(con: duckdb.DuckDBPyConnection, dataset: str, stem: str) -> pd.DataFrame:
    """Saved versions of one mask, newest first."""
    return con.execute(
        "SELECT version, ts, saved_by, pixels_added, pixels_removed, tool, note FROM mask_edits "
        "WHERE dataset = ? AND stem = ? ORDER BY version DESC",
        [dataset, stem],
    ).df()


def image_files(con: duckdb.DuckDBPyConnection, dataset: str, splits: list[str]) -> pd.DataFrame:
    """Stem, split and file paths (relative to the dataset folder) of a dataset's images."""
    return con.execute(
        f"SELECT stem, split, image_path, mask_path, instances_path FROM images "
        f"WHERE dataset = ? AND list_contains(?, split) ORDER BY {SPLIT_ORDER}, stem",
        [dataset, list(splits)],
    ).df()
