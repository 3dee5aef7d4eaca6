"""The Runs page's compare view: curves, settings that differ, settings against scores, image-by-image A vs B.

Everything is read from the catalogue and the run folders (saved probability maps, config.json); nothing
here loads a model.
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from core.display import fit_within, to_display_rgb
from core.evaluation.job import probabilities_dir, read_evaluation
from core.evaluation.review import read_truth
from core.io import read_image
from core.postprocess import PostProcessing, binary_mask, error_picture, outline
from core.runs.compare import (
    PairedDifference,
    config_diff,
    lineage_rows,
    masks_changed,
    paired_bootstrap,
    precision_note,
    trained_precisions,
    with_precision_row,
)
from core.runs.folder import RunDir
from core.runs.model import inference_settings
from core.runs.queries import metric_curves, params_wide, per_image_pairs
from core.runs.report import comparison_report
from core.text import plural
from dashboard import context, figures
from dashboard.pages_index import page_path
from dashboard.pictures import inline

OUTLINE_COLOUR = (255, 230, 0)  # yellow: magenta already means a false positive in the error pictures
PICTURE_SIDE = 420
COORDINATES = {
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
    "patch_size": "Patch size (px)",
    "model.depth": "Model depth",
    "model.base_filters": "Filters (first level)",
}
HELP = {
    "align": "By epoch: the n-th pass over the training images of each run lines up. By wall time: minutes on the "
    "clock since each run started, the fairer view when one run is slower per epoch.",
    "coordinates": "Parallel coordinates: each line is one run, passing through its value on every axis and "
    "ending at its test Dice (colour). Lines that end high show the settings that worked; drag "
    "along an axis to pick out a range.",
    "pair": "The image-by-image comparison takes two runs at a time: A and B.",
    "bootstrap": "Bootstrap: the test images are drawn again at random (with repeats) 10,000 times and the "
    "difference recomputed each time; the spread of those differences gives the 95 % confidence "
    "interval (CI): the range where the true difference most likely lies. If it does not include "
    "0, the difference is unlikely to be luck of which images were in the test set.",
    "precision": "The row *precision used* is the precision each run really trained in (from its status): "
    "a run set to auto trains in bfloat16 only on CPUs where it measured at least 15 % faster. "
    "bfloat16 rounds more than float32, so two runs can differ for that reason alone.",
    "image": "Images are ordered by how much the two runs disagree; clicking a point in the plot picks it too.",
}


def read_configs(runs_root: Path, run_ids: list[str]) -> dict[str, dict]:
    """Each run's config.json (runs whose folder is gone are left out)."""
    configs = {}
    for run_id in run_ids:
        try:
            configs[run_id] = RunDir(runs_root / run_id).read_config()
        except (OSError, ValueError):
            continue
    return configs


def masks_edited_between(config_a: dict, config_b: dict) -> int | None:
    """How many masks were at a different version when run A and run B were trained (None: other datasets).

    >>> masks_edited_between({"train": {"dataset": "c"}, "lineage": {"mask_versions": {"x": 1, "y": 2}}},
    ...                      {"train": {"dataset": "c"}, "lineage": {"mask_versions": {"x": 1, "y": 3, "z": 1}}})
    2
    """
    if config_a.get("train", {}).get("dataset") != config_b.get("train", {}).get("dataset"):
        return None
    return masks_changed(
        config_a.get("lineage", {}).get("mask_versions", {}), config_b.get("lineage", {}).get("mask_versions", {})
    )


def _as_text(frame: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """A table of mixed values as text with run names for column headers (mixed types cannot be shown)."""
    if "key" in frame.columns:
        frame = frame.set_index("key")
    return frame.rename(columns=lambda c: labels.get(c, c)).map(_cell)


def _cell(value) -> str:
    """A table cell as text: blanks for missing values, whole numbers without ".0".

    >>> _cell(None), _cell(float("nan")), _cell(4.0), _cell("bce")
    ('', '', '4', 'bce')
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:g}"
    return str(value)


def curves_section(con: duckdb.DuckDBPyConnection, run_ids: list[str], labels: dict[str, str]) -> None:
    st.markdown("**Training curves**")
    align = (
        st.segmented_control(
            "Align the curves", ["by epoch", "by wall time"], default="by epoch", key="runs-align", help=HELP["align"]
        )
        or "by epoch"
    )
    curves = metric_curves(con, run_ids)
    if curves.empty:
        st.caption("These runs have not recorded any epoch yet.")
        return
    by_time = align != "by epoch"
    if by_time and curves["elapsed_s"].isna().all():
        st.caption("These runs recorded no epoch timings, so the curves are shown by epoch.")
        by_time = False
    st.plotly_chart(
        figures.compare_curves(curves, {r: labels[r] for r in run_ids}, by_time=by_time),
        width="stretch",
        key="runs-curves",
    )
    st.caption("Dashed: training loss; solid: validation loss. Colours follow the legend.")


def settings_section(
    configs: dict[str, dict], labels: dict[str, str], precisions: dict[str, str | None] | None = None
) -> None:
    """The settings that differ, then the precision each run really trained in (``auto`` can mean either)."""
    st.markdown("**Settings that differ**", help=HELP["precision"])
    diff = config_diff({run_id: config.get("train", {}) for run_id, config in configs.items()})
    table = with_precision_row(diff, precisions or {})
    if diff.empty:
        st.caption(
            "These runs were trained with the same settings."
            if table.empty
            else "These runs were trained with the same settings; the last row is the precision each trained in."
        )
    if not table.empty:
        st.dataframe(_as_text(table, labels), width="stretch", key="runs-diff")
    note = precision_note(precisions or {}, labels)
    if note:
        st.warning(note, icon=":material/warning:")


def coordinates_frame(con: duckdb.DuckDBPyConnection, scored: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The runs with a test Dice and their numeric settings; the axes with a value for every run."""
    frame = scored.set_index("id")
    params = params_wide(con, list(frame.index))
    for key in ("model.depth", "model.base_filters"):
        if key in params.columns:
            frame[key] = params[key].reindex(frame.index)
    axes = {}
    for column, label in COORDINATES.items():
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
            if frame[column].notna().all():
                axes[column] = label
    return frame, axes


def coordinates_section(con: duckdb.DuckDBPyConnection, every: pd.DataFrame) -> None:
    st.markdown("**Settings against test Dice, all evaluated runs**", help=HELP["coordinates"])
    scored = every[pd.to_numeric(every["test_dice"], errors="coerce").notna()]
    if len(scored) < 2:
        st.caption("This needs at least two runs evaluated on their test images (Results page).")
        return
    frame, axes = coordinates_frame(con, scored)
    st.plotly_chart(figures.parameter_coordinates(frame, axes), width="stretch", key="runs-coordinates")


@st.cache_data(max_entries=32, show_spinner=False)
def _bootstrap(dice_a: tuple[float, ...], dice_b: tuple[float, ...]) -> PairedDifference:
    return paired_bootstrap(np.array(dice_a), np.array(dice_b))


def pick_pair(run_ids: list[str], labels: dict[str, str]) -> tuple[str, str]:
    """Runs A and B (the first two selected unless changed)."""
    cols = st.columns(2)
    chosen = []
    for col, key, name, default in ((cols[0], "runs-a", "Run A", 0), (cols[1], "runs-b", "Run B", 1)):
        if st.session_state.get(key) not in run_ids:  # the selection changed since
            st.session_state.pop(key, None)
        chosen.append(col.selectbox(name, run_ids, index=default, format_func=labels.get, key=key, help=HELP["pair"]))
    return chosen[0], chosen[1]


def bootstrap_cards(pairs: pd.DataFrame, labels: dict[str, str], a: str, b: str) -> None:
    """Mean Dice of A and B over the same images, their difference with its 95 % CI, and the verdict."""
    scored = pairs.dropna(subset=["dice_a", "dice_b"])
    if len(scored) < 2:
        st.caption("The two runs share fewer than two scored test images: too few to compare.")
        return
    result = _bootstrap(tuple(scored["dice_a"].astype(float)), tuple(scored["dice_b"].astype(float)))
    cols = st.columns(3)
    cols[0].metric(
        "Mean Dice A",
        f"{result.mean_a:.3f}",
        help=f"{labels[a]}: Dice averaged over the {result.n} test images both runs were scored on.",
    )
    cols[1].metric(
        "Mean Dice B", f"{result.mean_b:.3f}", help=f"{labels[b]}: Dice averaged over the same {result.n} images."
    )
    cols[2].metric(
        "Difference (B − A)",
        f"{result.mean_difference:+.3f}",
        help="Mean over images of (Dice of B − Dice of A); positive means B is better. " + HELP["bootstrap"],
    )
    st.caption(
        f"{result.confidence:.0%} confidence interval (CI) of the difference: {result.low:+.3f} to "
        f"{result.high:+.3f} (paired bootstrap over {result.n} images).",
        help=HELP["bootstrap"],
    )
    st.info(result.verdict, icon=":material/balance:")


def clicked_stem(event, figure) -> str | None:
    """The image of the point clicked in the scatter plot, if any."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or []:
        data = point.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if data is None and point.get("curve_number") is not None and point.get("point_index") is not None:
            data = figure.data[point["curve_number"]].customdata[point["point_index"]]
        if isinstance(data, str):
            return data
    return None


def pick_image(pairs: pd.DataFrame, figure) -> str:
    """The scatter plot (click a point) and, always there, a select box of the images, most disputed first."""
    event = st.plotly_chart(figure, width="stretch", key="runs-scatter", on_select="rerun", selection_mode="points")
    ordered = pairs.assign(gap=(pairs["dice_b"] - pairs["dice_a"]).abs()).sort_values("gap", ascending=False)
    dice = {row.stem: (row.dice_a, row.dice_b) for row in ordered.itertuples()}
    clicked = clicked_stem(event, figure)
    if clicked in dice and clicked != st.session_state.get("runs-clicked"):
        st.session_state["runs-clicked"] = clicked
        st.session_state["runs-image"] = clicked
    if st.session_state.get("runs-image") not in dice:
        st.session_state.pop("runs-image", None)
    return st.selectbox(
        "Image",
        list(dice),
        key="runs-image",
        help=HELP["image"],
        format_func=lambda s: f"{s} · A {dice[s][0]:.3f} · B {dice[s][1]:.3f}",
    )


@st.cache_data(max_entries=32, show_spinner="Drawing the predictions…")
def comparison_pictures(item: tuple, probabilities: tuple, settings: tuple) -> list[np.ndarray | None]:
    """The image with its true outline, then each run's errors (its probability map at its own threshold).

    ``item``: (image, mask, instances) paths; ``probabilities``: one map path (or None) per run;
    ``settings``: each run's post-processing as a tuple of items.
    """
    image_path, mask_path, instances_path = item
    picture = to_display_rgb(read_image(Path(image_path)))
    truth, labels = read_truth(Path(mask_path), Path(instances_path) if instances_path else None)
    outlined = picture.copy()
    outlined[outline(labels if labels is not None else truth)] = OUTLINE_COLOUR
    shown = [outlined]
    for path, chosen in zip(probabilities, settings):
        if path is None:
            shown.append(None)
            continue
        predicted = binary_mask(read_image(Path(path)), PostProcessing.from_dict(dict(chosen)))
        shown.append(error_picture(picture, truth, predicted))
    return [None if p is None else fit_within(p, PICTURE_SIDE) for p in shown]


def side_by_side(runs_root: Path, a: str, b: str, stem: str, labels: dict[str, str], dice: tuple) -> None:
    runs = [RunDir(runs_root / a), RunDir(runs_root / b)]
    items = {i["stem"]: i for run in reversed(runs) for i in (read_evaluation(run, "test") or {}).get("items", [])}
    item = items.get(stem)
    maps = [probabilities_dir(run, "test") / f"{stem}.png" for run in runs]
    if item is None or not Path(item["image"]).is_file() or not Path(item["mask"]).is_file():
        st.caption(f"The image {stem} or its mask is no longer on disk.")
        return
    settings = [inference_settings(run) for run in runs]
    try:
        pictures = comparison_pictures(
            (item["image"], item["mask"], item.get("instances")),
            tuple(str(m) if m.is_file() else None for m in maps),
            tuple(tuple(s.to_dict().items()) for s in settings),
        )
    except (OSError, ValueError) as exc:
        st.caption(f"The pictures of {stem} cannot be drawn: {exc}")
        return
    captions = [f"{stem} · yellow: true outline"] + [
        f"{name} {labels[run.run_id]} · Dice {score:.3f} · threshold {chosen.threshold:.2f}"
        for name, run, score, chosen in zip("AB", runs, dice, settings)
    ]
    for col, picture, caption in zip(st.columns(3), pictures, captions):
        if picture is None:
            col.caption(f"{caption}: no saved prediction")
        else:
            col.image(inline(picture), caption=caption, width="stretch")
    st.caption("Green: cell found. Magenta: predicted where there is no cell. Orange: cell missed.")


def pair_section(
    con: duckdb.DuckDBPyConnection, run_ids: list[str], runs_root: Path, labels: dict[str, str]
) -> tuple[str, str, pd.DataFrame]:
    """A against B on each test image: the bootstrap cards, the scatter plot and the pictures of one image."""
    st.markdown("**Image by image: run A against run B**")
    a, b = pick_pair(run_ids, labels)
    if a == b:
        st.warning("Pick two different runs as A and B.")
        return a, b, pd.DataFrame()
    pairs = per_image_pairs(con, a, b, split="test")
    if pairs.empty:
        st.caption("Both runs need an evaluation on the same test images: evaluate them on the Results page.")
        st.page_link(page_path("results"), label="Go to Results", icon=":material/fact_check:", query_params={"run": a})
        return a, b, pairs
    bootstrap_cards(pairs, labels, a, b)
    figure = figures.per_image_scatter(pairs, labels[a], labels[b])
    stem = pick_image(pairs, figure)
    row = pairs[pairs["stem"] == stem].iloc[0]
    side_by_side(runs_root, a, b, stem, labels, (row["dice_a"], row["dice_b"]))
    return a, b, pairs


LINEAGE_COLUMNS = {
    "dataset": "Dataset",
    "dataset_revision": "Dataset revision",
    "n_train": "Train images",
    "n_valid": "Validation images",
    "n_test": "Test images",
    "edited_masks": "Masks edited so far",
    "parent_run": "Continued from",
    "masks_changed_vs_first": "Masks changed vs the first run",
}


def lineage_section(configs: dict[str, dict], labels: dict[str, str], a: str, b: str) -> None:
    st.markdown(
        "**Training data of each run**",
        help="Which dataset version each run learnt from: a mask fixed "
        "on the Annotate page between two runs is one reason their scores differ.",
    )
    rows = lineage_rows(configs)
    if not rows.empty:
        table = rows.assign(run_id=rows["run_id"].map(labels)).set_index("run_id").rename(columns=LINEAGE_COLUMNS)
        table.index.name = "run"
        st.dataframe(_as_text(table, {}), width="stretch", key="runs-lineage")
    if a in configs and b in configs and a != b:
        changed = masks_edited_between(configs[a], configs[b])
        st.caption(
            "A and B were trained on different datasets."
            if changed is None
            else f"{plural(changed, 'mask')} {'was' if changed == 1 else 'were'} edited between the training of A "
            "and of B."
            if changed
            else "A and B were trained on the same masks."
        )


def downloads(run_ids: list[str], runs_root: Path, a: str, b: str, pairs: pd.DataFrame) -> None:
    """The comparison report (built only when clicked) and the per-image table."""
    report_cursor = context.cursor()  # its own cursor: the report is built on another thread
    # the report compares its first two runs image by image: make them the A and B chosen here
    ordered = list(dict.fromkeys([a, b, *run_ids])) if a != b else run_ids
    left, right = st.columns(2)
    left.download_button(
        "Download comparison report (HTML)",
        lambda: comparison_report(report_cursor, ordered, runs_root).encode("utf-8"),
        "runs-comparison.html",
        "text/html",
        key="runs-report",
        icon=":material/download:",
        on_click="ignore",
        help="One web page with these curves, settings and scores, to keep "
        "or send; it opens in any browser without the dashboard.",
    )
    if not pairs.empty:
        right.download_button(
            "Download comparison (CSV)",
            pairs.to_csv(index=False).encode("utf-8"),
            f"{a}-vs-{b}.csv",
            "text/csv",
            key="runs-pairs-csv",
            icon=":material/download:",
            on_click="ignore",
            help="Dice and IoU of A and B on each test image.",
        )


def compare_view(
    con: duckdb.DuckDBPyConnection, run_ids: list[str], runs_root: Path, labels: dict[str, str], every: pd.DataFrame
) -> None:
    """Everything below the table once two or more runs are ticked."""
    curves_section(con, run_ids, labels)
    configs = read_configs(runs_root, run_ids)
    missing = [labels[r] for r in run_ids if r not in configs]
    if missing:
        st.caption(f"Folder missing, settings unknown: {', '.join(missing)}.")
    settings_section(configs, labels, trained_precisions(con, run_ids))
    coordinates_section(con, every)
    a, b, pairs = pair_section(con, run_ids, runs_root, labels)
    lineage_section(configs, labels, a, b)
    downloads(run_ids, runs_root, a, b, pairs)
