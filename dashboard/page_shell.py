"""Streamlit's page shell, told where the server's root is (used by ``dashboard/serve.py``).

Streamlit's shell does not know where the server's root is, so when a page is opened by its own
address (``/annotate?…``, a bookmark or a reload) the browser first asks
``/annotate/_stcore/health`` and ``/annotate/_stcore/host-config``, gets two 404s (console errors),
and only then finds the server at ``/``. Served with the root written in, the first request is
the right one.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import streamlit as st

from dashboard.pages_index import PAGES

SHELL = Path(st.__file__).resolve().parent / "static" / "index.html"


@lru_cache(maxsize=1)
def streamlit_shell() -> str:
    return SHELL.read_text(encoding="utf-8")


def _root(base_path: str) -> str:
    """``/`` or ``/prefix/`` for Streamlit's ``server.baseUrlPath``."""
    parts = [part for part in base_path.split("/") if part]
    return "/" + "".join(f"{part}/" for part in parts)


def pinned_shell(shell: str, base_path: str) -> str:
    """``shell`` with the server root (``base_path`` under the page's origin) written into its head.

    >>> pinned_shell("<html><head><title>x</title></head></html>", "lab")  # doctest: +NORMALIZE_WHITESPACE
    '<html><head><script>window.__streamlit = {BACKEND_BASE_URL: window.location.origin
    + "/lab/"};</script><title>x</title></head></html>'
    """
    script = (
        f"<script>window.__streamlit = {{BACKEND_BASE_URL: window.location.origin + "
        f"{json.dumps(_root(base_path))}}};</script>"
    )
    return shell.replace("<head>", "<head>" + script, 1)


def page_addresses(base_path: str) -> list[str]:
    """The addresses that show a page: the root (the default page), and ``/<page>`` for the others,
    under ``base_path``.

    >>> page_addresses("")[:3]
    ['/', '/annotate', '/augment']
    >>> page_addresses("/lab/")[:2]
    ['/lab/', '/lab/annotate']
    """
    root = _root(base_path)
    return [root] + [f"{root}{page.path.stem}" for page in PAGES.values() if not page.default]
