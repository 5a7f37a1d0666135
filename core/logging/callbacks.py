"""Keras callbacks that record a run: history CSV, rich progress, W&B. None raises into training.

* :class:`HistoryCsv` keeps ``history.csv`` (one row per epoch, rewritten atomically; on
  resume the earlier rows are kept).
* :class:`EpochLog` logs one line per epoch; :class:`RichProgress` shows epoch and step
  progress bars.
* :class:`WandbMetrics` logs every epoch's metrics and learning rate, and sample predictions
  (image, ground truth and prediction masks) of a fixed batch, to a :class:`WandbRun`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from ..fileio import atomic_write
from .wandb_run import WandbRun

__all__ = ["HistoryCsv", "EpochLog", "RichProgress", "WandbMetrics", "current_lr", "read_history"]

log = logging.getLogger("dlsuite.training")


def current_lr(model) -> float | None:
    """The optimizer's current learning rate as a float (None if it cannot be read)."""
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # noqa: BLE001 - schedules or exotic optimizers
        return None


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``history.csv`` (numbers as float, ``epoch`` as int); [] if missing."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        rows = []
        for row in csv.DictReader(fh):
            out = {k: (_number(v) if v != "" else None) for k, v in row.items()}
            out["epoch"] = int(out["epoch"])
            rows.append(out)
        return rows


class HistoryCsv(keras.callbacks.Callback):
    """Append each epoch's logs (plus ``epoch``, 1-based, and ``learning_rate``) to
    ``history.csv``, rewriting the file atomically; ``rows`` holds everything written.
    Epochs for which ``skip_epoch()`` is true (cut short by a signal) are not recorded."""

    def __init__(self, path: str | Path, previous: Sequence[dict[str, Any]] = (),
                 skip_epoch: Callable[[], bool] = lambda: False):
        super().__init__()
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = [dict(r) for r in previous]
        self.skip_epoch = skip_epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.skip_epoch():
            return
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update({k: _number(v) for k, v in (logs or {}).items()})
        if "learning_rate" not in row:
            row["learning_rate"] = current_lr(self.model)
        self.rows = [r for r in self.rows if r["epoch"] < epoch + 1] + [row]
        try:
            self._write()
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)

    def _write(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})
        text = buf.getvalue()
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _fmt_logs(logs: dict[str, Any]) -> str:
    parts = []
    for k, v in logs.items():
        if isinstance(v, (int, float, np.floating)) and math.isfinite(float(v)):
            parts.append(f"{k}={float(v):.4g}")
    return " ".join(parts)


class EpochLog(keras.callbacks.Callback):
    """One INFO line per epoch: ``epoch N/M: loss=... val_jaccard=... learning_rate=...``."""

    def __init__(self, epochs: int, skip_epoch: Callable[[], bool] = lambda: False):
        super().__init__()
        self.epochs = epochs
        self.skip_epoch = skip_epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.skip_epoch():
            return
        log.info("epoch %d/%d: %s", epoch + 1, self.epochs, _fmt_logs(dict(logs or {})))


class RichProgress(keras.callbacks.Callback):
    """rich progress bars for epochs and steps (on stderr) and one log line per epoch."""

    def __init__(self, epochs: int, steps_per_epoch: int, initial_epoch: int = 0):
        super().__init__()
        self.epochs, self.steps, self.initial_epoch = epochs, steps_per_epoch, initial_epoch
        self._progress = None

    def on_train_begin(self, logs=None):
        try:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=Console(stderr=True), transient=True)
            self._progress.start()
            self._epoch_task = self._progress.add_task(
                "epochs", total=self.epochs, completed=self.initial_epoch, info="")
            self._step_task = self._progress.add_task("steps", total=self.steps, info="")
        except Exception as exc:  # noqa: BLE001 - progress display is optional
            log.debug("no progress bars: %s", exc)
            self._progress = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._progress is not None:
            self._progress.update(self._epoch_task, description=f"epoch {epoch + 1}/{self.epochs}")
            self._progress.reset(self._step_task, total=self.steps)

    def on_train_batch_end(self, batch, logs=None):
        if self._progress is not None:
            loss = (logs or {}).get("loss")
            info = f"loss={float(loss):.4g}" if loss is not None else ""
            self._progress.update(self._step_task, advance=1, info=info)

    def on_epoch_end(self, epoch, logs=None):
        if self._progress is not None:
            self._progress.update(self._epoch_task, completed=epoch + 1)

    def on_train_end(self, logs=None):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class WandbMetrics(keras.callbacks.Callback):
    """Log each epoch's metrics and learning rate to W&B (``step`` = epoch, 1-based), and
    predictions of a fixed sample batch as images with masks. Never raises."""

    def __init__(self, run: WandbRun, samples: tuple[np.ndarray, np.ndarray] | None = None,
                 n_images: int = 4, class_labels: dict[int, str] | None = None,
                 skip_epoch: Callable[[], bool] = lambda: False):
        super().__init__()
        self.skip_epoch = skip_epoch
        self.run = run
        self.samples = samples
        self.n_images = n_images
        self.class_labels = class_labels or {}

    def on_epoch_end(self, epoch, logs=None):
        if not self.run.active or self.skip_epoch():
            return
        try:
            data = {k: float(v) for k, v in (logs or {}).items()
                    if isinstance(v, (int, float, np.floating, np.integer))}
            lr = current_lr(self.model)
            if lr is not None:
                data.setdefault("learning_rate", lr)
            data["epoch"] = epoch + 1
            images = self._images(epoch)
            if images:
                data["samples"] = images
            self.run.log(data, step=epoch + 1)
        except Exception as exc:  # noqa: BLE001 - W&B must never stop training
            log.warning("W&B epoch logging failed: %s", exc)

    def _images(self, epoch: int) -> list[Any]:
        if self.samples is None or self.n_images <= 0:
            return []
        x, y = self.samples
        x, y = x[: self.n_images], y[: self.n_images]
        logits = self.model.predict_on_batch(x)
        if isinstance(logits, (list, tuple)):
            logits = logits[0]
        pred = np.argmax(np.asarray(logits, dtype=np.float32), axis=-1)
        out = []
        for i in range(len(x)):
            img = x[i][..., 0]
            truth = y[i][..., 0]
            if img.ndim == 3:  # temporal window: show the last frame
                img = img[-1]
            if truth.ndim == 3:
                truth = truth[-1]
            image = self.run.image(img, truth=truth.astype(np.int64), prediction=pred[i],
                                   class_labels=self.class_labels,
                                   caption=f"epoch {epoch + 1} sample {i}")
            if image is not None:
                out.append(image)
        return out
