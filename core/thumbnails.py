"""Small cached previews of image + mask for the dataset grid.

One PNG per image under ``<cache>/thumbs/<dataset>/``: RGB is the display picture,
alpha is the mask, so a grid cell costs one small file read. The file name carries
the image checksum and the mask's modification time, so an edited mask gets a new
thumbnail and an old one is never shown.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np

from core.display import fit_within, to_display_rgb
from core.io import read_image, write_bytes_atomic

log = logging.getLogger(__name__)
THUMB_SIDE = 256
_OWN_SUFFIX = re.compile(r"[0-9a-f]{1,12}-[0-9a-f]+\.png")


def thumbnail_path(cache_dir: Path, dataset: str, stem: str, checksum: str, mask_file: Path) -> Path:
    try:
        stamp = mask_file.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return cache_dir / "thumbs" / dataset / f"{stem}-{checksum[:12]}-{stamp:x}.png"


def make_thumbnail(image: np.ndarray, mask: np.ndarray, side: int = THUMB_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Shrink an image (display-stretched to RGB) and its mask (nearest neighbour) to fit ``side``.

    >>> rgb, m = make_thumbnail(np.zeros((400, 200), np.uint16), np.zeros((400, 200), np.uint8), 100)
    >>> rgb.shape, m.shape
    ((100, 50, 3), (100, 50))
    """
    rgb = fit_within(to_display_rgb(image), side)
    small_mask = fit_within(mask, side, nearest=True)
    return rgb, small_mask


def load_or_build(
    cache_dir: Path, dataset: str, dataset_dir: Path, stem: str, checksum: str, image_rel: str, mask_rel: str
) -> tuple[np.ndarray, np.ndarray]:
    """The thumbnail (RGB, mask) of one catalogued image, built and cached on first use."""
    mask_file = dataset_dir / mask_rel
    path = thumbnail_path(cache_dir, dataset, stem, checksum, mask_file)
    if path.is_file():
        cached = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if cached is not None and cached.ndim == 3 and cached.shape[2] == 4:
            return cv2.cvtColor(cached[..., :3], cv2.COLOR_BGR2RGB), cached[..., 3]
        log.warning("thumbnail %s unreadable; rebuilding", path)
    rgb, mask = make_thumbnail(read_image(dataset_dir / image_rel), _read_mask(mask_file))
    bgra = np.dstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), np.where(mask > 0, 255, 0).astype(np.uint8)])
    ok, encoded = cv2.imencode(".png", bgra, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if ok:
        _remove_stale(path.parent, stem)
        write_bytes_atomic(path, encoded.tobytes())
    return rgb, mask


def _read_mask(path: Path) -> np.ndarray:
    mask = read_image(path)
    return mask if mask.ndim == 2 else mask.max(axis=2)


def _remove_stale(folder: Path, stem: str) -> None:
    """Delete older thumbnails of ``stem`` (not those of a stem that merely starts the same)."""
    if not folder.is_dir():
        return
    prefix = f"{stem}-"  # not glob(): names may contain [ ] or * that glob would read as patterns
    for old in folder.iterdir():
        if old.name.startswith(prefix) and _OWN_SUFFIX.fullmatch(old.name[len(prefix) :]):
            old.unlink(missing_ok=True)
