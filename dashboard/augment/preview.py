"""The live preview grid of the Augment page: which images, how many samples, and drawing them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.augment.config import AugmentConfig
from core.augment.pipeline import AugmentPipeline
from core.augment.preview import Sample, harm_warnings, make_samples, sample_picture
from core.io import ImageReadError, read_image
from dashboard.augment.form import TITLES
from dashboard.pictures import inline
from dashboard.widget_state import keep, put

COLUMNS = 4
SEED_KEY = "aug-seed"
RANDOM = "(random images)"


@dataclass(frozen=True)
class PreviewChoice:
    stems: tuple[str, ...]
    n: int
    seed: int
    solo: str


@st.cache_data(max_entries=64, show_spinner=False)
def _load_pair(image_path: str, mask_path: str, instances_path: str | None, stamp: float):
    """Image and mask (instance ids when the dataset has them) of one catalogued image; cached per file state."""
    image = read_image(image_path)
    mask = read_image(instances_path) if instances_path else read_image(mask_path)
    return image, mask if mask.ndim == 2 else mask.max(axis=2)


def load_pair(dataset_dir: Path, row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    instances = row["instances_path"] if isinstance(row["instances_path"], str) else None
    mask_file = dataset_dir / (instances or row["mask_path"])
    return _load_pair(
        str(dataset_dir / row["image_path"]),
        str(dataset_dir / row["mask_path"]),
        str(dataset_dir / instances) if instances else None,
        mask_file.stat().st_mtime,
    )


def _reshuffle() -> None:
    put(SEED_KEY, int(st.session_state.get(SEED_KEY, 0)) + 1)


def preview_controls(images: pd.DataFrame, enabled: list[str]) -> PreviewChoice:
    """Which image(s), how many samples, the seed and the solo transform."""
    source, count = st.columns([3, 1], vertical_alignment="bottom")
    solo_col, seed_col, shuffle_col = st.columns([2.2, 1, 1], vertical_alignment="bottom")
    options = [RANDOM] + images["stem"].tolist()
    picked = source.selectbox(
        "Image",
        options,
        key=keep("aug-image", options[1] if len(options) > 1 else RANDOM, options),
        help="One image shown many times, or a different random image in every cell.",
    )
    n = count.selectbox("Samples", [4, 8, 12, 16], key=keep("aug-n", 8, [4, 8, 12, 16]))
    seed = seed_col.number_input(
        "Seed",
        0,
        10**9,
        step=1,
        key=keep(SEED_KEY, 0),
        help="The same seed gives the same samples; change it to see others.",
    )
    shuffle_col.button(
        "Reshuffle",
        on_click=_reshuffle,
        icon=":material/casino:",
        width="stretch",
        help="Another seed: new random samples.",
    )
    shown = ["all"] + enabled
    solo = solo_col.selectbox(
        "Show",
        shown,
        key=keep("aug-solo", "all", shown),
        format_func=lambda n: "all transforms on" if n == "all" else f"only {TITLES[n]}",
        help="See one transform alone, always applied, to judge its strength.",
    )
    if picked == RANDOM:
        rng = np.random.default_rng(int(seed))
        stems = tuple(rng.choice(images["stem"].to_numpy(), size=n, replace=len(images) < n))
    else:
        stems = (picked,) * n
    return PreviewChoice(stems, n, int(seed), solo)


def _describe(sample: Sample) -> str:
    parts = []
    for name, values in sample.plan.applied.items():
        if name == "rotate":
            parts.append(f"rotate {values['angle_deg']:.0f}°")
        elif name == "scale":
            parts.append(f"zoom {values['scale']:.2f}×")
        elif name == "rot90":
            parts.append(f"turn {90 * values['quarter_turns']}°")
        else:
            parts.append(name.replace("_", " "))
    return ", ".join(parts) or "unchanged"


def render_preview(config: AugmentConfig, choice: PreviewChoice, images: pd.DataFrame, dataset_dir: Path) -> None:
    """Draw the samples with their mask outlines, timing and warnings."""
    if choice.solo != "all":
        config = config.solo(choice.solo)
    pipeline = AugmentPipeline(config)
    rows = images.set_index("stem", drop=False)
    samples, originals = [], []
    try:
        for index, stem in enumerate(choice.stems):
            image, mask = load_pair(dataset_dir, rows.loc[stem])
            samples.append(make_samples(pipeline, image, mask, 1, choice.seed * 1000 + index)[0])
            originals.append((image, mask))
    except (ImageReadError, OSError) as exc:
        st.error(f"Cannot read an image of this dataset: {exc}")
        return
    warnings = (
        harm_warnings(originals[0][0], originals[0][1], samples)
        if len(set(choice.stems)) == 1
        else [w for (image, mask), sample in zip(originals, samples) for w in harm_warnings(image, mask, [sample])]
    )
    for warning in dict.fromkeys(warnings):
        st.warning(warning, icon=":material/warning:")
    mean_ms = 1000 * float(np.mean([s.seconds for s in samples]))
    st.caption(f"{len(samples)} samples · {mean_ms:.0f} ms per sample on average · outlines show the masks")
    tiles = [(sample_picture(*originals[0]), "original")] if len(set(choice.stems)) == 1 else []
    tiles += [(sample_picture(s.image, s.mask), f"{s.seconds * 1000:.0f} ms · {_describe(s)}") for s in samples]
    for start in range(0, len(tiles), COLUMNS):
        for column, (picture, caption) in zip(st.columns(COLUMNS), tiles[start : start + COLUMNS]):
            column.image(inline(picture), width="stretch", caption=caption)
