"""Report pictures of a run (PNG).

* ``curves.png`` (matplotlib): one panel per quantity (loss, each metric, learning rate) with
  the training curve (blue) and the validation curve (orange) over epochs, axis labels,
  ticks and a legend.
* ``test_NN_<sample>.png`` (Pillow): for a few test frames, three panels side by side: the image, the
  image with the ground truth (green), the image with the prediction (magenta); instance
  outlines drawn in white.
Every file is written atomically. No TensorFlow is imported.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .fileio import atomic_write

__all__ = ["write_report", "plot_curves", "overlay_panels", "to_uint8"]

BLUE, ORANGE, BLACK = (31, 119, 180), (255, 127, 14), (0, 0, 0)


def _save_png(path: Path, image) -> Path:
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a 2D image to uint8 between the 1st and 99.8th percentiles of its finite
    pixels (NaN/Inf pixels become 0)."""
    img = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(img)
    lo, hi = np.percentile(img[finite], [1, 99.8]) if finite.any() else (0.0, 1.0)
    img = np.where(finite, img, lo)
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((img - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def _series(history: Sequence[dict], key: str) -> list[tuple[int, float]]:
    out = []
    for row in history:
        v = row.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out.append((int(row["epoch"]), float(v)))
    return out


def plot_curves(history: Sequence[dict], path: str | Path,
                monitor: str | None = None) -> Path | None:
    """Draw the training curves of ``history`` (rows of history.csv) to ``path`` with
    matplotlib: one panel per quantity (loss first, each metric, the learning rate last),
    training and validation curves over epochs, axis labels, ticks and a legend; the
    monitored quantity's title says so. None when the history is empty."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    keys = [k for k in history[-1] if k != "epoch" and not k.startswith("val_")]
    keys = sorted(keys, key=lambda k: (k != "loss", k == "learning_rate", k))
    cols = 2 if len(keys) > 1 else 1
    rows = max(1, (len(keys) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False,
                             dpi=100)
    for ax in axes.flat[len(keys):]:
        ax.set_axis_off()
    for ax, key in zip(axes.flat, keys):
        curves = [("train" if key != "learning_rate" else "per epoch", BLUE,
                   _series(history, key))]
        if key != "learning_rate":
            curves.append(("validation", ORANGE, _series(history, f"val_{key}")))
        drawn = False
        for label, color, pts in curves:
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3,
                        color=tuple(c / 255 for c in color), label=label)
                drawn = True
        ax.set_title(key + ("  (monitored)" if monitor in (key, f"val_{key}") else ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    try:
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
    finally:
        plt.close(fig)
    from PIL import Image

    return _save_png(Path(path), Image.fromarray(rgba[..., :3].copy()))  # RGB, as before


def _outline(labels: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, bool)
    edge[:-1] |= lab[:-1] != lab[1:]
    edge[1:] |= lab[:-1] != lab[1:]
    edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    edge[:, 1:] |= lab[:, :-1] != lab[:, 1:]
    return edge & (lab > 0)


def _overlay(gray: np.ndarray, labels: np.ndarray | None, color: tuple) -> np.ndarray:
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    if labels is not None:
        fg = np.asarray(labels) > 0
        rgb[fg] = 0.55 * rgb[fg] + 0.45 * np.array(color, np.float32)
        rgb[_outline(labels)] = 255
    return rgb.astype(np.uint8)


def overlay_panels(image: np.ndarray, truth: np.ndarray | None, prediction: np.ndarray,
                   title: str = "", min_size: int = 192):
    """A PIL image: image | ground truth overlay | prediction overlay, upscaled (nearest) so
    the short side is at least ``min_size`` pixels, with captions."""
    from PIL import Image, ImageDraw

    gray = to_uint8(image)
    parts = [np.repeat(gray[..., None], 3, axis=-1), _overlay(gray, truth, (0, 200, 0)),
             _overlay(gray, prediction, (220, 0, 220))]
    captions = ["image", "ground truth" if truth is not None else "no ground truth",
                "prediction"]
    scale = max(1, int(math.ceil(min_size / max(1, min(gray.shape)))))
    h, w = gray.shape[0] * scale, gray.shape[1] * scale
    sheet = Image.new("RGB", (3 * w + 20, h + 36), "white")
    d = ImageDraw.Draw(sheet)
    d.text((4, 2), title, fill=BLACK)
    for k, (part, caption) in enumerate(zip(parts, captions)):
        tile = Image.fromarray(part).resize((w, h), Image.NEAREST)
        sheet.paste(tile, (k * (w + 10), 32))
        d.text((k * (w + 10) + 4, 18), caption, fill=BLACK)
    return sheet


def write_report(report_dir: str | Path, history: Sequence[dict], samples: Sequence[Any],
                 *, monitor: str | None = None, n_samples: int = 4) -> list[Path]:
    """Write ``curves.png`` and up to ``n_samples`` test overlays into ``report_dir``.

    ``samples`` are objects with ``name``, ``image`` (T, H, W), ``truth`` (T, H, W) or None,
    ``annotated`` (indices of labelled frames) and ``labels`` (T, H, W): for each, the first
    annotated frame is shown.
    Returns the files written."""
    report_dir = Path(report_dir)
    written = []
    curves = plot_curves(history, report_dir / "curves.png", monitor)
    if curves is not None:
        written.append(curves)
    for k, s in enumerate(list(samples)[:n_samples]):
        annotated = np.asarray(s.annotated, dtype=int) if s.truth is not None else []
        t = int(annotated[0]) if len(annotated) else 0
        truth = None if s.truth is None else s.truth[t]
        sheet = overlay_panels(s.image[t], truth, s.labels[t], title=f"{s.name}, frame {t}")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(s.name))
        written.append(_save_png(report_dir / f"test_{k:02d}_{safe}.png", sheet))
    return written
