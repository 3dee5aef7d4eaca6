"""Rename and delete imported datasets, set their pixel size by hand, and find them by name.

These act on the internal copy under the data root only; the folder or zip a dataset
was imported from is never touched.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from core.accounts import acting
from core.datasets.manifest import MANIFEST_NAME, check_name, list_dataset_dirs, read_manifest, write_manifest
from core.masks.versions import dataset_lock
from core.pixel_size import PixelSize, check_pixel_size, dataset_level, with_summary
from core.settings import Settings


class DatasetNotFound(LookupError):
    """No imported dataset has that name."""


def dataset_dir(settings: Settings, name: str) -> Path:
    """The folder of the imported dataset ``name``; raise :class:`DatasetNotFound` if there is none."""
    folder = settings.datasets_dir / name
    if not name or "/" in name or name.startswith(".") or not (folder / MANIFEST_NAME).is_file():
        names = ", ".join(p.name for p in list_dataset_dirs(settings.datasets_dir)) or "none yet"
        raise DatasetNotFound(f"No dataset named {name!r}. Known datasets: {names}.")
    return folder


def rename_dataset(settings: Settings, old: str, new: str) -> Path:
    """Rename dataset ``old`` to ``new`` (folder and manifest); returns the new folder."""
    with acting.guarded("dataset.rename", old, {"to": new}):
        source = dataset_dir(settings, old)
        check_name(new)
        target = settings.datasets_dir / new
        if target.exists():
            raise FileExistsError(f"A dataset named {new!r} already exists; choose another name.")
        os.rename(source, target)
        manifest = read_manifest(target)
        manifest["name"] = new
        write_manifest(target, manifest)
    cache = settings.cache_dir / "thumbs" / old
    if cache.is_dir():
        shutil.rmtree(cache, ignore_errors=True)
    return target


def delete_dataset(settings: Settings, name: str) -> None:
    """Delete the imported copy of ``name`` and its cached thumbnails.

    The folder is first renamed out of the way (atomic), so a crash half-way never
    leaves a half-deleted dataset that still looks imported.
    """
    with acting.guarded("dataset.delete", name):
        folder = dataset_dir(settings, name)
        settings.scratch_dir.mkdir(parents=True, exist_ok=True)
        doomed = settings.scratch_dir / f"deleted-{name}-{uuid.uuid4().hex[:8]}"
        os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    shutil.rmtree(settings.cache_dir / "thumbs" / name, ignore_errors=True)


def set_pixel_size(settings: Settings, name: str, um: float) -> PixelSize | None:
    """Set (``um`` > 0) or clear (``um`` = 0) the pixel size of dataset ``name`` by hand, in µm per pixel.

    A size set by hand holds for every image of the dataset, over what their files said; clearing it lets
    the files' own sizes apply again. The manifest is rewritten atomically under the dataset's lock.
    Returns the dataset-wide size now in force (None: unknown, or the images differ). Raises ``ValueError``
    for a negative, non-numeric or absurd ``um`` and :class:`DatasetNotFound` for an unknown dataset.
    """
    value = check_pixel_size(um)
    with acting.guarded("dataset.set_pixel_size", name, {"um": value}):
        folder = dataset_dir(settings, name)
        with dataset_lock(folder):
            manifest = with_summary(read_manifest(folder), hand_um=value)
            write_manifest(folder, manifest)
    return dataset_level(manifest)
