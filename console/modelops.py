"""The console's bridge to the model pipeline (``sortcam.model``, ``sortcam.tools``).

Everything here runs inside the retrain worker process or at promotion time and
imports the pipeline lazily: the console itself starts, watches and classifies without
TensorFlow. Where the pipeline offers a function (training, quantization, C export) the
console calls it; :func:`quantize_int8` and :func:`export_c_sources` fall back to a
minimal local implementation only while the pipeline's own function is absent, so the
console never disagrees with ``sortcam quantize`` / ``sortcam export`` once they exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sortcam.errors import DependencyError, ModelError

TRAIN_EXTRA_HINT = "retrain needs TensorFlow: pip install 'sortcam[train]'"


def training_available() -> str | None:
    """``None`` when retraining can run here, else a one-line reason for the page."""
    if importlib.util.find_spec("tensorflow") is None:
        return TRAIN_EXTRA_HINT
    if importlib.util.find_spec("sortcam.model.train") is None:
        return "retrain needs the model pipeline (sortcam.model.train), which is not installed"
    return None


def _find(candidates: list[tuple[str, str]]) -> Callable[..., Any] | None:
    for module, name in candidates:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def train_model(
    data_dir: Path,
    out_dir: Path,
    *,
    height: int,
    width: int,
    fit: str,
    alpha: float,
    weights: str,
    epochs: int,
    fine_tune_epochs: int,
    batch_size: int,
    seed: int,
) -> Path:
    """Train a fresh MobileNetV2 with :func:`sortcam.model.train.train`; returns ``model.keras``."""
    try:
        from sortcam.model.train import TrainConfig, train
    except ImportError as exc:
        raise DependencyError(f"{TRAIN_EXTRA_HINT} ({exc})") from None
    cfg = TrainConfig(
        data_dir=str(data_dir),
        out_dir=str(out_dir),
        alpha=alpha,
        height=height,
        width=width,
        fit=fit,
        weights=weights,
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        batch_size=batch_size,
        seed=seed,
        select="last" if epochs + fine_tune_epochs <= 3 else "best",
    )
    train(cfg)
    return out_dir / "model.keras"


def fine_tune_model(
    float_model: Path,
    data_dir: Path,
    out_dir: Path,
    classes: list[str],
    *,
    height: int,
    width: int,
    fit: str,
    value_range: tuple[float, float],
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> Path:
    """Continue training the current float model on new data at a low learning rate; returns ``model.keras``.

    The head keeps its classes (the current model's, in its output order); images of the
    staged ``train/<class>/`` folders are mapped to those indices.
    """
    import keras

    from sortcam.model.data import index_dataset, load_split
    from sortcam.model.train import load_keras_model
    from sortcam.preprocess import to_float

    keras.utils.set_random_seed(seed)
    model = load_keras_model(float_model)
    out_units = int(model.outputs[0].shape[-1])
    if out_units != len(classes):
        raise ModelError(f"{float_model} has {out_units} outputs, the line has {len(classes)} classes")
    index = index_dataset(str(data_dir), (0.7, 0.1, 0.2), seed)
    remap = np.array([classes.index(c) for c in index.classes], dtype=np.int32)
    tr, _ = load_split(index.split("train"), height, width, fit)
    x = to_float(tr.images, value_range)
    y = keras.utils.to_categorical(remap[tr.labels], len(classes))
    probs_out = _ends_in_softmax(model)
    loss = keras.losses.CategoricalCrossentropy(from_logits=not probs_out)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    for epoch in range(epochs):
        hist = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        print(f"[fine-tune-current] epoch {epoch + 1}/{epochs} loss {hist.history['loss'][-1]:.4f}", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.keras"
    model.save(path)
    (out_dir / "classes.json").write_text(__import__("json").dumps(classes))
    return path


def _ends_in_softmax(model: Any) -> bool:
    act = getattr(model.layers[-1], "activation", None)
    return getattr(act, "__name__", "") == "softmax" or type(model.layers[-1]).__name__ == "Softmax"


def quantize_candidate(
    keras_path: Path, data_dir: Path, out_tflite: Path, *, fit: str, value_range: tuple[float, float], seed: int
) -> Path:
    """Full-int8 post-training quantization (int8 input and output) calibrated on ``data_dir/train``.

    The converter of ``sortcam quantize`` (``sortcam.model.quantize.convert_full_int8``: int8
    builtins only, a representative set through the one preprocessing), without the rest of
    ``sortcam.model.quantize.quantize``: on this machine that once failed converting a
    from-scratch student (READ_VARIABLE) and once took the worker down while measuring the
    minimum arena, so the console measures the arena with one ``print_allocations`` instead
    (see docs/console.md).
    """
    from sortcam.model.data import index_dataset, load_split
    from sortcam.model.quantize import convert_full_int8
    from sortcam.model.train import load_keras_model
    from sortcam.preprocess import to_float

    model = load_keras_model(keras_path)
    if not _ends_in_softmax(model):
        import keras

        model = keras.Sequential([model, keras.layers.Softmax()])
    _, h, w, _ = model.input_shape
    index = index_dataset(str(data_dir), (0.7, 0.1, 0.2), seed)
    loaded, _ = load_split(index.split("train"), int(h), int(w), fit)
    rep = to_float(loaded.images, value_range)
    out_tflite.write_bytes(convert_full_int8(model, rep[:200]))
    return out_tflite


def export_c_sources(tflite: Path, card_path: Path, out_dir: Path) -> list[Path]:
    """Write the firmware's model sources for ``tflite`` into ``out_dir`` with the pipeline's exporter.

    Raises :class:`DependencyError` when no exporter is installed: a promotion must
    write the model, the card and the C sources together or nothing.
    """
    fn = _find(
        [
            ("sortcam.tools.export", "export_model"),
            ("sortcam.tools.export", "export"),
            ("sortcam.tools.export", "write_sources"),
            ("sortcam.tools.export", "export_c"),
        ]
    )
    if fn is None:
        raise DependencyError("promotion needs the C exporter (sortcam.tools.export), which is not installed")
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {}
    if "card" in params:
        kwargs["card"] = card_path
    elif "card_path" in params:
        kwargs["card_path"] = card_path
    result = fn(tflite, out_dir, **kwargs)
    if isinstance(result, (list, tuple)):
        return [Path(p) for p in result]
    return sorted(p for p in out_dir.iterdir() if p.is_file())
