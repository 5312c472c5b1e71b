"""A finished consistent-distillation student under two BatchNorm statistics (behind docs/model.md)

Training never reads the moving statistics (BatchNorm uses batch statistics in training
mode), so where the final ones come from can be chosen after the run, and gives the model
``sortcam train --bn-stats`` would have saved:

- ``clean``: re-estimated on the clean train photos (what runs saved before the option did);
- ``train``: re-estimated on the batches of the run's last epoch, exactly as training fed them
  (the pool's views, mirrored, mixed by mixup or CutMix), at the run's batch size.

For each run folder it prints the val accuracy of both with 95% Wilson intervals, the paired
counts and the exact McNemar p-value, and with ``--json`` records them.

    python benchmarks/bn_stats.py runs/a [runs/b ...] [--json FILE] [--save-train MODEL.keras]

``--save-train`` (one run) writes the student with ``train`` statistics, and beside it the run's
``train_config.json`` (with ``bn_stats: train``), ``classes.json``, ``summary.json`` and
``history.json`` (the card's training facts), to quantize as usual.
It needs the run's view pool (``--teacher-cache`` of the run, or ``RUN/views``; rebuilt from
the data if absent) and its teacher file (for the teacher's input size only).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired_compare import mcnemar_exact  # noqa: E402

from sortcam.benchinfo import machine  # noqa: E402
from sortcam.errors import SortcamError  # noqa: E402
from sortcam.stats import format_interval  # noqa: E402


def score(pred: Any, y: Any, classes: list[str] | None = None) -> dict[str, Any]:
    """Photos right, accuracy and its interval of ``pred`` against ``y``; with ``classes``, each class's recall."""
    right = int((pred == y).sum())
    out: dict[str, Any] = {"right": right, "accuracy": round(right / len(y), 4)}
    out["interval"] = format_interval(right, len(y))
    if classes is not None:
        present = [(i, c) for i, c in enumerate(classes) if (y == i).any()]
        out["recall"] = {c: round(float((pred[y == i] == i).mean()), 4) for i, c in present}
    return out


def last_epoch_plan(saved: dict[str, Any], n: int) -> list[Any]:
    """The batches of the last epoch of the run whose ``train_config.json`` is ``saved``, over a pool of ``n`` views."""
    from sortcam.model.consistent import epoch_plan

    return epoch_plan(n, int(saved["batch_size"]), int(saved["seed"]), int(saved["epochs"]) - 1,
                      float(saved.get("mixup", 0.0)), bool(saved.get("augment", {}).get("flip", True)),
                      float(saved.get("cutmix", 0.0)))  # fmt: skip


@dataclass
class RunData:
    """What re-estimating a finished run's statistics needs: its settings, data and last epoch's batches."""

    saved: dict[str, Any]
    classes: list[str]
    val_x: Any
    val_y: Any
    clean_x: Any
    pool: Any
    plan: list[Any]


def load_run(run: Path) -> RunData:
    """The run's settings, val and clean train photos, view pool and the plan of its last epoch."""
    from sortcam.model import consistent as cons
    from sortcam.model.data import index_dataset, load_split, parse_split_spec
    from sortcam.model.teacher import load_teacher
    from sortcam.model.train import TrainConfig
    from sortcam.preprocess import DEFAULT_RANGE, to_float

    saved = json.loads((run / "train_config.json").read_text())
    config = TrainConfig.from_saved(saved)
    index = index_dataset(config.data_dir, parse_split_spec(config.split), config.seed)
    tr, tr_full = load_split(index.split("train"), config.height, config.width, config.fit, keep_full=True)
    va, _ = load_split(index.split("val"), config.height, config.width, config.fit)
    assert config.teacher is not None
    teacher = load_teacher(config.teacher, index.classes)
    teacher_size = 0 if (teacher.input_size,) * 2 == (config.height, config.width) else teacher.input_size
    del teacher
    cache = Path(config.teacher_cache) if config.teacher_cache else run / "views"
    pool, _, _ = cons.view_pool(config, tr_full, tr.labels, cache, teacher_size)
    del tr_full
    return RunData(saved, list(index.classes), to_float(va.images, DEFAULT_RANGE), va.labels,
                   to_float(tr.images, DEFAULT_RANGE), pool, last_epoch_plan(saved, len(pool)))  # fmt: skip


def save_beside(run: Path, model: Any, dest: Path, saved: dict[str, Any]) -> None:
    """``model`` at ``dest``, with the run's settings (``bn_stats: train``), classes, summary and history beside it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    model.save(dest)
    # beside it, the run's settings (quantize reads the fit from them), saying where its statistics came from
    (dest.parent / "train_config.json").write_text(json.dumps({**saved, "bn_stats": "train"}, indent=2))
    for name in ("classes.json", "summary.json", "history.json"):  # the card's recipe facts read them
        if (run / name).is_file():
            (dest.parent / name).write_text((run / name).read_text())


def unfinished(run: Path) -> str | None:
    """Why ``run`` is not a finished run folder (``None`` when it is)."""
    missing = [n for n in ("model.keras", "train_config.json", "summary.json") if not (run / n).is_file()]
    if missing:
        return f"{run}: not a finished run folder (no {' / '.join(missing)}; a run stopped early: --resume it first)"
    return None


def unsafe_output(folder: Path, runs: list[Path]) -> str | None:
    """Why writing a model with its settings into ``folder`` could overwrite a run (``None`` when it cannot)."""
    f = folder.resolve()
    for run in runs:
        r = run.resolve()
        if f == r or r in f.parents:
            return f"{folder} is inside the run {run} (its model and settings stay as trained)"
    taken = [n for n in ("model.keras", "train_config.json") if (folder / n).exists()]
    if taken:
        return f"{folder} already holds {' and '.join(taken)} (another run?); choose a new folder"
    return None


def measure(run: Path, save_train: Path | None = None) -> dict[str, Any]:
    """Val predictions of ``run``'s student with clean and with training-batch statistics."""
    from sortcam.model import consistent as cons
    from sortcam.model.train import _keras

    d = load_run(run)
    model = _keras().models.load_model(str(run / "model.keras"), compile=False)
    y = d.val_y
    out: dict[str, Any] = {"run": str(run), "images": len(y), "last_epoch_plan": int(d.saved["epochs"]) - 1}
    preds = {}
    for how in ("clean", "train"):
        print(f"{run}: BatchNorm statistics from {how} ...", flush=True)
        cons.set_bn_stats(model, how, d.clean_x, d.pool, d.plan)
        preds[how] = np.asarray(model.predict(d.val_x, batch_size=128, verbose=0)).argmax(1)
        if how == "train" and save_train is not None:
            save_beside(run, model, save_train, d.saved)
            out["saved_train"] = str(save_train)
    for how, p in preds.items():
        out[how] = score(p, y, d.classes)
    only_clean = int(((preds["clean"] == y) & (preds["train"] != y)).sum())
    only_train = int(((preds["train"] == y) & (preds["clean"] != y)).sum())
    out["only_clean_right"], out["only_train_right"] = only_clean, only_train
    out["mcnemar_p"] = round(mcnemar_exact(only_clean, only_train), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished consistent-distillation run folders")
    ap.add_argument("--json", type=Path, help="write the figures here, with the machine and date")
    ap.add_argument("--save-train", type=Path, help="one run: write its student with training-batch statistics")
    args = ap.parse_args(argv)
    if args.save_train and len(args.runs) != 1:
        print("bn_stats: --save-train takes one run", file=sys.stderr)
        return 2
    for run in args.runs:
        if problem := unfinished(run):
            print(f"bn_stats: {problem}", file=sys.stderr)
            return 2
    if args.save_train and (problem := unsafe_output(args.save_train.parent, args.runs)):
        print(f"bn_stats: --save-train: {problem}", file=sys.stderr)
        return 2
    results = []
    for run in args.runs:
        try:
            r = measure(run, args.save_train)
        except SortcamError as exc:
            print(f"bn_stats: {run}: {exc}", file=sys.stderr)
            return 2
        results.append(r)
        print(
            f"{run}: clean {r['clean']['interval']}  train {r['train']['interval']}  "
            f"only clean right {r['only_clean_right']}, only train right {r['only_train_right']}, "
            f"McNemar p = {r['mcnemar_p']}",
            flush=True,
        )
    if args.json:
        record = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine(), "results": results}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
