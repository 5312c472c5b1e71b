"""`sortcam teacher`: fine-tune a large pretrained backbone into a reusable teacher file.

A linear probe on a frozen backbone is a weak teacher (EfficientNet-Lite0: 89% on TrashNet
val). Fine-tuning its top layers, carefully, makes a better one: BatchNorm stays frozen (its
ImageNet statistics; a small set would wreck them), the rate is low, augmentation is strong,
the schedule is fixed in advance (val is only watched), and classes are weighted.

The teacher is trained on what the student will see: photos fitted to the student's input
(``--via``, e.g. 84x84 stretched) and scaled up inside the model to the backbone's
``--size``. So ``teacher(x)`` takes the very tensor the student takes, and distillation can
ask the teacher about each augmented, mixed batch as it is (consistent teaching, see
:mod:`sortcam.model.train`).

Writes ``OUT/teacher.keras`` (input ``[-1, 1]`` RGB at the student's size, output logits)
and ``OUT/teacher.json`` (kind, classes, sizes, fit, val metrics and, with ``--folds K``,
the stratified K-fold cross-validation accuracy on train with its 95% interval).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sortcam.errors import DataError, ModelError, UsageError, first_line
from sortcam.model.augment import AugmentSpec
from sortcam.model.data import class_weights, dataset_fingerprints, index_dataset, load_split, parse_split_spec
from sortcam.preprocess import DEFAULT_RANGE, to_float
from sortcam.stats import format_interval, stratified_folds

TEACHER_KIND = "sortcam-teacher"
DEFAULT_BACKBONE = "EfficientNetB0"
OOF_FILE = "cv_oof.npz"
"""Beside ``teacher.json`` after a CV: out-of-fold ``probs``, ``probs_flip`` (of the mirrored photo),
``labels`` and ``fold``, in train order."""


@dataclass
class TeacherConfig:
    """Everything a teacher fine-tuning depends on; saved in ``teacher.json``."""

    data_dir: str
    out_dir: str = "runs/teacher"
    backbone: str = DEFAULT_BACKBONE
    """A ``keras.applications`` name (ImageNet weights, needs internet), ``NAME=WEIGHTS_FILE`` (that
    application with a local weights file), or a backbone ``.keras`` file taking RGB in [-1, 1] and
    returning its last feature map (``../shared/weights``)."""
    size: int = 160
    """The backbone's input size; the image is scaled up to it inside the model."""
    via: int = 84
    """The student's input size: photos are fitted to ``via`` x ``via`` first (0: straight to ``size``)."""
    fit: str = "stretch"
    epochs: int = 8
    lr: float = 3e-4
    weight_decay: float = 1e-4
    train_layers: int = 37
    """How many of the backbone's top layers train (BatchNorm layers among them stay frozen)."""
    batch_size: int = 32
    dropout: float = 0.2
    mixup: float = 0.0
    """Mixup Beta(a, a) on every batch (0: off): a regulariser for a teacher that fits train almost exactly."""
    seed: int = 1337
    split: str = "70/10/20"
    class_weighting: bool = True
    folds: int = 0
    """Stratified K-fold cross-validation on train before the final fit (0: none)."""
    cv_only: bool = False
    """Stop after the cross-validation: write ``teacher.json`` with the CV figures, no teacher file."""
    augment: dict[str, Any] = field(default_factory=lambda: asdict(AugmentSpec()))

    def validate(self) -> None:
        if not 32 <= self.size <= 512:
            raise UsageError(f"--size {self.size} outside 32..512")
        if self.via and not 32 <= self.via <= self.size:
            raise UsageError(f"--via {self.via} must be 32..--size ({self.size}), or 0")
        if not 0.0 <= self.mixup <= 10.0:
            raise UsageError(f"--mixup {self.mixup} outside 0..10 (0: off)")
        if self.epochs < 1 or self.train_layers < 0 or self.batch_size < 1:
            raise UsageError("--epochs and --batch-size must be >= 1, --train-layers >= 0")
        if self.folds == 1 or self.folds < 0:
            raise UsageError("--folds must be 0 (off) or >= 2")
        if self.cv_only and not self.folds:
            raise UsageError("--cv-only needs --folds K (K >= 2)")
        if self.fit not in ("crop", "stretch"):
            raise UsageError("--fit must be crop or stretch")
        parse_split_spec(self.split)

    @property
    def input_size(self) -> int:
        return self.via or self.size


def _keras() -> Any:
    from sortcam.model.train import _keras as keras

    return keras()


def build_teacher(config: TeacherConfig, num_classes: int) -> Any:
    """``Input(via) -> Resizing(size) -> backbone (BatchNorm in inference mode) -> pool -> dropout -> logits``."""
    from sortcam.model.train import _load_teacher_backbone

    keras = _keras()
    backbone, convention = _load_teacher_backbone(config.backbone, config.size)
    inputs = keras.Input((config.input_size, config.input_size, 3), name="image")
    x = inputs
    if config.input_size != config.size:
        x = keras.layers.Resizing(config.size, config.size, interpolation="bilinear", name="upscale")(x)
    if convention != "pm1":
        # keras.applications models want their own input range; ours is [-1, 1].
        x = keras.layers.Rescaling(127.5, offset=127.5, name="to_0_255")(x)
        from sortcam.model.teacher_ensemble import ensemble_layers

        x = ensemble_layers()["AppPreprocess"](convention.split(":", 1)[1], name="app_preprocess")(x)
    # training=False: BatchNorm keeps its ImageNet statistics in both training and inference.
    feats = backbone(x, training=False)
    if len(feats.shape) == 4:
        feats = keras.layers.GlobalAveragePooling2D(name="pool")(feats)
    feats = keras.layers.Dropout(config.dropout, name="dropout")(feats)
    logits = keras.layers.Dense(num_classes, name="logits")(feats)
    backbone.trainable = True
    layers = [layer for layer in backbone.layers if layer.weights]
    first = max(0, len(layers) - config.train_layers)
    for i, layer in enumerate(layers):
        layer.trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
    return keras.Model(inputs, logits, name="sortcam_teacher")


def _fit_one(
    config: TeacherConfig,
    x_u8: npt.NDArray[np.uint8],
    y: npt.NDArray[np.int32],
    num_classes: int,
    val: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32]] | None,
    label: str,
) -> tuple[Any, list[dict[str, Any]]]:
    """Fine-tune one teacher on ``x_u8`` for the fixed schedule; val (if any) is only watched."""
    from sortcam.model.train import _augment_layers, _compile, _dataset, _mixup, _optimizer

    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    model = build_teacher(config, num_classes)
    cw = class_weights(y, num_classes) if config.class_weighting else np.ones(num_classes, np.float32)
    eye = np.eye(num_classes, dtype=np.float32)
    aug = _augment_layers(AugmentSpec(**config.augment), config.seed)
    mix = _mixup(config.mixup, config.seed) if config.mixup > 0 else None
    ds = _dataset(x_u8, eye[y], cw[y], config.batch_size, config.seed, aug, DEFAULT_RANGE, mix)
    steps = math.ceil(len(x_u8) / config.batch_size)
    warm = max(1, steps // 2)
    _compile(
        model,
        _optimizer(config.lr, config.weight_decay, steps * config.epochs, warm),
        keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    history: list[dict[str, Any]] = []
    t0 = time.time()
    for epoch in range(config.epochs):
        logs = model.fit(ds, epochs=1, shuffle=False, verbose=0).history
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": float(logs["loss"][-1])}
        if val is not None and len(val[1]):
            pred = predict_logits(model, val[0]).argmax(1)
            entry["val_accuracy"] = float((pred == val[1]).mean())
        entry["time_s"] = round(time.time() - t0, 1)
        history.append(entry)
        eta = (time.time() - t0) / (epoch + 1) * (config.epochs - epoch - 1)
        watched = f" val_acc {entry['val_accuracy']:.4f}" if "val_accuracy" in entry else ""
        print(
            f"[teacher {label}] epoch {epoch + 1}/{config.epochs} loss {entry['loss']:.4f}{watched} "
            f"{entry['time_s']:.0f}s eta {eta:.0f}s",
            flush=True,
        )
    return model, history


def predict_logits(model: Any, x_u8: npt.NDArray[np.uint8], batch: int = 64) -> npt.NDArray[np.float32]:
    """The teacher's logits for uint8 images at its input size."""
    out = [
        np.asarray(model(to_float(x_u8[i : i + batch], DEFAULT_RANGE), training=False))
        for i in range(0, len(x_u8), batch)
    ]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


CV_PAIRING = ("data_dir", "folds", "seed", "split")
"""Settings two CVs must share to have been run on the same photos and folds."""


def load_oof(meta: dict[str, Any], meta_path: Path) -> dict[str, npt.NDArray[Any]]:
    """The out-of-fold arrays (``OOF_FILE``) named by a CV's ``teacher.json`` at ``meta_path``.

    One-line ModelError when the file is unreadable or is not this CV's (its labels differ)."""
    name = meta["cv"]["oof_file"]
    try:
        with np.load(meta_path.with_name(name)) as z:
            arrays = {k: z[k] for k in ("probs", "probs_flip", "labels", "fold")}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{meta_path}: cannot read {name} beside it ({exc})") from None
    if not np.array_equal(arrays["labels"], np.asarray(meta["cv"].get("labels"))):
        raise ModelError(f"{meta_path}: {name} is not this CV's (its labels differ)")
    return arrays


def cv_pairing_problem(metas: list[dict[str, Any]], arrays: list[dict[str, npt.NDArray[Any]]], names: list[str]) -> str:
    """Why these CVs were not run on the same photos and folds as the first (one line), or ``""``."""
    c0 = metas[0].get("config", {})
    for meta, a, name in zip(metas[1:], arrays[1:], names[1:], strict=True):
        for key in CV_PAIRING:
            if meta.get("config", {}).get(key) != c0.get(key):
                return f"{name} differs from {names[0]} in {key} ({meta['config'].get(key)} / {c0.get(key)})"
        if not (np.array_equal(a["labels"], arrays[0]["labels"]) and np.array_equal(a["fold"], arrays[0]["fold"])):
            return f"{name} was run on other photos or folds than {names[0]}"
    return ""


def _finished_cv(
    config: TeacherConfig, out: Path, labels: npt.NDArray[np.int32], fingerprints: tuple[str, ...]
) -> dict[str, Any] | None:
    """The CV block of an earlier run of this very setting on these very photos in ``out``
    (``--cv-only`` aside), or None."""
    try:
        meta = json.loads((out / "teacher.json").read_text())
    except (OSError, ValueError):
        return None
    cv = meta.get("cv") if isinstance(meta, dict) else None
    free = ("cv_only", "out_dir")
    mine = {k: v for k, v in asdict(config).items() if k not in free}
    # A record from before a setting existed ran with its default.
    defaults = asdict(TeacherConfig(data_dir=config.data_dir))
    theirs = {k: v for k, v in {**defaults, **(meta.get("config") or {})}.items() if k not in free}
    if meta.get("kind") != TEACHER_KIND or not isinstance(cv, dict) or mine != theirs:
        return None
    if meta.get("data_fingerprint") not in fingerprints:  # other photos under the same folder name
        return None
    if cv.get("labels") != [int(t) for t in labels] or cv.get("oof_file") != OOF_FILE:
        return None
    try:
        load_oof(meta, out / "teacher.json")  # its probabilities are there and are this CV's
    except ModelError:
        return None
    return dict(cv)


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def _accuracy_block(pred: npt.NDArray[np.int64], y: npt.NDArray[np.int32], classes: list[str]) -> dict[str, Any]:
    correct = int((pred == y).sum())
    recall = {c: float((pred[y == i] == i).mean()) for i, c in enumerate(classes) if (y == i).any()}
    from sortcam.stats import wilson_interval

    lo, hi = wilson_interval(correct, len(y))
    return {
        "accuracy": round(correct / max(len(y), 1), 4),
        "interval95": [round(lo, 4), round(hi, 4)],
        "images": int(len(y)),
        "min_recall": round(min(recall.values()), 4) if recall else 0.0,
        "recall": {c: round(v, 4) for c, v in recall.items()},
    }


def train_teacher(config: TeacherConfig) -> dict[str, Any]:
    """Cross-validate (``folds``), then fine-tune on all of train; write the teacher file and its metadata."""
    config.validate()
    index = index_dataset(config.data_dir, parse_split_spec(config.split), config.seed)
    classes = index.classes
    nc = len(classes)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = config.input_size
    tr, _ = load_split(index.split("train"), size, size, config.fit)
    va, _ = load_split(index.split("val"), size, size, config.fit)
    if len(tr.labels) == 0:
        raise DataError(f"{config.data_dir}: no readable train images")
    print(
        f"teacher: {config.backbone} at {config.size}x{config.size}"
        + (f" from {size}x{size} photos" if config.via else "")
        + f", top {config.train_layers} layers, {config.epochs} epochs; train {len(tr.labels)} val {len(va.labels)}",
        flush=True,
    )
    fingerprints = dataset_fingerprints(index)
    meta: dict[str, Any] = {
        "kind": TEACHER_KIND, "classes": classes, "config": asdict(config), "train_images": int(len(tr.labels)),
        "data_fingerprint": fingerprints[0],
    }  # fmt: skip
    t0 = time.time()
    kept = None
    if config.folds and not config.cv_only:
        kept = _finished_cv(config, out, tr.labels, fingerprints)
    if kept is not None:
        # The same setting's CV ran before (--cv-only, or a run stopped after it): keep it, fit once.
        meta["cv"] = kept
        print(f"[teacher] {config.folds}-fold CV finished earlier, kept: {kept['accuracy']:.4f}", flush=True)
    else:
        (out / OOF_FILE).unlink(missing_ok=True)  # a stale CV's probabilities must not pass for this run's
    if config.folds and kept is None:
        fold = stratified_folds(tr.labels, config.folds, config.seed)
        oof = np.zeros(len(tr.labels), np.int64)
        # Out-of-fold probabilities, of each photo and of its mirror image: an ensemble of settings
        # run on the same folds, or a flip-averaged teacher, is scored from them without training
        # again (benchmarks/ensemble_cv.py).
        probs = np.zeros((len(tr.labels), nc), np.float32)
        probs_flip = np.zeros((len(tr.labels), nc), np.float32)
        for k in range(config.folds):
            held = fold == k
            model, _ = _fit_one(config, tr.images[~held], tr.labels[~held], nc, None, f"fold {k + 1}/{config.folds}")
            probs[held] = _softmax(predict_logits(model, tr.images[held]))
            probs_flip[held] = _softmax(predict_logits(model, tr.images[held][:, :, ::-1]))
            oof[held] = probs[held].argmax(1)
            acc_k = float((oof[held] == tr.labels[held]).mean())
            print(f"[teacher] fold {k + 1}/{config.folds}: held-out accuracy {acc_k:.4f}", flush=True)
            del model
        # The out-of-fold predictions, in train order (the index's order for this seed), so two
        # settings can be compared photo by photo (McNemar) on the same folds.
        meta["cv"] = {
            "folds": config.folds,
            **_accuracy_block(oof, tr.labels, classes),
            "predicted": [int(p) for p in oof],
            "labels": [int(t) for t in tr.labels],
        }
        np.savez_compressed(
            out / OOF_FILE, probs=probs, probs_flip=probs_flip, labels=tr.labels.astype(np.int32), fold=fold
        )
        meta["cv"]["oof_file"] = OOF_FILE
        meta["cv"]["time_s"] = round(time.time() - t0, 1)
        correct = int((oof == tr.labels).sum())
        print(f"[teacher] {config.folds}-fold CV accuracy on train: {format_interval(correct, len(oof))}", flush=True)
        if config.cv_only:
            meta["train_time_s"] = round(time.time() - t0, 1)
            (out / "teacher.keras").unlink(missing_ok=True)  # this folder now describes a setting, not a teacher
            (out / "teacher.json").write_text(json.dumps(meta, indent=2))
            print(f"teacher: --cv-only: wrote {out / 'teacher.json'} (no teacher file)", flush=True)
            return meta
    model, history = _fit_one(config, tr.images, tr.labels, nc, (va.images, va.labels), "final")
    if len(va.labels):
        meta["val"] = _accuracy_block(predict_logits(model, va.images).argmax(1), va.labels, classes)
        print(
            "[teacher] val accuracy (watched, not chosen on): "
            + format_interval(int(round(meta["val"]["accuracy"] * len(va.labels))), len(va.labels)),
            flush=True,
        )
    meta["history"] = history
    meta["train_time_s"] = round(time.time() - t0, 1)
    tmp = out / "teacher.part.keras"
    # An uncompiled view of the same graph: the file holds the weights, not the optimizer's moments
    # (14 MB instead of 36 MB for EfficientNet-Lite0).
    keras = _keras()
    keras.Model(model.inputs, model.outputs, name=model.name).save(tmp)
    tmp.replace(out / "teacher.keras")
    (out / "teacher.json").write_text(json.dumps(meta, indent=2))
    print(f"teacher: wrote {out / 'teacher.keras'} ({meta['train_time_s']:.0f}s)", flush=True)
    return meta


@dataclass
class Teacher:
    """A loaded teacher file: the Keras model (frozen) and its metadata."""

    model: Any
    meta: dict[str, Any]
    path: Path

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.meta.get("classes", [])]

    @property
    def input_size(self) -> int:
        return int(self.model.input_shape[1])


def is_teacher_file(path: str | Path) -> bool:
    """True when ``path`` is a teacher written by `sortcam teacher` (a ``teacher.json`` of that kind beside it)."""
    p = Path(path)
    meta = p.with_name("teacher.json")
    if not (p.is_file() and meta.is_file()):
        return False
    try:
        return json.loads(meta.read_text()).get("kind") == TEACHER_KIND
    except (OSError, ValueError):
        return False


def load_teacher(path: str | Path, classes: list[str], input_size: tuple[int, int] | None = None) -> Teacher:
    """Load a teacher file for a student; its classes must be the student's, and its input
    ``input_size`` when given (one-line errors). Consistent distillation takes a teacher of any
    input size: it shows the teacher the same views fitted to the teacher's own input."""
    keras = _keras()
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"teacher file not found: {p}")
    try:
        meta = json.loads(p.with_name("teacher.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"teacher {p}: cannot read teacher.json beside it ({exc})") from None
    if meta.get("kind") != TEACHER_KIND:
        raise ModelError(f"teacher {p}: teacher.json is not a sortcam teacher's")
    theirs = [str(c) for c in meta.get("classes", [])]
    if theirs != list(classes):
        raise ModelError(f"teacher {p}: its classes {theirs} differ from the dataset's {list(classes)}")
    from sortcam.model.teacher_ensemble import ensemble_layers

    ensemble_layers()  # the layers of sortcam's own a teacher file may hold, registered before it loads
    try:
        model = keras.models.load_model(str(p), compile=False, safe_mode=False)
    except Exception as exc:
        first = first_line(exc)
        raise ModelError(f"cannot load teacher {p}: {first}") from None
    if input_size is not None and tuple(model.input_shape[1:3]) != tuple(input_size):
        raise ModelError(
            f"teacher {p}: it takes {model.input_shape[1]}x{model.input_shape[2]} images, the student "
            f"{input_size[0]}x{input_size[1]} (train the teacher with --via {input_size[0]})"
        )
    # A loaded functional model keeps its inputs as a list of one; a view of the same graph with a
    # single input takes a tensor without Keras's input-structure warning.
    model = keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    model.trainable = False
    return Teacher(model, meta, p)
