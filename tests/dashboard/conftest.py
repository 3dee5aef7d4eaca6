"""Running a page under AppTest against the test's own data root."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.helpers import REPO


def page_file(name: str) -> str:
    return str(REPO / "pages" / f"{name}.py")


@pytest.fixture
def open_page(data_env, tmp_path, monkeypatch):
    """``open_page(name)`` runs ``pages/<name>.py`` once; process-wide caches are cleared around each test,
    because the catalogue connection and settings are cached per process and each test has its own data root."""
    st.cache_resource.clear()
    st.cache_data.clear()
    # pages start without the repository's shipped models; tests that want one put it in the data root
    monkeypatch.setattr("core.models.shipped.SHIPPED_DIR", tmp_path / "no-shipped-models")

    def run(name: str, **query) -> AppTest:
        # through the real entry point, so navigation exists and page links resolve as in the browser
        app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=90)
        app.query_params.update(query)
        app.switch_page(f"../pages/{name}.py")
        app.run()
        assert not app.exception, app.exception
        return app

    yield run
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def proposed(tmp_path, data_env, monkeypatch):
    """A dataset of four unlabelled images that a (stand-in) model has proposed masks for."""
    from core.proposals import job as propose_job
    from core.proposals.job import propose_dataset, proposals_task
    from tests.evaluation_helpers import brightness_model, raw_lab, shipped_model, trained_run

    monkeypatch.setattr(propose_job, "load_run_model", brightness_model)
    raw_lab(data_env, tmp_path / "src", {"train": 4, "valid": 1, "test": 1})
    run = trained_run(data_env, tmp_path, name="cells")
    summary = propose_dataset(data_env, "lab", run.run_id, proposals_task(data_env, "lab"))
    shipped_model(data_env)
    return data_env, summary
