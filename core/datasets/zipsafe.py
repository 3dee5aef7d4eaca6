"""Unpack an uploaded zip without letting it escape its folder or fill the disk."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

_CHUNK = 1024 * 1024
_MAX_RATIO = 1000  # deflate rarely beats 1000:1 on real images; zip bombs do


class UnsafeArchive(ValueError):
    """The archive is damaged, too big, or tries to write outside its folder."""


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, or ``None`` for a name that must be rejected."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = PurePosixPath(name).parts
    if any(part == ".." for part in parts):
        return None
    return PurePosixPath(*[p for p in parts if p not in ("", ".")]) if parts else PurePosixPath()


def _check_members(archive: zipfile.ZipFile, label: str, max_total_bytes: int, max_members: int) -> list:
    members = archive.infolist()
    if len(members) > max_members:
        raise UnsafeArchive(f"{label} holds {len(members)} files; at most {max_members} are accepted.")
    total = 0
    for info in members:
        if _member_path(info) is None:
            raise UnsafeArchive(
                f"{label} contains the path {info.filename!r}, which points outside the archive "
                "(absolute path or '..'); it was rejected. Re-create the zip from the dataset folder."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchive(f"{label} contains a symbolic link ({info.filename!r}); links are not accepted.")
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"{label} is password-protected ({info.filename!r}); upload an unencrypted zip.")
        if info.compress_size and info.file_size / info.compress_size > _MAX_RATIO and info.file_size > _CHUNK:
            raise UnsafeArchive(
                f"{label}: {info.filename!r} expands {info.file_size // info.compress_size}-fold, "
                "which only a zip bomb does; it was rejected."
            )
        total += info.file_size
    if total > max_total_bytes:
        raise UnsafeArchive(
            f"{label} would unpack to {total / 2**20:.0f} MB; the limit is "
            f"{max_total_bytes / 2**20:.0f} MB (CELLSEG_MAX_UNZIPPED_MB)."
        )
    return members


def extract_zip_safely(
    source: Path | BinaryIO,
    destination: Path,
    *,
    max_total_bytes: int,
    max_members: int = 100_000,
    label: str = "The zip",
) -> None:
    """Extract ``source`` into the (new or empty) folder ``destination``.

    Rejects absolute paths, ``..``, links, encryption, too many members, and archives
    whose declared or actual unpacked size exceeds ``max_total_bytes``.
    """
    try:
        with zipfile.ZipFile(source) as archive:
            members = _check_members(archive, label, max_total_bytes, max_members)
            written = 0
            for info in members:
                relative = _member_path(info)
                target = destination.joinpath(*relative.parts) if relative.parts else destination
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > max_total_bytes:
                            raise UnsafeArchive(
                                f"{label} unpacks to more than its declared size and the "
                                f"{max_total_bytes / 2**20:.0f} MB limit; it was rejected."
                            )
                        dst.write(chunk)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchive(
            f"{label} is not a valid zip archive or is truncated ({exc}). Upload it again or re-create it."
        ) from exc
    except (EOFError, zipfile.LargeZipFile) as exc:
        raise UnsafeArchive(f"{label} is damaged or truncated ({type(exc).__name__}). Upload it again.") from exc
    except NotImplementedError as exc:
        raise UnsafeArchive(f"{label} uses an unsupported compression method ({exc}); use standard deflate.") from exc
