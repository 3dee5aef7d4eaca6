"""Proposals: a model draws masks for a dataset's unlabelled images, for people to correct in the queue's order.

``python -m core propose DATASET [--model NAME_OR_RUN]`` (the dashboard starts the same command as a worker).
For each image still waiting for a person — unlabelled, or proposed by another model — the model's probability
map is post-processed with the model's saved settings into cells (instance ids), saved as a *proposal* mask
version, and scored for uncertainty (:mod:`core.proposals.uncertainty`). The probability map is kept beside the dataset
(``proposals/<stem>.png``) for the editor's uncertainty layer.

Nothing a person made is touched: images that are ``truth`` or ``corrected`` are never candidates, and a save
that races a person's (someone saved the image while the worker predicted it) is refused by the mask store.
People correct them in the order of :func:`core.proposals.correction_queue.queue` (uncertain, typical, unlike the
images that already train the model); the summary names the first ten.

Each proposal is saved on its own, so a worker killed half-way keeps what it did; running it again goes on
with the images that still wait (those it already proposed are skipped as up to date).
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import numpy as np

from core.accounts import acting
from core.proposals.correction_queue import queue
from core.datasets.labels import label_of
from core.datasets.manage import dataset_dir
from core.datasets.manifest import read_manifest
from core.infer import TilePlan, cell_and_seed_maps
from core.io import read_image, write_json_atomic, write_png
from core.masks.undo import MaskState
from core.masks.versions import MaskChanged, PersonsMask, current_version, save_mask
from core.postprocess import instances
from core.runs.folder import RunDir, now
from core.runs.model import inference_settings, load_run_model
from core.settings import Settings
from core.jobs import JobDir
from core.text import plural
from core.timelapse.sequences import video_frames
from core.timelapse.windows import centred_windows
from core.train.runs import find_run
from core.proposals.uncertainty import DEFAULT_SCORE, score

log = logging.getLogger(__name__)
PROPOSALS_DIR = "proposals"


class ProposalError(ValueError):
    """Nothing can be proposed (no such dataset or model, or nothing waits for a mask)."""


def candidates(rows: list[dict], model: str) -> list[dict]:
    """The images a model may propose for: unlabelled ones, and proposals of another model (or an older run).

    >>> rows = [{"stem": "a", "label": "unlabelled"}, {"stem": "b", "label": "truth"},
    ...         {"stem": "c", "label": "proposed", "proposed_by": "old"}, {"stem": "d", "label": "proposed",
    ...         "proposed_by": "new"}, {"stem": "e", "label": "corrected"}]
    >>> [row["stem"] for row in candidates(rows, "new")]
    ['a', 'c']
    """
    return [
        row
        for row in rows
        if label_of(row) == "unlabelled" or (label_of(row) == "proposed" and row.get("proposed_by") != model)
    ]


def default_model(settings: Settings, dataset: str) -> str:
    """The newest finished refinement of ``dataset`` (its proposals come from the lab's own masks), else the
    shipped generalist."""
    from core.runs.folder import list_runs
    from core.train.runs import runs_dir

    for run in list_runs(runs_dir(settings)):
        meta = run.read_config()
        train = meta.get("train", {})
        if (
            train.get("dataset") == dataset
            and train.get("preset") == "refine"
            and run.read_status().state == "finished"
        ):
            return run.run_id
    return "generalist"


def proposals_task(settings: Settings, dataset: str) -> JobDir:
    """Where the proposal worker of a dataset reports progress."""
    return JobDir(settings.layout.tasks / "propose" / dataset)


def propose_dataset(
    settings: Settings,
    dataset: str,
    model_name: str,
    task: JobDir,
    *,
    uncertainty: str = DEFAULT_SCORE,
    limit: int | None = None,
) -> dict:
    """Propose masks for the waiting images of ``dataset`` with ``model_name``; returns a summary."""
    acting.check("propose", dataset)
    folder = dataset_dir(settings, dataset)
    run = find_run(settings, model_name)
    waiting = candidates(read_manifest(folder)["images"], run.run_id)[:limit]
    if not waiting:
        raise ProposalError(
            f"{dataset} has no image waiting for a mask (unlabelled, or proposed by another "
            f"model than {run.run_id}): nothing to propose."
        )
    task.start(len(waiting), f"loading {run.run_id}")
    model = load_run_model(run)
    settings_pp = inference_settings(run)
    plan = model.plan(overlap=min(64, model.tile // 4))
    started, done, skipped, per_image, notes = time.monotonic(), 0, [], [], set()
    # a model that sees several frames predicts each frame of a video from the frames around it
    videos = video_frames(folder) if model.window else {}
    read_frame = functools.lru_cache(maxsize=max(2, 2 * model.window))(read_image)
    for index, row in enumerate(waiting, start=1):
        if model.window and row["stem"] not in videos:
            outcome = f"{row['stem']}: a still image; {run.run_id} segments frames of time-lapse videos"
        elif model.window:
            paths, position = videos[row["stem"]]
            window = [read_frame(paths[i]) for i in centred_windows(len(paths), model.window)[position]]
            outcome = _propose_one(folder, row, run, model, plan, settings_pp, uncertainty, notes, window)
        else:
            outcome = _propose_one(folder, row, run, model, plan, settings_pp, uncertainty, notes)
        if isinstance(outcome, str):
            skipped.append(outcome)
        else:
            per_image.append(outcome)
            done += 1
        rate = (time.monotonic() - started) / index
        task.progress(
            index,
            len(waiting),
            f"proposed {index} of {plural(len(waiting), 'image')} · about {rate * (len(waiting) - index):.0f} s left",
        )
    seconds = time.monotonic() - started
    task.progress(len(waiting), len(waiting), "ordering the proposals for correction")
    summary = {
        "dataset": dataset,
        "model": run.run_id,
        "proposed": done,
        "skipped": skipped,
        "seconds_per_image": round(seconds / max(len(waiting), 1), 3),
        "uncertainty_score": uncertainty,
        "per_image": sorted(per_image, key=lambda item: -item["uncertainty"]),
        "correct_first": queue(folder, limit=10),
        "notes": sorted(notes),
        "finished": now(),
    }
    write_json_atomic(task.path / "summary.json", summary)
    task.finish(
        f"{plural(done, 'proposal')} by {run.run_id}" + (f", {len(skipped)} skipped" if skipped else ""),
        summary={k: v for k, v in summary.items() if k != "per_image"},
    )
    return summary


def _propose_one(
    folder: Path,
    row: dict,
    run: RunDir,
    model,
    plan: TilePlan,
    settings_pp,
    uncertainty: str,
    notes: set,
    window: list[np.ndarray] | None = None,
) -> dict | str:
    """Predict, save and score one image (from ``window``, the frames around it, for a model that sees several);
    returns its record, or why it was skipped."""
    stem = row["stem"]
    base = current_version(folder, stem)
    image = window if window is not None else read_image(folder / row["image"])
    maps, image_notes = model.maps(image, plan, out_dtype=np.uint8)
    notes.update(image_notes)
    probability, seeds = cell_and_seed_maps(maps)
    labels = instances(probability, settings_pp, seeds)
    if labels.max(initial=0) > np.iinfo(np.uint16).max:  # ids would wrap round in the dataset's 16-bit masks
        return (
            f"{stem}: {int(labels.max())} cells found, more than the 65,535 a dataset mask can hold; "
            "split the image into tiles to correct it"
        )
    binary = np.where(labels > 0, 255, 0).astype(np.uint8)
    target = {**row, "instances": row.get("instances") or f"{row['split']}/masks_instances/{stem}.png"}
    value = round(score(probability, uncertainty), 5)
    try:
        save_mask(
            folder,
            target,
            MaskState(binary, labels.astype(np.uint16)),
            base,
            tool=f"proposal by {run.run_id}",
            proposed_by=run.run_id,
            uncertainty=value,
        )
    except PersonsMask as exc:
        return f"{stem}: {exc}"
    except MaskChanged:
        return f"{stem}: someone saved it while the model was predicting it; left as they saved it"
    write_png(folder / PROPOSALS_DIR / f"{stem}.png", probability)
    return {"stem": stem, "uncertainty": value, "cells": int(labels.max(initial=0))}
