"""Train a MobileNetV2 classifier, optionally distilled from a larger frozen teacher.

Two recipes share this module (TensorFlow is imported lazily, inside functions):

* **plain**: MobileNetV2 (alpha 0.35..1.0, input 96..224 or smaller) with a new head.
  With backbone weights (``imagenet`` or a local file) phase 1 trains the head on a
  frozen backbone, phase 2 fine-tunes the top blocks at a lower rate with BatchNorm
  kept in inference mode. Without weights the whole network trains from scratch.
  Images get on-the-fly augmentation (flip, rotation, zoom, shift, brightness, contrast).
* **distill**: a frozen teacher backbone (a ``keras.applications`` name or a Keras
  backbone file) gets a linear softmax head trained on its pooled features; its logits
  are computed ONCE for a bank of augmented views of every train image (cached as
  ``.npy``), then the student trains for many epochs on the same views at its own size,
  with loss ``a * KL(teacher_T || student_T) * T^2 + (1 - a) * CE(label)``.

Both weight classes (balanced), keep the best-on-val or the last checkpoint, stop early
when val stops improving (best mode), print one progress line per epoch and draw the
training curves as a PNG. The model input is ``to_float(fit_resize(photo))`` in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sortcam import strict_json
from sortcam.errors import DataError, DependencyError, ModelError, UsageError, first_line
from sortcam.model.augment import AugmentSpec, augment_photo
from sortcam.model.data import class_weights, index_dataset, load_split, parse_split_spec
from sortcam.model.teacher import is_teacher_file
from sortcam.preprocess import DEFAULT_RANGE, fit_resize, to_float

log = logging.getLogger(__name__)

ALPHAS: tuple[float, ...] = (0.35, 0.5, 0.75, 1.0)
MIN_SIZE, MAX_SIZE = 32, 224
BN_STATS: tuple[str, ...] = ("clean", "train")
"""Sources of the consistent student's final BatchNorm statistics (``TrainConfig.bn_stats``)."""
IMAGENET_SIZES: tuple[int, ...] = (96, 128, 160, 192, 224)


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as ``train_config.json`` in the run folder."""

    data_dir: str
    out_dir: str = "runs/train"
    alpha: float = 0.35
    height: int = 96
    width: int = 96
    fit: str = "crop"
    weights: str = "imagenet"
    """``imagenet``, a path to a MobileNetV2 backbone weights file, or ``none``."""
    epochs: int = 20
    fine_tune_epochs: int = 10
    fine_tune_from: int = 13
    """First MobileNetV2 block (0..16) unfrozen in phase 2 of a pretrained backbone."""
    batch_size: int = 64
    lr: float = 1e-3
    fine_tune_lr: float = 1e-4
    weight_decay: float = 1e-4
    dropout: float = 0.2
    label_smoothing: float = 0.0
    bn_momentum: float = 0.99
    seed: int = 1337
    split: str = "70/10/20"
    class_weighting: bool = True
    select: str = "best"
    """``best``: keep the best-on-val epoch and stop early; ``last``: keep the final epoch."""
    patience: int = 8
    distill: bool = False
    teacher: str | None = None
    teacher_size: int = 224
    views: int = 8
    temperature: float = 4.0
    distill_alpha: float = 0.7
    teacher_cache: str | None = None
    init: str | None = None
    """A ``model.keras`` from an earlier run to start from (same alpha, size and classes)."""
    init_select: str | None = None
    """Weight selection (Xu et al., ICLR 2024): a backbone weights file of a *wider* MobileNetV2
    (``init_select_alpha``) whose evenly spaced channels initialise this narrower one, which
    then trains as from scratch (``--weights none``)."""
    init_select_alpha: float = 1.0
    feature_distill: float = 0.0
    """Weight of the feature-matching loss (0: off): the student's pooled features, through a
    linear map used only in training, regress the teacher's standardised pooled features."""
    mixup: float = 0.0
    """Beta(a, a) of mixup (0: off): each image in a batch is blended with another of the batch,
    the larger share its own, and the targets with it (labels, the teacher's probabilities at T,
    class weights)."""
    cutmix: float = 0.0
    """Share of batches mixed by CutMix instead (0: none; consistent distillation from a teacher
    file only): a box of each image, relative to its size, is replaced by its partner's, and the
    targets take the partner's share by the box's area."""
    bn_stats: str = "clean"
    """Where the student's final BatchNorm statistics come from (consistent distillation):
    ``clean``, re-estimated on the clean train photos; ``train``, on the batches of the epoch
    just trained (views, mirrors, mixup / CutMix), the distribution the weights were fitted under.
    Training never reads them (batch statistics in training mode): only evaluation and the
    saved model do."""
    resume: str | None = None
    """A run folder to continue exactly where it stopped (consistent distillation runs)."""
    stop_after: int = 0
    """Stop cleanly after this many epochs of this invocation (0: run to the end); resume later."""
    augment: dict[str, Any] = field(default_factory=lambda: asdict(AugmentSpec()))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each setting's default: what a run saved before that setting existed had."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    @classmethod
    def from_saved(cls, saved: dict[str, Any], **override: Any) -> TrainConfig:
        """The config a run's ``train_config.json`` records (keys no setting has are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in saved.items() if k in fields}, **override})

    def validate(self) -> None:
        """Raise :class:`UsageError` on values the model cannot take."""
        if not any(abs(self.alpha - a) < 1e-9 for a in ALPHAS):
            raise UsageError(f"--alpha must be one of {', '.join(map(str, ALPHAS))}, got {self.alpha}")
        for name, v in (("height", self.height), ("width", self.width)):
            if not MIN_SIZE <= v <= MAX_SIZE:
                raise UsageError(f"--size: {name} {v} outside {MIN_SIZE}..{MAX_SIZE}")
        if self.epochs < 1 or self.fine_tune_epochs < 0:
            raise UsageError("--epochs must be >= 1 and --fine-tune-epochs >= 0")
        if self.select not in ("best", "last"):
            raise UsageError("--select must be best or last")
        if self.distill and not self.teacher:
            raise UsageError("--distill needs --teacher (a keras.applications name or a backbone .keras file)")
        if self.views < 1:
            raise UsageError("--views must be >= 1")
        if not 0.0 <= self.distill_alpha <= 1.0:
            raise UsageError("--distill-alpha must be in 0..1")
        if self.feature_distill < 0.0:
            raise UsageError("--feature-distill must be >= 0")
        if self.feature_distill and not self.distill:
            raise UsageError("--feature-distill needs --distill (the features come from the teacher)")
        if self.mixup < 0.0:
            raise UsageError("--mixup must be >= 0")
        if not 0.0 <= self.cutmix <= 1.0:
            raise UsageError(f"--cutmix must be in 0..1 (the share of CutMix batches), got {self.cutmix}")
        if self.bn_stats not in BN_STATS:
            raise UsageError(f"--bn-stats must be one of {', '.join(BN_STATS)}, got {self.bn_stats!r}")
        if self.mixup and self.feature_distill:
            raise UsageError("--mixup and --feature-distill do not go together (a blend has no teacher features)")
        if self.init_select:
            if self.weights.lower() != "none":
                raise UsageError("--init-select needs --weights none (the selected weights are the start)")
            if self.init:
                raise UsageError("--init-select and --init both choose the start weights: give one")
            if not any(abs(self.init_select_alpha - a) < 1e-9 for a in ALPHAS) or self.init_select_alpha < self.alpha:
                raise UsageError(
                    f"--init-select-alpha must be one of {', '.join(map(str, ALPHAS))} and >= --alpha {self.alpha}"
                )
        parse_split_spec(self.split)


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise DependencyError(f"training needs TensorFlow: pip install 'sortcam[train]' ({exc})") from None
    return tf


def _keras() -> Any:
    _tf()
    import keras

    return keras


# ----------------------------------------------------------------------------- models


def build_student(config: TrainConfig, num_classes: int) -> tuple[Any, Any, Any]:
    """MobileNetV2 student. Returns ``(model_probs, model_logits, backbone)`` sharing layers.

    ``model_probs`` ends in softmax (what is saved, quantized and shipped);
    ``model_logits`` is the same graph stopped before the softmax (for training).
    """
    keras = _keras()
    shape = (config.height, config.width, 3)
    weights = config.weights
    pretrained = weights.lower() != "none"
    if weights.lower() == "imagenet" and (config.height != config.width or config.height not in IMAGENET_SIZES):
        log.warning(
            "ImageNet MobileNetV2 weights exist for square inputs %s; Keras will use the nearest", IMAGENET_SIZES
        )
    backbone = mobilenet_v2(shape, config.alpha, weights if pretrained else None, "", "use --weights none or a file")
    if config.init_select and not config.resume:  # a resumed run loads its own weights
        select_weights(backbone, config.init_select, config.init_select_alpha)
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = config.bn_momentum
    inputs = keras.Input(shape=shape, name="image")
    # A pretrained backbone keeps BatchNorm in inference mode in both phases (its
    # statistics come from ImageNet); a scratch one must learn them.
    x = backbone(inputs, training=False) if pretrained else backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    probs = keras.layers.Softmax(name="probs")(logits)
    return keras.Model(inputs, probs, name="sortcam_student"), keras.Model(inputs, logits), backbone


def mobilenet_v2(
    shape: tuple[int, ...], alpha: float, weights: str | None, what: str, imagenet_hint: str
) -> Any:  # fmt: skip
    """A MobileNetV2 backbone (no top, no pooling): random (``weights`` None), the ImageNet download
    (``imagenet``), or a weights file. Errors are one line, prefixed with ``what`` (the option)."""
    keras = _keras()
    kw: dict[str, Any] = {"input_shape": shape, "alpha": alpha, "include_top": False, "pooling": None}
    if weights is not None and weights.lower() == "imagenet":
        try:
            return keras.applications.MobileNetV2(weights="imagenet", **kw)
        except Exception as exc:  # download or file errors
            raise ModelError(
                f"{what}cannot get ImageNet MobileNetV2 {alpha} weights (needs internet): {first_line(exc)}; "
                + imagenet_hint
            ) from None
    model = keras.applications.MobileNetV2(weights=None, **kw)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"{what}weights file not found: {path}")
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise ModelError(
                f"{what}weights file {path} does not fit MobileNetV2 alpha={alpha}: {first_line(exc)}"
            ) from None
    return model


def selected_indices(source: int, target: int) -> npt.NDArray[np.int64]:
    """``target`` evenly spaced indices of ``0..source-1``. A function of the two sizes only, so
    one layer's chosen output channels are exactly the next layer's chosen input channels."""
    return (np.arange(target, dtype=np.int64) * source) // target


def select_weights(backbone: Any, path: str | Path, source_alpha: float = 1.0) -> int:
    """Initialise a MobileNetV2 ``backbone`` by weight selection from a wider one: its weights
    file, or ``imagenet`` (the Keras download, needs internet).

    Every weight tensor of ``backbone`` takes, along each axis where it is smaller, the
    evenly spaced entries (:func:`selected_indices`) of the same-named tensor of a
    MobileNetV2 of width ``source_alpha`` loaded from ``path``. Returns the number of
    tensors copied; a file that does not fit is a one-line :class:`ModelError`.
    """
    source = mobilenet_v2(
        tuple(backbone.input_shape[1:]), source_alpha, str(path), "--init-select: ", "give a weights file"
    )
    theirs = {layer.name: layer for layer in source.layers}
    copied = 0
    for layer in backbone.layers:
        ours = layer.get_weights()
        if not ours:
            continue
        src = theirs.get(layer.name)
        source_weights = src.get_weights() if src is not None else []
        if len(source_weights) != len(ours):
            raise ModelError(f"--init-select: {path} has no layer matching {layer.name}")
        new = []
        for a, b in zip(ours, source_weights, strict=True):
            if a.ndim != b.ndim or any(da > db for da, db in zip(a.shape, b.shape, strict=True)):
                raise ModelError(
                    f"--init-select: layer {layer.name} is {a.shape} here but {b.shape} in {path} (not a wider network)"
                )
            for axis, (da, db) in enumerate(zip(a.shape, b.shape, strict=True)):
                if da < db:
                    b = np.take(b, selected_indices(db, da), axis=axis)
            new.append(b.astype(a.dtype))
        layer.set_weights(new)
        copied += len(new)
    print(f"weight selection: {copied} tensors from {path} (MobileNetV2 alpha {source_alpha})", flush=True)
    return copied


def _set_fine_tune(backbone: Any, from_block: int) -> int:
    """Unfreeze layers from ``block_<from_block>`` on (BatchNorm stays frozen); returns trainable count."""
    keras = _keras()
    backbone.trainable = True
    start = None
    for i, layer in enumerate(backbone.layers):
        if layer.name.startswith(f"block_{from_block}_"):
            start = i
            break
    if start is None:
        start = 0
    n = 0
    for i, layer in enumerate(backbone.layers):
        train = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = train
        n += int(train)
    return n


# ----------------------------------------------------------------------------- teacher


def _load_teacher_backbone(spec: str, size: int) -> tuple[Any, str]:
    """A frozen feature extractor and the input convention it wants (``"pm1"`` or ``"app:<module>"``).

    ``spec`` is a backbone ``.keras`` file (input [-1, 1]), a ``keras.applications`` name
    (ImageNet weights, downloaded), or ``NAME=WEIGHTS_FILE``: that application built with a
    local weights file instead of the download (e.g.
    ``MobileNetV2=../shared/weights/mobilenet_v2_1.0_backbone_imagenet-dogs.weights.h5``).
    """
    keras = _keras()
    path = Path(spec)
    name, sep, weights_file = spec.partition("=")
    if sep and not path.exists():
        ctor = _application(name)
        return _application_with_weights(ctor, name, weights_file, size), f"app:{ctor.__module__}"
    if path.suffix in (".keras", ".h5") or path.exists():
        if not path.is_file():
            raise ModelError(f"teacher file not found: {path}")
        try:
            model = keras.models.load_model(str(path), compile=False)
        except Exception as exc:
            first = first_line(exc)
            raise ModelError(f"cannot load teacher {path}: {first}") from None
        model.trainable = False
        return model, "pm1"
    ctor = getattr(keras.applications, spec, None)
    if ctor is None:
        raise UsageError(f"--teacher {spec!r} is neither a file nor a keras.applications model name")
    try:
        model = ctor(include_top=False, weights="imagenet", input_shape=(size, size, 3))
    except Exception as exc:
        raise ModelError(f"cannot build teacher {spec} with ImageNet weights (needs internet): {exc}") from None
    model.trainable = False
    module = ctor.__module__
    return model, f"app:{module}"


def _application(name: str) -> Any:
    ctor = getattr(_keras().applications, name, None) if name.isidentifier() else None
    if ctor is None:
        raise UsageError(f"{name!r} is not a keras.applications model name (NAME=WEIGHTS_FILE)")
    return ctor


def _application_with_weights(ctor: Any, name: str, weights_file: str, size: int) -> Any:
    """The application ``ctor`` (``keras.applications.<name>``) without its top, loaded from a local
    weights file, frozen."""
    if not Path(weights_file).is_file():
        raise ModelError(f"backbone weights file not found: {weights_file}")
    try:
        with warnings.catch_warnings():  # a file of another model: one warning per layer, then the error
            warnings.simplefilter("ignore", UserWarning)
            model = ctor(include_top=False, weights=weights_file, input_shape=(size, size, 3))
    except Exception as exc:
        raise ModelError(f"cannot load {weights_file} into {name}: {first_line(exc)}") from None
    model.trainable = False
    return model


_FEATURE_FNS: dict[int, Any] = {}


def _teacher_features(
    backbone: Any, convention: str, photos: list[npt.NDArray[np.uint8]], size: int, fit: str, batch: int = 32
) -> npt.NDArray[np.float32]:
    """Globally pooled teacher features of each photo at ``size`` x ``size``."""
    import importlib

    tf = _tf()
    feats: list[npt.NDArray[np.float32]] = []

    run: Any = _FEATURE_FNS.get(id(backbone))
    if run is None:

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def features(x: Any) -> Any:
            y = backbone(x, training=False)
            if len(y.shape) == 4:
                y = tf.reduce_mean(y, axis=[1, 2])
            return y

        run = _FEATURE_FNS[id(backbone)] = features

    for start in range(0, len(photos), batch):
        chunk = np.stack([fit_resize(p, size, size, fit) for p in photos[start : start + batch]])
        if convention == "pm1":
            x = to_float(chunk)
        else:
            module = importlib.import_module(convention.split(":", 1)[1])
            x = module.preprocess_input(chunk.astype(np.float32))
        feats.append(np.asarray(run(tf.constant(x)), dtype=np.float32))
    return np.concatenate(feats)


def _compile(model: Any, optimizer: Any, loss: Any, **kwargs: Any) -> None:
    """``model.compile`` with the optimizer's variables created now, not in the first train step.

    Left to Keras, they are created inside the first traced train step, and TensorFlow traces a
    function that creates variables twice: for a MobileNetV2 0.35 that is about 8 s more per fit.
    """
    model.compile(optimizer=optimizer, loss=loss, **kwargs)
    model.optimizer.build(model.trainable_variables)


def fit_linear_head(
    feats: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int32],
    num_classes: int,
    l2: float = 1e-3,
    epochs: int = 25,
    seed: int = 0,
    sample_weight: npt.NDArray[np.float32] | None = None,
) -> tuple[Any, Any]:
    """Softmax regression on standardised features (Adam, full passes).

    Returns ``(W, b)`` with the standardisation folded in: ``logits = feats @ W + b``.
    """
    keras = _keras()
    keras.utils.set_random_seed(seed)
    mean = feats.mean(axis=0)
    std = feats.std(axis=0) + 1e-6
    z = (feats - mean) / std
    inp = keras.Input((feats.shape[1],))
    out = keras.layers.Dense(num_classes, kernel_regularizer=keras.regularizers.L2(l2))(inp)
    m = keras.Model(inp, out)
    _compile(m, keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(z, labels, batch_size=256, epochs=epochs, verbose=0, sample_weight=sample_weight)
    w, b = m.layers[-1].get_weights()
    w_eff = w / std[:, None]
    b_eff = b - mean @ w_eff
    return w_eff.astype(np.float32), b_eff.astype(np.float32)


def build_view_bank(
    photos: list[npt.NDArray[np.uint8]], views: int, seed: int, spec: AugmentSpec
) -> list[list[npt.NDArray[np.uint8]]]:
    """``views`` views per photo: the photo itself first, then random augmentations."""
    rng = np.random.default_rng(seed)
    return [[p] + [augment_photo(p, rng, spec) for _ in range(views - 1)] for p in photos]


@dataclass
class TeacherBank:
    """Student-size views of the train photos with the teacher's logits and pooled features for each (cached)."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int32]
    photo_index: npt.NDArray[np.int32]
    logits: npt.NDArray[np.float32]
    teacher_val_acc: float
    teacher_crossfit_acc: float
    features: npt.NDArray[np.float16] | None = None
    """The teacher's pooled features of each view (float16); None in a bank cached before they were kept."""


def _refuse_other_cache(cache: Path, what: str, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    """A cache the user named (``--teacher-cache``) that holds other settings is never overwritten."""
    diff = [k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    if diff:
        k = diff[0]
        raise DataError(
            f"--teacher-cache {cache}: its {what} was written with other settings ({k} = {theirs.get(k)!r} there, "
            f"{ours.get(k)!r} here); name another folder"
        )


def make_teacher_bank(
    config: TrainConfig,
    photos: list[npt.NDArray[np.uint8]],
    labels: npt.NDArray[np.int32],
    val_photos: list[npt.NDArray[np.uint8]],
    val_labels: npt.NDArray[np.int32],
    num_classes: int,
    cache: Path,
    folds: int = 5,
) -> TeacherBank:
    """Compute (or read from ``cache``) the view bank and the teacher's cross-fitted logits.

    The linear head is cross-fitted: the logits of a photo's views come from a head
    trained on the other folds' photos, so the soft targets carry the teacher's honest
    uncertainty instead of its memory of the train set.
    """
    key = {
        "teacher": config.teacher,
        "teacher_size": config.teacher_size,
        "views": config.views,
        "seed": config.seed,
        "height": config.height,
        "width": config.width,
        "fit": config.fit,
        "augment": config.augment,
        "n": len(photos),
        "labels_sum": int(labels.sum()),
    }
    meta_path = cache / "bank.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            has_features = (cache / "features.npy").is_file()
            if meta.get("key") == key and (has_features or not config.feature_distill):
                log.info("teacher bank: reusing %s", cache)
                return TeacherBank(
                    np.load(cache / "images.npy"),
                    np.load(cache / "labels.npy"),
                    np.load(cache / "photo_index.npy"),
                    np.load(cache / "logits.npy"),
                    float(meta["teacher_val_acc"]),
                    float(meta["teacher_crossfit_acc"]),
                    np.load(cache / "features.npy") if has_features else None,
                )
            if meta.get("key") == key:
                print(f"teacher bank {cache} has no teacher features (an older bank); recomputing it", flush=True)
            elif config.teacher_cache:
                _refuse_other_cache(cache, "teacher bank", meta.get("key", {}), key)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("teacher bank cache unreadable (%s); recomputing", exc)
    cache.mkdir(parents=True, exist_ok=True)
    spec = AugmentSpec(**config.augment)
    backbone, convention = _load_teacher_backbone(str(config.teacher), config.teacher_size)
    rng = np.random.default_rng(config.seed)
    n = len(photos)
    feats_list: list[npt.NDArray[np.float32]] = []
    images: list[npt.NDArray[np.uint8]] = []
    t0 = time.time()
    chunk = 64
    for start in range(0, n, chunk):
        batch_views: list[npt.NDArray[np.uint8]] = []
        for p in photos[start : start + chunk]:
            vs = [p] + [augment_photo(p, rng, spec) for _ in range(config.views - 1)]
            batch_views.extend(vs)
            images.extend(fit_resize(v, config.height, config.width, config.fit) for v in vs)
        feats_list.append(_teacher_features(backbone, convention, batch_views, config.teacher_size, config.fit))
        done = min(start + chunk, n)
        rate = done * config.views / max(time.time() - t0, 1e-6)
        eta = (n - done) * config.views / max(rate, 1e-6)
        print(f"teacher bank: {done}/{n} photos x {config.views} views, {rate:.1f} views/s, eta {eta:.0f}s", flush=True)
    feats = np.concatenate(feats_list)
    bank_labels = np.repeat(labels, config.views).astype(np.int32)
    photo_index = np.repeat(np.arange(n), config.views).astype(np.int32)
    val_feats = (
        _teacher_features(backbone, convention, val_photos, config.teacher_size, config.fit) if val_photos else None
    )
    cw = class_weights(labels, num_classes) if config.class_weighting else np.ones(num_classes, np.float32)
    fold_of = np.random.default_rng(config.seed + 1).permutation(n) % folds
    # Pick the head's L2 strength on one held-out fold of train (never on val).
    hold = fold_of[photo_index] == 0
    first = hold & (np.arange(len(feats)) % config.views == 0)
    scores = {}
    for l2 in (1e-4, 1e-3, 1e-2):
        w, b = fit_linear_head(
            feats[~hold], bank_labels[~hold], num_classes, l2=l2, seed=config.seed, sample_weight=cw[bank_labels[~hold]]
        )
        scores[l2] = float(((feats[first] @ w + b).argmax(1) == bank_labels[first]).mean())
    l2_best = max(scores, key=lambda v: scores[v])
    print(f"teacher head: L2 {l2_best} (held-out fold accuracy {scores})", flush=True)
    logits = np.zeros((len(feats), num_classes), np.float32)
    for k in range(folds):
        train_m = fold_of[photo_index] != k
        w, b = fit_linear_head(
            feats[train_m],
            bank_labels[train_m],
            num_classes,
            l2=l2_best,
            seed=config.seed + k,
            sample_weight=cw[bank_labels[train_m]],
        )
        logits[~train_m] = feats[~train_m] @ w + b
        print(f"teacher head: fold {k + 1}/{folds}", flush=True)
    first_view = np.arange(n) * config.views
    crossfit_acc = float((logits[first_view].argmax(1) == labels).mean())
    w, b = fit_linear_head(feats, bank_labels, num_classes, l2=l2_best, seed=config.seed, sample_weight=cw[bank_labels])
    val_acc = float(((val_feats @ w + b).argmax(1) == val_labels).mean()) if val_feats is not None else float("nan")
    print(f"teacher: cross-fit train accuracy {crossfit_acc:.4f}, val accuracy {val_acc:.4f}", flush=True)
    arr_images = np.stack(images)
    np.save(cache / "images.npy", arr_images)
    np.save(cache / "labels.npy", bank_labels)
    np.save(cache / "photo_index.npy", photo_index)
    np.save(cache / "logits.npy", logits)
    feats16 = feats.astype(np.float16)
    np.save(cache / "features.npy", feats16)
    np.savez(cache / "teacher_head.npz", w=w, b=b)
    meta_path.write_text(
        json.dumps({"key": key, "teacher_val_acc": val_acc, "teacher_crossfit_acc": crossfit_acc}, indent=2)
    )
    return TeacherBank(arr_images, bank_labels, photo_index, logits, val_acc, crossfit_acc, feats16)


# ----------------------------------------------------------------------------- training


def val_scores(model: Any, x: npt.NDArray[np.float32], y: npt.NDArray[np.int32], nc: int) -> tuple[float, float]:
    """Val accuracy and lowest class recall of ``model`` (NaN for an empty split)."""
    if not len(y):
        return float("nan"), float("nan")
    pred = np.asarray(model.predict(x, batch_size=128, verbose=0)).argmax(1)
    recalls = [float((pred[y == c] == c).mean()) for c in range(nc) if (y == c).any()]
    return float((pred == y).mean()), min(recalls)


class _Progress:
    """Per-epoch evaluation on val, checkpointing, early stopping and one progress line."""

    def __init__(
        self,
        config: TrainConfig,
        model_probs: Any,
        val_x: npt.NDArray[np.float32],
        val_y: npt.NDArray[np.int32],
        num_classes: int,
        out: Path,
        history: list[dict[str, Any]],
        phase: str,
        total_epochs: int,
        best: dict[str, Any],
    ) -> None:
        self.config, self.model, self.val_x, self.val_y = config, model_probs, val_x, val_y
        self.num_classes, self.out, self.history, self.phase = num_classes, out, history, phase
        self.total_epochs, self.best = total_epochs, best
        self.t0 = time.time()
        self.stale = 0

    def callback(self) -> Any:
        keras = _keras()
        outer = self

        class _CB(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                outer.on_epoch_end(epoch, logs or {}, self.model)

        return _CB()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any], fit_model: Any) -> None:
        acc, min_recall = val_scores(self.model, self.val_x, self.val_y, self.num_classes)
        lr = fit_model.optimizer.learning_rate
        lr_value = float(lr.numpy() if hasattr(lr, "numpy") else lr)
        entry = {
            "phase": self.phase,
            "epoch": len(self.history) + 1,
            "loss": float(logs.get("loss", float("nan"))),
            "val_accuracy": acc,
            "val_min_recall": min_recall,
            "lr": lr_value,
            "time_s": round(time.time() - self.t0, 1),
        }
        self.history.append(entry)
        improved = acc > self.best.get("val_accuracy", -1.0) + 1e-9
        if self.config.select == "last" or improved:
            self.model.save(self.out / "model.keras")
            self.best.update(entry)
            self.stale = 0
        else:
            self.stale += 1
        done = epoch + 1
        eta = (time.time() - self.t0) / done * (self.total_epochs - done)
        mark = "*" if (self.config.select == "best" and improved) else " "
        print(
            f"[{self.phase}] epoch {done}/{self.total_epochs} loss {entry['loss']:.4f} val_acc {acc:.4f} "
            f"min_recall {min_recall:.3f} lr {lr_value:.2e} {entry['time_s']:.0f}s eta {eta:.0f}s {mark}",
            flush=True,
        )
        (self.out / "history.json").write_text(strict_json.dumps(self.history, indent=1))
        if self.config.select == "best" and self.stale >= self.config.patience:
            print(f"[{self.phase}] early stop: no val improvement in {self.config.patience} epochs", flush=True)
            fit_model.stop_training = True


def _kd_loss(num_classes: int, temperature: float, alpha: float) -> Any:
    tf = _tf()

    def loss(y_true: Any, logits: Any) -> Any:
        onehot = y_true[:, :num_classes]
        t_logits = y_true[:, num_classes:]
        ce = tf.nn.softmax_cross_entropy_with_logits(onehot, logits)
        p_t = tf.nn.softmax(t_logits / temperature)
        log_p_t = tf.nn.log_softmax(t_logits / temperature)
        log_p_s = tf.nn.log_softmax(logits / temperature)
        kl = tf.reduce_sum(p_t * (log_p_t - log_p_s), axis=-1) * temperature**2
        return alpha * kl + (1.0 - alpha) * ce

    return loss


def _feature_trainee(model_logits: Any, features: npt.NDArray[np.float16]) -> tuple[Any, npt.NDArray[np.float32]]:
    """The student with a second, training-only output: a linear map of its pooled features.

    It is trained to regress the teacher's pooled features of the same view, standardised per
    dimension, so the student learns the teacher's representation and not only its six class
    scores. The map is not part of the saved model; returns the model and the targets.
    """
    keras = _keras()
    f = features.astype(np.float32)
    targets = (f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6)
    pooled = model_logits.get_layer("pool").output
    proj = keras.layers.Dense(f.shape[1], name="feature_proj")(pooled)
    return keras.Model(model_logits.inputs, [model_logits.outputs[0], proj]), targets


def _flip_layer(seed: int) -> Any:
    keras = _keras()
    return keras.Sequential([keras.layers.RandomFlip("horizontal", seed=seed)], name="flip")


def warm_start(model: Any, init_path: str | Path, classes: Sequence[str]) -> None:
    """Copy the weights of an earlier run's ``model.keras`` into ``model``.

    The earlier model must have the same architecture (alpha, input size) and the same
    classes in the same order; anything else is a one-line :class:`ModelError`.
    """
    src = load_keras_model(init_path)
    saved = classes_for(init_path)
    if saved is not None and list(saved) != list(classes):
        raise ModelError(f"--init {init_path}: its classes {saved} differ from the dataset's {list(classes)}")
    if tuple(src.input_shape[1:]) != tuple(model.input_shape[1:]):
        raise ModelError(
            f"--init {init_path}: input {tuple(src.input_shape[1:])} differs from --size {tuple(model.input_shape[1:])}"
        )
    theirs, ours = src.get_weights(), model.get_weights()
    if len(theirs) != len(ours) or any(a.shape != b.shape for a, b in zip(theirs, ours, strict=True)):
        raise ModelError(f"--init {init_path}: not the same network (different --alpha or number of classes)")
    model.set_weights(theirs)
    print(f"warm start from {init_path}", flush=True)


def _augment_layers(spec: AugmentSpec, seed: int) -> Any:
    keras = _keras()
    layers = []
    if spec.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    layers += [
        keras.layers.RandomRotation(spec.rotation_deg / 360.0, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomZoom((-spec.zoom, spec.zoom), fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomTranslation(spec.shift, spec.shift, fill_mode="nearest", seed=seed + 3),
        keras.layers.RandomBrightness(spec.brightness, value_range=(0, 255), seed=seed + 4),
        keras.layers.RandomContrast(spec.contrast, value_range=(0, 255), seed=seed + 5),
    ]
    return keras.Sequential(layers, name="augment")


def _dataset(
    x_u8: npt.NDArray[np.uint8],
    y: Any,
    w: npt.NDArray[np.float32],
    batch: int,
    seed: int,
    augment: Any | None,
    value_range: tuple[float, float],
    mix: Any | None = None,
) -> Any:
    """tf.data over uint8 images: shuffle, (augment), map to the float range, batch.

    ``y`` is one target array, or a tuple of them for a model with several outputs.
    ``mix``: a batch function (see ``_mixup``) applied after the augmentation.
    """
    tf = _tf()
    lo, hi = value_range
    ds = tf.data.Dataset.from_tensor_slices((x_u8, y, w)).shuffle(len(x_u8), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)

    def to_input(img: Any, yy: Any, ww: Any) -> Any:
        f = tf.cast(img, tf.float32)
        if augment is not None:
            f = tf.clip_by_value(augment(f, training=True), 0.0, 255.0)
        x = lo + (hi - lo) * f / 255.0
        return mix(x, yy, ww) if mix is not None else (x, yy, ww)

    return ds.map(to_input, num_parallel_calls=1).prefetch(2)


def _mixup(a: float, seed: int, kd_classes: int = 0, temperature: float = 1.0) -> Any:
    """A batch function blending each example with another of the batch (mixup, Beta(a, a)).

    The blend keeps the larger share for the example's own image (``lam >= 0.5``). Targets mix
    with the same ``lam``: plain one-hot (or smoothed) labels linearly; with ``kd_classes``
    (distillation targets ``[one-hot | teacher logits]``) the labels linearly and the teacher's
    probabilities at ``temperature`` linearly, written back as logits whose softmax at that
    temperature is the mix. Sample weights mix linearly too.
    """
    tf = _tf()

    def mix(x: Any, y: Any, w: Any) -> Any:
        n = tf.shape(x)[0]
        g1 = tf.random.gamma([n], a, seed=seed)
        g2 = tf.random.gamma([n], a, seed=seed + 1)
        lam = g1 / (g1 + g2 + 1e-12)
        lam = tf.maximum(lam, 1.0 - lam)
        other = tf.random.shuffle(tf.range(n), seed=seed + 2)
        lam_x = tf.reshape(lam, [-1, 1, 1, 1])
        x = lam_x * x + (1.0 - lam_x) * tf.gather(x, other)
        lam_y = lam[:, None]
        if kd_classes:
            onehot, logits = y[:, :kd_classes], y[:, kd_classes:]
            p = tf.nn.softmax(logits / temperature)
            p = lam_y * p + (1.0 - lam_y) * tf.gather(p, other)
            onehot = lam_y * onehot + (1.0 - lam_y) * tf.gather(onehot, other)
            y = tf.concat([onehot, temperature * tf.math.log(p + 1e-12)], axis=1)
        else:
            y = lam_y * y + (1.0 - lam_y) * tf.gather(y, other)
        w = lam * w + (1.0 - lam) * tf.gather(w, other)
        return x, y, w

    return mix


def _warmup_cosine(lr: float, steps: int, warmup: int) -> Any:
    """Linear warm-up from ``lr / 10`` to ``lr`` over ``warmup`` steps, then cosine decay to ``lr / 100``.

    The curve of Keras's ``CosineDecay(..., alpha=0.01, warmup_target=lr)``, in branch-free
    arithmetic: Keras's version is a graph ``cond``, and AdamW's weight decay evaluates the
    rate once per variable, so a MobileNetV2 0.35 traced 158 conds per train step (about
    4 s of tracing on 2 cores, and 158 branches in every step).
    """
    keras = _keras()
    ops = keras.ops
    decay_steps = max(1, steps - warmup)

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc,name-defined]
        def __call__(self, step: Any) -> Any:
            s = ops.cast(step, "float32")
            t = ops.clip((s - warmup) / decay_steps, 0.0, 1.0)
            cosine = lr * (0.01 + 0.99 * 0.5 * (1.0 + ops.cos(math.pi * t)))
            if not warmup:
                return cosine
            return ops.where(s < warmup, lr * (0.1 + 0.9 * s / warmup), cosine)

        def get_config(self) -> dict[str, Any]:
            return {"lr": lr, "steps": steps, "warmup": warmup}

    return WarmupCosine()


def _warm_steps(steps: int, epochs: int) -> int:
    """Warm-up of a from-scratch schedule: a tenth of it, at most one epoch."""
    return min(steps, steps * epochs // 10)


def _optimizer(lr: float, weight_decay: float, steps: int, warmup: int) -> Any:
    keras = _keras()
    return keras.optimizers.AdamW(learning_rate=_warmup_cosine(lr, steps, warmup), weight_decay=weight_decay)


def train(config: TrainConfig) -> dict[str, Any]:
    """Run a training; writes ``model.keras``, ``history.json``, ``curves.png``, ``summary.json`` under ``out_dir``."""
    config.validate()
    # refusals come before the run folder is touched: a refused command overwrites no settings
    consistent = bool(config.distill and config.teacher and is_teacher_file(config.teacher))
    if config.resume and not consistent:
        raise UsageError("--resume continues runs distilled from a `sortcam teacher` file; this run is not one")
    if config.cutmix and not consistent:
        raise UsageError("--cutmix needs --distill --teacher with a `sortcam teacher` file (consistent distillation)")
    if config.bn_stats != "clean" and not consistent:
        raise UsageError("--bn-stats needs --distill --teacher with a `sortcam teacher` file (consistent distillation)")
    index = index_dataset(config.data_dir, parse_split_spec(config.split), config.seed)
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not config.resume:
        (out / "train_config.json").write_text(json.dumps(asdict(config), indent=2))
    classes = index.classes
    nc = len(classes)
    train_split, val_split = index.split("train"), index.split("val")
    if len(train_split) == 0:
        raise DataError(f"{config.data_dir}: no train images")
    print(
        f"dataset {config.data_dir}: {nc} classes {classes}; train {len(train_split)} val {len(val_split)} "
        f"({'folders' if index.from_folders else 'split ' + config.split})",
        flush=True,
    )
    need_full = config.distill
    tr, tr_full = load_split(train_split, config.height, config.width, config.fit, keep_full=need_full)
    va, va_full = load_split(val_split, config.height, config.width, config.fit, keep_full=need_full)
    if len(tr.labels) == 0:
        raise DataError("no readable train images")
    present = sorted(set(tr.labels.tolist()))
    if len(present) < 2:
        raise DataError("the train split has a single class with readable images")
    cw = class_weights(tr.labels, nc) if config.class_weighting else np.ones(nc, np.float32)
    print("class weights: " + ", ".join(f"{c}={w:.2f}" for c, w in zip(classes, cw, strict=False)), flush=True)
    val_x = (
        to_float(va.images, DEFAULT_RANGE)
        if len(va.labels)
        else np.zeros((0, config.height, config.width, 3), np.float32)
    )
    model_probs, model_logits, backbone = build_student(config, nc)
    if config.init:
        warm_start(model_probs, config.init, classes)
    pretrained = config.weights.lower() != "none"
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    summary: dict[str, Any] = {
        "classes": classes,
        "train_images": int(len(tr.labels)),
        "val_images": int(len(va.labels)),
        "corrupt_skipped": len(tr.corrupt) + len(va.corrupt),
        "non_images_skipped": len(index.skipped_files),
    }
    if consistent:
        return _train_consistent(
            config, index, classes, model_probs, model_logits, tr, tr_full, val_x, va, cw, out, summary
        )
    eye = np.eye(nc, dtype=np.float32)
    trainee: Any = model_logits  # the model fit() trains: model_logits, or it plus a feature head
    loss_weights: list[float] | None = None
    if config.distill:
        cache = Path(config.teacher_cache) if config.teacher_cache else out / "teacher_bank"
        bank = make_teacher_bank(config, tr_full, tr.labels, va_full, va.labels, nc, cache)
        del tr_full, va_full
        summary.update(
            {
                "teacher": config.teacher,
                "teacher_val_accuracy": bank.teacher_val_acc,
                "teacher_crossfit_train_accuracy": bank.teacher_crossfit_acc,
                "views": config.views,
            }
        )
        x_u8 = bank.images
        y: Any = np.concatenate([eye[bank.labels], bank.logits], axis=1)
        w = cw[bank.labels]
        loss = _kd_loss(nc, config.temperature, config.distill_alpha)
        if config.feature_distill:
            assert bank.features is not None  # make_teacher_bank recomputes a bank without them
            trainee, targets = _feature_trainee(model_logits, bank.features)
            y = (y, targets)
            loss = [loss, "mse"]
            loss_weights = [1.0, config.feature_distill]
            summary["feature_distill"] = config.feature_distill
        # The views are already augmented and the teacher scored exactly these; a mirror
        # image is the one change that leaves the teacher's opinion as good as it was.
        aug = _flip_layer(config.seed) if config.augment.get("flip", True) else None
    else:
        x_u8 = tr.images
        y = eye[tr.labels]
        if config.label_smoothing:
            y = y * (1 - config.label_smoothing) + config.label_smoothing / nc
        w = cw[tr.labels]
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        aug = _augment_layers(AugmentSpec(**config.augment), config.seed)
    steps = math.ceil(len(x_u8) / config.batch_size)
    mix = None
    if config.mixup:
        mix = _mixup(config.mixup, config.seed, nc if config.distill else 0, config.temperature)
        summary["mixup"] = config.mixup

    def run_phase(name: str, epochs: int, lr: float) -> None:
        ds = _dataset(x_u8, y, w, config.batch_size, config.seed, aug, DEFAULT_RANGE, mix)
        warm = _warm_steps(steps, epochs) if not pretrained or name == "head" else 0
        _compile(trainee, _optimizer(lr, config.weight_decay, steps * epochs, warm), loss, loss_weights=loss_weights)
        prog = _Progress(config, model_probs, val_x, va.labels, nc, out, history, name, epochs, best)
        prog.stale = 0
        # shuffle=False: the tf.data pipeline shuffles itself (Keras warns when asked to shuffle a Dataset)
        trainee.fit(
            ds, epochs=epochs, shuffle=False, verbose=2 if sys.stdout.isatty() else 0, callbacks=[prog.callback()]
        )

    t0 = time.time()
    if pretrained:
        backbone.trainable = False
        run_phase("head", config.epochs, config.lr)
        if config.fine_tune_epochs:
            n = _set_fine_tune(backbone, config.fine_tune_from)
            print(f"fine-tune: {n} backbone layers trainable from block_{config.fine_tune_from}", flush=True)
            run_phase("fine-tune", config.fine_tune_epochs, config.fine_tune_lr)
    else:
        run_phase("scratch", config.epochs, config.lr)
        if config.fine_tune_epochs:
            run_phase("fine-tune", config.fine_tune_epochs, config.fine_tune_lr)
    summary.update(
        {
            "best": best,
            "select": config.select,
            "train_time_s": round(time.time() - t0, 1),
            "model": str(out / "model.keras"),
        }
    )
    _finish(out, summary, classes, history)
    print(
        f"done: {out / 'model.keras'} (selected epoch {best.get('epoch')} "
        f"val_acc {best.get('val_accuracy', float('nan')):.4f})",
        flush=True,
    )
    return summary


def _finish(out: Path, summary: dict[str, Any], classes: list[str], history: list[dict[str, Any]]) -> None:
    (out / "summary.json").write_text(strict_json.dumps(summary, indent=2))
    (out / "classes.json").write_text(json.dumps(classes))
    try:
        from sortcam.model.plots import plot_curves

        plot_curves(history, out / "curves.png")
    except Exception as exc:  # a plot must never lose a finished training
        log.warning("could not draw training curves: %s", exc)


def _train_consistent(
    config: TrainConfig,
    index: Any,
    classes: list[str],
    model_probs: Any,
    model_logits: Any,
    tr: Any,
    tr_full: list[npt.NDArray[np.uint8]],
    val_x: npt.NDArray[np.float32],
    va: Any,
    cw: npt.NDArray[np.float32],
    out: Path,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Distil from a `sortcam teacher` file, the teacher asked about every mixed batch (see consistent.py)."""
    from sortcam.model import consistent as cons
    from sortcam.model.data import dataset_fingerprints
    from sortcam.model.teacher import load_teacher

    assert config.teacher is not None
    cons.enable_determinism()
    teacher = load_teacher(config.teacher, classes)
    # A teacher of the student's input sees the student's tensor; one of another size (trained on
    # full-size photos, `sortcam teacher --via 0`) sees the same views fitted to its own input.
    teacher_size = 0 if (teacher.input_size,) * 2 == (config.height, config.width) else teacher.input_size
    if teacher_size:
        print(
            f"teacher input {teacher_size}x{teacher_size}: a second view pool, the same views at that size",
            flush=True,
        )
    teacher_sha = cons.file_sha256(config.teacher)
    data_fps = dataset_fingerprints(index)
    data_fp = data_fps[0]
    history: list[dict[str, Any]] = []
    if config.resume:
        meta = cons.read_state_meta(out)
        cons.check_resume(out, meta, config, data_fps, teacher_sha)
        try:
            history = json.loads((out / "history.json").read_text())[: int(meta["epoch"])]
            # null is a figure that does not exist (no val split): NaN again, as the run wrote it
            history = [{k: float("nan") if v is None else v for k, v in h.items()} for h in history]
        except (OSError, ValueError):
            history = []
    cache = Path(config.teacher_cache) if config.teacher_cache else out / "views"
    pool, pool_labels, teacher_pool = cons.view_pool(config, tr_full, tr.labels, cache, teacher_size)
    del tr_full
    t0 = time.time()
    last = cons.train_consistent(
        config,
        model_probs,
        model_logits,
        teacher,
        pool,
        pool_labels,
        teacher_pool,
        to_float(tr.images, DEFAULT_RANGE),
        val_x,
        va.labels,
        cw,
        out,
        data_fp,
        teacher_sha,
        history,
    )
    tmeta = teacher.meta
    summary.update(
        {
            "teacher": config.teacher,
            "teacher_kind": "fine-tuned (consistent distillation)",
            "teacher_val_accuracy": tmeta.get("val", {}).get("accuracy"),
            "teacher_cv_accuracy": tmeta.get("cv", {}).get("accuracy"),
            "teacher_sha256": teacher_sha,
            "teacher_input": teacher.input_size,
            "teacher_sees": "the student's tensor"
            if not teacher_size
            else f"the same views at {teacher_size}x{teacher_size}",
            "views": config.views,
            "mixup": config.mixup,
            "best": last,
            "select": "last",
            "epochs_done": len(history),
            "train_time_s": round(time.time() - t0, 1),
            "train_time_total_s": round(_run_time(history), 1),
            "model": str(out / "model.keras"),
        }
    )
    _finish(out, summary, classes, history)
    print(
        f"done: {out / 'model.keras'} (epoch {last.get('epoch')} val_acc {last.get('val_accuracy', float('nan')):.4f})",
        flush=True,
    )
    return summary


def _run_time(history: list[dict[str, Any]]) -> float:
    """Seconds of training over all runs of a resumed history (each run's clock restarts)."""
    total, prev_run, prev_t = 0.0, None, 0.0
    for h in history:
        if h.get("run") != prev_run:
            total += prev_t
            prev_run, prev_t = h.get("run"), 0.0
        prev_t = float(h.get("time_s", 0.0))
    return total + prev_t


def load_keras_model(path: str | Path) -> Any:
    """Load a saved float model (``.keras``); one-line :class:`ModelError` when it cannot be read."""
    keras = _keras()
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model not found: {p}")
    try:
        return keras.models.load_model(str(p), compile=False)
    except Exception as exc:
        first = first_line(exc)
        raise ModelError(f"cannot load Keras model {p}: {first}") from None


def classes_for(model_path: str | Path) -> list[str] | None:
    """Class list saved beside a trained ``model.keras`` (``classes.json``), if any."""
    p = Path(model_path).with_name("classes.json")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return [str(c) for c in data] if isinstance(data, list) else None


def parse_size(text: str) -> tuple[int, int]:
    """``"96"`` or ``"72x96"`` (height x width) to ``(height, width)``."""
    try:
        if "x" in text.lower():
            h, w = text.lower().split("x", 1)
            return int(h), int(w)
        return int(text), int(text)
    except ValueError:
        raise UsageError(f"--size {text!r}: expected N or HxW") from None


def seq_str(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.4f}" for v in values)
