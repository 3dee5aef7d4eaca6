"""Running a page under AppTest against the test's own data root."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.helpers import REPO


def page_file(name: str) -> str:
    return str(REPO / "pages" / f"{name}.py")


@pytest.fixture
def open_page(data_env):
    """``open_page(name)`` runs ``pages/<name>.py`` once; process-wide caches are cleared around each test,
    because the catalogue connection and settings are cached per process and each test has its own data root."""
    st.cache_resource.clear()
    st.cache_data.clear()

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
