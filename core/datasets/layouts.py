"""Find the image/mask pairs in the folder layouts labs use.

Layouts:

- ``splits``: ``{train,valid,test}/{images,masks}`` (optionally ``masks_instances``);
- ``flat``: ``images/`` + ``masks/`` with matching names (split later by ratio and seed);
- ``dsb``: Kaggle Data Science Bowl, ``<id>/images/<id>.png`` + ``<id>/masks/*.png`` (one file per object);
- ``tif-pairs``: ``input/raw_NNN.tif`` + ``labels/instance_ids_NNN.tif`` (matched by number);
- ``images``: image files alone (in the folder itself or in ``images/``), imported without masks;
- ``timelapse``: videos, ``input/<name>.tif`` + ``labels/<name>.tif`` (multi-frame TIFFs, ``T×H×W``, label ids
  are track ids) or frames folders ``input/<name>/<frames>`` + ``labels/<name>/<frames>``, with or without
  ``{train,valid,test}`` folders above them (a sequence is one pair; the importer makes a row per frame).

Wherever a mask file is expected, an ImageJ/Fiji ROI file or zip (``<stem>.roi``, ``<stem>.zip``,
``<stem>.roi.zip``, ``<stem>_RoiSet.zip``) or a QuPath GeoJSON export (``<stem>.geojson``, ``<stem>.json``)
may stand in for it. Such files may also sit next to their images, as Fiji and QuPath users keep them
(there, GeoJSON must be named ``.geojson``: a plain ``.json`` beside an image is often its metadata).

With ``images_only`` an image that has no mask is imported as *unlabelled* (reported as a note, not an
error): labs often start from raw images and draw or correct masks later. Scanning only lists files;
nothing is decoded here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core.io import is_image_file
from core.datasets.report import Finding
from core.interop.annotations import annotation_stem, annotation_suffix

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "val": "valid",
    "validation": "valid",
    "test": "test",
    "testing": "test",
}
_SPLIT_RANK = {"train": 0, "valid": 1, "test": 2}
IMAGE_DIRS = ("images", "image", "imgs", "img", "input", "inputs", "raw", "x")
MASK_DIRS = ("masks", "mask", "labels", "label", "gt", "ground_truth", "groundtruth", "annotations", "y")
INSTANCE_DIRS = ("masks_instances", "instances", "instance_masks")
LAYOUTS = ("splits", "flat", "dsb", "tif-pairs", "images", "timelapse")
TIMELAPSE = "timelapse"
_PEEK = 3  # files or folders looked at to tell videos from still images
_JUNK = re.compile(r"^(\.|__macosx$|thumbs\.db$|desktop\.ini$)", re.IGNORECASE)
_AFFIX = re.compile(
    r"^(raw|image|img|input|mask|masks|label|labels|instance_ids|instances|man_seg|seg|roiset)[_-]"
    r"|[_-](mask|masks|label|labels|gt|seg|instances|instance_ids|roiset)$",
    re.IGNORECASE,
)
_TRAILING_NUMBER = re.compile(r"(\d+)$")
# a file name ending like this beside an image of the same name is that image's mask (a_labels.ome.tif)
_MASK_SUFFIX = re.compile(r"[_-](mask|masks|label|labels|gt|seg|instances|instance_ids)$", re.IGNORECASE)


class LayoutError(ValueError):
    """The folder does not look like any supported layout."""


@dataclass(frozen=True)
class PairSource:
    """Where one image and its mask(s) come from (no masks: the image is imported unlabelled).

    In the ``timelapse`` layout a pair is a whole sequence: ``image`` and ``masks[0]`` are a multi-frame TIFF
    or a frames folder each, and ``stem`` is the sequence's name.
    """

    stem: str
    split: str | None
    image: Path
    masks: tuple[Path, ...]
    instances: Path | None = None

    @property
    def per_object_masks(self) -> bool:
        return len(self.masks) > 1

    @property
    def unlabelled(self) -> bool:
        return not self.masks


@dataclass
class Scan:
    """The result of scanning a source folder: its layout, the pairs and any findings."""

    root: Path
    layout: str
    pairs: list[PairSource] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def _is_junk(path: Path) -> bool:
    return bool(_JUNK.match(path.name))


def _subdirs(folder: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in sorted(folder.iterdir()) if p.is_dir() and not _is_junk(p)}


def _find_dir(folder: Path, names: tuple[str, ...]) -> Path | None:
    subdirs = _subdirs(folder)
    return next((subdirs[n] for n in names if n in subdirs), None)


def effective_root(root: Path) -> Path:
    """Descend through wrapper folders (e.g. a zip's single top folder) to where the data starts."""
    current = root
    for _ in range(4):
        entries = [p for p in current.iterdir() if not _is_junk(p)]
        dirs = [p for p in entries if p.is_dir()]
        files = [p for p in entries if p.is_file() and is_image_file(p)]
        if len(dirs) == 1 and not files and detect_layout(current, descend=False) is None:
            current = dirs[0]
        else:
            break
    return current


def detect_layout(root: Path, descend: bool = True) -> str | None:
    """Name the layout of ``root`` or return ``None`` when nothing matches."""
    if descend:
        root = effective_root(root)
    subdirs = _subdirs(root)
    splits = [d for name, d in subdirs.items() if name in SPLIT_ALIASES]
    split_image_dirs = [found for found in (_find_dir(d, IMAGE_DIRS) for d in splits) if found]
    if split_image_dirs:
        return TIMELAPSE if any(holds_videos(d) for d in split_image_dirs) else "splits"
    image_dir, mask_dir = _find_dir(root, IMAGE_DIRS), _find_dir(root, MASK_DIRS)
    if image_dir and holds_videos(image_dir):
        return TIMELAPSE
    if image_dir and mask_dir:
        tifs = [p for p in image_dir.iterdir() if p.suffix.lower() in (".tif", ".tiff")]
        return "tif-pairs" if image_dir.name.lower() == "input" and tifs else "flat"
    candidates = list(subdirs.values())[:50]
    if candidates and sum(_is_dsb_sample(d) for d in candidates) >= max(1, len(candidates) // 2):
        return "dsb"
    if image_dir or any(is_image_file(p) for p in root.iterdir() if p.is_file() and not _is_junk(p)):
        return "images"
    return None


def holds_videos(folder: Path) -> bool:
    """True when ``folder`` (an images folder) holds videos: multi-frame TIFFs, or sub-folders of frame images.

    Only a few TIFF headers and folder listings are read.
    """
    from core.timelapse.video_files import is_video_file  # imported here: core.timelapse may build on datasets

    entries = [p for p in sorted(folder.iterdir()) if not _is_junk(p)]
    frame_dirs = [p for p in entries if p.is_dir()][:_PEEK]
    if any(any(is_image_file(f) for f in d.iterdir() if f.is_file()) for d in frame_dirs):
        return True
    tiffs = [p for p in entries if p.is_file() and p.suffix.lower() in (".tif", ".tiff")][:_PEEK]
    return any(is_video_file(p) for p in tiffs)


def _is_dsb_sample(folder: Path) -> bool:
    """``<id>/images/`` holding a single image, plus ``<id>/masks/``."""
    image_dir, mask_dir = _find_dir(folder, ("images",)), _find_dir(folder, ("masks",))
    if image_dir is None or mask_dir is None:
        return False
    return sum(1 for p in image_dir.iterdir() if is_image_file(p)) == 1


def match_key(stem: str) -> str:
    """Normalise a file stem so that an image and its mask share a key.

    >>> match_key("raw_000"), match_key("instance_ids_000"), match_key("cell7_mask")
    ('000', '000', 'cell7')
    """
    return _AFFIX.sub("", stem).lower()


def _beside_images(path: Path) -> bool:
    """An outline file that may sit next to its image; not plain ``.json``, which microscopes also write
    beside images for their metadata (in a masks folder, ``.json`` is taken as GeoJSON)."""
    return annotation_suffix(path) not in (None, ".json")


def _image_files(folder: Path, scan: Scan, annotations: bool = False) -> list[Path]:
    """The image files of ``folder``, and with ``annotations`` its ROI and GeoJSON files (a masks folder).

    Other files are reported and ignored, except outline files that may be the masks next to their images
    (:func:`_annotations_beside` lists those).
    """
    files = []
    for path in sorted(folder.iterdir()):
        if _is_junk(path) or path.is_dir():
            continue
        if is_image_file(path) or (annotations and annotation_suffix(path)):
            files.append(path)
        elif not _beside_images(path):
            hint = (
                "Remove it, or convert it to PNG or TIFF if it is part of the data."
                if path.suffix != ".json"
                else "If it is a QuPath GeoJSON export, rename it to .geojson or move it into a masks folder."
            )
            scan.findings.append(
                Finding(
                    "warning",
                    "not-an-image",
                    scan.rel(path),
                    f"is not an image file (suffix {path.suffix or 'none'!r}) and was ignored.",
                    hint,
                )
            )
    return files


def file_stem(path: Path) -> str:
    """The name a file shares with its image or mask: without its suffix, and without the ``.ome`` of an
    OME-TIFF or the suffixes of ROI and GeoJSON files.

    >>> file_stem(Path("a.ome.tif")), file_stem(Path("b.roi.zip")), file_stem(Path("c.png"))
    ('a', 'b', 'c')
    """
    if annotation_suffix(path):
        return annotation_stem(path)
    if path.name.lower().endswith((".ome.tif", ".ome.tiff")):
        return path.name[: path.name.lower().rindex(".ome.")]
    return path.stem


def _by_stem(files: list[Path], scan: Scan) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in files:
        stem = file_stem(path)
        if stem in found:
            scan.findings.append(
                Finding(
                    "error",
                    "duplicate-stem",
                    scan.rel(path),
                    f"has the same name as {scan.rel(found[stem])} (only the suffix differs).",
                    "Keep one of the two files.",
                    stem=stem,
                )
            )
            continue
        found[stem] = path
    return found


def _label_images_beside(images: dict[str, Path], scan: Scan) -> dict[str, Path]:
    """Label images kept beside their images (``a.tif`` + ``a_labels.ome.tif`` or ``a_mask.png``): taken out of
    ``images`` and returned as the masks of the images whose names they share once the affix is dropped."""
    keys = {}
    for stem in images:
        keys.setdefault(match_key(stem), []).append(stem)
    masks = {}
    for stem in list(images):
        partners = [other for other in keys[match_key(stem)] if other != stem]
        if _MASK_SUFFIX.search(stem) and len(partners) == 1 and not _MASK_SUFFIX.search(partners[0]):
            masks[partners[0]] = images.pop(stem)
            scan.findings.append(
                Finding(
                    "info",
                    "mask-beside",
                    scan.rel(masks[partners[0]]),
                    f"is taken as the mask of {scan.rel(images[partners[0]])} (same name with a mask affix).",
                    stem=partners[0],
                )
            )
    return masks


def _annotations_beside(folder: Path, images: dict[str, Path], scan: Scan) -> dict[str, Path]:
    """ROI files and zips, GeoJSON files and label images next to the images of ``folder``, matched to them
    by name (label images are taken out of ``images``)."""
    labels = _label_images_beside(images, scan)
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not _is_junk(p) and _beside_images(p)]
    beside = _by_stem(files, scan)
    matched = {**_match(images, beside), **labels}
    for path in set(beside.values()) - set(matched.values()):
        scan.findings.append(
            Finding(
                "warning",
                "orphan-mask",
                scan.rel(path),
                "has no image with a matching name and was ignored.",
                "Name it after its image (a.tif + a.roi.zip or a.geojson), or remove it.",
            )
        )
    return matched


def _match(images: dict[str, Path], masks: dict[str, Path]) -> dict[str, Path]:
    """Pair masks to image stems: exact name, then name without affixes, then trailing number."""
    matched = {stem: masks[stem] for stem in images if stem in masks}
    left_images = [s for s in images if s not in matched]
    left_masks = {s: p for s, p in masks.items() if p not in matched.values()}
    by_key = {}
    for stem, path in left_masks.items():
        by_key.setdefault(match_key(stem), []).append(path)
    for stem in left_images:
        candidates = by_key.get(match_key(stem), [])
        if len(candidates) == 1:
            matched[stem] = candidates[0]
    left_images = [s for s in images if s not in matched]
    used = set(matched.values())
    by_number = {}
    for stem, path in masks.items():
        number = _TRAILING_NUMBER.search(stem)
        if number and path not in used:
            by_number.setdefault(int(number.group(1)), []).append(path)
    for stem in left_images:
        number = _TRAILING_NUMBER.search(stem)
        if number and len(by_number.get(int(number.group(1)), [])) == 1:
            matched[stem] = by_number[int(number.group(1))][0]
    return matched


def pair_by_name(images: list[Path], masks: list[Path]) -> dict[Path, Path]:
    """Pair image files with mask files the way an import does (same name, name without affixes, number).

    >>> pair_by_name([Path("a/raw_001.tif")], [Path("b/instance_ids_001.tif")])
    {PosixPath('a/raw_001.tif'): PosixPath('b/instance_ids_001.tif')}
    """
    by_stem = {p.stem: p for p in images}
    return {by_stem[stem]: mask for stem, mask in _match(by_stem, {p.stem: p for p in masks}).items()}


def _scan_images(root: Path, scan: Scan, images_only: bool) -> None:
    """The ``images`` layout: every image file of ``root`` (or of its images folder), without masks."""
    folder = _find_dir(root, IMAGE_DIRS) or root
    images = _by_stem(_image_files(folder, scan), scan)
    beside = _annotations_beside(folder, images, scan)
    if beside:  # outlines next to the images: pair them as with a masks folder
        _add_pairs(
            images,
            beside,
            None,
            scan,
            images_only,
            "its folder (no ROI zip or GeoJSON file of the same name beside it)",
        )
        return
    if not images_only:
        scan.findings.append(
            Finding(
                "error",
                "no-masks",
                scan.rel(folder),
                f"holds {len(images)} images and no masks.",
                "Import them as unlabelled images (images only), or add a masks folder.",
            )
        )
        return
    for stem, image in images.items():
        scan.pairs.append(PairSource(stem, None, image, ()))
    if images:
        scan.findings.append(
            Finding(
                "info",
                "unlabelled",
                scan.rel(folder),
                f"{len(images)} images without masks are imported as unlabelled.",
                "Propose masks with a model, or draw them in the editor.",
            )
        )


def _scan_pair_folder(folder: Path, split: str | None, scan: Scan, images_only: bool = False) -> None:
    image_dir = _find_dir(folder, IMAGE_DIRS)
    mask_dir = _find_dir(folder, MASK_DIRS)
    if image_dir is None:
        scan.findings.append(
            Finding(
                "error",
                "no-images-folder",
                scan.rel(folder),
                "has no images folder.",
                f"Expected one named {' or '.join(IMAGE_DIRS[:3])}.",
            )
        )
        return
    images = _by_stem(_image_files(image_dir, scan), scan)
    masks = _by_stem(_image_files(mask_dir, scan, annotations=True), scan) if mask_dir else {}
    instance_dir = _find_dir(folder, INSTANCE_DIRS)
    instances = _by_stem(_image_files(instance_dir, scan), scan) if instance_dir else {}
    matched = _match(images, masks)
    beside = _annotations_beside(image_dir, images, scan)
    for stem in sorted(matched.keys() & beside.keys()):
        scan.findings.append(
            Finding(
                "warning",
                "mask-ignored",
                scan.rel(beside.pop(stem)),
                f"was ignored: its image already has the mask {scan.rel(matched[stem])}.",
                "Keep one of the two.",
                stem=stem,
            )
        )
    where = scan.rel(mask_dir) if mask_dir else f"a masks folder next to {scan.rel(image_dir)}"
    _add_pairs(images, {**matched, **beside}, split, scan, images_only, where, _match(images, instances))
    used = set(matched.values())
    for mask in masks.values():
        if mask not in used:
            scan.findings.append(
                Finding(
                    "warning",
                    "orphan-mask",
                    scan.rel(mask),
                    "has no image with a matching name and was ignored.",
                    "Check the file name, or remove the mask.",
                )
            )


def _add_pairs(
    images: dict[str, Path],
    matched: dict[str, Path],
    split: str | None,
    scan: Scan,
    images_only: bool,
    where: str,
    matched_instances: dict[str, Path] | None = None,
) -> None:
    """A pair per image with a mask; the others unlabelled (``images_only``) or reported as missing a mask."""
    for stem, image in images.items():
        if stem not in matched:
            if images_only:
                scan.findings.append(
                    Finding(
                        "info",
                        "unlabelled",
                        scan.rel(image),
                        f"has no mask in {where}: imported as unlabelled.",
                        stem=stem,
                    )
                )
                scan.pairs.append(PairSource(stem, split, image, ()))
                continue
            scan.findings.append(
                Finding(
                    "error",
                    "missing-mask",
                    scan.rel(image),
                    f"has no mask in {where}.",
                    f"Add a mask named {stem}.png (or outlines {stem}.roi.zip or {stem}.geojson; "
                    "same name as the image), remove the image, "
                    "or import images without masks as unlabelled.",
                    stem=stem,
                )
            )
            continue
        scan.pairs.append(PairSource(stem, split, image, (matched[stem],), (matched_instances or {}).get(stem)))


def _scan_dsb(root: Path, scan: Scan) -> None:
    for folder in _subdirs(root).values():
        image_dir, mask_dir = _find_dir(folder, ("images",)), _find_dir(folder, ("masks",))
        if image_dir is None or mask_dir is None:
            scan.findings.append(
                Finding(
                    "warning",
                    "not-a-sample-folder",
                    scan.rel(folder),
                    "has no images/ and masks/ folders and was ignored.",
                )
            )
            continue
        images = _image_files(image_dir, scan)
        masks = tuple(_image_files(mask_dir, scan, annotations=True))
        stem = folder.name
        if len(images) != 1:
            scan.findings.append(
                Finding(
                    "error",
                    "dsb-image-count",
                    scan.rel(image_dir),
                    f"holds {len(images)} images; the DSB layout has exactly one per folder.",
                    "Keep only the image of this sample in images/.",
                    stem=stem,
                )
            )
            continue
        if not masks:
            scan.findings.append(
                Finding(
                    "error",
                    "missing-mask",
                    scan.rel(images[0]),
                    f"has no mask: {scan.rel(mask_dir)} is empty.",
                    "Add one PNG per object (or remove the sample).",
                    stem=stem,
                )
            )
            continue
        scan.pairs.append(PairSource(stem, None, images[0], masks))


def scan_source(root: Path, layout: str = "auto", images_only: bool = False) -> Scan:
    """List the image/mask pairs of ``root`` in the given (or detected) layout; with ``images_only``,
    images without masks are listed too (as unlabelled).

    Raises :class:`LayoutError` when the folder matches no supported layout.
    """
    if not root.is_dir():
        raise LayoutError(f"{root} is not a folder.")
    root = effective_root(root)
    detected = detect_layout(root, descend=False)
    if layout == "auto":
        if detected is None:
            found = ", ".join(sorted(_subdirs(root))[:8]) or "no sub-folders"
            raise LayoutError(
                f"Could not recognise the layout of {root.name}/ (found: {found}). Expected one of: "
                "train/valid/test folders each with images/ and masks/; images/ + masks/; "
                "Kaggle DSB <id>/images/<id>.png + <id>/masks/*.png; input/*.tif + labels/*.tif; "
                "time-lapse videos input/<name>.tif (or input/<name>/ frames) + labels/<name>.tif; "
                "or a folder of images (imported without masks)."
            )
        layout = detected
    if layout not in LAYOUTS:
        raise LayoutError(f"Unknown layout {layout!r}; choose auto, {', '.join(LAYOUTS)}.")
    scan = Scan(root, layout)
    if layout == "splits":
        split_dirs = [(SPLIT_ALIASES[n], d) for n, d in _subdirs(root).items() if n in SPLIT_ALIASES]
        for split, folder in sorted(split_dirs, key=lambda item: _SPLIT_RANK[item[0]]):  # train, valid, test
            _scan_pair_folder(folder, split, scan, images_only)
    elif layout in ("flat", "tif-pairs"):
        _scan_pair_folder(root, None, scan, images_only)
    elif layout == "images":
        _scan_images(root, scan, images_only)
    elif layout == TIMELAPSE:
        _scan_timelapse(root, scan, images_only)
    else:
        _scan_dsb(root, scan)
    _flag_stems_in_two_splits(scan)
    return scan


def _video_entries(folder: Path, scan: Scan) -> dict[str, Path]:
    """The videos of an images or labels folder by name: its image files (multi-frame TIFFs, or single images
    taken as one frame) and its sub-folders of frame images; other files are reported and ignored."""
    entries = list(_image_files(folder, scan))
    for sub in (p for p in sorted(folder.iterdir()) if p.is_dir() and not _is_junk(p)):
        if any(is_image_file(f) for f in sub.iterdir() if f.is_file()):
            entries.append(sub)
        else:
            scan.findings.append(
                Finding(
                    "warning",
                    "not-a-sample-folder",
                    scan.rel(sub),
                    "holds no frame images and was ignored.",
                    "A frames folder holds one image per frame (PNG or TIFF).",
                )
            )
    found: dict[str, Path] = {}
    for path in entries:
        name = path.name if path.is_dir() else file_stem(path)
        if name in found:
            scan.findings.append(
                Finding(
                    "error",
                    "duplicate-stem",
                    scan.rel(path),
                    f"has the same name as {scan.rel(found[name])}.",
                    "Keep one of the two: a video is one TIFF or one folder of frames.",
                    stem=name,
                )
            )
            continue
        found[name] = path
    return found


def _scan_video_folder(folder: Path, split: str | None, scan: Scan, images_only: bool) -> None:
    """One folder of videos (``input/`` + ``labels/``): a pair per sequence, matched by name."""
    image_dir, label_dir = _find_dir(folder, IMAGE_DIRS), _find_dir(folder, MASK_DIRS)
    if image_dir is None:
        scan.findings.append(
            Finding(
                "error",
                "no-images-folder",
                scan.rel(folder),
                "has no images folder.",
                f"Expected one named {' or '.join(IMAGE_DIRS[:3])} holding the videos.",
            )
        )
        return
    videos = _video_entries(image_dir, scan)
    labels = _video_entries(label_dir, scan) if label_dir else {}
    matched = _match(videos, labels)
    where = scan.rel(label_dir) if label_dir else f"a labels folder next to {scan.rel(image_dir)}"
    for name, video in videos.items():
        if name in matched:
            scan.pairs.append(PairSource(name, split, video, (matched[name],)))
        elif images_only:
            scan.findings.append(
                Finding(
                    "info",
                    "unlabelled",
                    scan.rel(video),
                    f"has no labels in {where}: its frames are imported as unlabelled.",
                    stem=name,
                )
            )
            scan.pairs.append(PairSource(name, split, video, ()))
        else:
            scan.findings.append(
                Finding(
                    "error",
                    "missing-mask",
                    scan.rel(video),
                    f"has no labels in {where}.",
                    f"Add a label video of the same name ({name}.tif, or a folder {name}/ of "
                    "label frames), remove the video, or import it without labels "
                    "(images only).",
                    stem=name,
                )
            )
    used = set(matched.values())
    for _name, path in labels.items():
        if path not in used:
            scan.findings.append(
                Finding(
                    "warning",
                    "orphan-mask",
                    scan.rel(path),
                    "has no video with a matching name and was ignored.",
                    "Check the name, or remove the labels.",
                )
            )


def _scan_timelapse(root: Path, scan: Scan, images_only: bool) -> None:
    split_dirs = [(SPLIT_ALIASES[n], d) for n, d in _subdirs(root).items() if n in SPLIT_ALIASES]
    if not any(_find_dir(d, IMAGE_DIRS) for _, d in split_dirs):
        _scan_video_folder(root, None, scan, images_only)
        return
    for split, folder in sorted(split_dirs, key=lambda item: _SPLIT_RANK[item[0]]):
        _scan_video_folder(folder, split, scan, images_only)


def _flag_stems_in_two_splits(scan: Scan) -> None:
    seen: dict[str, PairSource] = {}
    kept = []
    for pair in scan.pairs:
        if pair.stem in seen:
            first = seen[pair.stem]
            scan.findings.append(
                Finding(
                    "error",
                    "duplicate-stem",
                    scan.rel(pair.image),
                    f"has the same name as {scan.rel(first.image)} in split {first.split}.",
                    "Image names must be unique across splits; rename one of them.",
                    stem=pair.stem,
                )
            )
            continue
        seen[pair.stem] = pair
        kept.append(pair)
    scan.pairs = kept
