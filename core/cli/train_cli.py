"""``python -m core train``: the worker (``--run-dir``), or a whole training in the foreground (``--dataset``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.augment.presets import load_preset
from core.augment.seed_ini import import_seed_config
from core.config import ConfigError, ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import MANIFEST_NAME, suggest_name
from core.datasets.report import ImportFailed
from core.runs.folder import RunDir
from core.runs.notes import RunNotes, write_notes
from core.settings import load_settings
from core.train.config import TrainConfig
from core.train.presets import PRESETS, from_seed_keys, preset_config
from core.train.runs import prepare_run, refine_config
from core.train.seed_json import import_suite_config, is_suite_config


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _dataset_name(argument: str, settings) -> str:
    """A catalogued name as is; a folder is used if imported already, else imported now."""
    path = Path(argument).expanduser()
    if not path.exists():
        return argument
    if (path / MANIFEST_NAME).is_file() and path.parent.resolve() == settings.datasets_dir.resolve():
        return path.name
    name = suggest_name(path)
    if (settings.datasets_dir / name).exists():
        return name
    print(f"Importing {path} as dataset {name!r}…", file=sys.stderr)
    import_dataset(path, ImportOptions(name=name), settings)
    return name


def _config_from_file(path: Path, base: dict) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if not is_suite_config(data):
            return {**base, **data}
        suite = import_suite_config(text, path.name)  # a microscopy-dl-suite-tf configuration.json
        for line in suite.report:
            if line.severity != "info":
                print(f"  {line}", file=sys.stderr)
        merged = {**base, **{k: v for k, v in suite.training.items() if k not in ("model", "data")}}
        for part in ("model", "data"):
            merged[part] = {**base.get(part, {}), **suite.training.get(part, {})}
        return merged
    seed = import_seed_config(text, path.name)  # a train_eval_infer.config from the seeds
    fields, notes = from_seed_keys(seed.training)
    for note in notes:
        print(f"  {note}", file=sys.stderr)
    merged = {**base, **{k: v for k, v in fields.items() if k not in ("model", "data")}}
    merged["model"] = {**base.get("model", {}), **fields.get("model", {})}
    merged["data"] = {**base.get("data", {}), **fields.get("data", {})}
    merged["augment"] = seed.augment.to_dict()
    return merged


def _build_config(args: argparse.Namespace, settings) -> TrainConfig:
    dataset = _dataset_name(args.dataset, settings)
    if args.preset == "refine":  # from the model named, else the newest refinement, else the generalist
        from core.proposals.job import default_model

        config = refine_config(settings, dataset, args.fine_tune or default_model(settings, dataset))
    else:
        config = preset_config(args.preset, dataset, settings.data_root)
    data = config.to_dict()
    if args.config:
        data = _config_from_file(Path(args.config), data)
    if args.model:
        data["model"] = {**data["model"], "name": args.model}
    if args.augment:
        data["augment"] = load_preset(settings.data_root, args.augment).to_dict()
        data["augment_preset"] = args.augment
    for field in ("epochs", "minutes", "batch_size", "seed"):
        if getattr(args, field) is not None:
            data[field] = getattr(args, field)
    if args.fine_tune:
        data["fine_tune_from"] = args.fine_tune
    return TrainConfig.from_dict(data)


class _EpochBar:
    """A progress bar on stderr, one step per epoch (a Keras callback, made lazily)."""

    @staticmethod
    def make(total: int):
        import keras
        from tqdm import tqdm

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=total, unit="epoch", file=sys.stderr, desc="training")

            def on_epoch_end(self, epoch, logs=None):
                self.bar.update(1)
                self.bar.set_postfix(val_dice=f"{(logs or {}).get('val_dice', 0):.3f}")

            def on_train_end(self, logs=None):
                self.bar.close()

        return Callback()


def _summary(run: RunDir, started: float) -> dict:
    status = run.read_status()
    metrics = run.read_metrics()
    return {
        "run_id": run.run_id,
        "run_dir": str(run.path),
        "status": status.state,
        "epochs": max((int(m["epoch"]) for m in metrics), default=0),
        "best_val_dice": status.best_val_dice,
        "seconds": round(time.monotonic() - started, 1),
        "device": status.device,
        "precision": status.precision,
        "message": status.message,
        "error": status.error,
    }


def cmd_train(args: argparse.Namespace) -> int:
    from core.train.worker import run_worker

    settings = load_settings()
    started = time.monotonic()
    if args.run_dir:
        run = RunDir(Path(args.run_dir))
        if not run.config_path.is_file():
            return _fail(f"{args.run_dir} is not a run folder (no config.json).")
        state = run_worker(run.path, resume=args.resume, lr_find=args.lr_find)
    else:
        if not args.dataset:
            return _fail("give --dataset NAME (or a folder), or --run-dir DIR.")
        try:
            config = _build_config(args, settings)
        except (ConfigError, ImportFailed, OSError, ValueError) as exc:
            return _fail(str(getattr(exc, "report", None) and exc.report.summary() or exc))
        try:
            labels = RunNotes(name=args.name or "", notes=args.note or "")
        except ValueError as exc:
            return _fail(str(exc))
        try:
            run = prepare_run(settings, config, trigger="command line")
        except ConfigError as exc:
            return _fail(str(exc))
        if labels != RunNotes():
            write_notes(run, labels)
        print(f"Run {run.run_id} in {run.path}", file=sys.stderr)
        extra = [] if args.json else [_EpochBar.make(config.epochs)]
        state = run_worker(run.path, lr_find=args.lr_find, extra_callbacks=extra)
    _ingest(settings, run)
    summary = _summary(run, started)
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{summary['status']}: {summary['message'] or ''} — {summary['epochs']} epochs, best validation "
            f"Dice {summary['best_val_dice']}, {summary['seconds']} s ({summary['device']}, {summary['precision']})"
        )
    return 0 if state in ("finished", "stopped") else 1


def _ingest(settings, run: RunDir) -> None:
    from core.catalogue.runs import ingest_unless_busy

    ingest_unless_busy(settings.catalogue_path, run)


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("train", help="train a segmentation model (or run a training worker)")
    parser.add_argument("--run-dir", help="run an existing run folder (the dashboard starts workers this way)")
    parser.add_argument("--resume", action="store_true", help="with --run-dir: continue from its last checkpoint")
    parser.add_argument("--name", help="a name for the run, shown instead of its id (the Runs page can change it)")
    parser.add_argument("--note", help="a note kept with the run, e.g. what this run tries")
    parser.add_argument("--lr-find", action="store_true", help="sweep learning rates instead of training")
    parser.add_argument("--dataset", help="dataset name, or a dataset folder (imported first if needed)")
    parser.add_argument(
        "--preset",
        default="quick",
        choices=[*PRESETS, "refine"],
        help="training preset (default quick); refine: fine-tune a model (--fine-tune, default the "
        "dataset's newest refinement or the generalist) on the masks people made, for about "
        "2 minutes, then propose new masks for the images still waiting",
    )
    parser.add_argument(
        "--model", help="model name (unet, attention_unet, unet_plus_plus, mobilenetv2_unet, deeplabv3_plus)"
    )
    parser.add_argument("--config", help="JSON settings, or a seed train_eval_infer.config")
    parser.add_argument("--augment", help="augmentation preset name")
    parser.add_argument("--epochs", type=int, help="most epochs")
    parser.add_argument("--minutes", type=float, help="time budget in minutes (0: none)")
    parser.add_argument("--batch-size", type=int, help="patches per step")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument(
        "--fine-tune", help="start from the best checkpoint of this run, or from a shipped model (e.g. generalist)"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON object describing the run")
    parser.set_defaults(handler=cmd_train)
