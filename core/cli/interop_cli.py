"""``python -m core export-cells SRC --format F --out DIR``: cells for Fiji, QuPath, OMERO/napari, CellProfiler."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.text import plural


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _pixel_size(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a pixel size in µm (e.g. 0.325), got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"the pixel size must be positive (µm per pixel), got {text!r}")
    return value


def cmd_export_cells(args: argparse.Namespace) -> int:
    from core.interop.export import ExportError, export_cells, resolve_sources
    from core.settings import load_settings

    states = tuple(args.state) if args.state else None
    try:
        kind, sources = resolve_sources(load_settings(), args.source, split=args.split, states=states)
        summary = export_cells(
            sources,
            args.format,
            Path(args.out),
            pixel_size_um=args.pixel_size,
            object_type=args.object_type,
            progress=_progress(args.json),
        )
    except (ExportError, ValueError, OSError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"source": args.source, "kind": kind, **summary.to_dict()}))
        return 0
    print(
        f"Exported {plural(summary.cells, 'cell')} of {plural(summary.images, 'image')} ({kind} {args.source}) "
        f"as {args.format} to {summary.out_dir}"
    )
    for line in summary.skipped:
        print(f"  skipped {line}")
    return 0


def _progress(quiet: bool):
    def report(done: int, total: int, name: str) -> None:
        if not quiet and sys.stderr.isatty():
            print(f"\r{done}/{total} {name[:40]:<40}", end="" if done < total else "\n", file=sys.stderr)

    return report


def add_commands(groups: argparse._SubParsersAction) -> None:
    from core.datasets.labels import LABEL_STATES
    from core.interop.cell_files import OBJECT_TYPES
    from core.interop.export import FORMATS

    export = groups.add_parser(
        "export-cells",
        help="export cells as Fiji ROIs, QuPath GeoJSON, OME-TIFF labels or CSV",
        description="Export the cells of a prediction folder, of a run's evaluation (RUN_ID or RUN_ID:SET) or of "
        "a dataset's masks. Every format numbers a cell with its id in the label image, and cells.csv "
        "is written beside the files so that rows join.",
    )
    export.add_argument(
        "source",
        metavar="SRC",
        help="a prediction folder, a dataset name or folder, or a run/model "
        "id with an evaluation (RUN_ID:SET for one set)",
    )
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--split", choices=("train", "valid", "test"), help="a dataset's split (default: all)")
    export.add_argument(
        "--state",
        action="append",
        choices=[s for s in LABEL_STATES if s != "unlabelled"],
        help="a dataset's masks in this label state only (repeatable; default: every mask)",
    )
    export.add_argument(
        "--pixel-size",
        type=_pixel_size,
        metavar="UM",
        help="µm per pixel: areas in µm² and the OME-TIFF's physical size (default: pixels only)",
    )
    export.add_argument(
        "--object-type",
        choices=OBJECT_TYPES,
        default="detection",
        help="QuPath object type of GeoJSON cells (default: detection)",
    )
    export.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    export.set_defaults(handler=cmd_export_cells)
