"""The DuckDB catalogue file: schema, forward migrations, opening with lock handling.

Only one process may hold the catalogue file open (DuckDB locks it). The dashboard
holds it; the command line opens it briefly and, when the dashboard has it, leaves
the catalogue to be refreshed by the dashboard from the dataset folders themselves.
All SQL takes values as parameters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

# Each migration moves the schema from version i to i + 1. Never edit one that has shipped: add another.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE datasets (
        name VARCHAR PRIMARY KEY,
        revision VARCHAR NOT NULL,
        manifest_stamp VARCHAR NOT NULL,
        created TIMESTAMPTZ,
        source VARCHAR,
        layout VARCHAR,
        split_from VARCHAR,
        split_seed INTEGER,
        path VARCHAR NOT NULL,
        n_images INTEGER,
        n_train INTEGER,
        n_valid INTEGER,
        n_test INTEGER,
        has_instances BOOLEAN
    );
    CREATE TABLE images (
        dataset VARCHAR NOT NULL,
        split VARCHAR NOT NULL CHECK (split IN ('train', 'valid', 'test')),
        stem VARCHAR NOT NULL,
        image_path VARCHAR NOT NULL,
        mask_path VARCHAR NOT NULL,
        instances_path VARCHAR,
        width INTEGER,
        height INTEGER,
        dtype VARCHAR,
        channels INTEGER,
        foreground_fraction DOUBLE,
        object_count INTEGER,
        checksum VARCHAR,
        phash BIGINT,
        mask_kind VARCHAR,
        source VARCHAR,
        PRIMARY KEY (dataset, stem)
    );
    CREATE INDEX images_by_split ON images (dataset, split);
    """,
    """
    CREATE TABLE mask_edits (
        dataset VARCHAR NOT NULL,
        stem VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        ts TIMESTAMPTZ NOT NULL,
        pixels_added INTEGER,
        pixels_removed INTEGER,
        tool VARCHAR,
        note VARCHAR,
        previous_path VARCHAR,
        PRIMARY KEY (dataset, stem, version)
    );
    ALTER TABLE images ADD COLUMN mask_version INTEGER DEFAULT 0;
    ALTER TABLE images ADD COLUMN reviewed_at TIMESTAMPTZ;
    """,
    """
    CREATE TABLE augment_presets (
        name VARCHAR PRIMARY KEY,
        config VARCHAR NOT NULL,
        note VARCHAR,
        saved TIMESTAMPTZ
    );
    """,
    """
    CREATE TABLE runs (
        id VARCHAR PRIMARY KEY,
        name VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'stopped', 'failed')),
        created TIMESTAMPTZ,
        started TIMESTAMPTZ,
        ended TIMESTAMPTZ,
        dataset VARCHAR,
        model VARCHAR,
        preset VARCHAR,
        device VARCHAR,
        precision VARCHAR,
        run_dir VARCHAR NOT NULL,
        parent_run VARCHAR,
        notes VARCHAR,
        tags VARCHAR[],
        error VARCHAR,
        stamp VARCHAR
    );
    CREATE TABLE params (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR, PRIMARY KEY (run_id, key));
    CREATE TABLE metrics (run_id VARCHAR NOT NULL, epoch INTEGER NOT NULL, key VARCHAR NOT NULL, value DOUBLE,
                          ts TIMESTAMPTZ);
    CREATE INDEX metrics_by_run ON metrics (run_id, key);
    CREATE TABLE run_summary (
        run_id VARCHAR PRIMARY KEY,
        best_val_dice DOUBLE,
        best_epoch INTEGER,
        epochs INTEGER,
        test_dice DOUBLE,
        duration_s DOUBLE,
        images_per_s DOUBLE
    );
    """,
    """
    CREATE TABLE evaluations (
        run_id VARCHAR NOT NULL,
        split VARCHAR NOT NULL,
        stem VARCHAR NOT NULL,
        dice DOUBLE,
        iou DOUBLE,
        precision DOUBLE,
        recall DOUBLE,
        n_true INTEGER,
        n_pred INTEGER,
        ap50 DOUBLE,
        f1_50 DOUBLE,
        ap DOUBLE,
        count_error INTEGER,
        PRIMARY KEY (run_id, split, stem)
    );
    CREATE TABLE evaluation_summary (
        run_id VARCHAR NOT NULL,
        split VARCHAR NOT NULL,
        evaluated TIMESTAMPTZ,
        checkpoint VARCHAR,
        threshold DOUBLE,
        n_images INTEGER,
        dice DOUBLE,
        dice_pooled DOUBLE,
        iou DOUBLE,
        f1_50 DOUBLE,
        ap DOUBLE,
        source VARCHAR,
        PRIMARY KEY (run_id, split)
    );
    """,
    # Runs can be hidden ("deleted") from lists while their folders stay; the mark comes from notes.json.
    """
    ALTER TABLE runs ADD COLUMN deleted BOOLEAN DEFAULT false;
    """,
    # Label states (core.datasets.labels): images imported without masks, proposals by a model, corrections.
    """
    ALTER TABLE images ADD COLUMN label VARCHAR DEFAULT 'truth';
    ALTER TABLE images ADD COLUMN proposed_by VARCHAR;
    ALTER TABLE images ADD COLUMN uncertainty DOUBLE;
    """,
    # Cell-level scores as StarDist defines them (core.evaluation.matching): AP at IoU 0.5 and 0.75, panoptic quality.
    """
    ALTER TABLE evaluations RENAME COLUMN ap50 TO ap_50;
    ALTER TABLE evaluations ADD COLUMN ap_75 DOUBLE;
    ALTER TABLE evaluations ADD COLUMN pq DOUBLE;
    ALTER TABLE evaluations ADD COLUMN mean_matched_iou DOUBLE;
    ALTER TABLE evaluation_summary ADD COLUMN ap_50 DOUBLE;
    ALTER TABLE evaluation_summary ADD COLUMN ap_75 DOUBLE;
    ALTER TABLE evaluation_summary ADD COLUMN pq DOUBLE;
    ALTER TABLE evaluation_summary ADD COLUMN mean_matched_iou DOUBLE;
    """,
    # Physical pixel size, µm per pixel along x (core.pixel_size): from the image files or set by hand; NULL unknown.
    """
    ALTER TABLE images ADD COLUMN pixel_size_um DOUBLE;
    ALTER TABLE datasets ADD COLUMN pixel_size_um DOUBLE;
    """,
    # Who did what (core.accounts): who saved each mask version, launched each run, imported each dataset;
    # the audit log (audit/audit.jsonl) indexed for the Admin page, with how far into the file it was read.
    """
    ALTER TABLE mask_edits ADD COLUMN saved_by VARCHAR;
    ALTER TABLE runs ADD COLUMN owner VARCHAR;
    ALTER TABLE datasets ADD COLUMN imported_by VARCHAR;
    CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        ts TIMESTAMPTZ,
        user_name VARCHAR,
        action VARCHAR,
        outcome VARCHAR,
        target VARCHAR,
        client VARCHAR,
        details VARCHAR
    );
    CREATE INDEX audit_by_user ON audit (user_name);
    CREATE TABLE audit_read (path VARCHAR PRIMARY KEY, bytes_read BIGINT, file_id VARCHAR);
    """,
    # Time-lapse videos (core.timelapse): a frame's video and its place in it; NULL for still images.
    """
    ALTER TABLE images ADD COLUMN sequence VARCHAR;
    ALTER TABLE images ADD COLUMN frame INTEGER;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


class CatalogueBusy(RuntimeError):
    """Another process (normally the running dashboard) holds the catalogue file."""


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the body of a ``with`` block as one DuckDB transaction.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection; no transaction may be open on it yet.

    Yields
    ------
    duckdb.DuckDBPyConnection
        The same connection, for ``with transaction(con) as con:``.

    Raises
    ------
    Exception
        Whatever the body raised, or DuckDB at ``COMMIT``, after rolling the transaction back: a failed
        body never leaves a transaction open on the connection (a caller that goes on with it, e.g. to the
        next run to ingest, starts its own transaction cleanly).

    Examples
    --------
    >>> con = duckdb.connect(":memory:")
    >>> _ = con.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    >>> with transaction(con):
    ...     _ = con.execute("INSERT INTO t VALUES (1)")
    >>> try:
    ...     with transaction(con):
    ...         _ = con.execute("INSERT INTO t VALUES (2)")
    ...         _ = con.execute("INSERT INTO t VALUES (1)")  # a duplicate key: the whole block is undone
    ... except duckdb.ConstraintException:
    ...     pass
    >>> try:
    ...     with transaction(con):
    ...         _ = con.execute("INSERT INTO t VALUES (3)")
    ...         raise ValueError("a file the body read was damaged")
    ... except ValueError:
    ...     pass
    >>> con.execute("SELECT x FROM t").fetchall()
    [(1,)]
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:  # any failure, an interrupt too: undo the block, then let it go on up
        con.execute("ROLLBACK")
        raise


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied TIMESTAMPTZ)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the migrations the file has not seen yet; return the resulting version."""
    current = schema_version(con)
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"The catalogue has schema version {current}, newer than this program "
            f"({SCHEMA_VERSION}); update the dashboard."
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with transaction(con):
            con.execute(MIGRATIONS[version - 1])
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
        log.info("catalogue migrated to schema version %d", version)
    return SCHEMA_VERSION


def connect(path: Path, *, retries: int = 0, wait_s: float = 0.2) -> duckdb.DuckDBPyConnection:
    """Open (creating and migrating) the catalogue; raise :class:`CatalogueBusy` if it stays locked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if not any(marker in str(exc) for marker in _LOCK_MARKERS):
                raise
            if attempt == retries:
                raise CatalogueBusy(
                    f"The catalogue {path} is in use by another process (normally the running dashboard)."
                ) from exc
            time.sleep(wait_s)
    migrate(con)
    return con
