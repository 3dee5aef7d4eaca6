"""The augmentation settings form: one panel per transform, built from the settings' own ranges and help.

``augment_form()`` returns an :class:`AugmentConfig` (or ``None`` with the problem shown);
``put_in_form()`` loads a config (a preset, an imported INI) into the widgets.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from core.augment.config import GEOMETRIC, PHOTOMETRIC, AugmentConfig
from core.config import ConfigError
from dashboard.widget_state import keep, put

TITLES = {
    "hflip": "Horizontal flip",
    "vflip": "Vertical flip",
    "rot90": "90° turns",
    "rotate": "Rotation",
    "scale": "Zoom in / out",
    "shear": "Shear",
    "translate": "Shift",
    "elastic": "Elastic bending",
    "distortion": "Random warping",
    "barrel": "Barrel (bulge)",
    "pincushion": "Pincushion (pinch)",
    "brightness_contrast": "Brightness & contrast",
    "gamma": "Gamma",
    "noise": "Noise",
    "blur": "Blur",
    "sharpen": "Sharpen",
}
PREFIX = "aug"


def _key(transform: str, setting: str) -> str:
    return f"{PREFIX}-{transform}-{setting}"


def _as_text(value) -> str:
    if not value:
        return ""
    if isinstance(value[0], (tuple, list)):
        return "; ".join(f"{x:g}, {y:g}" for x, y in value)
    return ", ".join(f"{v:g}" for v in value)


def put_in_form(config: AugmentConfig) -> None:
    """Set every widget of the form to ``config`` (call from a callback or before the form is drawn)."""
    for name, transform in config.transforms().items():
        for item in dataclasses.fields(transform):
            value = getattr(transform, item.name)
            put(_key(name, item.name), _as_text(value) if isinstance(value, tuple) else value)
    put(_key("all", "border"), config.border)


def _numbers(text: str, what: str) -> tuple:
    """'90, 180' → (90.0, 180.0); '0.3,0.3; 0.7,0.7' → ((0.3, 0.3), (0.7, 0.7))."""
    text = text.strip()
    if not text:
        return ()
    try:
        if ";" in text or what == "centres":
            return tuple(tuple(float(v) for v in pair.split(",")) for pair in text.split(";") if pair.strip())
        return tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{what}: {text!r} must be numbers separated by commas"
            + (" (x, y pairs separated by ';')" if what == "centres" else "")
            + "."
        ) from exc


def _transform_panel(name: str, transform) -> dict:
    values: dict = {}
    on = st.session_state[keep(_key(name, "enabled"), transform.enabled)]
    chance = st.session_state[keep(_key(name, "p"), transform.p)]
    label = f"{TITLES[name]} · {f'on, {chance:.0%} of samples' if on else 'off'}"
    with st.expander(
        label,
        key=f"{PREFIX}-panel-{name}",
        icon=":material/check_circle:" if on else ":material/radio_button_unchecked:",
    ):
        st.caption(type(transform).describe())
        for item in dataclasses.fields(transform):
            key = _key(name, item.name)
            default = getattr(transform, item.name)
            meta = item.metadata
            if item.name == "enabled":
                values[item.name] = st.toggle("Use it", key=keep(key, default))
            elif isinstance(default, bool):
                values[item.name] = st.toggle(
                    "Random centre", key=keep(key, default), help="Put the centre anywhere in the middle of the image."
                )
            elif isinstance(default, tuple):
                what = "centres" if item.name == "centres" else "angles"
                text = st.text_input(
                    "Centres (x, y pairs; e.g. 0.3, 0.3; 0.7, 0.7)"
                    if what == "centres"
                    else "Angles (°, e.g. 90, 180, 270; empty = any angle in the range)",
                    key=keep(key, _as_text(default)),
                    help="Pick one at random from this list for each sample.",
                )
                values[item.name] = _numbers(text, what)
            else:
                low, high = meta["range"]
                label = meta.get("label") or item.name.replace("_", " ").capitalize()
                values[item.name] = st.slider(
                    label + (f" ({meta['unit']})" if meta.get("unit") else ""),
                    float(low),
                    float(high),
                    step=float(meta["step"]),
                    key=keep(key, float(default)),
                    help=meta["help"],
                )
    return values


def augment_form(base: AugmentConfig) -> AugmentConfig | None:
    """Draw every transform's panel (initialised from ``base``); return the resulting config."""
    sections: dict = {}
    try:
        st.markdown("**Geometry** (image and mask move together)")
        for name in GEOMETRIC:
            sections[name] = _transform_panel(name, getattr(base, name))
        border_key = _key("all", "border")
        st.radio(
            "Uncovered corners",
            ["reflect", "constant"],
            key=keep(border_key, base.border),
            horizontal=True,
            format_func={"reflect": "mirror the image", "constant": "fill with black"}.get,
            help="What fills the corners a rotation or shift uncovers. Mirroring keeps cells realistic.",
        )
        st.markdown("**Intensity** (image only; the mask never changes)")
        for name in PHOTOMETRIC:
            sections[name] = _transform_panel(name, getattr(base, name))
        return AugmentConfig.from_dict({**sections, "border": st.session_state[_key("all", "border")]})
    except ConfigError as exc:
        st.error(f"Setting not accepted: {exc}")
        return None
