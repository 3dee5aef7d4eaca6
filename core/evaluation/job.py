"""Evaluating a run on a test set: predict every image, keep the probability maps, score, write the results.

::

    runs/<run>/predictions/<set>/<stem>.png   8-bit probability maps (× 255), what the Results page re-scores
    runs/<run>/predictions/<set>/seeds/<stem>.png   8-bit seed maps of an instance-aware model (cells grow from them)
    runs/<run>/eval/<set>/status.json         progress while it runs
    runs/<run>/eval/<set>/per_image.csv       one row per image
    runs/<run>/eval/<set>/summary.json        summary, threshold sweep, the images and their true masks

``<set>`` is a split name (``test``, ``valid``) or ``folder-<name>`` for images and masks from folders.
Loading the model imports TensorFlow: this runs in a worker or the command line, never in the dashboard.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.accounts import acting
from core.datasets.layouts import pair_by_name
from core.datasets.labels import trainable
from core.datasets.manifest import read_manifest
from core.evaluation.review import Case, read_truth, score_case, summarised
from core.evaluation.scores import best_threshold, probability_histograms, threshold_sweep
from core.infer import cell_and_seed_maps, overlapped
from core.io import is_image_file, read_image, write_bytes_atomic, write_json_atomic, write_png
from core.postprocess import PostProcessing, binary_mask
from core.jobs import JobDir
from core.runs.folder import RunDir, now
from core.runs.model import inference_settings, load_run_model
from core.text import plural
from core.timelapse.sequences import video_frames
from core.timelapse.windows import centred_windows

log = logging.getLogger(__name__)
PER_IMAGE_COLUMNS = (
    "stem",
    "dice",
    "iou",
    "precision",
    "recall",
    "n_true",
    "n_pred",
    "tp50",
    "fp50",
    "fn50",
    "f1_50",
    "ap_50",
    "ap_75",
    "ap",
    "pq",
    "mean_matched_iou",
    "count_error",
)


SEEDS_DIR = "seeds"


class EvaluationError(ValueError):
    """The images to evaluate on cannot be found or paired."""


@dataclass(frozen=True)
class EvalItem:
    stem: str
    image: Path
    mask: Path
    instances: Path | None = None
    # for a frame of a video: the image files of the whole video in frame order, and this frame's place there
    # (what a model that sees several frames needs, see :meth:`frames`); empty for a still image
    video: tuple[Path, ...] = ()
    position: int = 0

    def frames(self, window: int, read=read_image) -> list[np.ndarray]:
        """The ``window`` frames centred on this one (edge frames repeated), for a model that sees several."""
        if not self.video:
            raise EvaluationError(
                f"{self.image.name} is a still image: a model that sees {window} frames at once "
                "is evaluated on the frames of videos."
            )
        return [read(self.video[i]) for i in centred_windows(len(self.video), window)[self.position]]


def set_label(split: str | None = None, images_dir: Path | None = None) -> str:
    """The name of an evaluation set: a split, or ``folder-<folder name>``.

    >>> set_label("test"), set_label(images_dir=Path("/data/New images"))
    ('test', 'folder-new-images')
    """
    if split:
        return split
    name = re.sub(r"[^a-z0-9]+", "-", Path(images_dir).name.lower()).strip("-") or "images"
    return f"folder-{name}"


def dataset_set_label(split: str, dataset: str, trained_on: str | None) -> str:
    """The evaluation set of ``split`` of ``dataset``: the split's name for the run's own dataset, else
    ``<split>-<dataset>`` (a shipped model scored on several datasets keeps one evaluation per dataset).

    >>> dataset_set_label("test", "cells", "cells"), dataset_set_label("test", "lab-a", "generalist-mix")
    ('test', 'test-lab-a')
    """
    return split if dataset == trained_on else f"{split}-{dataset}"


def split_of_set(label: str) -> str | None:
    """The dataset split an evaluation set holds (``None`` for folders given on the command line).

    >>> split_of_set("test"), split_of_set("valid-lab-a"), split_of_set("folder-new-slides")
    ('test', 'valid', None)
    """
    split = label.split("-", 1)[0]
    return split if split in ("train", "valid", "test") else None


def dataset_items(dataset_dir: Path, split: str) -> list[EvalItem]:
    """The ``split`` images of a dataset whose masks a person made (imported or corrected): only these score."""
    every = [r for r in read_manifest(dataset_dir)["images"] if r["split"] == split]
    rows = [r for r in every if trainable(r)]
    if not rows:
        raise EvaluationError(
            f"Dataset {dataset_dir.name} has no {split!r} images"
            + (" with a mask made by a person yet (correct or accept some in the editor)." if every else ".")
        )
    videos = video_frames(dataset_dir) if any(r.get("sequence") is not None for r in rows) else {}
    return [
        EvalItem(
            r["stem"],
            dataset_dir / r["image"],
            dataset_dir / r["mask"],
            dataset_dir / r["instances"] if r.get("instances") else None,
            *videos.get(r["stem"], ((), 0)),
        )
        for r in rows
    ]


def folder_items(images_dir: Path, masks_dir: Path) -> list[EvalItem]:
    """Images paired with masks by name (``raw_001.tif`` ↔ ``instance_ids_001.tif`` works too)."""
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not Path(folder).is_dir():
            raise EvaluationError(f"{folder} is not a folder (expected the {what}).")
    images = sorted(p for p in Path(images_dir).iterdir() if p.is_file() and is_image_file(p))
    masks = sorted(p for p in Path(masks_dir).iterdir() if p.is_file() and is_image_file(p))
    pairs = pair_by_name(images, masks)
    unpaired = [p.name for p in images if p not in pairs]
    if unpaired:
        log.warning("no mask for %d image(s), left out: %s", len(unpaired), ", ".join(unpaired[:5]))
    if not pairs:
        raise EvaluationError(f"No image in {images_dir} has a mask of the same name in {masks_dir}.")
    return [EvalItem(image.stem, image, mask) for image, mask in sorted(pairs.items())]


def evaluation_dir(run: RunDir, label: str) -> Path:
    return run.path / "eval" / label


def probabilities_dir(run: RunDir, label: str) -> Path:
    return run.path / "predictions" / label


def _per_image_csv(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PER_IMAGE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in PER_IMAGE_COLUMNS})
    return buffer.getvalue().encode("utf-8")


def evaluate_run(
    run: RunDir,
    items: list[EvalItem],
    label: str,
    *,
    checkpoint: str = "best",
    tta: bool = False,
    source: dict | None = None,
) -> dict:
    """Predict and score ``items``; write the results under the run; return the summary."""
    acting.check("evaluate", f"{run.run_id} on {label}")
    task = JobDir(evaluation_dir(run, label))
    task.start(len(items), "loading the model")
    model = load_run_model(run, checkpoint)
    settings = inference_settings(run)
    plan = model.plan(overlap=min(64, model.tile // 4), tta=tta)
    out_dir = probabilities_dir(run, label)
    notes, histograms, scored = set(), [], []
    if model.window:  # a model that sees several frames scores the frames of videos only
        frames = [item for item in items if item.video]
        if not frames:
            raise EvaluationError(
                f"Model {run.run_id} ({model.config.model.name}) segments frames of time-lapse "
                f"videos from the {model.window} frames around each; set {label!r} holds no "
                "video frame."
            )
        if len(frames) < len(items):
            notes.add(f"{len(items) - len(frames)} still image(s) left out: this model segments frames of videos.")
        items = frames
    # neighbouring frames share most of their windows: read each file once per evaluation, a few kept at a time
    read_frame = functools.lru_cache(maxsize=max(2, 2 * model.window))(read_image)

    def predict(item: EvalItem) -> tuple[np.ndarray, list[str]]:
        image = item.frames(model.window, read_frame) if model.window else read_image(item.image)
        return model.maps(image, plan, out_dtype=np.uint8)

    def score(item: EvalItem, made: tuple[np.ndarray, list[str]]):
        maps, image_notes = made
        probability, seeds = cell_and_seed_maps(maps)
        truth, labels = read_truth(item.mask, item.instances)
        if truth.shape != probability.shape:
            raise EvaluationError(
                f"{item.mask.name} is {truth.shape[1]}×{truth.shape[0]} but its image "
                f"{item.image.name} is {probability.shape[1]}×{probability.shape[0]}."
            )
        write_png(out_dir / f"{item.stem}.png", probability)
        if seeds is not None:
            write_png(out_dir / SEEDS_DIR / f"{item.stem}.png", np.ascontiguousarray(seeds))
        case = Case(item.stem, truth, probability, labels, seeds)
        return image_notes, probability_histograms(truth, probability), score_case(case, settings)

    # the next image is predicted while the last one is scored
    for index, (image_notes, histogram, result) in enumerate(overlapped(items, predict, score), start=1):
        notes.update(image_notes)
        histograms.append(histogram)
        scored.append(result)
        task.progress(index, len(items), f"predicted {index} of {plural(len(items), 'image')}")
    per_image, summary = summarised(scored)
    notes.update(cell_score_notes(per_image))
    sweep = threshold_sweep(histograms)
    summary.update(
        run_id=run.run_id,
        set=label,
        checkpoint=model.checkpoint.name,
        threshold=settings.threshold,
        postprocessing=settings.to_dict(),
        best_threshold=float(best_threshold(histograms)),
        tta=tta,
        evaluated=now(),
        notes=sorted(notes),
    )
    items_meta = [
        {
            "stem": i.stem,
            "image": str(i.image),
            "mask": str(i.mask),
            "instances": str(i.instances) if i.instances else None,
        }
        for i in items
    ]
    write_bytes_atomic(task.path / "per_image.csv", _per_image_csv([s.to_dict() for s in per_image]))
    write_json_atomic(
        task.path / "summary.json", {"summary": summary, "sweep": sweep, "items": items_meta, "source": source or {}}
    )
    task.finish(f"Dice {summary['dice']:.3f} on {plural(len(items), 'image')}", summary=summary)
    return summary


def cell_score_notes(per_image: list) -> list[str]:
    """Why cell-level scores are missing, for all or some images (empty when every image has them).

    >>> from core.evaluation.scores import ImageScores
    >>> cell_score_notes([ImageScores("a", 1.0, 1.0, 1.0, 1.0)])[0].split(":")[0]
    'No cell-level scores (F1, AP, panoptic quality)'
    """
    with_cells = sum(1 for scores in per_image if scores.has_instances)
    if not per_image or with_cells == len(per_image):
        return []
    if with_cells == 0:
        return [
            "No cell-level scores (F1, AP, panoptic quality): the true masks only say cell or background, "
            "so touching cells cannot be told apart and matched one to one. Masks that give each cell its "
            "own number (label images) get them."
        ]
    return [
        f"Cell-level scores (F1, AP, panoptic quality) cover the {with_cells} of {len(per_image)} images "
        "whose true masks give each cell its own number; the others only say cell or background."
    ]


def read_evaluation(run: RunDir, label: str) -> dict | None:
    """The saved results of one evaluation set (``None`` if it has not finished)."""
    path = evaluation_dir(run, label) / "summary.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def evaluation_sets(run: RunDir) -> list[str]:
    """The sets this run has been evaluated on (finished ones), test first."""
    folder = run.path / "eval"
    if not folder.is_dir():
        return []
    labels = [p.name for p in folder.iterdir() if (p / "summary.json").is_file()]
    return sorted(labels, key=lambda name: (name != "test", name != "valid", name))


def saved_prediction(run: RunDir, label: str, stem: str, settings: PostProcessing) -> np.ndarray | None:
    """The model's mask of one evaluated image: its saved probability map under ``settings`` (None when the
    image was not part of that evaluation)."""
    path = probabilities_dir(run, label) / f"{stem}.png"
    if not path.is_file():
        return None
    return binary_mask(read_image(path), settings)


def load_cases(run: RunDir, label: str) -> list[Case]:
    """The saved probability maps of a finished evaluation with their true masks (for re-scoring)."""
    saved = read_evaluation(run, label)
    if saved is None:
        return []
    cases = []
    for item in saved["items"]:
        path = probabilities_dir(run, label) / f"{item['stem']}.png"
        if not path.is_file():
            log.warning("probability map %s is missing; image left out", path)
            continue
        truth, labels = read_truth(Path(item["mask"]), Path(item["instances"]) if item.get("instances") else None)
        seeds_path = probabilities_dir(run, label) / SEEDS_DIR / f"{item['stem']}.png"
        seeds = read_image(seeds_path) if seeds_path.is_file() else None
        cases.append(Case(item["stem"], truth, read_image(path), labels, seeds))
    return cases
