"""``python -m core models list|train-generalist|import``: the models shipped with the dashboard or imported."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from core.models.shipped import ensure_models, list_models
from core.settings import REPO_ROOT, load_settings


def cmd_list(args: argparse.Namespace) -> int:
    from core.models.generalist import card_lines

    settings = load_settings()
    ensure_models(settings)  # a fresh data root gets the shipped models, as the dashboard's first start does
    models = list_models(settings)
    if args.json:
        print(json.dumps([{"name": m.name, "path": str(m.path), "card": m.card} for m in models], indent=1))
        return 0
    if not models:
        print(f"No models under {settings.data_root / 'models'}.")
    for model in models:
        print("\n".join(card_lines({"name": model.name, **model.card})))
    return 0


def cmd_train_generalist(args: argparse.Namespace) -> int:
    from core.models.generalist import build_generalist, card_lines

    shared = Path(args.shared).resolve()
    if not (shared / "datasets").is_dir():
        print(f"error: the shared datasets are not at {shared} (give --shared DIR)", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    with tempfile.TemporaryDirectory(prefix="cellseg-generalist-") as scratch:
        try:
            card = build_generalist(
                shared,
                out,
                Path(args.workdir or scratch),
                epochs=args.epochs,
                seed=args.seed,
                leave_out=tuple(args.leave_out or ()),
                name=out.name,
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print("\n".join(card_lines(card)))
    print(f"written to {out} (model card: {out / 'README.md'})", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core.interop.model_zoo.importing import import_package
    from core.models.shipped import read_card

    settings = load_settings()
    try:
        folder = import_package(settings, Path(args.package), args.name)
    except (ValueError, OSError) as exc:  # a PackageError, or a bad setting in the package's config.cellseg
        print(f"error: {exc}", file=sys.stderr)
        if args.task_dir:
            from core.jobs import JobDir

            JobDir(Path(args.task_dir)).fail(str(exc))
        return 2
    card = read_card(folder)
    runtime = card.get("runtime", {})
    use = (
        "predicts and can be fine-tuned"
        if runtime.get("file") == "best.keras"
        else "predicts through ONNX Runtime (no fine-tuning)"
    )
    done = f"Imported {card.get('title')!r} as model {folder.name} ({runtime.get('weights')} weights; {use})."
    if args.task_dir:  # started from the dashboard: its page shows this line
        from core.jobs import JobDir

        JobDir(Path(args.task_dir)).finish(done, summary={"name": folder.name})
    if args.json:
        print(json.dumps({"name": folder.name, "path": str(folder), "card": card}, indent=1))
        return 0
    print(done)
    for note in card.get("notes", []):
        print(f"  note: {note}")
    print(f"Use it by name: python -m core predict {folder.name} IMAGES --out DIR")
    return 0


def add_commands(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser(
        "models", help="list the shipped models; build the generalist; import a bioimage.io model"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    lst = verbs.add_parser("list", help="the models usable by name (e.g. generalist), with their cards")
    lst.add_argument("--json", action="store_true", help="print as JSON")
    lst.set_defaults(handler=cmd_list)
    build = verbs.add_parser("train-generalist", help="train, score and package the generalist model (long)")
    build.add_argument(
        "--out",
        default=str(REPO_ROOT / "data" / "models" / "generalist"),
        help="the model folder to write (its name is the model's name)",
    )
    build.add_argument(
        "--epochs", type=int, default=20, help="training epochs (default 20: about 30 minutes on 2 CPU cores)"
    )
    build.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    build.add_argument("--leave-out", action="append", help="train without this shared dataset (repeatable)")
    build.add_argument("--shared", default=str(REPO_ROOT.parent / "shared"), help="the shared data folder")
    build.add_argument("--workdir", help="keep the scratch data root here (default: a temporary folder)")
    build.set_defaults(handler=cmd_train_generalist)
    imported = verbs.add_parser(
        "import",
        help="a bioimage.io model package (folder or zip with rdf.yaml) with "
        "Keras, TensorFlow SavedModel or ONNX weights, usable by name",
    )
    imported.add_argument("package", metavar="PACKAGE", help="the package folder or its .zip")
    imported.add_argument("--name", help="the model's name (default: from the package's name)")
    imported.add_argument("--json", action="store_true", help="print the imported model's card as JSON")
    imported.add_argument("--task-dir", help=argparse.SUPPRESS)  # the dashboard's job folder: record the outcome
    imported.set_defaults(handler=cmd_import)
