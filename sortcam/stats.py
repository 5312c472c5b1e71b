"""Small statistics shared by evaluation, training and the benchmarks (NumPy only)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``successes / n`` (``(0, 1)`` when ``n`` is 0).

    Unlike the normal approximation it stays inside [0, 1] and is honest for small ``n`` and
    for proportions near 0 or 1 (a class recall of 13 of 14, say).
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def format_interval(successes: int, n: int) -> str:
    """``"82.9% [77.8, 87.1]"``: the proportion and its 95% interval, in percent."""
    lo, hi = wilson_interval(successes, n)
    p = successes / n if n else 0.0
    return f"{100 * p:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def stratified_folds(labels: npt.NDArray[np.integer], k: int, seed: int) -> npt.NDArray[np.int32]:
    """Fold number (0..k-1) of each sample: every class is dealt round-robin over the folds after a
    seeded shuffle, so each fold holds ``n_c / k`` (rounded) of every class and the folds are disjoint."""
    labels = np.asarray(labels)
    if k < 2:
        raise ValueError("k-fold needs k >= 2")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int32)
    offset = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        # Start each class where the last one stopped, so small classes do not all land in fold 0.
        fold[idx] = (np.arange(len(idx)) + offset) % k
        offset = (offset + len(idx)) % k
    return fold
