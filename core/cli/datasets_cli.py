"""``python -m core datasets import|add|check|list|rename|delete|pixel-size``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from core.catalogue import store
from core.catalogue.datasets import list_datasets, register_dataset, sync_datasets
from core.config import ConfigError, ImportOptions, SplitOptions
from core.datasets.adding import add_images
from core.datasets.importer import check_source, import_dataset
from core.datasets.labels import label_counts
from core.datasets.layouts import LAYOUTS
from core.datasets.manage import DatasetNotFound, dataset_dir, delete_dataset, rename_dataset, set_pixel_size
from core.datasets.manifest import ManifestError, list_dataset_dirs, read_manifest, suggest_name
from core.datasets.report import ImportFailed, Report
from core.pixel_size import dataset_level, describe, from_manifest
from core.settings import Settings, load_settings
from core.text import plural


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


class _ProgressBar:
    """A progress bar on stderr for the engine's ``progress(done, total, text)`` callback."""

    def __init__(self, label: str):
        self.label = label
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int, text: str) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit="pair", file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_report(report: Report, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        payload = {
            "ok": report.ok,
            "summary": report.summary(),
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "findings": report.to_rows(),
            **(extra or {}),
        }
        print(json.dumps(payload, indent=1))
    else:
        print(report.to_text())


def _refused(report: Report, as_json: bool, extra: dict, what: str) -> int:
    """Print why nothing was imported or added (``what``: "imported", "added"); the exit status is 1."""
    _print_report(report, as_json, {**extra, what: False})
    if not as_json:
        print(f"Nothing was {what}.", file=sys.stderr)
    return 1


def _register(settings: Settings, name: str) -> str:
    """Add the dataset to the catalogue, or say why the dashboard will do it instead."""
    try:
        con = store.connect(settings.catalogue_path, retries=10)
    except store.CatalogueBusy:
        return (
            "The dashboard is running and holds the catalogue; it lists the new dataset "
            "the next time its Datasets page is opened."
        )
    try:
        register_dataset(con, settings.datasets_dir / name)
    finally:
        con.close()
    return f"Registered in the catalogue {settings.catalogue_path}."


def _import_options(args: argparse.Namespace, source: Path) -> ImportOptions:
    split = SplitOptions.parse(args.split, seed=args.seed) if args.split else SplitOptions(seed=args.seed)
    return ImportOptions(
        name=args.name or suggest_name(source),
        layout=args.layout,
        split=split,
        skip_invalid=args.skip_invalid,
        images_only=args.images_only,
    )


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_settings()
    source = Path(args.source).expanduser()
    try:
        options = _import_options(args, source)
    except ConfigError as exc:
        return _fail(str(exc))
    bar = _ProgressBar(f"importing {options.name}")
    try:
        result = import_dataset(source, options, settings, progress=bar)
    except ImportFailed as exc:
        bar.close()
        return _refused(exc.report, args.json, {"name": options.name}, "imported")
    finally:
        bar.close()
    note = _register(settings, result.name)
    extra = {
        "name": result.name,
        "imported": True,
        "path": str(result.path),
        "counts": result.counts,
        "seconds": round(result.seconds, 2),
    }
    if args.json:
        _print_report(result.report, True, extra)
    else:
        warnings = result.report.warnings
        for finding in result.report.sorted()[:50]:
            if finding.severity != "info":
                print(finding)
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
        print(
            f"Imported {result.name}: {counts} ({plural(len(warnings), 'warning')}) in {result.seconds:.1f} s "
            f"into {result.path}."
        )
    print(note, file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    target = Path(args.source).expanduser()
    if not target.exists():
        try:
            target = dataset_dir(settings, args.source)
        except DatasetNotFound as exc:
            return _fail(f"{args.source} is neither a folder, a zip, nor an imported dataset. {exc}")
    layout = "splits" if target.parent == settings.datasets_dir else args.layout
    bar = _ProgressBar(f"checking {target.name}")
    try:
        report = check_source(
            target, ImportOptions(name="check", layout=layout, images_only=args.images_only), settings, progress=bar
        )
    finally:
        bar.close()
    _print_report(report, args.json, {"source": str(target)})
    return 0 if report.ok else 1


def _datasets_from_manifests(settings: Settings) -> list[dict]:
    rows = []
    for folder in list_dataset_dirs(settings.datasets_dir):
        try:
            manifest = read_manifest(folder)
        except ManifestError:
            continue
        counts = manifest.get("counts", {})
        states = {f"n_{state}": n for state, n in label_counts(manifest.get("images", [])).items()}
        rows.append(
            {
                "name": folder.name,
                "n_images": len(manifest.get("images", [])),
                "n_train": counts.get("train", 0),
                "n_valid": counts.get("valid", 0),
                "n_test": counts.get("test", 0),
                **states,
                "pixel_size_um": getattr(dataset_level(manifest), "x_um", None),
                "layout": manifest.get("layout"),
                "created": manifest.get("created"),
                "source": manifest.get("source"),
                "path": str(folder),
            }
        )
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        con = store.connect(settings.catalogue_path, retries=5)
    except store.CatalogueBusy:
        rows = _datasets_from_manifests(settings)  # the dashboard holds the file: read the folders directly
    else:
        try:
            sync_datasets(con, settings.datasets_dir)
            frame = list_datasets(con)
        finally:
            con.close()
        frame["created"] = frame["created"].astype(str)
        frame["pixel_size_um"] = frame["pixel_size_um"].astype(object).where(frame["pixel_size_um"].notna(), None)
        rows = frame.drop(columns=["has_instances"]).to_dict(orient="records")
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    if not rows:
        print(f"No datasets yet under {settings.datasets_dir}.")
    for row in rows:
        waiting = ", ".join(
            f"{row[f'n_{state}']} {state}" for state in ("unlabelled", "proposed", "corrected") if row.get(f"n_{state}")
        )
        print(
            f"{row['name']:<24} {row['n_images']:>6} images  train {row['n_train']:>5}  valid {row['n_valid']:>5}  "
            f"test {row['n_test']:>5}  ({row['layout']}{'; ' + waiting if waiting else ''})"
            + (f"  {row['pixel_size_um']:g} µm/pixel" if row.get("pixel_size_um") else "")
        )
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    settings = load_settings()
    bar = _ProgressBar(f"adding to {args.name}")
    try:
        result = add_images(settings, args.name, Path(args.source).expanduser(), split=args.split, progress=bar)
    except DatasetNotFound as exc:
        return _fail(str(exc))
    except ImportFailed as exc:
        bar.close()
        return _refused(exc.report, args.json, {"name": args.name}, "added")
    finally:
        bar.close()
    note = _change_catalogue(settings)
    if args.json:
        _print_report(
            result.report,
            True,
            {"name": args.name, "added": result.added, "labels": result.labels, "seconds": round(result.seconds, 2)},
        )
    else:
        total = sum(result.added.values())
        where = ", ".join(f"{split} {n}" for split, n in result.added.items() if n)
        states = ", ".join(f"{n} {state}" for state, n in result.labels.items())
        print(f"Added {plural(total, 'image')} to {args.name} ({where}; {states}) in {result.seconds:.1f} s.")
    print(note, file=sys.stderr)
    return 0


def _change_catalogue(settings: Settings) -> str:
    try:
        con = store.connect(settings.catalogue_path, retries=5)
    except store.CatalogueBusy:
        return "The running dashboard will update its catalogue on its next page load."
    try:
        sync_datasets(con, settings.datasets_dir)
    finally:
        con.close()
    return "Catalogue updated."


def cmd_rename(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        rename_dataset(settings, args.old, args.new)
    except (DatasetNotFound, FileExistsError, ValueError) as exc:
        return _fail(str(exc))
    print(f"Renamed {args.old} to {args.new}. {_change_catalogue(settings)}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not args.yes:
        return _fail(
            f"deleting {args.name!r} removes its imported copy and mask edits; repeat with --yes. "
            "(The folder it was imported from is not touched.)"
        )
    try:
        delete_dataset(settings, args.name)
    except DatasetNotFound as exc:
        return _fail(str(exc))
    print(f"Deleted {args.name}. {_change_catalogue(settings)}")
    return 0


def _pixel_size_breakdown(manifest: dict) -> str:
    """How many images have which size from their files, e.g. ``3 images at 0.325 µm, 1 unknown``."""
    counts: dict[str, int] = {}
    for row in manifest.get("images", []):
        size = from_manifest(row.get("pixel_size_um"), row.get("pixel_size_source"))
        key = describe(size).removeprefix("pixel size ").split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{plural(n, 'image')} {'' if key == 'unknown' else 'at '}{key}" for key, n in counts.items())


def cmd_pixel_size(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        if args.um is None:
            manifest = read_manifest(dataset_dir(settings, args.name))
            size = dataset_level(manifest)
            print(
                f"{args.name}: {describe(size)}"
                + ("" if size else f" for the dataset ({_pixel_size_breakdown(manifest) or 'no images'}).")
            )
            return 0
        size = set_pixel_size(settings, args.name, args.um)
    except (DatasetNotFound, ManifestError, ValueError) as exc:
        return _fail(str(exc))
    print(f"{args.name}: {describe(size)}. {_change_catalogue(settings)}")
    return 0


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser(
        "datasets", help="import, add to, check, list, rename and delete datasets, and set their pixel size"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    imp = verbs.add_parser("import", help="import a folder or .zip into the data root")
    imp.add_argument("source", help="dataset folder or .zip")
    imp.add_argument("--name", help="dataset name (default: from the folder name)")
    imp.add_argument("--layout", default="auto", choices=("auto",) + LAYOUTS, help="source layout (default: auto)")
    imp.add_argument("--split", help="train,valid,test fractions for sources without splits (default 0.7,0.15,0.15)")
    imp.add_argument("--seed", type=int, default=0, help="random seed of the automatic split (default 0)")
    imp.add_argument("--skip-invalid", action="store_true", help="leave out pairs with errors instead of stopping")
    imp.add_argument(
        "--images-only",
        action="store_true",
        help="images without masks are fine: they are imported as unlabelled (masks that exist are "
        "used); a plain folder of images works too",
    )
    imp.add_argument("--json", action="store_true", help="print the result as JSON")
    imp.set_defaults(handler=cmd_import)

    add = verbs.add_parser("add", help="add images (unlabelled, or with masks) to an imported dataset")
    add.add_argument("name", help="the dataset to add to")
    add.add_argument("source", help="a folder or .zip of images (masks next to them are used when present)")
    add.add_argument(
        "--split",
        default="train",
        choices=("train", "valid", "test", "auto"),
        help="where the images go (default train; auto: the source's split folders, else the dataset's ratios)",
    )
    add.add_argument("--json", action="store_true", help="print the result as JSON")
    add.set_defaults(handler=cmd_add)

    chk = verbs.add_parser("check", help="validate a folder, zip or imported dataset; exit code 1 on errors")
    chk.add_argument("source", help="dataset folder, .zip, or the name of an imported dataset")
    chk.add_argument("--layout", default="auto", choices=("auto",) + LAYOUTS)
    chk.add_argument("--images-only", action="store_true", help="images without masks are fine (unlabelled)")
    chk.add_argument("--json", action="store_true", help="print the report as JSON")
    chk.set_defaults(handler=cmd_check)

    lst = verbs.add_parser("list", help="list imported datasets")
    lst.add_argument("--json", action="store_true", help="print as JSON")
    lst.set_defaults(handler=cmd_list)

    ren = verbs.add_parser("rename", help="rename an imported dataset")
    ren.add_argument("old")
    ren.add_argument("new")
    ren.set_defaults(handler=cmd_rename)

    dele = verbs.add_parser("delete", help="delete an imported dataset (never its source folder)")
    dele.add_argument("name")
    dele.add_argument("--yes", action="store_true", help="really delete")
    dele.set_defaults(handler=cmd_delete)

    size = verbs.add_parser("pixel-size", help="show, or set by hand, a dataset's pixel size in µm")
    size.add_argument("name")
    size.add_argument(
        "um",
        nargs="?",
        type=float,
        metavar="UM",
        help="micrometres per pixel, from the objective and camera; 0 clears a size set by hand "
        "(the image files' own sizes then apply again). Without it: print the pixel size",
    )
    size.set_defaults(handler=cmd_pixel_size)
