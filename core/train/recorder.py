"""Keras callbacks that keep the run folder up to date: validation, metrics, previews, checkpoints, stops."""

from __future__ import annotations

import logging
import math
import os
import threading
import time

import numpy as np
import keras

from core.io import write_png
from core.runs.folder import RunDir, now
from core.train.estimates import steady_speed
from core.train.validation import Validator, preview_picture

log = logging.getLogger(__name__)


class StopRequests:
    """Why training should stop early: a signal, the time budget, or a NaN loss."""

    def __init__(self, minutes: float, started: float):
        self.signal = threading.Event()
        self.deadline = started + minutes * 60 if minutes > 0 else math.inf
        self.reason = ""

    def check(self, loss: float | None = None) -> str:
        if self.signal.is_set():
            self.reason = self.reason or "stopped on request"
        elif loss is not None and not math.isfinite(loss):
            self.reason = self.reason or "the loss became NaN or infinite (learning rate too high?)"
        elif time.monotonic() >= self.deadline:
            self.reason = self.reason or "time budget reached"
        return self.reason


class RunRecorder(keras.callbacks.Callback):
    """Validates after each epoch, then writes metrics.jsonl, previews, checkpoints and status.

    Put it first in the callback list: it adds the ``val_*`` values that learning-rate
    reduction and early stopping read.
    """

    def __init__(
        self,
        run: RunDir,
        validator: Validator,
        stops: StopRequests,
        batch_size: int,
        epochs: int,
        preview_stems: list[str],
        best_so_far: float = -1.0,
    ):
        super().__init__()
        self.run = run
        self.validator = validator
        self.stops = stops
        self.batch_size = batch_size
        self.epochs = epochs
        self.preview_stems = preview_stems
        self.best = best_so_far
        self.epoch_started = 0.0
        self.batch_ends: list[float] = []  # when each step of this epoch ended (monotonic seconds)
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()
        self.batch_ends = []
        self.run.update(epoch=epoch + 1, message=f"epoch {epoch + 1} of {self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self.batch_ends.append(time.monotonic())
        loss = float(logs["loss"]) if logs and "loss" in logs else None
        if self.stops.check(loss):
            self.model.stop_training = True

    def _predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(batch, training=False), dtype=np.float32)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        validation_started = time.monotonic()
        train_seconds = validation_started - self.epoch_started
        scores, shown = self.validator.run(self._predict)
        logs.update(
            val_loss=scores.loss,
            val_dice=scores.dice,
            val_dice_pooled=scores.dice_pooled,
            val_iou=scores.iou,
            val_precision=scores.precision,
            val_recall=scores.recall,
        )
        seconds = time.monotonic() - self.epoch_started
        self.epoch_seconds.append(seconds)
        row = {
            "epoch": epoch + 1,
            "time": now(),
            "seconds": round(seconds, 3),
            "train_seconds": round(train_seconds, 3),
            "steps": len(self.batch_ends),
            "validation_seconds": round(seconds - train_seconds, 3),
            "validated": len(self.validator.items),
            "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
        }
        speed = steady_speed(self.batch_ends, self.batch_size)
        if speed is not None:  # too few steps (a stop right after the start) measure nothing
            row["images_per_s"] = round(speed, 3)
        for key, value in logs.items():
            if isinstance(value, (int, float, np.floating)) or hasattr(value, "numpy"):
                row[key] = round(float(value), 6)
        improved = scores.dice > self.best
        self._checkpoint(improved)  # before the metrics line: a recorded epoch always has its checkpoint
        if improved:
            self.best = scores.dice
        self._previews(epoch + 1, shown)
        self.run.append_metrics(row)
        remaining = self.epochs - epoch - 1
        eta = remaining * float(np.mean(self.epoch_seconds[-3:]))
        if math.isfinite(self.stops.deadline):
            eta = min(eta, max(0.0, self.stops.deadline - time.monotonic()))
        self.run.update(
            epoch=epoch + 1,
            best_val_dice=round(self.best, 6),
            eta_seconds=round(eta, 1),
            message=f"epoch {epoch + 1} done: validation Dice {scores.dice:.3f}",
        )

    def _previews(self, epoch: int, shown: dict) -> None:
        folder = self.run.previews / f"epoch_{epoch:03d}"
        for stem in self.preview_stems:
            if stem in shown:
                image, mask, probability = shown[stem]
                write_png(folder / f"{stem}.png", preview_picture(image, mask, probability), atomic=False)

    def _checkpoint(self, improved: bool) -> None:
        self.run.checkpoints.mkdir(exist_ok=True)
        for name, wanted in (("last", True), ("best", improved)):
            if wanted:
                target = self.run.checkpoints / f"{name}.keras"
                partial = self.run.checkpoints / f".{name}.partial.keras"
                self.model.save(partial)
                os.replace(partial, target)
