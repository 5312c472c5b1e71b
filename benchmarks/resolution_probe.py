"""Does the student's input size limit accuracy? (an experiment behind docs/model.md)

The teacher (EfficientNet-Lite0 backbone, frozen) gets a linear head trained on the
unaugmented train photos; val accuracy is measured on photos first shrunk to S x S
(stretch) and brought back up to 224 x 224, so the teacher sees only what an S x S image
holds. Needs the train extra. Prints one line per size and head L2 strength.

    python benchmarks/resolution_probe.py 224 84
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from sortcam.model.data import index_dataset, load_split  # noqa: E402
from sortcam.model.train import _load_teacher_backbone, _teacher_features, fit_linear_head  # noqa: E402
from sortcam.preprocess import fit_resize  # noqa: E402

DATA = "/work/shared/datasets/trashnet"
TEACHER = "/work/shared/weights/efficientnet_lite0_imagenet_backbone.keras"


def main(sizes: list[int]) -> None:
    index = index_dataset(DATA)
    train, _ = load_split(index.split("train"), 192, 256, "stretch")
    val, _ = load_split(index.split("val"), 192, 256, "stretch")
    backbone, convention = _load_teacher_backbone(TEACHER, 224)
    for size in sizes:
        t0 = time.time()

        def features(photos: np.ndarray, s: int = size) -> np.ndarray:
            small = [fit_resize(p, s, s, "stretch") for p in photos]
            return _teacher_features(backbone, convention, small, 224, "stretch")

        f_train, f_val = features(train.images), features(val.images)
        for l2 in (1e-3, 1e-2):
            w, b = fit_linear_head(f_train, train.labels, 6, l2=l2, epochs=60)
            pred = (f_val @ w + b).argmax(1)
            recall = [float((pred[val.labels == c] == c).mean()) for c in range(6)]
            print(
                f"size {size} l2 {l2}: val accuracy {(pred == val.labels).mean():.3f}, "
                f"recall per class {np.round(recall, 2).tolist()} ({time.time() - t0:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [224, 84])
