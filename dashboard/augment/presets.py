"""Presets on the Augment page: load one into the form, save the form as one, import a seed INI file."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.augment.presets import BUILTIN, DEFAULT_PRESET, HELP, list_presets, load_preset, save_preset
from core.augment.config import AugmentConfig
from core.augment.seed_ini import import_seed_config
from core.catalogue.presets import sync_presets
from core.config import ConfigError
from core.text import plural
from dashboard.access import may
from dashboard import context
from dashboard.augment.form import TITLES, put_in_form
from dashboard.import_form import SEVERITY_STYLE, SEVERITY_WORDS
from dashboard.widget_state import keep, put

LOADED_KEY = "aug-loaded-preset"
PRESET_KEY = "aug-preset"
SEED_TRAINING_KEY = "seed-training-settings"  # read by the training form


def _load(name: str) -> None:
    try:
        put_in_form(load_preset(context.settings().data_root, name))
        st.session_state[LOADED_KEY] = name
    except ConfigError as exc:
        st.session_state["aug-message"] = ("error", str(exc))


def ensure_form_initialised() -> None:
    """On the first visit, fill the form with the default preset."""
    if LOADED_KEY not in st.session_state:
        _load(DEFAULT_PRESET)


def preset_bar(current) -> None:
    """Choose and load a preset; save the current settings under a name."""
    data_root = context.settings().data_root
    names = list_presets(data_root)
    loaded = st.session_state.get(LOADED_KEY, DEFAULT_PRESET)
    pick, load, name_col, save = st.columns([3, 1.2, 3, 1.2], vertical_alignment="bottom")
    chosen = pick.selectbox(
        "Preset",
        names,
        key=keep(PRESET_KEY, loaded if loaded in names else names[0], names),
        format_func=lambda n: f"{n} (built in)" if n in BUILTIN else n,
        help="\n\n".join(f"**{k}**: {v}" for k, v in HELP.items()),
    )
    load.button(
        "Load",
        on_click=_load,
        args=(chosen,),
        width="stretch",
        key="aug-load",
        help="Put this preset's settings in the form below.",
    )
    new_name = name_col.text_input(
        "Save settings as",
        key="aug-save-name",
        placeholder="e.g. nuclei mild",
        help="Letters, digits, spaces, '.', '_' and '-'. The training form offers saved presets.",
    )
    save.button(
        "Save",
        width="stretch",
        key="aug-save",
        disabled=current is None or not new_name.strip() or not may("augment.save_preset"),
        on_click=_save,
        args=(current,),
    )
    saved = st.session_state.pop("aug-saved", None)
    if saved:
        st.toast(f"Saved preset {saved}.", icon=":material/check_circle:")
    message = st.session_state.pop("aug-message", None)
    if message:
        st.error(message[1])
    if current is not None:
        st.caption(form_source(current, loaded, data_root))


def form_source(current: AugmentConfig, loaded: str, data_root) -> str:
    """Where the form's settings come from, and which transforms were changed since."""
    try:
        origin = load_preset(data_root, loaded)
    except ConfigError:
        return f"The form holds the settings read from {loaded}."
    changed = [TITLES[name] for name, transform in current.transforms().items() if transform != getattr(origin, name)]
    if current.border != origin.border:
        changed.append("Uncovered corners")
    if not changed:
        return f"The form holds preset **{loaded}** as saved."
    return (
        f"The form holds preset **{loaded}** with changes to {', '.join(changed)}: save them under a new "
        "name to train with them."
    )


def _save(current) -> None:
    """Save the form's settings under the typed name (a callback: it runs before the page is drawn again,
    so the preset box can show the new preset and the confirmation survives the redraw)."""
    data_root = context.settings().data_root
    name = st.session_state.get("aug-save-name", "").strip()
    try:
        save_preset(data_root, name, current)
    except (ConfigError, ValueError) as exc:
        st.session_state["aug-message"] = ("error", str(exc))
        return
    with context.writing() as cur:
        sync_presets(cur, data_root)
    st.session_state[LOADED_KEY] = name
    put(PRESET_KEY, name)  # the box shows the preset just saved
    st.session_state["aug-saved"] = name


def _use_seed(result, name: str) -> None:
    put_in_form(result.augment)
    st.session_state[LOADED_KEY] = name
    st.session_state[SEED_TRAINING_KEY] = result.training


def seed_config_import() -> None:
    """Upload a Tensorflow-Image-Segmentation-API train_eval_infer.config and use its augmentation settings."""
    upload = st.file_uploader(
        "Import a train_eval_infer.config",
        type=["config", "ini", "cfg", "txt"],
        key="aug-ini",
        help="Reads the [augmentor], [deformation], [distortion], "
        "[barrdistortion], [pincdistortion], [sharpening] and "
        "[brightening] sections safely (no code is run).",
    )
    if upload is None:
        return
    try:
        result = import_seed_config(upload.getvalue().decode("utf-8", errors="replace"), upload.name)
    except ConfigError as exc:
        st.error(str(exc))
        return
    n_warnings = sum(finding.severity == "warning" for finding in result.report)
    counts = f"{plural(len(result.errors), 'error')}, {plural(n_warnings, 'warning')}"
    st.button(
        f"Use the settings of {upload.name}",
        key="aug-ini-use",
        type="primary",
        on_click=_use_seed,
        args=(result, upload.name),
        help="Puts them in the form (the preview updates); save them as a preset to use them for training.",
    )
    with st.expander(f"What was read from {upload.name} ({counts})", expanded=bool(result.errors)):
        frame = pd.DataFrame(
            [
                {
                    "severity": SEVERITY_WORDS[line.severity],
                    "section": line.section,
                    "key": line.key,
                    "finding": line.message,
                    "value used": "" if line.effective is None else str(line.effective),
                }
                for line in result.report
            ]
        )
        st.dataframe(
            frame.style.map(lambda word: SEVERITY_STYLE.get(word, ""), subset=["severity"]),
            hide_index=True,
            width="stretch",
            column_config={"finding": st.column_config.TextColumn(width="large")},
        )
