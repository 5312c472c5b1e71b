"""Figures drawn with matplotlib (Agg, no display): training curves, confusion matrices, gallery.

matplotlib is a runtime dependency (not only the ``train`` extra) because ``sortcam evaluate``
of an int8 model, and its report, run on the runtime install without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _marks(history: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    """Epoch numbers (1-based x) where a run resumed or changed phase, with what happened."""
    out: list[tuple[int, str]] = []
    prev: dict[str, Any] | None = None
    for i, h in enumerate(history):
        if prev is not None:
            if h.get("run", 1) != prev.get("run", 1):
                out.append((i + 1, f"resumed (run {h.get('run')})"))
            elif h.get("phase") != prev.get("phase"):
                out.append((i + 1, f"phase: {h.get('phase')}"))
        prev = h
    return out


def _figure(h: dict[str, Any], key: str) -> float:
    """``h[key]`` as a float; NaN where it is missing or ``null`` (a run with no val split)."""
    v = h.get(key)
    return float(v) if v is not None else float("nan")


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "Training curves") -> None:
    """Training loss (left) and val accuracy / lowest class recall (right) per epoch, with a
    dashed line where a run resumed or changed phase."""
    plt = _plt()
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    epochs = [int(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    x = list(range(1, len(history) + 1)) if len(set(epochs)) != len(epochs) else epochs
    loss = [_figure(h, "loss") for h in history]
    ax_l.plot(x, loss, color="tab:blue", marker=".", label="training loss")
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("training loss")
    ax_l.set_title("Training loss")
    acc = [100 * _figure(h, "val_accuracy") for h in history]
    rec = [100 * _figure(h, "val_min_recall") for h in history]
    ax_a.plot(x, acc, color="tab:green", marker=".", label="val accuracy")
    ax_a.plot(x, rec, color="tab:red", marker=".", label="val lowest class recall")
    raw = [h.get("val_accuracy_before_bn_reestimate") for h in history]
    if any(v is not None for v in raw):
        ax_a.plot(
            x,
            [100 * _figure(h, "val_accuracy_before_bn_reestimate") for h in history],
            color="tab:gray",
            lw=1,
            ls=":",
            label="val accuracy before BatchNorm re-estimation",
        )
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("percent")
    ax_a.set_ylim(0, 100)
    ax_a.set_title("Validation (watched, not used to choose)")
    for ax in (ax_l, ax_a):
        for xm, what in _marks(history):
            ax.axvline(xm - 0.5, color="black", ls="--", lw=0.8)
            ax.annotate(
                what,
                (xm - 0.5, 0.98),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=7,
            )
        ax.grid(alpha=0.3)
    ax_a.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: npt.NDArray[np.int64], classes: Sequence[str], path: str | Path, title: str = "") -> None:
    """Two panels: counts, and each row normalised to percent of its true class; full class names."""
    plt = _plt()
    m = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    rows = m.sum(axis=1, keepdims=True).clip(min=1)
    pct = 100.0 * m / rows
    size = max(4.0, 0.75 * k + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), constrained_layout=True)
    for ax, data, fmt, name in ((axes[0], m, "{:d}", "counts"), (axes[1], pct, "{:.0f}%", "percent of true class")):
        im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
        ax.set_xticks(range(k), labels=list(classes), rotation=35, ha="right")
        ax.set_yticks(range(k), labels=list(classes))
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(name)
        for i in range(k):
            for j in range(k):
                v = data[i, j]
                ax.text(
                    j,
                    i,
                    fmt.format(int(v)) if fmt == "{:d}" else fmt.format(float(v)),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if pct[i, j] > 55 else "black",
                )
    fig.colorbar(im, ax=axes, shrink=0.8, label="percent of true class")
    fig.suptitle(title or "Confusion matrix")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gallery(
    items: Sequence[tuple[npt.NDArray[np.uint8], str]], path: str | Path, cols: int = 6, title: str = ""
) -> None:
    """Grid of images, each titled with its caption (e.g. ``true glass / predicted metal (0.83)``)."""
    plt = _plt()
    cols = max(1, min(cols, len(items) or 1))
    rows = max(1, (len(items) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False, constrained_layout=True)
    for ax in axes.ravel():
        ax.axis("off")
    if not items:
        axes[0, 0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    from PIL import Image

    for n, (arr, caption) in enumerate(items):
        ax = axes.ravel()[n]
        thumb = Image.fromarray(arr)
        thumb.thumbnail((160, 160))
        ax.imshow(np.asarray(thumb))
        ax.set_title(caption, fontsize=7)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
