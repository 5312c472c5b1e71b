"""Two models on the same photos: is the difference more than noise? (behind docs/model.md)

Scores both models (``.tflite`` int8 in TFLM, or ``.keras`` float) on one split with
``sortcam.model.evaluate``, prints each accuracy with its 95% Wilson interval, the
discordant pairs (photos only A gets right, only B gets right) and the exact two-sided
McNemar p-value: the paired test, which sees more than two overlapping intervals do.

    python benchmarks/paired_compare.py A.tflite B.tflite DATA_DIR [--split val]

Two teacher settings, by their cross-validation on train (``sortcam teacher --folds K``,
``--cv-only`` for a setting without its final fit): give the two ``teacher.json`` files and
no data folder. Their out-of-fold predictions are compared photo by photo; both must come
from the same photos and folds (the same data, ``--folds`` and ``--seed``).

    python benchmarks/paired_compare.py runs/a/teacher.json runs/b/teacher.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from sortcam.model.evaluate import evaluate_model
from sortcam.model.teacher import CV_PAIRING
from sortcam.stats import format_interval


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of ``only_a`` of ``only_a + only_b`` at 1/2."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("data_dir", nargs="?", help="the photos (not for two teacher.json files)")
    p.add_argument("--split", default="val")
    args = p.parse_args()
    if args.a.endswith(".json") and args.b.endswith(".json"):
        a, b = _cv_correct(args.a, args.b)
    else:
        if not args.data_dir:
            raise SystemExit("paired_compare: DATA_DIR is needed for two models")
        a, b = _scored_correct(args.a, args.b, args.data_dir, args.split)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    both, neither = int((a & b).sum()), int((~a & ~b).sum())
    print(f"only A right: {only_a}, only B right: {only_b}, both: {both}, neither: {neither}")
    print(f"exact McNemar p = {mcnemar_exact(only_a, only_b):.4f} (two-sided)")


def _cv_correct(path_a: str, path_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold correctness of two teacher settings, checked to be on the same photos and folds."""
    cvs = []
    for path in (path_a, path_b):
        try:
            meta = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"paired_compare: {path}: {exc}") from None
        cv = meta.get("cv") or {}
        if "predicted" not in cv:
            raise SystemExit(f"paired_compare: {path} has no per-photo CV predictions (sortcam teacher --folds K)")
        cvs.append((meta.get("config", {}), cv))
    (ca, a), (cb, b) = cvs
    for key in CV_PAIRING:
        if ca.get(key) != cb.get(key):
            raise SystemExit(f"paired_compare: the two CVs differ in {key} ({ca.get(key)} / {cb.get(key)})")
    if a["labels"] != b["labels"]:
        raise SystemExit("paired_compare: the two CVs were run on different photos")
    labels = np.asarray(a["labels"])
    out = []
    for path, cv in ((path_a, a), (path_b, b)):
        ok = np.asarray(cv["predicted"]) == labels
        recall = ", ".join(f"{c} {v * 100:.1f}" for c, v in cv["recall"].items())
        print(f"{path}: {cv['folds']}-fold CV {format_interval(int(ok.sum()), len(ok))}; recall {recall}")
        out.append(ok)
    return out[0], out[1]


def _scored_correct(name_a: str, name_b: str, data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    correct = []
    labels_seen = None
    for name in (name_a, name_b):
        metrics, scored, _ = evaluate_model(name, data_dir, split)
        if labels_seen is not None and not np.array_equal(labels_seen, scored.labels):
            raise SystemExit("the two models were scored on different photos")
        labels_seen = scored.labels
        ok = np.argmax(scored.probs, axis=1) == scored.labels
        correct.append(ok)
        print(f"{name}: {format_interval(int(ok.sum()), len(ok))} on {metrics['data']}")
    return correct[0], correct[1]


if __name__ == "__main__":
    main()
