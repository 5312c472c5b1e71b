"""Write the console tests' tiny int8 model: ``tests/data/console/tiny.{tflite,json,keras}``.

A 32x32 CNN with the six TrashNet classes and random weights (seeded): it does not
need to be accurate, only to be a real full-int8 model the TFLM runtime runs, so the
console tests run without TensorFlow. Regenerate with
``python tests/console/make_tiny_model.py`` (needs ``sortcam[train]``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "data" / "console"
CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
SIZE = 32


def main() -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from sortcam.card import TRASHNET_BINS, TRASHNET_BIODEGRADABLE, sha256_file
    from sortcam.model.quantize import convert_full_int8
    from sortcam.runtime import Int8Classifier

    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(CLASSES)),
            keras.layers.Softmax(),
        ]
    )
    rng = np.random.default_rng(7)
    rep = rng.uniform(-1, 1, (32, SIZE, SIZE, 3)).astype(np.float32)

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tiny.tflite").write_bytes(convert_full_int8(model, rep))
    model.save(OUT / "tiny.keras")
    clf = Int8Classifier(OUT / "tiny.tflite")
    clf.invoke_int8(np.zeros(clf.input_shape, np.int8))
    card = {
        "tflite": "tiny.tflite",
        "classes": CLASSES,
        "input": {"height": SIZE, "width": SIZE, "channels": 3, "color": "rgb"},
        "preprocess": {"fit": "crop", "resize": "bilinear-fixed8", "range": [-1.0, 1.0]},
        "bins": TRASHNET_BINS,
        "biodegradable": TRASHNET_BIODEGRADABLE,
        "metrics": {},
        "flash_bytes": (OUT / "tiny.tflite").stat().st_size,
        "arena_bytes": clf.arena_used_bytes(),
        "macs": 0,
        "sha256": sha256_file(OUT / "tiny.tflite"),
        "note": "test model with random weights",
    }
    (OUT / "tiny.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {OUT}/tiny.tflite ({card['flash_bytes']} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
