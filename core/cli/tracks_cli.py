"""``python -m core tracks list|export|score DATASET``: the time-lapse sequences of a dataset and their tracks."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from core.text import plural

FORMATS = ("ctc", "csv", "both")
_CTC_MASK = re.compile(r"^mask(\d+)\.tif$")


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _positive(what: str, example: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} (e.g. {example}), got {text!r}") from None
        if not np.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be a number above 0, got {text!r}")
        return value

    return parse


def _frames(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of frames (e.g. 1), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"the frames a track may skip must be 0 or more, got {text!r}")
    return value


def _dataset_folder(source: str) -> Path:
    """The folder of dataset ``source``: an imported dataset's name, or a folder holding ``dataset.json``.

    Raises DatasetNotFound naming the datasets there are.
    """
    from core.datasets.manage import dataset_dir
    from core.datasets.manifest import MANIFEST_NAME
    from core.settings import load_settings

    path = Path(source).expanduser()
    if (path / MANIFEST_NAME).is_file():
        return path
    return dataset_dir(load_settings(), source)


def _open(source: str) -> tuple[Path, dict, dict[str, list[dict]]]:
    """The dataset's folder, manifest and sequences; raises ValueError or LookupError saying what is wrong."""
    from core.datasets.manifest import read_manifest
    from core.timelapse.sequences import dataset_sequences

    folder = _dataset_folder(source)
    manifest = read_manifest(folder)
    return folder, manifest, dataset_sequences(folder, manifest)


def _no_sequences(folder: Path) -> str:
    return (
        f"dataset {folder.name} holds no time-lapse sequences (its images have no 'sequence'); import "
        "videos with: python -m core datasets import SOURCE --layout timelapse"
    )


def _selected(folder: Path, sequences: dict[str, list[dict]], wanted: list[str] | None) -> list[str]:
    """The sequences named by ``--sequence`` (all when none), in the order given; ValueError for unknown ones."""
    if not sequences:
        raise ValueError(_no_sequences(folder))
    if not wanted:
        return list(sequences)
    unknown = [name for name in wanted if name not in sequences]
    if unknown:
        raise ValueError(
            f"dataset {folder.name} has no sequence {', '.join(map(repr, unknown))}; its sequences: "
            f"{', '.join(sequences)}."
        )
    return list(dict.fromkeys(wanted))


def _print_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows of text as columns padded to their widest cell (the first row is the header)."""
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _progress(quiet: bool):
    def report(done: int, total: int, name: str) -> None:
        if not quiet and sys.stderr.isatty():
            print(f"\r{done}/{total} {name[:40]:<40}", end="" if done < total else "\n", file=sys.stderr)

    return report


# --- tracks list -------------------------------------------------------------------------------------------


def _listing(folder: Path, manifest: dict, name: str, rows: list[dict]) -> dict:
    """What ``tracks list`` says of one sequence; a sequence whose rows are broken says why instead."""
    from core.timelapse.sequences import SequenceError, cell_counts, check_sequence_rows, load_sequence

    entry = {
        "sequence": name,
        "split": rows[0].get("split"),
        "frames": len(rows),
        "width": rows[0].get("width"),
        "height": rows[0].get("height"),
        "track_ids": all(bool(r.get("instances")) for r in rows),
        "problem": None,
    }
    try:
        check_sequence_rows(name, rows)
    except SequenceError as exc:
        return {**entry, "cells_min": None, "cells_max": None, "problem": str(exc)}
    counts = [r.get("object_count") for r in rows]
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
        # an older manifest without per-frame counts: count the labels themselves
        try:
            counts = cell_counts(load_sequence(folder, name, manifest).labels).tolist()
        except (ValueError, OSError) as exc:
            return {**entry, "cells_min": None, "cells_max": None, "problem": str(exc)}
    return {**entry, "cells_min": int(min(counts)), "cells_max": int(max(counts))}


def cmd_list(args: argparse.Namespace) -> int:
    from core.datasets.manage import DatasetNotFound
    from core.pixel_size import dataset_level, describe

    try:
        folder, manifest, sequences = _open(args.dataset)
    except (DatasetNotFound, ValueError, OSError) as exc:
        return _fail(str(exc))
    entries = [_listing(folder, manifest, name, rows) for name, rows in sequences.items()]
    if args.json:
        print(
            json.dumps(
                {
                    "dataset": folder.name,
                    "pixel_size_um": getattr(dataset_level(manifest), "x_um", None),
                    "sequences": entries,
                }
            )
        )
        return 0
    if not entries:
        print(_no_sequences(folder))
        return 0
    print(f"{folder.name}: {plural(len(entries), 'sequence')}, {describe(dataset_level(manifest))}")
    table = [("sequence", "split", "frames", "size (W×H)", "cells per frame", "ids")]
    for e in entries:
        size = f"{e['width']}×{e['height']}" if e["width"] and e["height"] else "?"
        cells = "?" if e["cells_min"] is None else f"{e['cells_min']}–{e['cells_max']}"
        ids = "track ids" if e["track_ids"] else "per frame (from masks)"
        table.append((e["sequence"], str(e["split"]), str(e["frames"]), size, cells, ids))
    _print_table(table)
    for e in entries:
        if e["problem"]:
            print(f"  {e['sequence']}: {e['problem']}")
    return 0


# --- tracks export -----------------------------------------------------------------------------------------


def _export_one(folder: Path, manifest: dict, name: str, args: argparse.Namespace, out: Path) -> dict:
    """Write one sequence's CTC folder and/or track table; returns what was written."""
    from core.io import write_bytes_atomic
    from core.timelapse.sequences import load_sequence
    from core.timelapse.tracks import link_tracks, tracks_table, write_ctc

    if Path(name).name != name or name in (".", ".."):  # a hand-edited manifest must not write outside --out
        raise ValueError(f"its name {name!r} cannot name a file; expected a plain name without slashes.")
    sequence = load_sequence(folder, name, manifest)
    # Ids from masks' connected components are numbered afresh in each frame: only linking makes them tracks.
    relinked = bool(args.relink or not sequence.tracked)
    labels = link_tracks(sequence.labels, args.max_distance, args.gap_frames) if relinked else sequence.labels
    written = {
        "sequence": name,
        "frames": sequence.n_frames,
        "relinked": relinked,
        "linked_because": None if args.relink or not relinked else "some frames have no instances file",
        "pixel_size_um": sequence.pixel_size_um,
    }
    table = tracks_table(labels, sequence.pixel_size_um, args.frame_minutes)
    written["tracks"] = int(len(table))
    if args.format in ("ctc", "both"):
        written["ctc"] = str(write_ctc(labels, out / name))
    if args.format in ("csv", "both"):
        csv_path = out / f"{name}_tracks.csv"
        table.insert(0, "sequence", name)  # so that the tables of several sequences can be stacked
        write_bytes_atomic(csv_path, table.to_csv(index=False).encode("utf-8"))
        written["csv"] = str(csv_path)
    return written


def cmd_export(args: argparse.Namespace) -> int:
    from core.datasets.manage import DatasetNotFound

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out} is a file; give a folder to write the tracks into.")
    try:
        folder, manifest, sequences = _open(args.dataset)
        names = _selected(folder, sequences, args.sequence)
    except (DatasetNotFound, ValueError, OSError) as exc:
        return _fail(str(exc))
    progress = _progress(args.json)
    done, failed = [], []
    for k, name in enumerate(names, start=1):
        try:
            done.append(_export_one(folder, manifest, name, args, out))
        except (ValueError, OSError) as exc:  # one sequence's bad files, or a folder in the way: say so, go on
            failed.append({"sequence": name, "error": str(exc)})
        progress(k, len(names), name)
    if args.json:
        print(json.dumps({"dataset": folder.name, "out": str(out), "exported": done, "failed": failed}))
    else:
        for item in done:
            where = " and ".join(p for p in (item.get("ctc") and f"{item['ctc']}/", item.get("csv")) if p)
            how = " (re-linked)" if item["relinked"] else ""
            print(
                f"{item['sequence']}: {plural(item['frames'], 'frame')}, {plural(item['tracks'], 'track')}{how} "
                f"→ {where}"
            )
            if item["linked_because"]:
                print(f"  linked by position, since {item['linked_because']}: its ids are not track ids")
        pixel_unknown = [item["sequence"] for item in done if item["pixel_size_um"] is None]
        if pixel_unknown and args.format != "ctc":
            print(
                f"Pixel size unknown for {', '.join(pixel_unknown)}: distances are in pixels only (set it with: "
                f"python -m core datasets pixel-size {folder.name} UM)."
            )
        if args.frame_minutes is None and args.format != "ctc" and done:
            print("Speeds are per frame; give --frame-minutes M for µm per minute.")
    for item in failed:
        print(f"error: sequence {item['sequence']} of {folder.name} was not exported: {item['error']}", file=sys.stderr)
    return 2 if failed else 0


# --- tracks score ------------------------------------------------------------------------------------------


def _read_ctc_result(folder: Path, shape: tuple[int, ...]) -> np.ndarray:
    """The label video of a CTC result folder (``mask000.tif`` …), checked against the truth's ``shape``."""
    import tifffile

    if not folder.is_dir():
        raise ValueError(f"{folder} is missing: expected a CTC result folder (mask000.tif …) for this sequence.")
    masks = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _CTC_MASK.match(p.name)))
    if [t for t, _ in masks] != list(range(shape[0])):
        raise ValueError(
            f"{folder} holds {plural(len(masks), 'mask file')}; expected mask000.tif … for each of "
            f"the sequence's {shape[0]} frames, numbered from 0."
        )
    video = np.zeros(shape, np.uint32)
    for t, path in masks:
        try:
            frame = tifffile.imread(path)
        except (tifffile.TiffFileError, OSError, ValueError) as exc:
            raise ValueError(f"{path} cannot be read as a label image ({exc}).") from exc
        if frame.shape != shape[1:] or not np.issubdtype(frame.dtype, np.integer):
            raise ValueError(f"{path} is {frame.shape} {frame.dtype}; expected integer labels of {shape[1:]}.")
        video[t] = frame
    return video


def cmd_score(args: argparse.Namespace) -> int:
    from core.datasets.manage import DatasetNotFound
    from core.timelapse.sequences import load_sequence
    from core.timelapse.tracks import id_kept_share, score_tracking

    predicted_root = Path(args.predicted).expanduser()
    if not predicted_root.is_dir():
        return _fail(f"--predicted {predicted_root} is not a folder; expected one holding <sequence>/mask000.tif …")
    try:
        folder, manifest, sequences = _open(args.dataset)
        names = _selected(folder, sequences, args.sequence)
    except (DatasetNotFound, ValueError, OSError) as exc:
        return _fail(str(exc))
    scores, failed = [], []
    progress = _progress(args.json)
    for k, name in enumerate(names, start=1):
        try:
            truth = load_sequence(folder, name, manifest)
            if not truth.tracked:
                raise ValueError("some of its frames have no instances file, so the dataset holds no true tracks")
            predicted = _read_ctc_result(predicted_root / name, truth.labels.shape)
            scores.append(
                {
                    "sequence": name,
                    **score_tracking(truth.labels, predicted),
                    "id_kept": id_kept_share(truth.labels, predicted),
                }
            )
        except (ValueError, OSError, RuntimeError) as exc:
            failed.append({"sequence": name, "error": str(exc)})
        progress(k, len(names), name)
    if args.json:
        print(
            json.dumps({"dataset": folder.name, "predicted": str(predicted_root), "scores": scores, "failed": failed})
        )
    else:
        if scores:
            _print_table(
                [
                    ("sequence", "SEG", "TRA", "DET", "id kept"),
                    *((s["sequence"], *(f"{s[m]:.3f}" for m in ("SEG", "TRA", "DET", "id_kept"))) for s in scores),
                ]
            )
    for item in failed:
        print(f"error: sequence {item['sequence']} of {folder.name} was not scored: {item['error']}", file=sys.stderr)
    return 2 if failed else 0


def add_commands(groups: argparse._SubParsersAction) -> None:
    group = groups.add_parser("tracks", help="list a dataset's time-lapse sequences, export and score their tracks")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    dataset_help = "an imported dataset's name, or a dataset folder (holding dataset.json)"

    listing = verbs.add_parser("list", help="the time-lapse sequences of a dataset: frames, size, split, cells")
    listing.add_argument("dataset", metavar="DATASET", help=dataset_help)
    listing.add_argument("--json", action="store_true", help="print the listing as one JSON object")
    listing.set_defaults(handler=cmd_list)

    export = verbs.add_parser(
        "export",
        help="write each sequence's tracks as Cell Tracking Challenge files and a track table",
        description="Per sequence, write DIR/<sequence>/ (mask000.tif … and res_track.txt, the Cell Tracking "
        "Challenge's result layout) and DIR/<sequence>_tracks.csv (one row per track: frames, speed, "
        "displacement; in µm when the dataset's pixel size is known). The dataset's ids are taken as "
        "track ids unless --relink is given or a frame has no instances file.",
    )
    export.add_argument("dataset", metavar="DATASET", help=dataset_help)
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    export.add_argument(
        "--sequence",
        action="append",
        metavar="NAME",
        help="export this sequence only (repeatable; default: every sequence)",
    )
    export.add_argument(
        "--format", choices=FORMATS, default="both", help="ctc: the CTC folders, csv: the track tables, both (default)"
    )
    export.add_argument(
        "--relink",
        action="store_true",
        help="link the cells of consecutive frames by position instead of trusting the stored ids",
    )
    export.add_argument(
        "--max-distance",
        type=_positive("a distance in pixels", "25"),
        default=25.0,
        metavar="PX",
        help="with --relink: how far a cell's centre may move between frames (default 25 px)",
    )
    export.add_argument(
        "--gap-frames",
        type=_frames,
        default=1,
        metavar="N",
        help="with --relink: how many missing frames a track may skip (default 1)",
    )
    export.add_argument(
        "--frame-minutes",
        type=_positive("minutes between frames", "10.2"),
        metavar="M",
        help="minutes between frames: speeds in µm per minute (with a known pixel size)",
    )
    export.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    export.set_defaults(handler=cmd_export)

    score = verbs.add_parser(
        "score",
        help="score tracked predictions against a dataset's tracks (CTC SEG, TRA, DET)",
        description="Compare DIR/<sequence>/mask000.tif … (CTC result folders, as tracks export writes them) "
        "with each sequence's stored track ids: the CTC measures SEG, TRA and DET, and the share of "
        "frame-to-frame steps over which a cell kept its id.",
    )
    score.add_argument("dataset", metavar="DATASET", help=dataset_help)
    score.add_argument("--predicted", required=True, metavar="DIR", help="folder of CTC result folders by sequence")
    score.add_argument(
        "--sequence",
        action="append",
        metavar="NAME",
        help="score this sequence only (repeatable; default: every sequence)",
    )
    score.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    score.set_defaults(handler=cmd_score)
