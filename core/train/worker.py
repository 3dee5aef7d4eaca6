"""The training worker: reads a run folder, trains, and keeps the folder up to date until it ends.

Runs as ``python -m core train --run-dir DIR`` (a separate process; it imports TensorFlow).
One job runs at a time per data root: a worker waits for the job slot with status ``queued``.
Whatever happens, the run ends with a status that says why: finished, stopped or failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import time
from pathlib import Path

from core.accounts import acting
from core.config import ConfigError
from core.runs.folder import RunDir, now
from core.settings import DataRoot
from core.train.config import TrainConfig
from core.train.estimates import steps_per_epoch
from core.jobs.slot import job_slot

log = logging.getLogger(__name__)


def _log_to(run: RunDir) -> logging.Handler:
    handler = logging.FileHandler(run.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return handler


def describe_failure(exc: BaseException) -> str:
    """A sentence for the user about why the run failed.

    >>> describe_failure(OSError(28, "No space left on device"))
    'the disk is full (No space left on device): free space, then resume the run'
    """
    text = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError) or "OOM" in text or "ResourceExhausted" in type(exc).__name__:
        return f"out of memory ({type(exc).__name__}): use a smaller batch size, patch size or model"
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"the disk is full ({exc.strerror}): free space, then resume the run"
    if isinstance(exc, (ConfigError, FileNotFoundError)):
        return text
    return f"{type(exc).__name__}: {text}"


def run_worker(
    run_path: Path, *, resume: bool = False, lr_find: bool = False, extra_callbacks: list | None = None
) -> str:
    """Train (or run the learning-rate finder for) the run in ``run_path``; return its final state."""
    acting.check("train.launch", Path(run_path).name)
    from core.jobs.heartbeat import Heartbeat
    from core.train.recorder import StopRequests

    run = RunDir(Path(run_path))
    handler = _log_to(run)
    stops = StopRequests(0.0, time.monotonic())
    previous = {sig: signal.signal(sig, lambda *_: stops.signal.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    beating = contextlib.ExitStack()
    beating.enter_context(Heartbeat(run))
    # A cluster's scheduler queues its own jobs; only workers on this machine take turns through the slot.
    on_cluster = run.read_status().executor not in (None, "local")
    run.update(
        state="queued",
        pid=os.getpid(),
        message="waiting for the job slot (another job is running)" if not on_cluster else "starting",
    )
    try:
        meta = run.read_config()
        config = TrainConfig.from_dict(meta["train"])
        slot = contextlib.nullcontext(True) if on_cluster else job_slot(run.path.parent, stops.signal.is_set)
        with slot as got_slot:
            if not got_slot:
                run.update(state="stopped", ended=now(), message="stopped before it started")
                return "stopped"
            run.update(state="running", started=now(), message="preparing data and model")
            if lr_find:
                return _lr_find(run, config, meta, stops)
            return _train(run, config, meta, stops, resume, extra_callbacks or [])
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the run must end with a readable status
        log.exception("run %s failed", run.run_id)
        run.update(state="failed", ended=now(), error=describe_failure(exc), message="failed")
        return "failed"
    finally:
        beating.close()
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)
        logging.getLogger().removeHandler(handler)
        handler.close()


def _setup(run: RunDir, config: TrainConfig, meta: dict):
    """Environment, data and an untrained (or fine-tuned / resumed) model."""
    from core.train.data import ImageCache, input_channels, load_splits
    from core.train.environment import configure

    env = configure(
        config.precision,
        config.threads,
        config.seed,
        config.deterministic,
        cache_dir=DataRoot(run.path.parent.parent).cache,
    )
    run.update(device=env.device, precision=env.precision)
    dataset_dir = Path(meta["dataset_dir"])
    if not (dataset_dir / "dataset.json").is_file():
        raise ConfigError(f"The dataset folder {dataset_dir} is gone (renamed or deleted?).")
    splits = load_splits(dataset_dir, seed=config.seed)
    for note in splits.notes:
        log.info(note)
        run.update(notes=splits.notes)
    channels, colour = input_channels(config.data, splits), splits.colour
    donor = _donor_path(run, config)
    if donor is not None and donor.is_file() and not (config.data.channels or config.data.merge_channels):
        import keras  # a fine-tuned model keeps its donor's input: grey images are repeated into colour

        wanted = int(keras.models.load_model(donor, compile=False).input_shape[-1])
        if wanted != channels:
            run.update(
                notes=[
                    *splits.notes,
                    f"images fed as {wanted} channel(s), as the model fine-tuned from "
                    f"({config.fine_tune_from}) reads them",
                ]
            )
        channels, colour = wanted, wanted == 3
    cache = ImageCache(config.data, colour, config.model.output, config.model.boundary_width)
    if config.model.seeded and not any(item.instances for item in splits.train):
        note = (
            f"The {config.model.output.replace('_', '-')} output learns from masks that give each cell its own "
            "number, and this dataset's masks only say cell or background: touching cells stay one cell in "
            "what it learns."
        )
        log.warning(note)
        splits.notes.append(note)
        run.update(notes=splits.notes)
    log.info(
        "%d training and %d validation images, %d input channel(s)", len(splits.train), len(splits.valid), channels
    )
    return env, splits, channels, cache


def _donor_path(run: RunDir, config: TrainConfig) -> Path | None:
    """The checkpoint a fine-tuned run starts from: a file, a run beside this one, or a shipped model."""
    if not config.fine_tune_from:
        return None
    source = Path(config.fine_tune_from)
    if source.suffix == ".keras":
        return source
    donor = config.fine_tune_from  # a run beside this one, or a model added to the data root
    candidates = [run.path.parent / donor, DataRoot(run.path.parent.parent).models / donor]
    folder = next((c for c in candidates if (c / "checkpoints" / "best.keras").is_file()), candidates[0])
    return folder / "checkpoints" / "best.keras"


def _model(run: RunDir, config: TrainConfig, channels: int, resume: bool):
    import keras

    from core.models.losses import MeanDice, PooledIoU, SegmentationLoss
    from core.models.registry import build_model

    last = run.checkpoints / "last.keras"
    if resume:
        if not last.is_file():
            raise ConfigError(f"Run {run.run_id} has no checkpoint to resume from.")
        return keras.models.load_model(last)
    model = build_model(config.model, channels)
    if config.fine_tune_from:
        source = _donor_path(run, config)
        if not source.is_file():
            raise ConfigError(f"Cannot fine-tune from {config.fine_tune_from}: {source} does not exist.")
        donor = keras.models.load_model(source, compile=False)
        try:
            model.set_weights(donor.get_weights())
            log.info("starting from the weights of %s", source)
        except ValueError as exc:
            from core.models.transfer import transfer_weights

            taken, fresh = transfer_weights(donor, model)
            if fresh and not taken:
                raise ConfigError(
                    f"Cannot fine-tune from {config.fine_tune_from}: its model has another shape "
                    f"({exc}). Use the same model settings."
                ) from exc
            log.info("starting from the weights of %s for %d layers; new: %s", source, taken, ", ".join(fresh))
    clip = {"clipnorm": config.clip_norm} if config.clip_norm > 0 else {}
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(config.learning_rate, **clip),
        "adamw": lambda: keras.optimizers.AdamW(config.learning_rate, weight_decay=1e-4, **clip),
        "sgd": lambda: keras.optimizers.SGD(config.learning_rate, momentum=0.9, nesterov=True, **clip),
    }[config.optimizer]()
    model.compile(
        optimizer=optimizer,
        loss=SegmentationLoss(config.loss, config.loss_settings, output=config.model.output),
        metrics=[MeanDice(), PooledIoU()],
    )
    return model


def _train(run: RunDir, config: TrainConfig, meta: dict, stops, resume: bool, extra: list) -> str:
    import keras

    from core.train.feeding import PatchBatches
    from core.train.recorder import RunRecorder
    from core.train.validation import Validator

    env, splits, channels, cache = _setup(run, config, meta)
    model = _model(run, config, channels, resume)
    done_epochs = max((int(r["epoch"]) for r in run.read_metrics()), default=0) if resume else 0
    best = max((float(r.get("val_dice", -1)) for r in run.read_metrics()), default=-1.0) if resume else -1.0
    steps = steps_per_epoch(config, len(splits.train))  # the same count the Train page's estimate uses
    if config.model.recurrent:
        from core.train.windows_data import window_feeding

        batches, validator, window_notes = window_feeding(config, Path(meta["dataset_dir"]), splits, cache, steps)
        splits.notes.extend(window_notes)
        run.update(notes=splits.notes)
        valid_items = validator.items
    else:
        valid_items = splits.valid[: config.data.max_validation_images]
        validator = Validator(
            valid_items,
            cache,
            config.model.size_multiple,
            config.data.patch_size if config.data.validation == "tiles" else None,
            config.data.patch_size if config.data.sampling == "resize" else 0,
        )
        batches = PatchBatches(splits.train, cache, config, steps, workers=2)
    stops.deadline = time.monotonic() + config.minutes * 60 if config.minutes > 0 else math.inf
    recorder = RunRecorder(
        run,
        validator,
        stops,
        config.batch_size,
        config.epochs,
        [i.stem for i in valid_items[: config.preview_images]],
        best,
    )
    early = keras.callbacks.EarlyStopping(monitor="val_dice", mode="max", patience=config.early_stopping)
    callbacks = [
        recorder,
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_dice",
            mode="max",
            factor=config.lr_factor,
            patience=config.lr_patience,
            min_lr=config.min_learning_rate,
        ),
        early,
        *extra,
    ]
    run.update(
        message=f"training: {steps} steps of {config.batch_size} patches per epoch",
        steps_per_epoch=steps,
        resumed_at_epoch=done_epochs if resume else None,
    )
    model.fit(batches, epochs=config.epochs, initial_epoch=done_epochs, callbacks=callbacks, verbose=0)
    reason = stops.reason or ("validation Dice stopped improving" if early.stopped_epoch else "all epochs done")
    state = "stopped" if stops.signal.is_set() else "failed" if "NaN" in reason else "finished"
    if state == "finished" and config.preset == "refine":
        _propose_after_refine(run, config)
    run.update(
        state=state,
        ended=now(),
        message=reason,
        best_val_dice=round(recorder.best, 6),
        **({"error": reason} if state == "failed" else {}),
    )
    log.info("run %s %s: %s (best validation Dice %.4f)", run.run_id, state, reason, recorder.best)
    return state


def _propose_after_refine(run: RunDir, config: TrainConfig) -> None:
    """A refinement ends by proposing new masks, with itself, for the images that still wait for a person."""
    from core.proposals.job import ProposalError, propose_dataset, proposals_task
    from core.settings import load_settings

    settings = load_settings()
    run.update(message="proposing new masks for the images still waiting, with this model")
    try:
        summary = propose_dataset(settings, config.dataset, run.run_id, proposals_task(settings, config.dataset))
    except ProposalError as exc:
        log.info("no new proposals after refining: %s", exc)
        return
    log.info("proposed %d masks with %s", summary["proposed"], run.run_id)


def _lr_find(run: RunDir, config: TrainConfig, meta: dict, stops, steps: int = 120) -> str:
    import numpy as np

    from core.train.feeding import PatchBatches
    from core.train.lr_find import schedule, suggest

    _, splits, channels, cache = _setup(run, config, meta)
    model = _model(run, config, channels, resume=False)
    if config.model.recurrent:  # windows of frames, as its training would see them
        from core.train.windows_data import window_feeding

        batches, _validator, _notes = window_feeding(config, Path(meta["dataset_dir"]), splits, cache, steps)
    else:
        batches = PatchBatches(splits.train, cache, config, steps, workers=2)
    rates, losses = [], []
    run.update(message=f"sweeping the learning rate over {steps} steps")
    for step in range(steps):
        if stops.signal.is_set():
            break
        rate = schedule(step, steps, 1e-6, 1.0)
        model.optimizer.learning_rate.assign(rate)
        x, y = batches[step]
        loss = float(np.asarray(model.train_on_batch(x, y, return_dict=True)["loss"]))
        rates.append(rate)
        losses.append(loss)
        with open(run.lr_find_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": step, "lr": rate, "loss": loss}) + "\n")
        if not math.isfinite(loss) or (losses and loss > 4 * min(losses) and step > 10):
            break
    best = suggest(rates, losses)
    state = "stopped" if stops.signal.is_set() else "finished"
    run.update(
        state=state,
        ended=now(),
        suggested_lr=best,
        message=f"suggested learning rate {best:.2g}" if best else "no clear suggestion: try 1e-3",
    )
    return state
