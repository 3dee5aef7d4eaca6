"""Import a source folder or zip into ``<root>/datasets/<name>/{train,valid,test}/{images,masks,masks_instances}``.

A time-lapse source (layout ``timelapse``) becomes one row per frame, so every 2-D tool works on its frames:
frame ``t`` of sequence ``s`` is ``<split>/images/s_t0000.png`` (16-bit kept, as for still images), its mask and,
for label videos of ids, its instances with the ids exactly as in the source (they are track ids: a cell keeps its
id in every frame). Rows carry ``sequence`` and ``frame`` (0-based), and a sequence is never split across
train/valid/test: split folders of the source are kept, otherwise whole sequences are shared out with the
configured ratios and seed. Videos are read one frame at a time (:mod:`core.timelapse.video_files`).

The user's files are only read. Everything is written into a hidden staging folder
that is renamed into place at the very end; any error removes it, so a failed
import leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.accounts import acting
from core.config import ImportOptions, to_dict
from core.datasets.analyse import PairResult, analyse_pair
from core.datasets.hashing import perceptual_hash, pixel_checksum
from core.datasets.layouts import TIMELAPSE, LayoutError, PairSource, Scan, scan_source
from core.datasets.manifest import (
    IMAGE_FIELDS,
    MANIFEST_FORMAT,
    OPTIONAL_IMAGE_FIELDS,
    REPORT_NAME,
    check_name,
    write_manifest,
)
from core.datasets.report import Finding, ImportFailed, Report
from core.datasets.splits import assign_splits, leakage_findings, similarity_groups
from core.datasets.zipsafe import UnsafeArchive, extract_zip_safely
from core.io import channels_of, write_json_atomic, write_png
from core.masks.kinds import MaskReading, count_objects
from core.pixel_size import read_pixel_size, row_fields, with_summary
from core.settings import Settings
from core.timelapse.video_files import frame_stem
from core.timelapse.video_pairs import Frame, VideoPairReader

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
PENDING = "_pending"


@dataclass(frozen=True)
class ImportResult:
    name: str
    path: Path
    report: Report
    counts: dict[str, int]
    seconds: float


def _no_progress(done: int, total: int, text: str) -> None:
    """Default progress sink: say nothing."""


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@contextmanager
def _unpacked(source: Path, settings: Settings, report: Report, label: str) -> Iterator[Path]:
    """Yield a folder with the source's files; a zip is unpacked into scratch space and removed afterwards."""
    if source.is_dir():
        yield source
        return
    if not source.exists():
        report.add("error", "missing-source", label, "does not exist.", "Check the path.")
        raise ImportFailed(report)
    if source.suffix.lower() != ".zip":
        report.add(
            "error",
            "unsupported-source",
            label,
            "is neither a folder nor a .zip archive.",
            "Give a dataset folder, or a zip of one.",
        )
        raise ImportFailed(report)
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    unpack_dir = settings.scratch_dir / f"unzip-{uuid.uuid4().hex[:12]}"
    try:
        extract_zip_safely(
            source,
            unpack_dir,
            max_total_bytes=settings.max_unzipped_bytes,
            max_members=settings.max_zip_members,
            label=label,
        )
        yield unpack_dir
    except UnsafeArchive as exc:
        report.add("error", "bad-zip", label, str(exc))
        raise ImportFailed(report) from exc
    finally:
        shutil.rmtree(unpack_dir, ignore_errors=True)


def _scan(folder: Path, options: ImportOptions, report: Report, label: str) -> Scan:
    try:
        scan = scan_source(folder, options.layout, images_only=options.images_only)
    except LayoutError as exc:
        report.add("error", "unknown-layout", label, str(exc))
        raise ImportFailed(report) from exc
    report.extend(scan.findings)
    report.n_pairs = len(scan.pairs)
    if not scan.pairs:
        report.add(
            "error",
            "no-pairs",
            label,
            f"contains no usable image/mask pairs (layout {scan.layout}).",
            "Check that images and masks sit in the expected folders with matching names.",
        )
        raise ImportFailed(report)
    return scan


def _write_pair(result: PairResult, staging: Path) -> None:
    """Write the converted image, binary mask and instances of one analysed pair into staging."""
    stem, pending = result.source.stem, staging / PENDING
    image_target = pending / "images" / f"{stem}.png"
    image_target.parent.mkdir(parents=True, exist_ok=True)
    if result.source.image.suffix.lower() == ".png" and not result.image_modified:
        shutil.copyfile(result.source.image, image_target)  # already a PNG as stored: keep its bytes
    else:
        write_png(image_target, result.image, atomic=False)
    write_png(pending / "masks" / f"{stem}.png", result.mask.binary, atomic=False)
    if result.mask.instances is not None:
        write_png(pending / "masks_instances" / f"{stem}.png", result.mask.instances, atomic=False)


def _frame_result(pair: PairSource, scan: Scan, reader: VideoPairReader, frame: Frame, size_fields: dict) -> PairResult:
    """The analysed pair of one frame of a sequence, with its pixels (ids kept as they are: track ids)."""
    stem = frame_stem(pair.stem, frame.index)
    source = PairSource(stem, pair.split, frame.image_file, (frame.label_file,) if frame.label_file else ())
    image, labels = frame.image, frame.labels
    if labels is None:
        mask = MaskReading(np.zeros(image.shape[:2], np.uint8), None, "binary")
        kind, count = "none", 0
    elif reader.labels_kind == "binary":
        mask = MaskReading(labels, None, "binary")
        kind, count = "binary", count_objects(labels)
    else:  # ids, or no cell seen yet (an empty frame is the same either way)
        mask = MaskReading(np.where(labels > 0, 255, 0).astype(np.uint8), labels, "instances")
        kind, count = "instances", int(np.count_nonzero(np.bincount(labels.ravel())[1:]))
    # a frames folder names the frame's own file; a stack names itself and the frame
    where = scan.rel(frame.image_file) if pair.image.is_dir() else f"{scan.rel(pair.image)} [frame {frame.index}]"
    stats = {
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "dtype": str(image.dtype),
        "channels": channels_of(image),
        "foreground_fraction": round(mask.foreground_fraction, 6),
        "object_count": count,
        "checksum": pixel_checksum(image),
        "phash": perceptual_hash(image),
        "mask_kind": kind,
        "has_instances": mask.instances is not None,
        "source": where,
        "label": "unlabelled" if pair.unlabelled else "truth",
        "sequence": pair.stem,
        "frame": frame.index,
        **size_fields,
    }
    return PairResult(source, image=image, mask=mask, stats=stats, image_modified=frame.image_modified)


def _analyse_video(pair: PairSource, scan: Scan, staging: Path | None) -> list[PairResult]:
    """Check a sequence frame by frame (one frame in memory), writing each good frame into staging at once.

    The first result holds the sequence's findings and no measurements (it is never imported itself); the
    frames follow in order. Every finding carries the sequence's name, so an error drops the whole sequence.
    """
    reader = VideoPairReader(pair.image, pair.masks[0] if pair.masks else None, stem=pair.stem, rel=scan.rel)
    summary = PairResult(pair)
    frames: list[PairResult] = []
    size_fields: dict = {}
    for frame in reader.frames():
        if not frames:  # µm per pixel from the video's (or its first frame file's) metadata, when trusted
            size, note = read_pixel_size(frame.image_file)
            size_fields = row_fields(size)
            if note:
                summary.findings.append(
                    Finding(
                        "info",
                        "pixel-size-ignored",
                        scan.rel(frame.image_file),
                        note,
                        "If you know it, set it by hand: Datasets › Manage, or python -m core datasets pixel-size.",
                        stem=pair.stem,
                    )
                )
        result = _frame_result(pair, scan, reader, frame, size_fields)
        if staging is not None and reader.ok:
            _write_pair(result, staging)
        result.release_pixels()
        frames.append(result)
    summary.findings.extend(reader.findings)
    if not reader.ok:
        return [summary]
    if reader.labels_kind == "binary":  # decided at the first frame with cells: earlier (empty) frames follow it
        for result in frames:
            result.stats.update(mask_kind="binary", has_instances=False)
            if staging is not None:
                (staging / PENDING / "masks_instances" / f"{result.source.stem}.png").unlink(missing_ok=True)
    return [summary, *frames]


def _analyse_all(scan: Scan, options: ImportOptions, staging: Path | None, progress: Progress) -> list[PairResult]:
    total = len(scan.pairs)
    started = time.monotonic()
    videos = scan.layout == TIMELAPSE
    what = "sequences" if videos else "pairs"

    def work(pair):
        if videos:
            return _analyse_video(pair, scan, staging)
        result = analyse_pair(pair, scan, options)
        if staging is not None and result.ok:
            _write_pair(result, staging)
        result.release_pixels()
        return [result]

    results = []
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        for done, batch in enumerate(pool.map(work, scan.pairs), start=1):
            results.extend(batch)
            if done == total or done % 4 == 0 or videos:
                rate = done / max(time.monotonic() - started, 1e-6)
                progress(
                    done,
                    total,
                    f"{done}/{total} {what} checked, {rate:.0f}/s, about {max(total - done, 0) / rate:.0f} s left",
                )
    return results


def _sequence_splits(good: list[PairResult], options: ImportOptions) -> dict[str, str]:
    """Splits for the frames of sequences: whole sequences are shared out with the ratios and seed (the ratios
    count sequences), and sequences holding identical or near-identical frames stay together."""
    frame_groups = similarity_groups(
        [r.stats["checksum"] for r in good], [r.stats["phash"] for r in good], options.near_duplicate_bits
    )
    sequences = list(dict.fromkeys(r.stats["sequence"] for r in good))
    parent = {name: name for name in sequences}

    def find(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    first_of_group: dict[int, str] = {}
    for result, group in zip(good, frame_groups):
        other = first_of_group.setdefault(group, result.stats["sequence"])
        parent[find(result.stats["sequence"])] = find(other)
    roots = {name: find(name) for name in sequences}
    numbers = {root: k for k, root in enumerate(dict.fromkeys(roots.values()))}
    by_sequence = assign_splits(sequences, [numbers[roots[name]] for name in sequences], options.split)
    return {r.source.stem: by_sequence[r.stats["sequence"]] for r in good}


def _final_splits(results: list[PairResult], options: ImportOptions) -> dict[str, str]:
    good = [r for r in results if r.stats]
    if all(r.source.split for r in good):
        return {r.source.stem: r.source.split for r in good}
    if good and all(r.source.unlabelled for r in good):
        # raw images only: all join the training pool; people correct them there (validation is set aside
        # from the corrected ones, and images with masks can be added to valid/test later)
        return {r.source.stem: "train" for r in good}
    if any(r.stats.get("sequence") is not None for r in good):
        return _sequence_splits(good, options)
    groups = similarity_groups(
        [r.stats["checksum"] for r in good], [r.stats["phash"] for r in good], options.near_duplicate_bits
    )
    return assign_splits([r.source.stem for r in good], groups, options.split)


def _check_all(
    scan: Scan, options: ImportOptions, staging: Path | None, report: Report, progress: Progress
) -> tuple[list[PairResult], dict[str, str]]:
    results = _analyse_all(scan, options, staging, progress)
    for result in results:
        report.extend(result.findings)
    if scan.layout == TIMELAPSE:
        report.n_pairs = sum(bool(r.stats) for r in results)  # the report counts frames, one image/mask pair each
    splits = _final_splits(results, options)
    measured = [r for r in results if r.stats]
    report.extend(
        leakage_findings(
            [r.stats["source"] for r in measured],
            [splits[r.source.stem] for r in measured],
            [r.stats["checksum"] for r in measured],
            [r.stats["phash"] for r in measured],
            options.near_duplicate_bits,
            stems=[r.source.stem for r in measured],
        )
    )
    return results, splits


def check_source(
    source: Path,
    options: ImportOptions,
    settings: Settings,
    progress: Progress = _no_progress,
    source_label: str | None = None,
) -> Report:
    """Validate ``source`` (folder or zip) as it would be imported; write nothing but scratch files.

    Never raises :class:`ImportFailed`: problems are in the returned report.
    """
    report = Report()
    label = Path(source_label).name if source_label else Path(source).name
    try:
        with _unpacked(Path(source), settings, report, label) as folder:
            scan = _scan(folder, options, report, label)
            _check_all(scan, options, None, report, progress)
    except ImportFailed:
        pass
    return report


def _place_files(staging: Path, kept: list[PairResult], splits: dict[str, str]) -> list[dict]:
    rows = []
    for result in kept:
        stem, split = result.source.stem, splits[result.source.stem]
        row = {
            "split": split,
            "stem": stem,
            "image": f"{split}/images/{stem}.png",
            "mask": f"{split}/masks/{stem}.png",
            "instances": f"{split}/masks_instances/{stem}.png" if result.stats["has_instances"] else None,
            "label": "unlabelled" if result.source.unlabelled else "truth",
        }
        for kind in ("images", "masks", "masks_instances"):
            pending = staging / PENDING / kind / f"{stem}.png"
            if pending.exists():
                (staging / split / kind).mkdir(parents=True, exist_ok=True)
                os.rename(pending, staging / split / kind / f"{stem}.png")
        row.update({k: v for k, v in result.stats.items() if k in IMAGE_FIELDS + OPTIONAL_IMAGE_FIELDS})
        rows.append({**{k: row.get(k) for k in IMAGE_FIELDS}, **{k: row[k] for k in OPTIONAL_IMAGE_FIELDS if k in row}})
    shutil.rmtree(staging / PENDING, ignore_errors=True)
    return rows


def _without_bad(results: list[PairResult], bad_stems: set[str]) -> list[PairResult]:
    """The results to import: good ones whose stem has no error, and no frame of a sequence of which any frame
    or the sequence itself has one (a sequence is imported whole or not at all)."""
    bad_sequences = bad_stems | {
        r.stats["sequence"] for r in results if r.source.stem in bad_stems and r.stats.get("sequence") is not None
    }
    return [
        r
        for r in results
        if r.ok and r.source.stem not in bad_stems and r.stats.get("sequence", r.source.stem) not in bad_sequences
    ]


def _manifest(
    options: ImportOptions, source: str, layout: str, rows: list[dict], seeded: bool, imported_by: str = ""
) -> dict:
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "valid", "test")}
    return with_summary(
        {
            "format": MANIFEST_FORMAT,
            "name": options.name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": source,
            "layout": layout,
            "split_from": "seeded" if seeded else "source",
            "split": to_dict(options.split) if seeded else None,
            "options": to_dict(options),
            "counts": counts,
            "images": rows,
            "imported_by": imported_by or None,
        }
    )  # with the dataset's pixel size when all images share one


def _move_into_place(staging: Path, target: Path, report: Report) -> None:
    """Rename the finished staging folder to its final name; a dataset of that name appearing meanwhile wins."""
    try:
        os.rename(staging, target)
    except OSError as exc:
        if not target.exists():
            raise
        report.add(
            "error",
            "name-taken",
            target.name,
            "was created by someone else while this import ran.",
            "Import again under another name.",
        )
        raise ImportFailed(report) from exc


def import_dataset(
    source: Path,
    options: ImportOptions,
    settings: Settings,
    progress: Progress = _no_progress,
    source_label: str | None = None,
) -> ImportResult:
    """Check and import ``source``; raise :class:`ImportFailed` (with the report) on errors.

    With ``options.skip_invalid`` pairs that have errors are left out instead of stopping the import.
    ``source_label`` is what the manifest records as the origin (e.g. the name of an uploaded zip).
    """
    importer = acting.check("dataset.import", options.name).name
    started = time.monotonic()
    source = Path(source).expanduser().resolve()
    report = Report()
    try:
        check_name(options.name)
    except ValueError as exc:
        report.add("error", "bad-name", options.name, str(exc))
        raise ImportFailed(report) from exc
    target = settings.datasets_dir / options.name
    if target.exists():
        report.add(
            "error",
            "name-taken",
            options.name,
            "is already a dataset.",
            "Choose another name, or delete or rename the existing dataset first.",
        )
        raise ImportFailed(report)
    settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    staging = settings.datasets_dir / f".staging-{options.name}-{uuid.uuid4().hex[:8]}"
    label = Path(source_label).name if source_label else source.name
    try:
        with _unpacked(source, settings, report, label) as folder:
            scan = _scan(folder, options, report, label)
            staging.mkdir()
            results, splits = _check_all(scan, options, staging, report, progress)
        bad_stems = report.stems_with_errors()
        dataset_errors = [f for f in report.errors if f.stem is None]
        if dataset_errors or (bad_stems and not options.skip_invalid):
            raise ImportFailed(report)
        kept = _without_bad(results, bad_stems)
        if not kept:
            report.add("error", "no-pairs", label, "has no valid image/mask pairs left to import.")
            raise ImportFailed(report)
        rows = _place_files(staging, kept, splits)
        seeded = not all(r.source.split for r in kept)
        manifest = _manifest(
            options, source_label or str(source), scan.layout, rows, seeded=seeded, imported_by=importer
        )
        write_json_atomic(
            staging / REPORT_NAME,
            {"summary": report.summary(), "findings": report.to_rows(), "skipped": sorted(bad_stems)},
        )
        write_manifest(staging, manifest)
        _move_into_place(staging, target, report)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        report.add(
            "error",
            "io-failed",
            label,
            f"could not be imported: {exc.strerror or exc} ({exc.filename or 'data root'}).",
            "Check free disk space and that the data root is writable, then try again.",
        )
        raise ImportFailed(report) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("imported %s: %d pairs in %.1f s", options.name, len(rows), time.monotonic() - started)
    acting.record_done(
        "dataset.import", options.name, {"source": source_label or str(source), "counts": manifest["counts"]}
    )
    return ImportResult(options.name, target, report, manifest["counts"], time.monotonic() - started)
