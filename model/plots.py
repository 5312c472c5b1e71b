"""PNG figures drawn with Pillow (no matplotlib): training curves, confusion matrix, gallery."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]


def _font() -> Any:
    from PIL import ImageFont

    return ImageFont.load_default()


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, width: int = 720, height: int = 420) -> None:
    """Loss (left axis, scaled to its max) and val accuracy / min recall (0..1) per epoch."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font = _font()
    left, right, top, bottom = 50, width - 20, 30, height - 40
    d.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    n = len(history)
    d.text((left, 8), "training curves: loss (scaled), val accuracy, val min recall", fill=(0, 0, 0), font=font)
    for i in range(0, 11, 2):
        y = bottom - (bottom - top) * i / 10
        d.line([left - 4, y, left, y], fill=(0, 0, 0))
        d.text((8, y - 6), f"{i / 10:.1f}", fill=(0, 0, 0), font=font)
    if n == 0:
        img.save(path)
        return
    losses = [h.get("loss", float("nan")) for h in history]
    finite = [v for v in losses if np.isfinite(v)]
    lmax = max(finite) if finite else 1.0
    series = [
        (f"loss / {lmax:.3g}", [v / lmax if np.isfinite(v) and lmax else float("nan") for v in losses]),
        ("val accuracy", [h.get("val_accuracy", float("nan")) for h in history]),
        ("val min recall", [h.get("val_min_recall", float("nan")) for h in history]),
    ]

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (right - left) * (i / max(1, n - 1))
        return x, bottom - (bottom - top) * min(max(v, 0.0), 1.0)

    for k, (name, vals) in enumerate(series):
        pts = [xy(i, v) for i, v in enumerate(vals) if np.isfinite(v)]
        if len(pts) > 1:
            d.line(pts, fill=_COLORS[k], width=2)
        d.text((left + 10 + 170 * k, bottom + 18), name, fill=_COLORS[k], font=font)
    d.text((right - 60, bottom + 4), f"epoch {n}", fill=(0, 0, 0), font=font)
    prev = None
    for i, h in enumerate(history):
        if prev is not None and h.get("phase") != prev:
            x = xy(i, 0)[0]
            d.line([x, top, x, bottom], fill=(150, 150, 150))
        prev = h.get("phase")
    img.save(path)


def plot_confusion(matrix: npt.NDArray[np.int64], classes: Sequence[str], path: str | Path, title: str = "") -> None:
    """Confusion matrix (rows true, columns predicted) with counts, shaded by row fraction."""
    from PIL import Image, ImageDraw

    k = len(classes)
    cell = 56
    margin_l, margin_t = 90, 60
    w, h = margin_l + cell * k + 20, margin_t + cell * k + 30
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = _font()
    d.text((10, 8), title or "confusion matrix (rows: true, columns: predicted)", fill=(0, 0, 0), font=font)
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    frac = matrix / rows
    for i in range(k):
        d.text((8, margin_t + cell * i + cell // 2 - 6), classes[i][:12], fill=(0, 0, 0), font=font)
        d.text((margin_l + cell * i + 4, margin_t - 16), classes[i][:8], fill=(0, 0, 0), font=font)
        for j in range(k):
            shade = int(255 - 200 * frac[i, j])
            color = (shade, shade, 255) if i == j else (255, shade, shade)
            x0, y0 = margin_l + cell * j, margin_t + cell * i
            d.rectangle([x0, y0, x0 + cell, y0 + cell], fill=color, outline=(120, 120, 120))
            d.text((x0 + cell // 2 - 8, y0 + cell // 2 - 6), str(int(matrix[i, j])), fill=(0, 0, 0), font=font)
    img.save(path)


def plot_gallery(
    items: Sequence[tuple[npt.NDArray[np.uint8], str]], path: str | Path, tile: int = 128, cols: int = 6
) -> None:
    """Grid of images with a caption under each (e.g. ``true -> predicted 0.83``)."""
    from PIL import Image, ImageDraw

    cols = max(1, min(cols, len(items) or 1))
    rows = max(1, (len(items) + cols - 1) // cols)
    cap = 28
    img = Image.new("RGB", (cols * tile, rows * (tile + cap)), "white")
    d = ImageDraw.Draw(img)
    font = _font()
    if not items:
        d.text((8, 8), "no misclassified images", fill=(0, 0, 0), font=font)
    for n, (arr, caption) in enumerate(items):
        r, c = divmod(n, cols)
        thumb = Image.fromarray(arr).resize((tile, tile))
        img.paste(thumb, (c * tile, r * (tile + cap)))
        for li, line in enumerate(caption.split("\n")[:2]):
            d.text((c * tile + 3, r * (tile + cap) + tile + 2 + 12 * li), line[:24], fill=(0, 0, 0), font=font)
    img.save(path)
