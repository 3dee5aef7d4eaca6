"""Widget values that outlive a visit to another page, and choices linked to the page address.

Streamlit forgets the value of every widget a script run does not draw, so leaving a page by the
sidebar and coming back would reset its widgets (a chosen image, an augmentation setting, a run).
:func:`keep` holds each value outside the widget's own key and puts it back before the widget is
drawn again. :func:`linked` ties a choice to a query parameter (``?dataset=…``): a *new* address —
a link from another page, a typed or bookmarked URL, the browser's Back — picks the option, and
otherwise the widget's own value wins, so the address never overrules what the user just chose.

Widgets using these helpers get their start value from here: pass no ``value``/``index``/``default``.
"""

from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

KEPT_KEY = "_kept-widget-values"


def _kept() -> dict[str, Any]:
    return st.session_state.setdefault(KEPT_KEY, {})


def keep(
    key: str, default: Any = None, options: Sequence | None = None, bounds: tuple[float, float] | None = None
) -> str:
    """Use as ``key=keep("…", default)`` right where the widget is drawn; returns ``key``.

    The widget starts at ``default``, and later at whatever the user last chose, also after other
    pages were shown in between. With ``options``, a remembered value that is no longer one of them
    (a deleted dataset, say) falls back to ``default``; with ``bounds`` (a slider's range, which may
    shrink), a number is moved into the range.
    """
    kept = _kept()
    if key in st.session_state:
        value = st.session_state[key]
    else:
        value = kept.get(key, default)
    if options is not None and not _allowed(value, options):
        value = default
    if bounds is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = type(value)(min(max(value, bounds[0]), bounds[1]))
    if key not in st.session_state or st.session_state[key] is not value:
        st.session_state[key] = value
    kept[key] = value
    return key


def _allowed(value: Any, options: Sequence) -> bool:
    if isinstance(value, (list, tuple)):
        return all(item in options for item in value)
    return value in options


def put(key: str, value: Any) -> None:
    """Set a kept widget's value from a callback or before the widget is drawn (a preset, a link)."""
    st.session_state[key] = value
    _kept()[key] = value


def forget(key: str) -> None:
    """Drop a kept value: the widget starts at its default next time."""
    st.session_state.pop(key, None)
    _kept().pop(key, None)


def linked(param: str, key: str, options: Sequence[str], default: str | None = None) -> str:
    """Prepare the choice widget ``key`` over ``options`` and tie it to the query parameter ``param``.

    Returns ``key``; after drawing the widget, call :func:`publish` with its value so the address
    shows the choice (and a reload or a shared link reopens it).
    """
    seen_key = f"_address-{key}"
    wanted = st.query_params.get(param)
    if wanted != st.session_state.get(seen_key):
        st.session_state[seen_key] = wanted
        if wanted in options:
            put(key, wanted)
    fallback = default if default in options else (options[0] if options else None)
    return keep(key, fallback, options)


def publish(param: str, key: str, value: str | None) -> None:
    """Write the choice into the address (``?param=value``) and remember that this address is not new."""
    if value is None:
        st.query_params.pop(param, None)
    elif st.query_params.get(param) != value:
        st.query_params[param] = value
    st.session_state[f"_address-{key}"] = value
