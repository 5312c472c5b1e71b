"""Two models on the same photos: is the difference more than noise? (behind docs/model.md)

Scores both models (``.tflite`` int8 in TFLM, or ``.keras`` float) on one split with
``sortcam.model.evaluate``, prints each accuracy with its 95% Wilson interval, the
discordant pairs (photos only A gets right, only B gets right) and the exact two-sided
McNemar p-value: the paired test, which sees more than two overlapping intervals do.

    python benchmarks/paired_compare.py A.tflite B.tflite DATA_DIR [--split val]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from sortcam.model.evaluate import evaluate_model
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
    p.add_argument("data_dir")
    p.add_argument("--split", default="val")
    args = p.parse_args()
    correct = []
    labels_seen = None
    for name in (args.a, args.b):
        metrics, scored, _ = evaluate_model(name, args.data_dir, args.split)
        if labels_seen is not None and not np.array_equal(labels_seen, scored.labels):
            raise SystemExit("the two models were scored on different photos")
        labels_seen = scored.labels
        ok = np.argmax(scored.probs, axis=1) == scored.labels
        correct.append(ok)
        print(f"{name}: {format_interval(int(ok.sum()), len(ok))} on {metrics['data']}")
    a, b = correct
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    both, neither = int((a & b).sum()), int((~a & ~b).sum())
    print(f"only A right: {only_a}, only B right: {only_b}, both: {both}, neither: {neither}")
    print(f"exact McNemar p = {mcnemar_exact(only_a, only_b):.4f} (two-sided)")


if __name__ == "__main__":
    main()
