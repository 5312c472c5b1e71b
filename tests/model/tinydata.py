"""Tiny generated datasets (real JPEG/PNG files) and one tiny trained, quantized model per session.

Shared by tests/model and tests/tools (their conftest files expose the fixtures).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_CLASSES = ("blue", "green", "red")
TINY_SIZE = 32
TINY_PER_CLASS = 20


def draw_shape(cls: str, rng: np.random.Generator, w: int = 64, h: int = 48) -> np.ndarray:
    """A coloured shape (class = colour and shape) on a noisy light background, uint8 RGB."""
    from PIL import Image, ImageDraw

    bg = tuple(int(v) for v in rng.integers(170, 235, 3))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    cx, cy = int(rng.integers(w // 3, 2 * w // 3)), int(rng.integers(h // 3, 2 * h // 3))
    r = int(rng.integers(h // 5, h // 3))
    jitter = rng.integers(-30, 30, 3)
    if cls == "red":
        color = tuple(int(np.clip(v + j, 0, 255)) for v, j in zip((210, 30, 30), jitter, strict=True))
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif cls == "green":
        color = tuple(int(np.clip(v + j, 0, 255)) for v, j in zip((30, 170, 40), jitter, strict=True))
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color)
    else:
        color = tuple(int(np.clip(v + j, 0, 255)) for v, j in zip((30, 50, 200), jitter, strict=True))
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-8, 9, (h, w, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def make_dataset(
    root: Path, per_class: int = 14, classes: tuple[str, ...] = TINY_CLASSES, seed: int = 0, splits: bool = False
) -> Path:
    """Write a folder-per-class dataset of JPEG and PNG files (``train/ val/`` folders when ``splits``)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for ci, cls in enumerate(classes):
        for i in range(per_class):
            sub = root
            if splits:
                sub = root / ("val" if i % 4 == 0 else "train")
            folder = sub / cls
            folder.mkdir(parents=True, exist_ok=True)
            ext = ".png" if (i + ci) % 3 == 0 else ".jpg"
            Image.fromarray(draw_shape(cls, rng)).save(folder / f"{cls}_{i:03d}{ext}")
    return root


_BUILT: dict[str, object] = {}
"""Session products shared by the fixture copies in tests/model and tests/tools (one training per run)."""


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "data" not in _BUILT:
        _BUILT["data"] = make_dataset(tmp_path_factory.mktemp("tiny") / "data", per_class=TINY_PER_CLASS)
    return _BUILT["data"]  # type: ignore[return-value]


@dataclass
class TinyModel:
    data: Path
    run: Path
    keras_path: Path
    tflite: Path
    card: Path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: Path) -> TinyModel:
    """Train (weights none, alpha 0.35, 32x32, 12 epochs) and quantize once per session, via the CLI."""
    from sortcam.cli import main

    if "model" in _BUILT:
        return _BUILT["model"]  # type: ignore[return-value]
    run = tmp_path_factory.mktemp("run")
    rc = main(
        [
            "train",
            str(tiny_dataset),
            "--out",
            str(run),
            "--weights",
            "none",
            "--alpha",
            "0.35",
            "--size",
            str(TINY_SIZE),
            "--epochs",
            "12",
            "--fine-tune-epochs",
            "0",
            "--select",
            "last",
            "--batch-size",
            "8",
            "--lr",
            "2e-3",
            "--dropout",
            "0",
            "--bn-momentum",
            "0.6",
            "--seed",
            "1",
        ]
    )
    assert rc == 0
    out = tmp_path_factory.mktemp("q") / "tiny.tflite"
    rc = main(
        [
            "quantize",
            str(run / "model.keras"),
            str(tiny_dataset),
            "--out",
            str(out),
            "--name",
            "tiny",
            "--representative",
            "20",
        ]
    )
    assert rc == 0
    _BUILT["model"] = TinyModel(tiny_dataset, run, run / "model.keras", out, out.with_suffix(".json"))
    return _BUILT["model"]  # type: ignore[return-value]


def tiny_backbone(path: Path) -> Path:
    """A small conv backbone file with BatchNorm (input [-1, 1], any size, returns a feature map): a teacher."""
    import keras

    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    keras.Model(inp, x).save(path)
    return path
