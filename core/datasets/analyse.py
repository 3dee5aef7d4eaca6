"""Read and check one image/mask pair: decode, compare sizes, understand the mask, measure it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.config import ImportOptions
from core.datasets.hashing import perceptual_hash, pixel_checksum
from core.datasets.layouts import PairSource, Scan
from core.datasets.report import Finding
from core.interop.annotations import (
    GEOJSON_SUFFIXES,
    AnnotationReadError,
    annotation_suffix,
    labels_from_polygons,
    read_annotations,
)
from core.io import ImageReadError, channels_of, read_image
from core.masks.kinds import MaskKindError, MaskReading, interpret_mask, merge_object_masks, read_as_instances
from core.pixel_size import read_pixel_size, row_fields
from core.text import plural

_LOSSY_SUFFIXES = (".jpg", ".jpeg")
_MIN_SIDE = 16
_MOSTLY_FOREGROUND = 0.9
_MAX_CELLS = np.iinfo(np.uint16).max  # dataset masks store cell ids as 16-bit numbers


@dataclass
class PairResult:
    """One analysed pair: its pixels (while needed), measurements and findings."""

    source: PairSource
    findings: list[Finding] = field(default_factory=list)
    image: np.ndarray | None = None
    mask: MaskReading | None = None
    stats: dict = field(default_factory=dict)
    image_modified: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.stats) and not any(f.severity == "error" for f in self.findings)

    def release_pixels(self) -> None:
        self.image = None
        self.mask = None


def _finding(result: PairResult, scan: Scan, severity, code, path, message, hint="") -> None:
    result.findings.append(Finding(severity, code, scan.rel(path), message, hint, stem=result.source.stem))


def _read_outlines(pair: PairSource, scan: Scan, result: PairResult, shape: tuple[int, int]) -> MaskReading | None:
    """Cells outlined in a Fiji ROI file/zip or a QuPath GeoJSON file, drawn at the image's size, one id each
    (overlaps go to the smaller cell; see :mod:`core.interop.annotations` for every rule)."""
    path = pair.masks[0]
    labels, notes = labels_from_polygons(read_annotations(path), shape)
    for note in notes:
        _finding(result, scan, note.severity, note.code, path, note.message)
    count = int(labels.max(initial=0))
    if count > _MAX_CELLS:
        _finding(
            result,
            scan,
            "error",
            "too-many-cells",
            path,
            f"outlines {count:,} cells; a dataset mask holds at most 65,535 per image (its cell ids are 16-bit).",
            "Split the image and its outlines into tiles, then import the tiles.",
        )
        return None
    if pair.instances is not None:
        _finding(
            result,
            scan,
            "warning",
            "instances-ignored",
            pair.instances,
            f"was ignored: the cells of this image come from {path.name}.",
        )
    source = "QuPath GeoJSON" if annotation_suffix(path) in GEOJSON_SUFFIXES else "ImageJ ROIs"
    reading = read_as_instances(labels)
    return MaskReading(reading.binary, reading.instances, "instances", f"{plural(count, 'cell')} drawn from {source}")


def _read_mask(
    pair: PairSource, scan: Scan, result: PairResult, options: ImportOptions, shape: tuple[int, int]
) -> MaskReading | None:
    try:
        if not pair.per_object_masks and annotation_suffix(pair.masks[0]):
            return _read_outlines(pair, scan, result, shape)
        if pair.per_object_masks:
            objects = [read_image(p) for p in pair.masks]
            wrong = [p for p, m in zip(pair.masks, objects) if m.shape[:2] != shape]
            if wrong:
                size = "×".join(map(str, objects[pair.masks.index(wrong[0])].shape[1::-1]))
                _finding(
                    result,
                    scan,
                    "error",
                    "size-mismatch",
                    wrong[0],
                    f"is {size} but the image is {shape[1]}×{shape[0]}.",
                    "Every object mask must have the image's exact size.",
                )
                return None
            labels, overlap = merge_object_masks(objects)
            if overlap:
                _finding(
                    result,
                    scan,
                    "warning",
                    "overlapping-objects",
                    pair.masks[0].parent,
                    f"{overlap} pixels belong to more than one object mask; the later file wins there.",
                )
            return read_as_instances(labels)
        mask_path = pair.masks[0]
        reading = interpret_mask(
            read_image(mask_path), lossy=mask_path.suffix.lower() in _LOSSY_SUFFIXES, threshold=options.mask_threshold
        )
        if pair.instances is not None:
            instances = read_as_instances(read_image(pair.instances))
            if instances.binary.shape != reading.binary.shape:
                _finding(
                    result,
                    scan,
                    "warning",
                    "instances-ignored",
                    pair.instances,
                    "has a different size from its mask and was ignored.",
                )
            else:
                reading = MaskReading(reading.binary, instances.instances, reading.kind, reading.note)
        return reading
    except (ImageReadError, AnnotationReadError) as exc:
        _finding(result, scan, "error", "unreadable-mask", exc.path, exc.problem, exc.hint)
    except MaskKindError as exc:
        _finding(
            result,
            scan,
            "error",
            "not-a-mask",
            pair.masks[0],
            str(exc),
            "Masks must be 0/255 or 0/1 binary images, or integer instance ids (0 = background).",
        )
    return None


def _check_image(result: PairResult, scan: Scan, image: np.ndarray, options: ImportOptions) -> np.ndarray:
    path = result.source.image
    height, width = image.shape[:2]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
        _finding(result, scan, "info", "alpha-dropped", path, "has an alpha channel; it was dropped (RGB kept).")
    elif image.ndim == 3 and image.shape[2] == 2:
        image = image[..., 0]
        _finding(result, scan, "info", "channel-dropped", path, "has two channels; the first was kept.")
    if min(height, width) < _MIN_SIDE:
        _finding(
            result,
            scan,
            "error",
            "tiny-image",
            path,
            f"is only {width}×{height} pixels; at least {_MIN_SIDE}×{_MIN_SIDE} is needed.",
            "Remove it.",
        )
    if height * width > options.large_image_pixels:
        _finding(
            result,
            scan,
            "warning",
            "large-image",
            path,
            f"is very large ({width}×{height}).",
            "It will be imported as is; train on random crops (the default) or tile it first "
            "(e.g. 1024×1024 tiles) to keep previews and editing fast.",
        )
    if image.size and int(image.min()) == int(image.max()):
        _finding(
            result,
            scan,
            "warning",
            "blank-image",
            path,
            f"has the same value ({int(image.min())}) everywhere.",
            "Check the export; it may be blank.",
        )
    return image


def _check_mask(result: PairResult, scan: Scan, mask: MaskReading) -> None:
    mask_file = result.source.masks[0] if not result.source.per_object_masks else result.source.masks[0].parent
    fraction = mask.foreground_fraction
    if fraction == 0:
        _finding(
            result,
            scan,
            "warning",
            "empty-mask",
            mask_file,
            "is empty (no foreground pixels).",
            "Fine for images without cells; otherwise draw the mask in the editor after import.",
        )
    elif fraction > _MOSTLY_FOREGROUND:
        _finding(
            result,
            scan,
            "warning",
            "mostly-foreground",
            mask_file,
            f"marks {fraction:.0%} of the image as cells; is it inverted (cells black, background white)?",
            "Masks must be white (or non-zero) where cells are.",
        )
    if mask.note:
        _finding(result, scan, "info", "mask-converted", mask_file, mask.note + ".")


def analyse_pair(pair: PairSource, scan: Scan, options: ImportOptions) -> PairResult:
    """Decode and check one pair; keep the pixels in the result for writing."""
    result = PairResult(pair)
    try:
        image = read_image(pair.image)
    except ImageReadError as exc:
        _finding(result, scan, "error", "unreadable-image", exc.path, exc.problem, exc.hint)
        return result
    checked = _check_image(result, scan, image, options)
    result.image_modified = checked is not image
    image = checked
    if pair.unlabelled:  # imported without a mask: an empty one stands in until a person or a model draws it
        mask = MaskReading(np.zeros(image.shape[:2], np.uint8), None, "binary")
    else:
        mask = _read_mask(pair, scan, result, options, image.shape[:2])
    if mask is None:
        return result
    if mask.binary.shape != image.shape[:2]:
        h, w = mask.binary.shape
        _finding(
            result,
            scan,
            "error",
            "size-mismatch",
            pair.masks[0],
            f"is {w}×{h} but its image {pair.image.name} is {image.shape[1]}×{image.shape[0]}.",
            "Masks must have exactly the image's size; re-export the mask at full resolution.",
        )
        return result
    if not pair.unlabelled:
        _check_mask(result, scan, mask)
    result.image, result.mask = image, mask
    result.stats = {
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "dtype": str(image.dtype),
        "channels": channels_of(image),
        "foreground_fraction": round(mask.foreground_fraction, 6),
        "object_count": mask.object_count,
        "checksum": pixel_checksum(image),
        "phash": perceptual_hash(image),
        "mask_kind": "none" if pair.unlabelled else mask.kind,
        "has_instances": mask.instances is not None,
        "source": scan.rel(pair.image),
        "label": "unlabelled" if pair.unlabelled else "truth",
    }
    pixel_size, note = read_pixel_size(pair.image)  # µm per pixel from OME/ImageJ/TIFF metadata, when trusted
    if note:
        _finding(
            result,
            scan,
            "info",
            "pixel-size-ignored",
            pair.image,
            note,
            "If you know it, set it by hand: Datasets › Manage, or python -m core datasets pixel-size.",
        )
    result.stats.update(row_fields(pixel_size))
    return result
