"""The catalogue against a real DuckDB file: migrations, ingest, sync, locking, queries."""

import contextlib
import subprocess
import sys
import textwrap

import duckdb
import pytest

from core.catalogue import store
from core.catalogue.datasets import count_images, page_of_images, register_dataset, sync_datasets
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manage import delete_dataset, rename_dataset
from tests.helpers import make_flat, make_splits


@pytest.fixture
def imported(tmp_path, settings):
    import_dataset(
        make_splits(tmp_path / "src", {"train": 5, "valid": 2, "test": 2}), ImportOptions(name="cells"), settings
    )
    return settings


def test_new_file_is_created_at_the_current_schema(settings):
    con = store.connect(settings.catalogue_path)
    assert store.schema_version(con) == store.SCHEMA_VERSION
    tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"datasets", "images", "schema_version"} <= tables


def test_older_schema_file_is_migrated_without_losing_data(settings):
    settings.data_root.mkdir(parents=True)
    old = duckdb.connect(str(settings.catalogue_path))
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied TIMESTAMPTZ)")
    old.execute("CREATE TABLE lab_notes (note VARCHAR)")
    old.execute("INSERT INTO lab_notes VALUES ('keep me')")
    old.close()
    con = store.connect(settings.catalogue_path)
    assert store.schema_version(con) == store.SCHEMA_VERSION
    assert con.execute("SELECT note FROM lab_notes").fetchall() == [("keep me",)]


def test_newer_schema_is_refused_with_advice(settings):
    con = store.connect(settings.catalogue_path)
    con.execute("INSERT INTO schema_version VALUES (?, now())", [store.SCHEMA_VERSION + 1])
    con.close()
    with pytest.raises(RuntimeError, match="update the dashboard"):
        store.connect(settings.catalogue_path)


@pytest.mark.parametrize(
    ("statements", "raised", "kept"),
    [
        (["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)"], None, [(1,), (2,)]),
        (["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"], duckdb.ConstraintException, []),
        (["INSERT INTO t VALUES (1)", "INSERT INTO no_such_table VALUES (2)"], duckdb.CatalogException, []),
        (["INSERT INTO t VALUES (1)", ValueError("a damaged file")], ValueError, []),
    ],
    ids=["succeeds", "duplicate-key", "missing-table", "python-error"],
)
def test_transaction_keeps_the_whole_body_or_nothing(statements, raised, kept):
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    with pytest.raises(raised) if raised else contextlib.nullcontext():
        with store.transaction(con):
            for statement in statements:
                if isinstance(statement, Exception):
                    raise statement
                con.execute(statement)
    assert con.execute("SELECT x FROM t ORDER BY x").fetchall() == kept
    with store.transaction(con):  # no transaction was left open: a new one can begin
        con.execute("INSERT INTO t VALUES (3)")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == len(kept) + 1


def test_sync_adds_changes_and_removes_datasets(tmp_path, imported):
    con = store.connect(imported.catalogue_path)
    assert sync_datasets(con, imported.datasets_dir)["added"] == ["cells"]
    assert sync_datasets(con, imported.datasets_dir) == {"added": [], "removed": [], "broken": []}
    rename_dataset(imported, "cells", "nuclei")
    changes = sync_datasets(con, imported.datasets_dir)
    assert changes["added"] == ["nuclei"] and changes["removed"] == ["cells"]
    assert con.execute("SELECT count(*) FROM images WHERE dataset = 'nuclei'").fetchone()[0] == 9
    delete_dataset(imported, "nuclei")
    assert sync_datasets(con, imported.datasets_dir)["removed"] == ["nuclei"]
    assert con.execute("SELECT count(*) FROM images").fetchone()[0] == 0


def test_register_is_idempotent(imported):
    con = store.connect(imported.catalogue_path)
    for _ in range(3):
        register_dataset(con, imported.datasets_dir / "cells")
    assert con.execute("SELECT count(*) FROM images").fetchone()[0] == 9
    assert con.execute("SELECT n_train, n_valid, n_test FROM datasets").fetchone() == (5, 2, 2)


def test_broken_manifest_is_reported_not_fatal(tmp_path, imported):
    import_dataset(make_flat(tmp_path / "other", n=3), ImportOptions(name="other"), imported)
    (imported.datasets_dir / "other" / "dataset.json").write_text("{ not json")
    con = store.connect(imported.catalogue_path)
    changes = sync_datasets(con, imported.datasets_dir)
    assert changes["broken"] == ["other"] and changes["added"] == ["cells"]


def test_page_queries_filter_sort_and_page(imported):
    con = store.connect(imported.catalogue_path)
    sync_datasets(con, imported.datasets_dir)
    assert count_images(con, "cells", ["train", "test"]) == 7
    first = page_of_images(con, "cells", ["train"], sort="name", limit=2, offset=0)
    second = page_of_images(con, "cells", ["train"], sort="name", limit=2, offset=2)
    assert list(first["stem"]) == ["img000", "img001"] and list(second["stem"]) == ["img002", "img003"]
    by_fg = page_of_images(con, "cells", ["train", "valid", "test"], sort="foreground", descending=True)
    assert list(by_fg["foreground_fraction"]) == sorted(by_fg["foreground_fraction"], reverse=True)
    assert count_images(con, "cells", ["train", "valid", "test"], search="IMG00") == 9
    with pytest.raises(ValueError, match="sort must be one of"):
        page_of_images(con, "cells", ["train"], sort="stem; DROP TABLE images")


def test_values_are_parameters_not_sql(imported):
    con = store.connect(imported.catalogue_path)
    sync_datasets(con, imported.datasets_dir)
    assert count_images(con, "cells' OR '1'='1", ["train"]) == 0
    assert count_images(con, "cells", ["train"], search="%' OR '1'='1") == 0


def test_second_process_sees_catalogue_busy(settings):
    holder = store.connect(settings.catalogue_path)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from core.catalogue import store
        try:
            store.connect(Path({str(settings.catalogue_path)!r}), retries=1, wait_s=0.05)
        except store.CatalogueBusy as exc:
            print("BUSY", exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    holder.close()
    assert "BUSY" in out.stdout and "in use by another process" in out.stdout
