"""``python -m core augment preview`` and ``python -m core config import``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from core.augment.pipeline import AugmentPipeline
from core.augment.presets import DEFAULT_PRESET, list_presets, load_preset, save_preset
from core.augment.preview import contact_sheet, harm_warnings, label_picture, make_samples, sample_picture
from core.augment.seed_ini import import_seed_config
from core.config import ConfigError
from core.io import ImageReadError, read_image, write_png
from core.masks.kinds import MaskKindError, interpret_mask
from core.settings import load_settings
from core.train.seed_json import import_suite_config


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_preview(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        config = load_preset(settings.data_root, args.preset)
        image = read_image(args.image)
        reading = interpret_mask(read_image(args.mask), lossy=Path(args.mask).suffix.lower() in (".jpg", ".jpeg"))
    except (ConfigError, ImageReadError, MaskKindError) as exc:
        return _fail(str(exc))
    if reading.binary.shape != image.shape[:2]:
        return _fail(
            f"{Path(args.mask).name} is {reading.binary.shape[1]}×{reading.binary.shape[0]} but "
            f"{Path(args.image).name} is {image.shape[1]}×{image.shape[0]}."
        )
    mask = reading.instances if reading.instances is not None else reading.binary
    samples = make_samples(AugmentPipeline(config), image, mask, args.n, args.seed)
    pictures = [sample_picture(image, mask)] + [sample_picture(s.image, s.mask) for s in samples]
    labelled = [label_picture(pictures[0], "original")] + [
        label_picture(p, f"#{k + 1} {s.seconds * 1000:.0f} ms") for k, (p, s) in enumerate(zip(pictures[1:], samples))
    ]
    out = Path(args.out)
    write_png(out, contact_sheet(labelled, columns=args.columns))
    mean_ms = float(np.mean([s.seconds for s in samples])) * 1000
    print(
        f"Wrote {out}: the original and {args.n} samples with preset {args.preset} "
        f"(seed {args.seed}), {mean_ms:.0f} ms per sample."
    )
    for warning in harm_warnings(image, mask, samples):
        print(f"warning: {warning}")
    return 0


def cmd_config_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror}")
    if path.suffix.lower() == ".json":
        return _suite_config(text, path, args)
    try:
        result = import_seed_config(text, path.name)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.save_preset:
        try:
            saved = save_preset(
                load_settings().data_root, args.save_preset, result.augment, note=f"imported from {path.name}"
            )
        except (ConfigError, ValueError) as exc:
            return _fail(str(exc))
    if args.json:
        print(
            json.dumps(
                {
                    "augment": result.augment.to_dict(),
                    "training": result.training,
                    "report": [line.__dict__ for line in result.report],
                },
                indent=1,
                default=str,
            )
        )
    else:
        print(result.to_text())
        print(f"Augmentation enabled: {', '.join(result.augment.enabled()) or 'nothing'}.")
    if args.save_preset:
        print(f"Saved as preset {args.save_preset!r} ({saved}).", file=sys.stderr)
    return 1 if result.errors else 0


def _suite_config(text: str, path: Path, args: argparse.Namespace) -> int:
    """A microscopy-dl-suite-tf configuration.json: training settings only (it holds no augmentation)."""
    if args.save_preset:
        return _fail(
            f"{path.name} holds no augmentation settings to save as a preset; use its training settings "
            f"with: python -m core train --dataset NAME --config {path}"
        )
    try:
        result = import_suite_config(text, path.name)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.json:
        print(
            json.dumps(
                {
                    "training": result.training,
                    "time_window": result.time_window,
                    "report": [line.__dict__ for line in result.report],
                },
                indent=1,
                default=str,
            )
        )
    else:
        print(result.to_text())
        print(f"Training settings: {json.dumps(result.training) if result.training else 'the defaults'}.")
    return 1 if result.errors else 0


def add_commands(groups: argparse._SubParsersAction) -> None:
    augment = groups.add_parser("augment", help="preview augmentation settings")
    verbs = augment.add_subparsers(dest="verb", required=True, metavar="VERB")
    preview = verbs.add_parser("preview", help="write a contact sheet of augmented samples of one image")
    preview.add_argument("--image", required=True, help="image file")
    preview.add_argument("--mask", required=True, help="its mask (binary or instance ids)")
    preview.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help=f"preset name or JSON file (default {DEFAULT_PRESET}; built in: "
        f"{', '.join(list_presets(Path('/nonexistent')))})",
    )
    preview.add_argument("--n", type=int, default=8, help="number of samples (default 8)")
    preview.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    preview.add_argument("--columns", type=int, default=3, help="pictures per row (default 3)")
    preview.add_argument("--out", required=True, help="PNG file to write")
    preview.set_defaults(handler=cmd_preview)

    config = groups.add_parser("config", help="read settings files from other tools")
    config_verbs = config.add_subparsers(dest="verb", required=True, metavar="VERB")
    imp = config_verbs.add_parser(
        "import",
        help="read a Tensorflow-Image-Segmentation-API train_eval_infer.config "
        "or a microscopy-dl-suite-tf configuration.json",
    )
    imp.add_argument("file", help="the INI file, or the JSON file")
    imp.add_argument("--save-preset", metavar="NAME", help="also save the augmentation settings as this preset")
    imp.add_argument("--json", action="store_true", help="print the result as JSON")
    imp.set_defaults(handler=cmd_config_import)
