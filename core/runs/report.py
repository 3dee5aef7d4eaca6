"""A comparison of training runs as one self-contained HTML file (to mail, archive or print), and as CSV.

The HTML needs nothing from the network: the CSS is inline, plotly.js is embedded once with the first
figure, and pictures are PNG data URIs. Every piece of user text (names, notes, tags, settings, file
stems) is escaped. Pictures come from the run folders (the evaluation's saved probability maps and the
image/mask paths in ``eval/<split>/summary.json``); what cannot be read is left out with a note.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from core.display import fit_within, to_display_rgb
from core.evaluation.review import read_truth
from core.io import encode_png, read_image
from core.masks.pixels import overlay
from core.postprocess import binary_mask
from core.runs.compare import (
    MISSING,
    USED_PRECISION,
    PairedDifference,
    compare_pairs,
    config_diff,
    gains_and_losses,
    lineage_rows,
    precision_note,
    trained_precisions,
    with_precision_row,
)
from core.runs.folder import RunDir
from core.runs.model import inference_settings
from core.runs.queries import UnknownRun, best_and_last, metric_curves, params_dicts, per_image_pairs, select_runs

log = logging.getLogger(__name__)
THUMB_SIDE = 160
TRUTH_COLOUR = (0, 200, 0)
RUN_COLOUR = (255, 64, 160)
SUMMARY_COLUMNS = (
    "id",
    "name",
    "status",
    "dataset",
    "model",
    "preset",
    "tags",
    "best_val_dice",
    "best_epoch",
    "last_epoch",
    "last_val_dice",
    "test_dice",
    "epochs",
    "duration_s",
    "device",
    "created",
    "parent_run",
    "notes",
)
CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.1em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta, .note { color: #666; } .verdict { font-size: 1.15em; font-weight: 600; }
.warning { color: #7a4300; background: #fff6e5; border-left: 4px solid #e0a000; padding: 0.4em 0.8em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.up { color: #11772d; } td.down { color: #b3261e; } img { display: block; image-rendering: pixelated; }
"""


def cell_text(value: Any) -> str:
    """A table cell as short text: numbers to 3 decimals, lists joined, missing values as a dash.

    >>> cell_text(0.81234), cell_text(12), cell_text(["a", "b"]), cell_text(None), cell_text(float("nan"))
    ('0.812', '12', 'a, b', '—', '—')
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    if value is None or value is pd.NaT or value is pd.NA:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return MISSING if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def html_table(frame: pd.DataFrame, *, index: bool = False, signed: tuple[str, ...] = ()) -> str:
    """An HTML table of ``frame`` with every header and cell escaped; ``signed`` columns coloured by sign.

    >>> html_table(pd.DataFrame({"name": ["<b>x</b>"], "dice": [0.5]}))
    '<table><tr><th>name</th><th>dice</th></tr><tr><td>&lt;b&gt;x&lt;/b&gt;</td><td class="num">0.500</td></tr></table>'
    """
    shown = frame.reset_index() if index else frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for column, value in zip(shown.columns, row):
            classes = ["num"] if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) else []
            if column in signed and isinstance(value, (int, float, np.number)) and value == value and value != 0:
                classes.append("up" if value > 0 else "down")
            attribute = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attribute}>{html.escape(cell_text(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def runs_table(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> pd.DataFrame:
    """The runs side by side (catalogue row + best/last epoch), in the order given.

    Raises :class:`core.runs.queries.UnknownRun` (a ``KeyError``) naming the first run the catalogue lacks.
    """
    runs = select_runs(con, run_ids)
    unknown = [run_id for run_id in run_ids if run_id not in set(runs["id"])]
    if unknown:
        raise UnknownRun(unknown[0])
    epochs = best_and_last(con, run_ids).drop(columns=["best_val_dice"]).rename(columns={"run_id": "id"})
    merged = runs.merge(epochs, on="id", how="left")
    return merged[list(SUMMARY_COLUMNS)]


def runs_csv(frame: pd.DataFrame) -> bytes:
    """A runs table as UTF-8 CSV (lists joined with ``;``, timestamps in ISO form).

    >>> runs_csv(pd.DataFrame({"id": ["r1"], "tags": [["a", "b"]]})).decode()
    'id,tags\\nr1,a;b\\n'
    """

    def joined(value: Any) -> Any:
        return ";".join(map(str, value)) if isinstance(value, (list, tuple, np.ndarray)) else value

    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(joined)
    return out.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z").encode("utf-8")


def curves_figure(curves: pd.DataFrame, key: str, title: str) -> go.Figure | None:
    """One line per run of metric ``key`` against epoch; ``None`` when no run recorded it."""
    chosen = curves[curves["key"] == key]
    if chosen.empty:
        return None
    figure = go.Figure()
    for run_id, group in chosen.groupby("run_id", sort=False):
        figure.add_trace(
            go.Scatter(
                x=group["epoch"],
                y=group["value"],
                mode="lines+markers",
                name=str(run_id),
                hovertemplate="epoch %{x}: %{y:.4f}",
            )
        )
    figure.update_layout(
        title=title,
        xaxis_title="epoch",
        yaxis_title=key,
        height=380,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def _figures_html(figures: list[go.Figure]) -> str:
    parts = []
    for number, figure in enumerate(figures):
        # plotly.js goes in once, inline, with the first figure; the others reuse it.
        parts.append(pio.to_html(figure, include_plotlyjs="inline" if number == 0 else False, full_html=False))
    return "\n".join(parts)


def _data_uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(rgb)).decode("ascii")


def _evaluation_items(runs_root: Path, run_ids: list[str], split: str) -> dict[str, dict]:
    """stem → item (image and mask paths) from the first run whose evaluation summary is readable."""
    for run_id in run_ids:
        path = runs_root / run_id / "eval" / split / "summary.json"
        try:
            items = json.loads(path.read_text(encoding="utf-8"))["items"]
            return {item["stem"]: item for item in items}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("no evaluation items in %s: %s", path, exc)
    return {}


def _predicted(runs_root: Path, run_id: str, split: str, stem: str, side: int) -> np.ndarray:
    probability = read_image(runs_root / run_id / "predictions" / split / f"{stem}.png")
    mask = binary_mask(probability, inference_settings(RunDir(runs_root / run_id)))
    return fit_within(mask.astype(np.uint8) * 255, side, nearest=True)


def picture_row(
    runs_root: Path, run_a: str, run_b: str, split: str, item: dict, side: int = THUMB_SIDE
) -> list[str] | None:
    """Data URIs of image | true outline | A's mask | B's mask for one evaluated image; None if unreadable."""
    stem = item["stem"]
    try:
        image = fit_within(to_display_rgb(read_image(item["image"])), side)
        truth, _ = read_truth(Path(item["mask"]))
        truth = fit_within(truth.astype(np.uint8) * 255, side, nearest=True)
        masks = [_predicted(runs_root, run_id, split, stem, side) for run_id in (run_a, run_b)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("pictures of %s left out of the report: %s", stem, exc)
        return None
    if truth.shape != image.shape[:2] or any(m.shape != image.shape[:2] for m in masks):
        log.warning("pictures of %s left out of the report: the image and masks differ in size", stem)
        return None
    pictures = [image, overlay(image, truth, mode="contour", colour=TRUTH_COLOUR, opacity=1.0)]
    pictures += [overlay(image, mask, opacity=0.5, colour=RUN_COLOUR) for mask in masks]
    return [_data_uri(p) for p in pictures]


def _pictures_section(runs_root: Path, run_a: str, run_b: str, split: str, pairs: pd.DataFrame) -> str:
    gained, lost = gains_and_losses(pairs, k=3)
    items = _evaluation_items(runs_root, [run_a, run_b], split)
    dice = pairs.set_index("stem")
    rows = []
    for label, stems in (("gained", gained), ("lost", lost)):
        for stem in stems:
            uris = picture_row(runs_root, run_a, run_b, split, items[stem]) if stem in items else None
            change = dice.loc[stem, "dice_b"] - dice.loc[stem, "dice_a"]
            caption = (
                f"{html.escape(stem)}<br>B {label} {abs(change):.3f} Dice<br>"
                f"A {dice.loc[stem, 'dice_a']:.3f} → B {dice.loc[stem, 'dice_b']:.3f}"
            )
            cells = (
                "".join(f'<td><img src="{uri}" alt=""></td>' for uri in uris)
                if uris
                else '<td colspan="4" class="note">pictures not available (files missing or unreadable)</td>'
            )
            rows.append(f"<tr><td>{caption}</td>{cells}</tr>")
    if not rows:
        return '<p class="note">B and A score the same on every image.</p>'
    head = "<tr><th>image</th><th>picture</th><th>true outline</th><th>A's mask</th><th>B's mask</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _read_config(runs_root: Path, run_id: str) -> dict[str, Any]:
    try:
        return RunDir(runs_root / run_id).read_config()
    except (OSError, ValueError) as exc:
        log.warning("config of run %s not readable: %s", run_id, exc)
        return {}


def settings_section(diff: pd.DataFrame, precisions: dict[str, str | None]) -> str:
    """The settings that differ, then the precision each run really trained in, as HTML.

    Parameters
    ----------
    diff : DataFrame
        :func:`core.runs.compare.config_diff` of the runs' settings.
    precisions : dict
        Run id → the precision it trained in (:func:`core.runs.compare.trained_precisions`; None: not recorded).

    Returns
    -------
    str
        The table with the row ``precision used`` last (when any run recorded one), and a warning when the
        runs trained in different precisions (:func:`core.runs.compare.precision_note`).

    Examples
    --------
    >>> same = config_diff({"a": {"lr": 0.001}, "b": {"lr": 0.001}})
    >>> settings_section(same, {"a": None, "b": None})
    '<p class="note">All settings are the same.</p>'
    >>> page = settings_section(same, {"a": "float32", "b": "bfloat16"})
    >>> "<td>precision used</td><td>float32</td><td>bfloat16</td>" in page, 'class="warning"' in page
    (True, True)
    """
    table = with_precision_row(diff, precisions)
    if table.empty:
        return '<p class="note">All settings are the same.</p>'
    parts = []
    if diff.empty:
        parts.append(
            '<p class="note">All settings are the same; the last row is the precision each run trained in.</p>'
        )
    parts.append(html_table(table, index=True))
    if USED_PRECISION in table.index:
        parts.append(
            f'<p class="note">The row <em>{USED_PRECISION}</em> is the precision each run really trained '
            "in (from its status): a setting of auto can mean either float32 or bfloat16.</p>"
        )
    note = precision_note(precisions)
    if note:
        parts.append(f'<p class="warning">{html.escape(note)}</p>')
    return "".join(parts)


def _paired_section(con: duckdb.DuckDBPyConnection, runs_root: Path, run_a: str, run_b: str, split: str) -> str:
    pairs = per_image_pairs(con, run_a, run_b, split)
    scored = pairs.dropna(subset=["dice_a", "dice_b"])
    intro = (
        f"<p>A = <code>{html.escape(run_a)}</code>, B = <code>{html.escape(run_b)}</code>; "
        f"Dice on the {html.escape(split)} images both runs were evaluated on.</p>"
    )
    if len(scored) < 2:
        return intro + f'<p class="note">Not enough images evaluated by both runs ({len(scored)}) to compare.</p>'
    result: PairedDifference = compare_pairs(scored)
    stats = pd.DataFrame(
        [
            {
                "images": result.n,
                "mean Dice A": result.mean_a,
                "mean Dice B": result.mean_b,
                "B − A": result.mean_difference,
                "CI low": result.low,
                "CI high": result.high,
                "p-value": result.p_value,
            }
        ]
    )
    table = scored.assign(difference=scored["dice_b"] - scored["dice_a"]).sort_values("difference", ascending=False)
    return (
        intro
        + f'<p class="verdict">{html.escape(result.verdict)}</p>'
        + html_table(stats)
        + "<h2>Per-image Dice, A vs B</h2>"
        + html_table(table[["stem", "dice_a", "dice_b", "difference"]], signed=("difference",))
        + "<h2>Where B gained and lost most</h2>"
        + _pictures_section(runs_root, run_a, run_b, split, scored)
    )


def comparison_report(
    con: duckdb.DuckDBPyConnection, run_ids: list[str], runs_root: Path, *, split: str = "test"
) -> str:
    """The comparison of ``run_ids`` as a complete, self-contained HTML document.

    Parameters
    ----------
    con : DuckDBPyConnection
        The catalogue (synced, so it knows the runs).
    run_ids : list of str
        The runs; the first two are A and B of the paired comparison.
    runs_root : Path
        The folder holding the run folders (pictures and lineage are read from there).
    split : str
        The evaluation set compared image by image.

    Raises
    ------
    UnknownRun
        (a ``KeyError``) when a run is not in the catalogue.
    """
    if not run_ids:
        raise ValueError("Give at least one run to report on.")
    table = runs_table(con, run_ids)
    diff = config_diff(params_dicts(con, run_ids))
    lineage = lineage_rows({run_id: _read_config(runs_root, run_id) for run_id in run_ids})
    curves = metric_curves(con, run_ids, ("val_dice", "loss"))
    figures = [
        f
        for f in (curves_figure(curves, "val_dice", "Validation Dice"), curves_figure(curves, "loss", "Training loss"))
        if f is not None
    ]
    title = "Run comparison: " + " vs ".join(run_ids)
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Made {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {len(run_ids)} runs</p>',
        "<h2>Runs</h2>",
        html_table(table),
        "<h2>Settings that differ</h2>",
        settings_section(diff, trained_precisions(con, run_ids)),
        "<h2>Training curves</h2>",
        _figures_html(figures) if figures else '<p class="note">No training curves recorded.</p>',
    ]
    if len(run_ids) >= 2:
        parts += ["<h2>Is B better than A?</h2>", _paired_section(con, runs_root, run_ids[0], run_ids[1], split)]
    parts += ["<h2>Data lineage</h2>", html_table(lineage)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
