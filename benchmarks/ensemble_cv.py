"""Teacher ensembles and flip-averaging, scored by cross-validation without training again.

``sortcam teacher --folds K`` keeps each photo's out-of-fold probabilities, and those of its
mirror image, in ``cv_oof.npz`` beside ``teacher.json``. Settings run on the same photos and
folds (the same data, ``--folds`` and ``--seed``) can then be combined: each photo's averaged
probabilities come only from models that never trained on it, so the ensemble's accuracy is a
cross-validation figure like its members'.

Prints each member, each member averaged with its mirror image (``+flip``), and the mean of
all members' probabilities (with and without flips), each with its 95% Wilson interval and
the exact McNemar test against the first member.

    python benchmarks/ensemble_cv.py runs/a/teacher.json runs/b/teacher.json [...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_compare import mcnemar_exact  # noqa: E402

from sortcam.errors import ModelError  # noqa: E402
from sortcam.model.teacher import cv_pairing_problem, load_oof  # noqa: E402
from sortcam.stats import format_interval  # noqa: E402


def load_record(path: str) -> tuple[dict, dict[str, npt.NDArray]]:
    """A teacher CV's metadata and its out-of-fold arrays (one-line SystemExit when it has none)."""
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"ensemble_cv: {path}: {exc}") from None
    if not (meta.get("cv") or {}).get("oof_file"):
        raise SystemExit(f"ensemble_cv: {path} has no out-of-fold probabilities (sortcam teacher --folds K)")
    try:
        return meta, load_oof(meta, Path(path))
    except ModelError as exc:
        raise SystemExit(f"ensemble_cv: {exc}") from None


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("teachers", nargs="+", metavar="TEACHER_JSON", help="teacher.json files of CVs on the same folds")
    args = p.parse_args(argv)
    loaded = [load_record(t) for t in args.teachers]
    (meta0, first) = loaded[0]
    why = cv_pairing_problem([m for m, _ in loaded], [a for _, a in loaded], list(args.teachers))
    if why:
        raise SystemExit(f"ensemble_cv: {why}")
    labels = first["labels"]
    classes = list(meta0["classes"])
    ref = loaded[0][1]["probs"].argmax(1) == labels
    rows: list[tuple[str, npt.NDArray]] = []
    for path, (_, arrays) in zip(args.teachers, loaded, strict=True):
        rows.append((path, arrays["probs"]))
        rows.append((f"{path} +flip", (arrays["probs"] + arrays["probs_flip"]) / 2))
    if len(loaded) > 1:
        rows.append((f"mean of {len(loaded)}", np.mean([a["probs"] for _, a in loaded], axis=0)))
        rows.append(
            (f"mean of {len(loaded)} +flip", np.mean([a["probs"] + a["probs_flip"] for _, a in loaded], axis=0) / 2)
        )
    print(f"{len(labels)} photos, {meta0['cv']['folds']}-fold CV on train; McNemar against {args.teachers[0]}")
    for name, probs in rows:
        ok = probs.argmax(1) == labels
        recall = ", ".join(f"{c} {float(ok[labels == i].mean()) * 100:.1f}" for i, c in enumerate(classes))
        only_a, only_b = int((ref & ~ok).sum()), int((~ref & ok).sum())
        print(f"{name}: {int(ok.sum())}/{len(ok)} right, {format_interval(int(ok.sum()), len(ok))}; recall {recall}")
        p_value = mcnemar_exact(only_a, only_b)
        print(f"    vs first: only first right {only_a}, only this right {only_b}, McNemar p = {p_value:.4f}")


if __name__ == "__main__":
    main()
