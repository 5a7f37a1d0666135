"""Report pictures of a run (PNG, drawn with Pillow; no matplotlib needed).

* ``curves.png``: one panel per quantity (loss, each metric, learning rate) with the training
  curve (blue) and the validation curve (orange) over epochs, min/max values written on the
  axis.
* ``test_NN_<sample>.png``: for a few test frames, three panels side by side: the image, the
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

BLUE, ORANGE, GREY, BLACK = (31, 119, 180), (255, 127, 14), (200, 200, 200), (0, 0, 0)


def _save_png(path: Path, image) -> Path:
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a 2D image to uint8 between its 1st and 99.8th percentiles."""
    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, [1, 99.8]) if img.size else (0.0, 1.0)
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


def _panel(title: str, curves: list[tuple[str, tuple, list]], size=(420, 260)):
    from PIL import Image, ImageDraw

    w, h = size
    left, right, top, bottom = 58, 12, 24, 30
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    d.text((left, 5), title, fill=BLACK)
    points = [p for _, _, pts in curves for p in pts]
    if not points:
        d.text((left, h // 2), "no data", fill=BLACK)
        return img
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5 * (abs(y0) or 1), y1 + 0.5 * (abs(y1) or 1)
    pw, ph = w - left - right, h - top - bottom

    def xy(x, y):
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph

    d.rectangle([left, top, left + pw, top + ph], outline=GREY)
    d.text((4, top - 4), f"{y1:.3g}", fill=BLACK)
    d.text((4, top + ph - 8), f"{y0:.3g}", fill=BLACK)
    d.text((left, top + ph + 6), f"epoch {x0}", fill=BLACK)
    d.text((left + pw - 60, top + ph + 6), f"epoch {x1}", fill=BLACK)
    for k, (label, color, pts) in enumerate(curves):
        coords = [xy(x, y) for x, y in pts]
        if len(coords) > 1:
            d.line(coords, fill=color, width=2)
        for cx, cy in coords:
            d.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=color)
        d.text((left + pw - 150 + 75 * k, 5), label, fill=color)
    return img


def plot_curves(history: Sequence[dict], path: str | Path,
                monitor: str | None = None) -> Path | None:
    """Draw the training curves of ``history`` (rows of history.csv) to ``path``; None when
    the history is empty."""
    from PIL import Image

    if not history:
        return None
    keys = [k for k in history[-1] if k != "epoch" and not k.startswith("val_")]
    keys = sorted(keys, key=lambda k: (k != "loss", k == "learning_rate", k))
    panels = []
    for key in keys:
        curves = [("train" if key != "learning_rate" else "per epoch", BLUE,
                   _series(history, key))]
        if key != "learning_rate":
            curves.append(("validation", ORANGE, _series(history, f"val_{key}")))
        title = key + ("  (monitored)" if monitor in (key, f"val_{key}") else "")
        panels.append(_panel(title, [c for c in curves if c[2]]))
    cols = 2
    rows = (len(panels) + cols - 1) // cols
    pw, ph = panels[0].size
    sheet = Image.new("RGB", (pw * cols, ph * rows), "white")
    for i, panel in enumerate(panels):
        sheet.paste(panel, ((i % cols) * pw, (i // cols) * ph))
    return _save_png(Path(path), sheet)


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
