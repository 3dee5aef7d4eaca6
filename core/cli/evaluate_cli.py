"""``python -m core evaluate|predict|export``: score a run on a test set, segment new images, export a model.

The dashboard starts the same commands as background workers; each reports progress in a
``status.json`` (see :mod:`core.jobs`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from core.config import ConfigError
from core.datasets.manage import DatasetNotFound, dataset_dir
from core.datasets.manifest import MANIFEST_NAME
from core.runs.folder import RunDir
from core.settings import load_settings
from core.jobs import JobDir
from core.jobs.requests import EXPORT_FORMATS
from core.text import plural
from core.train.runs import find_run

log = logging.getLogger(__name__)
SUMMARY_KEYS = (
    "dice",
    "dice_pooled",
    "iou",
    "iou_pooled",
    "precision",
    "recall",
    "f1_50",
    "ap_50",
    "ap_75",
    "pq",
    "mean_matched_iou",
    "ap",
    "count_error_mean_abs",
    "n_true",
    "n_pred",
)
# What can go wrong with the user's input or the run: reported in one line, never as a traceback.
EXPECTED = (ConfigError, DatasetNotFound, FileNotFoundError, ValueError, OSError)
LOCAL_CLUSTER = "local"  # what --dask means without an address


def _fail(message: str, task: JobDir | None = None, code: int = 2) -> int:
    if task is not None:
        task.fail(message)
    print(f"error: {message}", file=sys.stderr)
    return code


def _run(settings, run_id: str) -> RunDir:
    return find_run(settings, run_id)


def _dataset_folder(settings, name: str) -> Path:
    path = Path(name).expanduser()
    if (path / MANIFEST_NAME).is_file():
        return path
    return dataset_dir(settings, name)


def _ingest(settings, run: RunDir) -> None:
    from core.catalogue.runs import ingest_unless_busy

    ingest_unless_busy(settings.catalogue_path, run)


def _print_evaluation(summary: dict, label: str, run: RunDir) -> None:
    from core.evaluation.job import evaluation_dir

    print(f"Run {run.run_id} on {label}: {summary['n_images']} images")
    for key in SUMMARY_KEYS:
        if summary.get(key) is not None:
            value = summary[key]
            print(f"  {key:<22} {value:.4f}" if isinstance(value, float) else f"  {key:<22} {value}")
    print(f"  best threshold         {summary.get('best_threshold')} (in use: {summary.get('threshold')})")
    for note in summary.get("notes", []):
        print(f"  note: {note}")
    print(f"Per-image results: {evaluation_dir(run, label) / 'per_image.csv'}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.evaluation.job import (
        EvaluationError,
        dataset_items,
        dataset_set_label,
        evaluate_run,
        evaluation_dir,
        folder_items,
        set_label,
    )
    from core.timelapse.temporal import TemporalPostProcessing

    settings = load_settings()
    try:
        run = _run(settings, args.run_id)
    except ConfigError as exc:
        return _fail(str(exc))
    if bool(args.dataset) == bool(args.images):
        return _fail("give either --dataset NAME [--split test] or --images DIR --masks DIR.")
    try:
        TemporalPostProcessing(args.temporal, args.temporal_sigma, args.temporal_min_size)
    except (ConfigError, ValueError) as exc:
        return _fail(f"--temporal-sigma / --temporal-min-size: {exc}")
    if args.images and not args.masks:
        return _fail("--images needs --masks DIR (the true masks, named like the images).")
    label = set_label(args.split if args.dataset else None, Path(args.images) if args.images else None)
    try:
        folder = _dataset_folder(settings, args.dataset) if args.dataset else None
    except DatasetNotFound as exc:
        return _fail(str(exc))
    if folder is not None:  # another dataset than the run's own (a shipped model): one set per dataset
        label = dataset_set_label(args.split, folder.name, run.read_config().get("train", {}).get("dataset"))
    task = JobDir(evaluation_dir(run, label))
    try:
        if folder is not None:
            items = dataset_items(folder, args.split)
            source = {"dataset": folder.name, "split": args.split}
        else:
            items = folder_items(Path(args.images), Path(args.masks))
            source = {"images": str(Path(args.images).resolve()), "masks": str(Path(args.masks).resolve())}
        summary = evaluate_run(run, items, label, checkpoint=args.checkpoint, tta=args.tta, source=source)
    except (EvaluationError, *EXPECTED) as exc:
        return _fail(str(exc), task)
    _ingest(settings, run)
    videos = _video_scores(run, label, folder, items, args) if folder is not None else None
    if args.json:
        print(json.dumps({"run_id": run.run_id, **summary, **({"videos": videos} if videos else {})}))
    else:
        _print_evaluation(summary, label, run)
        if videos:
            _print_videos(videos)
    return 0


def _video_scores(run: RunDir, label: str, folder: Path, items: list, args: argparse.Namespace) -> dict | None:
    """Each evaluated video's scores as predicted and, with ``--temporal``, filled along time (None without videos).

    Frames of videos are scored one by one by the evaluation; here the videos are followed over time as well
    (:mod:`core.timelapse.video_scores`), under the run's saved post-processing.
    """
    from core.evaluation.job import SEEDS_DIR, probabilities_dir
    from core.runs.model import inference_settings
    from core.timelapse.temporal import TemporalPostProcessing
    from core.timelapse.video_scores import saved_maps, score_videos

    if not any(getattr(item, "video", ()) for item in items):
        return None
    maps, stems = saved_maps(probabilities_dir(run, label), SEEDS_DIR), {item.stem for item in items}
    settings = inference_settings(run)
    found = {}
    variants = [("as_predicted", TemporalPostProcessing())]
    if args.temporal:
        variants.append(
            ("filled_along_time", TemporalPostProcessing(True, args.temporal_sigma, args.temporal_min_size))
        )
    for key, temporal in variants:
        scores, notes = score_videos(folder, maps, stems, settings, temporal)
        found[key] = [score.to_dict() for score in scores]
        found["notes"] = notes
    return found


def _print_videos(videos: dict) -> None:
    from core.timelapse.video_scores import COLUMNS

    for note in videos.get("notes", []):
        print(f"  note: {note}")
    print("Videos, cells followed over time:")
    for variant, title in (("as_predicted", "as predicted"), ("filled_along_time", "filled along time")):
        for row in videos.get(variant, []):
            shown = ", ".join(
                f"{COLUMNS[k]} {row[k]:.3f}" if isinstance(row[k], float) else f"{COLUMNS[k]} {row[k]}"
                for k in COLUMNS
                if k != "sequence" and row[k] is not None
            )
            print(f"  {row['sequence']} ({title}): {shown}")


def cmd_predict(args: argparse.Namespace) -> int:
    from core.prediction.job import PredictionError, PredictOptions, predict_files
    from core.timelapse.temporal import TemporalPostProcessing

    settings = load_settings()
    try:
        run = _run(settings, args.run_id)
    except ConfigError as exc:
        return _fail(str(exc))
    out_dir = Path(args.out)
    task = JobDir(out_dir)
    try:
        temporal = TemporalPostProcessing(
            enabled=args.temporal, sigma_frames=args.temporal_sigma, min_size_px=args.temporal_min_size
        )
    except ConfigError as exc:
        return _fail(f"--temporal-sigma / --temporal-min-size: {exc}", task)
    options = PredictOptions(
        tile=args.tile,
        overlap=args.overlap,
        tta=args.tta,
        threshold=args.threshold,
        checkpoint=args.checkpoint,
        temporal=temporal,
    )
    if args.temporal and args.dask is not None:
        return _fail(
            "--temporal fills videos along time, which the Dask path does not predict: leave out --dask.", task
        )
    if args.dask_workers is not None and args.dask != LOCAL_CLUSTER:
        return _fail("--dask-workers sizes a local cluster: give it with --dask and no address.")
    try:
        if args.dask is None:
            summary = predict_files(run, [Path(p) for p in args.inputs], out_dir, options)
        else:
            from core.prediction.dask_cluster import ClusterOptions, predict_files_dask

            summary = predict_files_dask(
                run,
                [Path(p) for p in args.inputs],
                out_dir,
                options,
                address=None if args.dask == LOCAL_CLUSTER else args.dask,
                cluster=ClusterOptions(workers=args.dask_workers),
            )
    except (PredictionError, *EXPECTED) as exc:
        return _fail(str(exc), task)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "per_image"}))
    else:
        for row in summary["per_image"]:
            print(
                f"{row['image']}: {plural(int(row['cells']), 'cell')} ({row['width']}×{row['height']})"
                + (f" — {row['notes']}" if row["notes"] else "")
            )
        for video in summary.get("videos", []):
            print(
                f"{video['image']}: {plural(video['frames'], 'frame')}, {plural(video['tracks'], 'track')} "
                f"({video['cells_per_frame_mean']} cells per frame) → videos/{video['name']}_tracks.csv"
            )
        for problem in summary["skipped"]:
            print(f"skipped {problem}")
        print(
            f"{plural(summary['cells'], 'cell')} in {plural(summary['images'], 'image')} → {out_dir} "
            "(cells.csv, images.csv, masks/, labels/, overlays/)"
        )
    return 0


def _export(run: RunDir, args: argparse.Namespace) -> Path:
    """The export the arguments ask for: Keras + SavedModel + model.json, or a bioimage.io package."""
    if args.format == "bioimageio":
        from core.interop.model_zoo.exporting import export_bioimageio

        return export_bioimageio(
            run, Path(args.out), args.checkpoint, authors=tuple(args.author or ()), licence=args.license or ""
        )
    from core.export_model import export_run
    from core.runs.model import ONNX_CHECKPOINT, checkpoint_path

    if checkpoint_path(run, args.checkpoint).name == ONNX_CHECKPOINT:
        raise ValueError(
            f"{run.run_id} was imported with ONNX weights only: there is no Keras model to export "
            "(its bioimage.io package is the original)"
        )
    return export_run(run, Path(args.out), args.checkpoint, saved_model=not args.keras_only)


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        run = _run(settings, args.run_id)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        out_dir = _export(run, args)
    except EXPECTED as exc:
        return _fail(str(exc), JobDir(run.path / "export"))
    files = sorted(p.name for p in out_dir.iterdir())
    archive = out_dir.with_name(out_dir.name + ".zip") if args.format == "bioimageio" else None
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": run.run_id,
                    "out_dir": str(out_dir),
                    "files": files,
                    "format": args.format,
                    **({"zip": str(archive)} if archive else {}),
                }
            )
        )
    else:
        print(
            f"Exported run {run.run_id} to {out_dir}: "
            + ", ".join(files)
            + (f"\nbioimage.io package zip: {archive}" if archive else "")
        )
    return 0


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text}: the threshold must be between 0 and 1")
    return value


def add_commands(groups: argparse._SubParsersAction) -> None:
    evaluate = groups.add_parser("evaluate", help="score a run on a dataset split or on folders of images and masks")
    evaluate.add_argument(
        "run_id",
        metavar="RUN_ID",
        help="the run (its folder name under runs/), a shipped model's "
        "name (e.g. generalist; see 'models list'), or a path",
    )
    evaluate.add_argument("--dataset", help="catalogued dataset name (or a dataset folder)")
    evaluate.add_argument("--split", default="test", choices=("test", "valid", "train"), help="default: test")
    evaluate.add_argument("--images", help="folder of images (instead of --dataset)")
    evaluate.add_argument("--masks", help="folder of true masks named like the images (binary or instance ids)")
    evaluate.add_argument("--checkpoint", default="best", choices=("best", "last"), help="default: best")
    evaluate.add_argument("--tta", action="store_true", help="average over flipped copies (4× slower)")
    evaluate.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    evaluate.add_argument(
        "--temporal",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="time-lapse datasets: also score each video with its masks smoothed along time "
        "before they are split into cells (the Predict page's temporal post-processing)",
    )
    evaluate.add_argument(
        "--temporal-sigma",
        type=float,
        default=1.0,
        metavar="FRAMES",
        help="with --temporal: standard deviation of the smoothing along time, in frames (default 1)",
    )
    evaluate.add_argument(
        "--temporal-min-size",
        type=int,
        default=100,
        metavar="PX",
        help="with --temporal: objects of fewer pixels are removed after the filling (default 100)",
    )
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = groups.add_parser("predict", help="segment new images with a trained run")
    predict.add_argument("run_id", metavar="RUN_ID", help="a run id, or a shipped model's name (e.g. generalist)")
    predict.add_argument("inputs", metavar="INPUT", nargs="+", help="image files or folders of images")
    predict.add_argument("--out", required=True, help="output folder (masks, labels, overlays, CSVs)")
    predict.add_argument(
        "--tile",
        type=int,
        help="tile side in pixels for images too large to predict in one piece (about 3 "
        "megapixels for a U-Net of 16 base filters; default: twice the training patch)",
    )
    predict.add_argument("--overlap", type=int, default=64, help="overlap of neighbouring tiles (default 64)")
    predict.add_argument("--tta", action="store_true", help="average over flipped copies (4× slower)")
    predict.add_argument("--threshold", type=_threshold, help="probability threshold (default: the run's)")
    predict.add_argument("--checkpoint", default="best", choices=("best", "last"))
    predict.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    predict.add_argument(
        "--dask",
        nargs="?",
        const=LOCAL_CLUSTER,
        metavar="ADDRESS",
        help="spread the work over Dask workers: a local cluster (one worker per core) without "
        "ADDRESS, else the scheduler at ADDRESS (e.g. tcp://head-node:8786, as dask-jobqueue "
        "starts on Slurm; its workers must see the same files); images above 4096 pixels a "
        "side are cut into blocks; images finished by an earlier run are skipped",
    )
    predict.add_argument(
        "--temporal",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="videos (multi-frame TIFFs) only: smooth the masks along time before splitting them "
        "into cells, so a cell that leaves the focal plane (or dims) for a frame is filled in "
        "from the frames around it (default: off)",
    )
    predict.add_argument(
        "--temporal-sigma",
        type=float,
        default=1.0,
        metavar="FRAMES",
        help="with --temporal: standard deviation of the smoothing along time, in frames "
        "(default 1; larger bridges longer gaps but also keeps a cell a little longer)",
    )
    predict.add_argument(
        "--temporal-min-size",
        type=int,
        default=100,
        metavar="PX",
        help="with --temporal: objects of fewer pixels are removed from each frame after the filling (default 100)",
    )
    predict.add_argument(
        "--dask-workers",
        type=int,
        metavar="N",
        help="worker processes of the local Dask cluster (default: one per core)",
    )
    predict.set_defaults(handler=cmd_predict)

    export = groups.add_parser(
        "export", help="export a run's model (.keras, SavedModel, model.json; or a bioimage.io package)"
    )
    export.add_argument("run_id", metavar="RUN_ID", help="a run id, or a shipped model's name (e.g. generalist)")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument(
        "--format",
        default="keras",
        choices=EXPORT_FORMATS,
        help="keras (default): model.keras, a SavedModel and model.json; bioimageio: a validated "
        "bioimage.io model package (Keras, SavedModel and ONNX weights) for deepImageJ, "
        "ilastik, QuPath and BiaPy, also zipped as OUT.zip",
    )
    export.add_argument("--checkpoint", default="best", choices=("best", "last"))
    export.add_argument("--keras-only", action="store_true", help="skip the TensorFlow SavedModel (keras format)")
    export.add_argument(
        "--author",
        action="append",
        metavar="NAME",
        help="an author of the bioimage.io package (repeatable; recommended)",
    )
    export.add_argument("--license", metavar="SPDX", help="the bioimage.io package's licence, e.g. CC-BY-4.0")
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=cmd_export)
