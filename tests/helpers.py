"""Builders of tiny on-disk datasets for tests: blobs on a background, with masks in any format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile

from core.io import write_png

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO.parent / "shared").resolve()


def blobs(seed: int, size: int = 48, n: int = 3, depth: str = "uint8") -> tuple[np.ndarray, np.ndarray]:
    """A synthetic fluorescence-like image with ``n`` round cells and its uint16 instance map."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.uint16)
    for object_id in range(1, n + 1):
        centre = rng.integers(8, size - 8, 2)
        cv2.circle(labels, (int(centre[0]), int(centre[1])), int(rng.integers(3, 6)), object_id, -1)
    top = 255 if depth == "uint8" else 60000
    image = np.where(labels > 0, top * 0.8, top * 0.05) + rng.normal(0, top * 0.02, labels.shape)
    image = np.clip(image, 0, top).astype(depth)
    return image, labels


def write_image(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` in the format named by the suffix (PNG, JPEG, BMP or TIFF)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    elif suffix == ".png":
        write_png(path, array)
    else:
        bgr = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
        ok, buffer = cv2.imencode(suffix, bgr)
        assert ok, path
        path.write_bytes(buffer.tobytes())
    return path


def binary(labels: np.ndarray) -> np.ndarray:
    return np.where(labels > 0, 255, 0).astype(np.uint8)


def make_splits(
    root: Path,
    counts: dict[str, int] | None = None,
    size: int = 48,
    image_suffix: str = ".png",
    mask_suffix: str = ".png",
    seed: int = 0,
) -> Path:
    """``root/{train,valid,test}/{images,masks}`` with distinct images in every split."""
    counts = counts or {"train": 4, "valid": 2, "test": 2}
    k = seed * 1000
    for split, n in counts.items():
        for _ in range(n):
            image, labels = blobs(k, size)
            write_image(root / split / "images" / f"img{k:03d}{image_suffix}", image)
            write_image(root / split / "masks" / f"img{k:03d}{mask_suffix}", binary(labels))
            k += 1
    return root


def make_flat(root: Path, n: int = 10, size: int = 48, mask_name: str = "{stem}.png") -> Path:
    """``root/images`` + ``root/masks`` with matching names."""
    for k in range(n):
        image, labels = blobs(100 + k, size)
        write_image(root / "images" / f"cell{k:02d}.png", image)
        write_image(root / "masks" / mask_name.format(stem=f"cell{k:02d}"), binary(labels))
    return root


def make_dsb(root: Path, n: int = 4, size: int = 48) -> Path:
    """Kaggle DSB layout: ``<id>/images/<id>.png`` + ``<id>/masks/<object>.png``."""
    for k in range(n):
        image, labels = blobs(200 + k, size)
        sample = root / f"sample{k:02d}"
        write_image(sample / "images" / f"sample{k:02d}.png", np.dstack([image] * 3 + [np.full_like(image, 255)]))
        for object_id in range(1, int(labels.max()) + 1):
            write_image(sample / "masks" / f"obj{object_id}.png", binary(labels == object_id))
    return root


def make_tif_pairs(root: Path, n: int = 3, size: int = 48) -> Path:
    """``input/raw_NNN.tif`` (16-bit) + ``labels/instance_ids_NNN.tif`` (16-bit instance ids)."""
    for k in range(n):
        image, labels = blobs(300 + k, size, depth="uint16")
        write_image(root / "input" / f"raw_{k:03d}.tif", image)
        write_image(root / "labels" / f"instance_ids_{k:03d}.tif", labels)
    return root


def tree_fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``root``: equal before and after means untouched."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def two_touching_discs() -> np.ndarray:
    """Discs of radius 6 with centres 11 px apart on a 30×40 canvas: columns 9..19 (id 1) and 20..30 (id 2)."""
    from skimage.draw import disk

    labels = np.zeros((30, 40), np.int32)
    labels[disk((15, 14), 6)] = 1
    labels[disk((15, 25), 6)] = 2
    return labels


def random_discs(seed: int, shape: tuple[int, int], tries: int, radii: tuple[int, int]) -> np.ndarray:
    """Non-overlapping discs with radius in ``radii`` (inclusive; some touching, some cut by the border),
    ids 1..N."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for _ in range(tries):
        radius = int(rng.integers(radii[0], radii[1] + 1))
        centre = (int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1])))
        rows, cols = disk(centre, radius, shape=shape)
        if (labels[rows, cols] == 0).all():
            labels[rows, cols] = labels.max() + 1
    return labels


def launch(job, settings, request=None):
    """Submit ``request`` (default: train) to ``job`` on the local executor; the worker's process, to wait for."""
    from core import jobs
    from core.jobs.local import child

    status = jobs.submit(job, request or jobs.TrainRequest(), settings, executor="local")
    return child(status.pid)


def catalogue_at_schema(path: Path, version: int):
    """A DuckDB catalogue file built by the first ``version`` migrations, as an older release left it; returns
    the open connection so that a test can add the rows that release would have held."""
    import duckdb

    from core.catalogue import store

    path.parent.mkdir(parents=True, exist_ok=True)
    old = duckdb.connect(str(path))
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied TIMESTAMPTZ)")
    for number, sql in enumerate(store.MIGRATIONS[:version], start=1):
        old.execute(sql)
        old.execute("INSERT INTO schema_version VALUES (?, now())", [number])
    return old
