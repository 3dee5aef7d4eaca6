"""bioimage.io model packages: what the exporter and the importer share.

A package is a folder (or a zip of it) holding ``rdf.yaml`` and the files it names. Validation runs the
``bioimageio.spec`` library offline: local files are opened and their SHA-256 checked, and no address on the
internet is asked for (the packages this project writes name none; an address in a foreign package is left
unchecked, see :func:`validate_package`). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Any

from core.io import write_bytes_atomic

log = logging.getLogger(__name__)
RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
CONFIG_KEY = "cellseg"  # this project's own section of ``config`` in rdf.yaml
MAX_LISTED = 6  # validation errors quoted in one message


class PackageError(ValueError):
    """A bioimage.io package that cannot be written, read or used; the message names the file or field."""


def find_rdf(source: Path) -> Path:
    """The ``rdf.yaml`` of a package folder, or the zip itself.

    >>> find_rdf(Path("/nowhere"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    core.interop.model_zoo.package.PackageError: /nowhere does not exist: give a bioimage.io package folder...
    """
    source = Path(source)
    if not source.exists():
        raise PackageError(f"{source} does not exist: give a bioimage.io package folder (with rdf.yaml) or its .zip")
    if source.is_file() and source.name in RDF_NAMES:
        return source
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise PackageError(f"{source} is not a zip file: give a bioimage.io package folder or its .zip")
        with zipfile.ZipFile(source) as archive:
            if not any(name in archive.namelist() for name in RDF_NAMES):
                raise PackageError(f"{source} holds no rdf.yaml at its top level: it is not a bioimage.io package")
        return source
    for name in RDF_NAMES:
        if (source / name).is_file():
            return source / name
    raise PackageError(
        f"{source} holds no rdf.yaml: a bioimage.io package describes itself in rdf.yaml "
        "(or bioimageio.yaml) at its top level"
    )


def _where(loc: tuple) -> str:
    """A validation location as a dotted field name (``inputs.0.axes``)."""
    return ".".join(str(part) for part in loc) or "(top level)"


def _entries(summary: Any, kind: str) -> list[str]:
    return [f"{_where(entry.loc)}: {entry.msg}" for detail in summary.details for entry in getattr(detail, kind)]


def _remote_addresses(rdf: dict) -> dict[str, None]:
    """The http(s) addresses a description names, to be taken as they are rather than fetched (offline)."""
    found: dict[str, None] = {}
    stack: list[Any] = [rdf]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            found[value] = None
    return found


def read_rdf(source: Path) -> dict:
    """The raw ``rdf.yaml`` of a package folder or zip, as a mapping."""
    import yaml

    rdf_path = find_rdf(source)
    try:
        if rdf_path.suffix == ".zip":
            with zipfile.ZipFile(rdf_path) as archive:
                name = next(n for n in RDF_NAMES if n in archive.namelist())
                text = archive.read(name).decode("utf-8")
        else:
            text = rdf_path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PackageError(f"{rdf_path}: cannot be read as YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise PackageError(f"{rdf_path}: expected a YAML mapping of fields, got {type(data).__name__}")
    return data


def validate_package(source: Path, latest: bool = False) -> tuple[Any, list[str]]:
    """Validate a package with ``bioimageio.spec`` without using the network.

    Parameters
    ----------
    source : Path
        A package folder, its ``rdf.yaml`` or its zip.
    latest : bool
        Convert the description to the newest format the library knows (older packages, e.g. 0.4, included).

    Returns
    -------
    tuple
        The loaded description (a ``bioimageio.spec`` object) and the validator's warnings, one line each.

    Raises
    ------
    PackageError
        When the description is invalid; the message lists the fields and what was expected.
    """
    from bioimageio.spec import InvalidDescr, load_description

    rdf_path = find_rdf(Path(source))
    # Files inside the package are opened and hashed; addresses are "known" so the validator does not
    # send a request for each of them (it would only warn when offline, after a timeout).
    descr = load_description(
        rdf_path,
        perform_io_checks=True,
        known_files=_remote_addresses(read_rdf(rdf_path)),
        format_version="latest" if latest else "discover",
    )
    summary = descr.validation_summary
    if isinstance(descr, InvalidDescr) or summary.status == "failed":
        errors = _entries(summary, "errors")
        listed = "; ".join(errors[:MAX_LISTED]) + (
            f"; and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        )
        raise PackageError(f"{rdf_path} is not a valid bioimage.io description: {listed or summary.status}")
    warnings = _entries(summary, "warnings")
    for warning in warnings:
        log.info("bioimage.io validation of %s: %s", rdf_path, warning)
    return descr, warnings


def zip_package(folder: Path, target: Path) -> Path:
    """Zip a package folder with ``rdf.yaml`` at the top level (what bioimage.io tools open)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    write_bytes_atomic(Path(target), buffer.getvalue())
    return Path(target)
