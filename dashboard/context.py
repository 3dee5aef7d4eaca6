"""Process-wide resources of the dashboard: settings, the catalogue connection, first-start work.

The server process is the only one that holds the DuckDB file open; each script run
takes its own cursor (a connection is not thread-safe) and writes go through one lock.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import duckdb
import streamlit as st

from core.catalogue import store
from core.catalogue.datasets import list_datasets, sync_datasets
from core.models.shipped import ensure_models
from core.sample import ensure_sample
from core.settings import Settings, load_settings
from dashboard.pages_index import page_path

log = logging.getLogger(__name__)


@dataclass
class Catalogue:
    """The open catalogue and the lock that serialises writes from concurrent sessions."""

    connection: duckdb.DuckDBPyConnection
    write_lock: threading.Lock


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner="Opening the catalogue…")
def _open_catalogue() -> Catalogue:
    current = settings()
    current.data_root.mkdir(parents=True, exist_ok=True)
    if ensure_sample(current):
        log.info("imported the shipped sample dataset into %s", current.datasets_dir)
    ensure_models(current)  # the shipped generalist, usable by name on every page
    connection = store.connect(current.catalogue_path, retries=25)
    sync_datasets(connection, current.datasets_dir)
    return Catalogue(connection, threading.Lock())


def require_catalogue() -> None:
    """Stop the page with a clear message when the data root or catalogue cannot be used."""
    try:
        _open_catalogue()
    except store.CatalogueBusy:
        st.error(
            f"Another program holds the catalogue {settings().catalogue_path}: a second dashboard on the "
            "same data root, or a command-line import that is still running. Close it, then reload this page."
        )
        st.stop()
    except (OSError, RuntimeError, duckdb.Error) as exc:
        st.error(
            f"The dashboard cannot use its data root {settings().data_root}: {exc}. "
            "Check that the folder exists and is writable (or set CELLSEG_DATA to another folder), "
            "then reload this page."
        )
        st.stop()


def cursor() -> duckdb.DuckDBPyConnection:
    """A cursor for this script run (reads)."""
    return _open_catalogue().connection.cursor()


@contextmanager
def writing() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor held under the write lock, so two tabs never write at once."""
    opened = _open_catalogue()
    with opened.write_lock:
        cur = opened.connection.cursor()
        try:
            yield cur
        finally:
            cur.close()


def refresh_datasets() -> dict[str, list[str]]:
    """Pick up datasets imported, renamed or deleted by the command line while the dashboard runs."""
    with writing() as cur:
        return sync_datasets(cur, settings().datasets_dir)


def dataset_names_or_stop() -> list[str]:
    """Names of the imported datasets; with none, say where to import one and stop the page."""
    names = list_datasets(cursor())["name"].tolist()
    if not names:
        st.info("No datasets yet: import one on the Datasets page first.")
        st.page_link(page_path("datasets"), label="Go to Datasets", icon=":material/photo_library:")
        st.stop()
    return names
