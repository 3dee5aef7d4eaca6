"""The Runs page's table: filters, the editable list of runs (name, tags, notes, compare ticks), soft delete.

Names, tags and notes are saved in each run's folder (``notes.json``) and the run is re-indexed, so the
folder stays the record of the run. Deleting only hides a run (``deleted`` in its notes); nothing is
removed from disk here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import streamlit as st

from core.catalogue.runs import ingest_run
from core.runs.folder import RunDir
from core.runs.notes import normalise_tags, read_notes, write_notes
from core.runs.report import runs_csv
from dashboard.access import may
from dashboard import context
from dashboard.widget_state import keep

SELECTED_KEY = "runs-selected"
QUERY_KEY = "runs-selected-query"
UNDO_KEY = "runs-undo"
EDITOR_VERSION_KEY = "runs-table-version"
EDITABLE = ["compare", "name", "tags", "notes"]
# the scores next to the name, so they show without scrolling sideways; long free text last
SHOWN = [
    "compare",
    "name",
    "best_val_dice",
    "test_dice",
    "state",
    "owner",
    "dataset",
    "model",
    "preset",
    "duration_min",
    "learning_rate",
    "batch_size",
    "patch_size",
    "tags",
    "notes",
    "device",
    "created",
    "id",
]
COLUMNS = {
    "compare": st.column_config.CheckboxColumn(
        "Compare",
        help="Tick two or more runs to compare them below; ticked runs are also what “Delete selected” hides.",
    ),
    "name": st.column_config.TextColumn("Name", help="A name of your choice (double-click to edit).", width="medium"),
    "tags": st.column_config.TextColumn(
        "Tags", help="Words to group runs by, separated by commas (e.g. baseline, fixed masks)."
    ),
    "notes": st.column_config.TextColumn("Notes", help="Anything worth remembering about this run.", width="medium"),
    "owner": st.column_config.TextColumn(
        "Launched by",
        help="Who started the run ((local): on this computer "
        "before accounts existed; shell:NAME: from the server's command line).",
    ),
    "state": st.column_config.TextColumn(
        "Status",
        help="queued, running, finished, stopped or failed; “missing” when the run's folder is gone from the disk.",
    ),
    "dataset": st.column_config.TextColumn("Dataset"),
    "model": st.column_config.TextColumn("Model"),
    "preset": st.column_config.TextColumn("Preset"),
    "learning_rate": st.column_config.NumberColumn(
        "Learning rate", format="%.0e", help="How big a step the optimiser takes at the start."
    ),
    "batch_size": st.column_config.NumberColumn("Batch", help="Images per training step."),
    "patch_size": st.column_config.NumberColumn("Patch (px)", help="Side of the square crops the model learns on."),
    "best_val_dice": st.column_config.NumberColumn(
        "Best val Dice", format="%.3f", help="Highest Dice on the validation images during training."
    ),
    "test_dice": st.column_config.NumberColumn(
        "Test Dice", format="%.3f", help="Mean Dice on the test images (after evaluation on Results)."
    ),
    "duration_min": st.column_config.NumberColumn("Minutes", format="%.1f", help="Training time."),
    "device": st.column_config.TextColumn("Device"),
    "created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
    "id": st.column_config.TextColumn("Run id"),
}


@dataclasses.dataclass(frozen=True)
class RunFilters:
    """What the filter bar asks for; ``query()`` gives the keyword arguments of ``core.runs.queries.query_runs``."""

    search: str = ""
    dataset: str | None = None
    model: str | None = None
    status: str | None = None
    tag: str | None = None
    include_deleted: bool = False

    def query(self) -> dict:
        return dataclasses.asdict(self)


def tag_list(value) -> list[str]:
    """Tags from the catalogue (a list, array or None) or from the table (comma-separated text).

    >>> tag_list(" baseline, fixed masks,, "), tag_list(None), tag_list(["a", "b"])
    (['baseline', 'fixed masks'], [], ['a', 'b'])
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    parts = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Run id → what to call it: its name, with the id added where two runs share a name.

    >>> run_labels(pd.DataFrame({"id": ["r1", "r2", "r3"], "name": ["base", "base", "r3"]}))
    {'r1': 'base (r1)', 'r2': 'base (r2)', 'r3': 'r3'}
    """
    names = {row.id: _text(row.name) or row.id for row in runs.itertuples()}
    counts = pd.Series(list(names.values())).value_counts()
    return {
        run_id: f"{name} ({run_id})" if counts[name] > 1 and name != run_id else name for run_id, name in names.items()
    }


def filter_bar(every: pd.DataFrame) -> RunFilters:
    """Search box, dataset/model/status/tag pickers and the “Show deleted” switch."""

    def options(column: str) -> list[str]:
        return sorted({str(v) for v in every[column].dropna()})

    cols = st.columns([2, 1, 1, 1, 1, 1.3])
    search = cols[0].text_input(
        "Search",
        key=keep("runs-search", ""),
        placeholder="name, notes, tag or run id",
        help="Shows runs whose name, notes, tags or id contain this text.",
    )
    picked = {
        column: col.selectbox(
            column.capitalize(),
            options(column),
            placeholder="all",
            key=keep(f"runs-{column}", None, [None, *options(column)]),
        )
        for col, column in zip(cols[1:4], ("dataset", "model", "status"))
    }
    tags = sorted({tag for value in every["tags"] for tag in tag_list(value)})
    tag = cols[4].selectbox("Tag", tags, placeholder="all", key=keep("runs-tag", None, [None, *tags]))
    deleted = cols[5].toggle(
        "Show deleted",
        key=keep("runs-show-deleted", False),
        help="Also list runs you deleted (they are only hidden, never removed from disk).",
    )
    return RunFilters(search.strip(), picked["dataset"], picked["model"], picked["status"], tag, deleted)


def table_frame(runs: pd.DataFrame, selected: Iterable[str]) -> pd.DataFrame:
    """The table as shown: one row per run (index: run id), tags as text, status ``missing``/``deleted``."""
    chosen = set(selected)
    frame = runs.copy()
    frame["compare"] = frame["id"].isin(chosen)
    frame["tags"] = [", ".join(tag_list(v)) for v in frame["tags"]]
    frame["name"] = [_text(v) for v in frame["name"]]
    frame["notes"] = [_text(v) for v in frame["notes"]]
    frame["state"] = ["missing" if bool(m) else str(s) for m, s in zip(frame["missing"], frame["status"])]
    hidden = frame["deleted"].fillna(False).astype(bool)
    frame.loc[hidden, "state"] = frame.loc[hidden, "state"] + " · deleted"
    frame["duration_min"] = pd.to_numeric(frame["duration_s"], errors="coerce") / 60
    frame["created"] = pd.to_datetime(frame["created"], errors="coerce", utc=True)
    for column in ("learning_rate", "batch_size", "patch_size", "best_val_dice", "test_dice"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame[SHOWN].set_index(pd.Index(frame["id"], name="run"))


def runs_editor(shown: pd.DataFrame) -> pd.DataFrame:
    """The editable table; returns it with the user's edits (sorting happens in the table itself)."""
    editable = EDITABLE if may("run.edit_notes") else ["compare"]  # anyone may tick runs to compare them
    return st.data_editor(
        shown,
        key=editor_key(),
        hide_index=True,
        num_rows="fixed",
        width="stretch",
        column_config=COLUMNS,
        disabled=[c for c in SHOWN if c not in editable],
    )


def editor_key() -> str:
    """The table's widget key; a new one (after a delete, restore or undo) drops stale ticks that the table
    would otherwise re-apply."""
    return f"runs-table-{st.session_state.get(EDITOR_VERSION_KEY, 0)}"


def note_changes(before: pd.DataFrame, after: pd.DataFrame) -> dict[str, dict]:
    """Per run id, the note fields the user changed in the table (``name``, ``notes``, ``tags`` as a tuple)."""
    changes: dict[str, dict] = {}
    for run_id in after.index:
        fields = {
            column: _text(after.at[run_id, column])
            for column in ("name", "notes")
            if _text(after.at[run_id, column]) != _text(before.at[run_id, column])
        }
        # compared as saved (lower-case, sorted), so "Best" typed over "best" is not a change to save again
        tags = normalise_tags(tag_list(after.at[run_id, "tags"]))
        if tags != normalise_tags(tag_list(before.at[run_id, "tags"])):
            fields["tags"] = tags
        if fields:
            changes[run_id] = fields
    return changes


def save_notes(runs_root: Path, changes: dict[str, dict]) -> tuple[list[str], list[str]]:
    """Write the changed fields into each run's notes.json and re-index the run; returns (saved, skipped)."""
    saved, skipped = [], []
    with context.writing() as cur:
        for run_id, fields in changes.items():
            run = RunDir(runs_root / run_id)
            if not run.config_path.is_file():  # folder gone: nothing to write to
                skipped.append(run_id)
                continue
            current = read_notes(run)
            wanted = dataclasses.replace(current, **fields)
            if wanted == current:  # e.g. a name cleared again: the table shows the id, the notes already say ""
                continue
            write_notes(run, wanted)
            ingest_run(cur, run)
            saved.append(run_id)
    return saved, skipped


def save_edits(runs_root: Path, before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """Save names, tags and notes edited in the table, with a toast; returns the saved run ids."""
    changes = note_changes(before, after)
    if not changes:
        return []
    try:
        saved, skipped = save_notes(runs_root, changes)
    except ValueError as exc:  # e.g. a name longer than a run name may be
        st.error(f"Not saved: {exc}")
        return []
    except OSError as exc:
        st.error(f"Could not save the notes: {exc}. Check that the runs folder {runs_root} is writable.")
        return []
    if saved:
        st.toast(f"Saved to the run folder: {', '.join(saved)}", icon=":material/save:")
    if skipped:
        st.warning(f"Not saved, the folder of {', '.join(skipped)} is missing from {runs_root}.")
    return saved


def current_selection(known: Iterable[str]) -> list[str]:
    """Runs ticked for comparison; a ``compare=id1,id2`` query parameter (a shared link) sets them."""
    wanted = st.query_params.get("compare") or ""
    if SELECTED_KEY not in st.session_state or (wanted and wanted != st.session_state.get(QUERY_KEY)):
        if SELECTED_KEY in st.session_state:  # a new link: ticks left in the table would override it
            st.session_state[EDITOR_VERSION_KEY] = st.session_state.get(EDITOR_VERSION_KEY, 0) + 1
        known = set(known)
        st.session_state[SELECTED_KEY] = [r for r in dict.fromkeys(w.strip() for w in wanted.split(",")) if r in known]
        st.session_state[QUERY_KEY] = wanted
    return list(st.session_state[SELECTED_KEY])


def remember_selection(edited: pd.DataFrame, before: list[str]) -> list[str]:
    """Keep the ticked runs (earlier picks first, so the first two stay runs A and B) and put them in the URL."""
    ticked = [run_id for run_id, tick in edited["compare"].items() if bool(tick)]
    selected = [r for r in before if r in ticked] + [r for r in ticked if r not in before]
    st.session_state[SELECTED_KEY] = selected
    st.session_state[QUERY_KEY] = ",".join(selected)
    if selected:
        st.query_params["compare"] = ",".join(selected)
    elif "compare" in st.query_params:
        del st.query_params["compare"]
    return selected


def _set_deleted(runs_root: Path, run_ids: list[str], deleted: bool, undo: bool) -> None:
    """Button callback: hide or bring back runs, then drop the ticks (a fresh table)."""
    try:
        done, skipped = save_notes(runs_root, {run_id: {"deleted": deleted} for run_id in run_ids})
    except (OSError, ValueError) as exc:  # ValueError: a refusal (PermissionDenied) naming the role needed
        st.error(f"Could not change the runs: {exc}")
        return
    if deleted:
        st.session_state[UNDO_KEY] = done
    elif undo:
        st.session_state.pop(UNDO_KEY, None)
    st.session_state[SELECTED_KEY] = []
    st.session_state[EDITOR_VERSION_KEY] = st.session_state.get(EDITOR_VERSION_KEY, 0) + 1
    verb = "Deleted (hidden)" if deleted else "Restored"
    if done:
        st.toast(f"{verb}: {', '.join(done)}", icon=":material/delete:" if deleted else ":material/undo:")
    if skipped:
        st.toast(f"Folder missing, left as is: {', '.join(skipped)}", icon=":material/warning:")


def table_actions(runs_root: Path, shown: pd.DataFrame, selected: list[str], runs: pd.DataFrame) -> None:
    """Delete selected, Undo, Restore selected and the CSV download, in one row."""
    deleted = shown["state"].str.endswith("deleted")
    to_hide = [r for r in selected if r in shown.index and not deleted[r]]
    to_restore = [r for r in selected if r in shown.index and deleted[r]]
    cols = st.columns(4)
    cols[0].button(
        "Delete selected",
        icon=":material/delete:",
        disabled=not to_hide or not may("run.delete"),
        key="runs-delete",
        on_click=_set_deleted,
        args=(runs_root, to_hide, True, False),
        help="Hides the ticked runs here and in comparisons. Nothing is removed from disk; “Undo” or "
        "“Show deleted” brings them back.",
    )
    undo = st.session_state.get(UNDO_KEY)
    if undo:
        cols[1].button(
            "Undo",
            icon=":material/undo:",
            key="runs-undo-button",
            disabled=not may("run.delete"),
            on_click=_set_deleted,
            args=(runs_root, list(undo), False, True),
            help=f"Brings back the run(s) deleted last: {', '.join(undo)}.",
        )
    if to_restore:
        cols[2].button(
            "Restore selected",
            icon=":material/restore_from_trash:",
            key="runs-restore",
            disabled=not may("run.delete"),
            on_click=_set_deleted,
            args=(runs_root, to_restore, False, False),
            help="Shows the ticked deleted runs again.",
        )
    cols[3].download_button(
        "Download table (CSV)",
        runs_csv(runs),
        "runs.csv",
        "text/csv",
        key="runs-csv",
        icon=":material/download:",
        on_click="ignore",
        help="The runs listed here with their settings and scores, for a spreadsheet.",
    )
