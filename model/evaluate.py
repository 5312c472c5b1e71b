"""Score a float Keras model or a full-int8 ``.tflite`` (in the TFLM runtime) on a split.

Metrics: accuracy, macro F1, per-class precision / recall / F1, top-3 accuracy and the
confusion matrix; figures: ``confusion.png`` and ``misclassified.png``. The int8 path
feeds each photo through :func:`sortcam.preprocess.preprocess_int8` with the input
tensor's own scale and zero point, exactly as the simulator and the firmware do.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sortcam.card import ModelCard, load_card, sha256_file
from sortcam.errors import DataError, ModelError
from sortcam.model.data import Split, index_for
from sortcam.preprocess import DEFAULT_RANGE, fit_resize, load_image, preprocess_int8, to_float
from sortcam.runtime import Int8Classifier

log = logging.getLogger(__name__)


def compute_metrics(
    y_true: npt.NDArray[np.int32], probs: npt.NDArray[np.float32], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro F1, top-3, per-class precision/recall/F1/support and the confusion matrix."""
    k = len(classes)
    y_true = np.asarray(y_true, dtype=np.int64)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, pred, strict=True):
        cm[t, p] += 1
    per_class: dict[str, dict[str, Any]] = {}
    f1s = []
    for c, name in enumerate(classes):
        tp = int(cm[c, c])
        support = int(cm[c].sum())
        predicted = int(cm[:, c].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": support,
        }
        if support:
            f1s.append(f1)
    from sortcam.stats import wilson_interval

    for c, name in enumerate(classes):
        lo, hi = wilson_interval(int(cm[c, c]), int(cm[c].sum()))
        per_class[name]["recall_interval95"] = [round(lo, 4), round(hi, 4)]
    top = min(3, k)
    top3 = np.argsort(-probs, axis=1)[:, :top] if len(probs) else np.zeros((0, top), np.int64)
    n = len(y_true)
    return {
        "images": n,
        "accuracy": round(float((pred == y_true).mean()), 4) if n else 0.0,
        "accuracy_interval95": [round(v, 4) for v in wilson_interval(int((pred == y_true).sum()), n)],
        "macro_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
        "top3_accuracy": round(float((top3 == y_true[:, None]).any(axis=1).mean()), 4) if n else 0.0,
        "min_recall": round(min(float(v["recall"]) for v in per_class.values() if v["support"]), 4) if n else 0.0,
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


@dataclass
class Scored:
    """Predictions of one model on one split."""

    probs: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int32]
    paths: list[Path]
    skipped: int


def _read_split(
    split: Split, limit: int | None
) -> tuple[list[npt.NDArray[np.uint8]], npt.NDArray[np.int32], list[Path], int]:
    photos: list[npt.NDArray[np.uint8]] = []
    labels: list[int] = []
    paths: list[Path] = []
    skipped = 0
    pairs = list(zip(split.paths, split.labels, strict=True))
    if limit is not None:
        pairs = pairs[:limit]
    for p, lab in pairs:
        try:
            photos.append(load_image(p))
        except DataError as exc:
            skipped += 1
            log.debug("skipping %s: %s", p, exc)
            continue
        labels.append(lab)
        paths.append(p)
    if skipped:
        log.warning("skipped %d unreadable image(s)", skipped)
    return photos, np.asarray(labels, np.int32), paths, skipped


def score_int8(
    clf: Int8Classifier,
    photos: Sequence[npt.NDArray[np.uint8]],
    fit: str,
    value_range: tuple[float, float] = DEFAULT_RANGE,
    progress: Callable[[int, int], None] | None = None,
) -> npt.NDArray[np.float32]:
    """Dequantised outputs of the TFLM model for each photo (the one int8 preprocessing)."""
    _, h, w, _ = clf.input_shape
    q = clf.input_quant
    out = np.zeros((len(photos), clf.num_classes), np.float32)
    for i, photo in enumerate(photos):
        x = preprocess_int8(photo, h, w, q.scale, q.zero_point, fit, value_range)
        out[i] = clf.predict(x)
        if progress is not None:
            progress(i + 1, len(photos))
    return out


def score_float(
    model: Any, photos: Sequence[npt.NDArray[np.uint8]], fit: str, value_range: tuple[float, float] = DEFAULT_RANGE
) -> npt.NDArray[np.float32]:
    """Outputs of a Keras model for each photo: ``to_float(fit_resize(photo))``."""
    _, h, w, _ = model.input_shape
    if not photos:
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    x = np.stack([to_float(fit_resize(p, int(h), int(w), fit), value_range) for p in photos])
    return np.asarray(model.predict(x, batch_size=64, verbose=0), dtype=np.float32)


def _bar(label: str) -> Callable[[int, int], None]:
    t0 = time.time()

    def show(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            rate = done / max(time.time() - t0, 1e-6)
            end = "\n" if done == total else "\r"
            print(f"{label}: {done}/{total} images ({rate:.1f}/s)", end=end, file=sys.stderr, flush=True)

    return show


def _training_fit(model_path: Path) -> str | None:
    from sortcam.model.quantize import train_meta

    fit = train_meta(model_path).get("fit")
    return str(fit) if fit is not None else None


def _training_block(model_path: Path, card: ModelCard | None) -> dict[str, Any] | None:
    """The settings of the run that made the model: its card's ``training``, or train_config.json."""
    if model_path.suffix == ".tflite":
        block = card.extra.get("training") if card is not None else None
        return block if isinstance(block, dict) else None
    from sortcam.model.quantize import train_meta

    meta = train_meta(model_path)
    if meta:
        return meta
    try:  # a `sortcam teacher` file keeps its settings in teacher.json
        data = json.loads(model_path.with_name("teacher.json").read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return None
    return data if isinstance(data, dict) else None


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _digest(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def seen_in_training(
    training: dict[str, Any] | None, data_dir: str | Path, split_name: str, paths: Sequence[Path]
) -> int | None:
    """How many of ``paths`` the model trained on; None when that cannot be told.

    Where the run's data folder is here, photos are compared by content (a copy or a symlink
    counts); otherwise a merged folder's manifest in the card (scripts/merge_splits.py) says
    which splits of which dataset it held.
    """
    if not training or not training.get("data_dir"):
        return None
    tdir = Path(str(training["data_dir"]))
    if tdir.is_dir():
        try:
            tr = index_for(tdir, training).split("train")
        except Exception:  # an unreadable training folder: say nothing rather than guess
            return None
        by_size: dict[int, list[Path]] = {}
        for p in tr.paths:
            if (size := _size(p)) is not None:
                by_size.setdefault(size, []).append(p)
        # Hash only the photos whose size matches one of the other side's.
        ours = {p: size for p in paths if (size := _size(p)) is not None and size in by_size}
        theirs = {_digest(q) for size in set(ours.values()) for q in by_size[size]}
        theirs.discard(None)
        return sum(1 for p in ours if _digest(p) in theirs)
    merged = training.get("merged_from")
    if isinstance(merged, dict) and Path(data_dir).resolve().name == merged.get("source_name"):
        held = merged.get("splits") or []
        if split_name in held:
            return len(paths)
        if split_name == "all":
            return None
        return 0
    return None


def evaluate_model(
    model_path: str | Path,
    data_dir: str | Path,
    split_name: str = "val",
    card: ModelCard | None = None,
    fit: str | None = None,
    limit: int | None = None,
) -> tuple[dict[str, Any], Scored, list[str]]:
    """Score ``model_path`` (``.keras`` or ``.tflite``) on a split of ``data_dir``.

    Returns the metrics, the predictions and the class list.
    """
    mp = Path(model_path)
    if not mp.is_file():
        raise ModelError(f"model not found: {mp}")
    value_range = DEFAULT_RANGE
    if mp.suffix == ".tflite":
        if card is None:
            card = load_card(mp)
        classes = list(card.classes)
        fit = fit or card.preprocess.fit
        value_range = card.preprocess.range
        clf = Int8Classifier(mp)
        if clf.num_classes != len(classes):
            raise ModelError(f"{mp} has {clf.num_classes} outputs but its card lists {len(classes)} classes")
    else:
        from sortcam.model.train import classes_for, load_keras_model

        keras_model = load_keras_model(mp)
        found = classes_for(mp)
        classes = found if found is not None else []
        fit = fit or _training_fit(mp) or "crop"
    training = _training_block(mp, card)
    index = index_for(data_dir, training, classes=classes or None)
    if not classes:
        classes = index.classes
    if split_name == "all":
        split = Split()
        for s in index.splits.values():
            split.paths += s.paths
            split.labels += s.labels
    else:
        split = index.split(split_name)
    if len(split) == 0:
        raise DataError(f"{data_dir}: the {split_name} split has no images")
    photos, labels, paths, skipped = _read_split(split, limit)
    if mp.suffix == ".tflite":
        probs = score_int8(clf, photos, fit, value_range, progress=_bar("int8 (TFLM)"))
    else:
        if int(keras_model.output_shape[-1]) != len(classes):
            raise ModelError(
                f"{mp} has {keras_model.output_shape[-1]} outputs but the dataset has {len(classes)} classes"
            )
        probs = score_float(keras_model, photos, fit, value_range)
    metrics = compute_metrics(labels, probs, classes)
    metrics["data"] = f"{split_name} split of {Path(data_dir).name} ({len(labels)} images)"
    seen = seen_in_training(training, data_dir, split_name, paths)
    if seen is not None:
        metrics["seen_in_training"] = seen
        if seen:
            metrics["data"] += f"; the model trained on {seen} of them: not a held-out figure"
    metrics["skipped"] = skipped
    return metrics, Scored(probs, labels, paths, skipped), classes


def _history_for(model_path: Path) -> list[dict[str, Any]] | None:
    """Training history: ``history.json`` beside a ``.keras``, ``<stem>.history.json`` beside a ``.tflite``."""
    for cand in (model_path.with_name(f"{model_path.stem}.history.json"), model_path.with_name("history.json")):
        try:
            data = json.loads(cand.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, list) and data:
            return data
    return None


def write_report(
    metrics: dict[str, Any],
    scored: Scored,
    classes: Sequence[str],
    out: Path,
    title: str,
    max_gallery: int = 36,
    model_path: Path | None = None,
    card: ModelCard | None = None,
) -> Path:
    """``metrics.json``, ``confusion.png``, ``misclassified.png``, ``curves.png`` and ``report.html`` in ``out``."""
    from sortcam.model.plots import plot_confusion, plot_curves, plot_gallery
    from sortcam.model.report import card_facts, write_html_report

    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_confusion(np.asarray(metrics["confusion"]), classes, out / "confusion.png", title)
    pred = scored.probs.argmax(axis=1) if len(scored.probs) else np.zeros(0, np.int64)
    wrong = [i for i in range(len(pred)) if pred[i] != scored.labels[i]][:max_gallery]
    items = []
    for i in wrong:
        try:
            img = load_image(scored.paths[i])
        except DataError:
            continue
        caption = (
            f"true {classes[scored.labels[i]]}\npredicted {classes[pred[i]]} ({scored.probs[i, pred[i]]:.2f})\n"
            f"{scored.paths[i].name[:28]}"
        )
        items.append((img, caption))
    plot_gallery(items, out / "misclassified.png")
    figures = {"confusion": out / "confusion.png", "gallery": out / "misclassified.png"}
    history = _history_for(model_path) if model_path is not None else None
    if history:
        plot_curves(history, out / "curves.png")
        figures["curves"] = out / "curves.png"
    agreement = None
    if card is not None:
        agreement = card.metrics.get("float_int8_agreement")
    return write_html_report(
        out / "report.html", title, metrics, figures, card_facts(card) if card is not None else None, agreement
    )


def format_table(metrics: dict[str, Any]) -> str:
    from sortcam.stats import format_interval

    lines = [f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}"]
    for name, m in metrics["per_class"].items():
        lines.append(f"{name:<12} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>5}")
    n = int(metrics["images"])
    correct = sum(int(metrics["confusion"][i][i]) for i in range(len(metrics["confusion"])))
    lines.append(
        f"accuracy {format_interval(correct, n)} (95% interval)  macro F1 {metrics['macro_f1']:.4f}  "
        f"top-3 {metrics['top3_accuracy']:.4f}  min recall {metrics['min_recall']:.4f}  ({metrics['data']})"
    )
    return "\n".join(lines)


def evaluate_cli(args: argparse.Namespace) -> int:
    card = load_card(args.card) if getattr(args, "card", None) else None
    metrics, scored, classes = evaluate_model(args.model, args.data_dir, args.split_name, card, args.fit, args.limit)
    mp = Path(args.model)
    if mp.suffix == ".tflite" and card is None:
        card = load_card(mp)
    out = Path(args.out) if args.out else mp.parent / f"eval_{mp.stem}_{args.split_name}"
    kind = "int8 TFLM" if mp.suffix == ".tflite" else "float Keras"
    report = write_report(
        metrics, scored, classes, out, f"{mp.name} ({kind}) on {metrics['data']}", model_path=mp, card=card
    )
    print(format_table(metrics))
    if metrics.get("seen_in_training"):
        print(
            f"warning: the model trained on {metrics['seen_in_training']} of these {metrics['images']} photos; "
            "this is not a measurement of unseen photos",
            flush=True,
        )
    print(f"wrote {out}/metrics.json, confusion.png, misclassified.png and {report}")
    return 0
