"""Saved mask versions: every save keeps the previous masks, and nobody overwrites anybody silently.

Inside a dataset folder::

    edits/<stem>/v0000.png            the mask as imported (kept at the first save)
    edits/<stem>/v0001.png, ...       every saved version (…-instances.png beside it when ids exist)
    edits/log.jsonl                   one line per save: version, time, pixels added/removed, tools, note
    edits/reviewed.json               which images someone marked as reviewed, and when

The live mask (``<split>/masks/<stem>.png``) is replaced atomically, after its history copy
exists, under a per-dataset lock; a save whose starting version is no longer the current
one is refused with :class:`MaskChanged` unless the caller forces it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
from filelock import FileLock

from core.accounts import acting
from core.datasets.labels import PERSON_MADE, label_of
from core.datasets.manifest import read_manifest, write_manifest
from core.io import read_image, write_bytes_atomic, write_json_atomic, write_png
from core.masks.kinds import count_objects
from core.masks.undo import MaskState

log = logging.getLogger(__name__)
EDITS_DIR = "edits"
LOG_NAME = "log.jsonl"
REVIEWED_NAME = "reviewed.json"
_VERSION_FILE = re.compile(r"^v(\d{4,})\.png$")


class MaskChanged(RuntimeError):
    """The mask was saved by someone else since this editor loaded it."""

    def __init__(self, stem: str, loaded: int, current: int, last: dict | None):
        self.loaded, self.current, self.last = loaded, current, last
        when = f" at {last['time']}" if last else ""
        self.by = (last or {}).get("user") or ""
        who = f" by {self.by}" if self.by else ""
        super().__init__(
            f"{stem} was changed since you opened it: you started from version {loaded}, "
            f"version {current} was saved{who}{when}. Reload to see it, or save yours as a new version."
        )


class MaskSaveError(OSError):
    """The mask could not be written (read-only folder, full disk); the previous version is intact."""


class PersonsMask(RuntimeError):
    """A model's proposal was refused: a person's mask (imported or saved in the editor) is never overwritten."""

    def __init__(self, stem: str, label: str):
        self.stem, self.label = stem, label
        super().__init__(f"{stem} keeps its {label} mask: a proposal never replaces a mask a person made.")


@dataclass(frozen=True)
class SavedEdit:
    """What one save did, as recorded in ``log.jsonl`` and the catalogue's ``mask_edits``."""

    stem: str
    version: int
    time: str
    pixels_added: int
    pixels_removed: int
    tool: str
    note: str
    previous_path: str
    foreground_fraction: float
    object_count: int
    label: str = "corrected"  # the image's label state after this save (core.datasets.labels)
    proposed_by: str | None = None
    uncertainty: float | None = None
    user: str = ""  # who saved it (core.accounts.acting): a user name, "(local)", "shell:<login>"


def _history_dir(dataset_dir: Path, stem: str) -> Path:
    return dataset_dir / EDITS_DIR / stem


def version_path(dataset_dir: Path, stem: str, version: int, instances: bool = False) -> Path:
    suffix = "-instances" if instances else ""
    return _history_dir(dataset_dir, stem) / f"v{version:04d}{suffix}.png"


def current_version(dataset_dir: Path, stem: str) -> int:
    """How many times the mask of ``stem`` has been saved (0: as imported)."""
    folder = _history_dir(dataset_dir, stem)
    if not folder.is_dir():
        return 0
    versions = [int(m.group(1)) for p in folder.iterdir() if (m := _VERSION_FILE.match(p.name))]
    return max(versions, default=0)


@contextmanager
def dataset_lock(dataset_dir: Path) -> Iterator[None]:
    """An exclusive lock on the dataset folder, across threads and processes.

    The lock is ``<dataset>/.lock``, held through the operating system (``flock`` on Unix, a locked file on
    Windows), so a process that dies holding it lets it go. It waits as long as another holder keeps it.

    Parameters
    ----------
    dataset_dir : Path
        The dataset's folder; it must exist.

    Raises
    ------
    FileNotFoundError
        The folder is gone (the dataset was deleted or renamed meanwhile).
    PermissionError
        The folder is read-only and holds no lock file yet.
    RuntimeError
        This thread already holds the lock (taking it again would wait for ever).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with dataset_lock(Path(folder)):
    ...         (Path(folder) / ".lock").is_file()
    True
    """
    if not dataset_dir.is_dir():
        # filelock makes a lock file's missing folder: a dataset deleted meanwhile would come back empty
        raise FileNotFoundError(errno.ENOENT, "No such dataset folder", str(dataset_dir))
    with FileLock(dataset_dir / ".lock"):
        yield


def read_log(dataset_dir: Path, stem: str | None = None) -> list[dict]:
    """Saved edits, oldest first (a damaged line is skipped)."""
    path = dataset_dir / EDITS_DIR / LOG_NAME
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and (stem is None or entry.get("stem") == stem):
            entries.append(entry)
    return entries


def read_version(dataset_dir: Path, stem: str, version: int) -> MaskState:
    """The mask (and instances, when kept) of a saved version; version 0 is the import."""
    binary = read_image(version_path(dataset_dir, stem, version))
    instances_file = version_path(dataset_dir, stem, version, instances=True)
    return MaskState(binary, read_image(instances_file) if instances_file.is_file() else None)


def _append_log(dataset_dir: Path, entry: dict) -> None:
    path = dataset_dir / EDITS_DIR / LOG_NAME
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _keep_original(dataset_dir: Path, row: dict) -> None:
    """Copy the mask as imported to version 0 before the first save replaces it."""
    target = version_path(dataset_dir, row["stem"], 0)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if row.get("instances") and (dataset_dir / row["instances"]).is_file():  # a proposal may bring the first ids
        write_bytes_atomic(
            version_path(dataset_dir, row["stem"], 0, instances=True), (dataset_dir / row["instances"]).read_bytes()
        )
    write_bytes_atomic(target, (dataset_dir / row["mask"]).read_bytes())


def _manifest_row(dataset_dir: Path, stem: str) -> dict:
    row = next((image for image in read_manifest(dataset_dir)["images"] if image["stem"] == stem), None)
    if row is None:
        raise KeyError(f"{stem} is not an image of dataset {dataset_dir.name}")
    return row


def _update_manifest_row(dataset_dir: Path, stem: str, stats: dict) -> None:
    manifest = read_manifest(dataset_dir)
    for image in manifest["images"]:
        if image["stem"] == stem:
            image.update(stats)
            break
    write_manifest(dataset_dir, manifest)


def save_mask(
    dataset_dir: Path,
    row: dict,
    state: MaskState,
    base_version: int,
    *,
    tool: str,
    note: str = "",
    force: bool = False,
    proposed_by: str | None = None,
    uncertainty: float | None = None,
) -> SavedEdit:
    """Save ``state`` as the new mask of ``row["stem"]``; return what was recorded.

    ``base_version`` is the version the editor started from. If another save happened
    since, :class:`MaskChanged` is raised (nothing written) unless ``force``.
    A person's save makes the image ``corrected``. With ``proposed_by`` (a model's name) the save is
    a proposal: the image becomes ``proposed`` — unless its mask was made by a person (``truth`` or
    ``corrected``), which raises :class:`PersonsMask` and writes nothing, whatever ``force`` says.
    """
    stem = row["stem"]
    user = acting.check("mask.save", f"{dataset_dir.name}/{stem}").name
    try:
        with dataset_lock(dataset_dir):
            if proposed_by is not None:
                label = label_of(_manifest_row(dataset_dir, stem))
                if label in PERSON_MADE:
                    raise PersonsMask(stem, label)
            current = current_version(dataset_dir, stem)
            if current != base_version and not force:
                entries = read_log(dataset_dir, stem)
                raise MaskChanged(stem, base_version, current, entries[-1] if entries else None)
            on_disk = read_image(dataset_dir / row["mask"])
            _keep_original(dataset_dir, row)
            version = current + 1
            binary = np.where(state.binary > 0, 255, 0).astype(np.uint8)
            _write_version(dataset_dir, row, version, binary, state.instances)
            stats = {
                "foreground_fraction": round(float(np.count_nonzero(binary)) / binary.size, 6),
                # distinct ids, not the largest: a video's ids are track ids and need not be 1..n
                "object_count": int(np.count_nonzero(np.unique(state.instances)))
                if state.instances is not None and row.get("instances")
                else count_objects(binary),
                "label": "proposed" if proposed_by is not None else "corrected",
                "proposed_by": proposed_by,
                "uncertainty": uncertainty,
            }
            ids = (
                {"instances": row["instances"], "has_instances": True}
                if state.instances is not None and row.get("instances")
                else {}
            )  # a proposal may add the ids file
            saved = SavedEdit(
                stem=stem,
                version=version,
                time=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                pixels_added=int(np.count_nonzero((binary > 0) & (on_disk == 0))),
                pixels_removed=int(np.count_nonzero((binary == 0) & (on_disk > 0))),
                tool=tool,
                note=note,
                user=user,
                previous_path=version_path(dataset_dir, stem, current).relative_to(dataset_dir).as_posix(),
                **stats,
            )
            _append_log(dataset_dir, asdict(saved))
            _update_manifest_row(dataset_dir, stem, {**stats, **ids})
            return saved
    except PermissionError as exc:
        raise MaskSaveError(
            f"Cannot save the mask of {stem}: {dataset_dir} is read-only ({exc.strerror}). "
            "The previous version is unchanged; ask for write access to the data folder."
        ) from exc
    except OSError as exc:
        if isinstance(exc, MaskSaveError):
            raise
        raise MaskSaveError(
            f"Cannot save the mask of {stem}: {exc.strerror or exc}. The previous version is unchanged."
        ) from exc


def _write_version(
    dataset_dir: Path, row: dict, version: int, binary: np.ndarray, instances: np.ndarray | None
) -> None:
    """Write the history copy, then the live files; if any write fails (a full disk), take back what was
    written, so the version number is not used and the live mask and instances still agree."""
    stem = row["stem"]
    history = [version_path(dataset_dir, stem, version)]
    with_instances = instances is not None and bool(row.get("instances"))
    live_instances = dataset_dir / row["instances"] if with_instances else None
    before = live_instances.read_bytes() if live_instances is not None and live_instances.is_file() else None
    replaced = False
    try:
        write_png(history[0], binary)
        if with_instances:
            history.append(version_path(dataset_dir, stem, version, instances=True))
            write_png(history[1], instances)
            write_png(live_instances, instances)
            replaced = True
        write_png(dataset_dir / row["mask"], binary)
    except OSError:
        for path in history:
            path.unlink(missing_ok=True)
        if replaced and before is not None:
            try:
                write_bytes_atomic(live_instances, before)
            except OSError as exc:  # the disk is still full: say so, the history keeps the previous version
                log.error("could not put back the instances of %s: %s", stem, exc)
        raise


def reviewed(dataset_dir: Path) -> dict[str, str]:
    """``{stem: time}`` of the images marked as reviewed."""
    try:
        data = json.loads((dataset_dir / EDITS_DIR / REVIEWED_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def set_reviewed(dataset_dir: Path, stem: str, is_reviewed: bool) -> str | None:
    """Mark or unmark ``stem`` as reviewed; returns the time stored (``None`` when unmarked).

    Who did it goes to the audit log (the mark itself keeps only the time)."""
    try:
        with (
            acting.guarded("mask.review", f"{dataset_dir.name}/{stem}", {"reviewed": is_reviewed}),
            dataset_lock(dataset_dir),
        ):
            marks = reviewed(dataset_dir)
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds") if is_reviewed else None
            if stamp:
                marks[stem] = stamp
            else:
                marks.pop(stem, None)
            (dataset_dir / EDITS_DIR).mkdir(exist_ok=True)
            write_json_atomic(dataset_dir / EDITS_DIR / REVIEWED_NAME, marks)
            return stamp
    except PermissionError as exc:
        raise MaskSaveError(f"Cannot record the review: {dataset_dir} is read-only.") from exc
