"""Add images to an existing dataset: raw images (unlabelled) or images with masks, into a split of choice.

The same checks as an import run on the new files; they are written into a hidden folder inside
the dataset and moved into place, and the manifest gains their rows, under the dataset's lock.
An image whose name the dataset already has is refused by name, never renamed or replaced.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.accounts import acting
from core.config import ImportOptions, SplitOptions, from_dict
from core.datasets.importer import Progress, _check_all, _no_progress, _place_files, _scan, _unpacked
from core.datasets.layouts import TIMELAPSE
from core.datasets.manage import dataset_dir
from core.datasets.manifest import read_manifest, write_manifest
from core.datasets.report import ImportFailed, Report
from core.masks.versions import dataset_lock
from core.pixel_size import with_summary
from core.settings import Settings

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class AddResult:
    name: str
    added: dict[str, int]  # per split
    labels: dict[str, int]  # per label state of the added images
    report: Report
    seconds: float


def add_images(
    settings: Settings,
    name: str,
    source: Path,
    *,
    split: str = "train",
    progress: Progress = _no_progress,
    source_label: str | None = None,
) -> AddResult:
    """Add the images of ``source`` (folder or zip, any layout; masks optional) to dataset ``name``.

    ``split``: ``train``/``valid``/``test`` for all of them, or ``auto`` to keep the source's own split
    folders and share the rest out with the dataset's split ratios. Raises :class:`ImportFailed`
    (with the report) when nothing can be added; nothing is changed then.
    """
    acting.check("dataset.add_images", name)
    started = time.monotonic()
    target = dataset_dir(settings, name)
    report = Report()
    label = Path(source_label).name if source_label else Path(source).name
    if split not in SPLITS + ("auto",):
        report.add("error", "bad-split", label, f"split {split!r} is not one of {', '.join(SPLITS)} or auto.")
        raise ImportFailed(report)
    manifest = read_manifest(target)
    known = {row["stem"] for row in manifest["images"]}
    sequences = {str(row["sequence"]) for row in manifest["images"] if row.get("sequence") is not None}
    options = ImportOptions(name=name, images_only=True, **_split_options(manifest))
    staging = target / f".adding-{uuid.uuid4().hex[:8]}"
    try:
        with _unpacked(Path(source).expanduser().resolve(), settings, report, label) as folder:
            scan = _scan(folder, options, report, label)
            for pair in scan.pairs:
                if scan.layout == TIMELAPSE and pair.stem in sequences:
                    report.add(
                        "error",
                        "video-name-taken",
                        scan.rel(pair.image),
                        f"has the same name as a video {name} already holds ({pair.stem}); its frames would "
                        "mix with that video's.",
                        "Rename the file (or folder), or leave it out.",
                        stem=pair.stem,
                    )
                elif pair.stem in known:
                    report.add(
                        "error",
                        "name-taken",
                        scan.rel(pair.image),
                        f"has the same name as an image {name} already holds ({pair.stem}).",
                        "Rename the file, or leave it out.",
                        stem=pair.stem,
                    )
            staging.mkdir()
            results, splits = _check_all(scan, options, staging, report, progress)
            # a video's frames are named <video>_t0000, …: those names must be free as well
            for result in results:
                stem = result.source.stem
                if (
                    result.stats.get("sequence") is not None
                    and stem in known
                    and result.stats["sequence"] not in sequences
                ):
                    report.add(
                        "error",
                        "name-taken",
                        result.stats["source"],
                        f"would be named {stem}, the name of an image {name} already holds.",
                        "Rename the video, or leave it out.",
                        stem=stem,
                    )
        if report.errors:
            raise ImportFailed(report)
        if split != "auto":
            splits = {stem: split for stem in splits}
        rows = _place_files(staging, [r for r in results if r.ok], splits)
        with dataset_lock(target):
            _move_into_dataset(staging, target)
            current = read_manifest(target)
            current["images"].extend(rows)
            current["counts"] = {s: sum(r["split"] == s for r in current["images"]) for s in SPLITS}
            write_manifest(target, with_summary(current))  # the shared pixel size may no longer be shared
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    added = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    labels: dict[str, int] = {}
    for row in rows:
        labels[row["label"]] = labels.get(row["label"], 0) + 1
    log.info("added %d images to %s in %.1f s", len(rows), name, time.monotonic() - started)
    acting.record_done("dataset.add_images", name, {"source": source_label or str(source), "added": len(added)})
    return AddResult(name, added, labels, report, time.monotonic() - started)


def _split_options(manifest: dict) -> dict:
    """The dataset's own split ratios and seed, for images added with ``split="auto"``."""
    stored = manifest.get("split") or {}
    return {"split": from_dict(SplitOptions, stored, section="split")} if stored else {}


def _move_into_dataset(staging: Path, target: Path) -> None:
    """Move the staged ``<split>/<kind>/<stem>.png`` files into the dataset (same disk: renames)."""
    for path in sorted(staging.glob("*/*/*.png")):
        destination = target / path.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, destination)
