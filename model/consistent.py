"""Consistent distillation from a fine-tuned teacher file, with exact resume.

Used by :func:`sortcam.model.train.train` when ``--teacher`` names a file written by
`sortcam teacher`. Each step:

1. a batch is drawn from a pool of augmented views of the train photos (``--views`` per
   photo, view 0 the photo itself, cut from the full-size photo and fitted to the
   student's input), each randomly mirrored. A teacher trained on full-size photos at a
   larger input (``sortcam teacher --via 0``) gets a second pool: the very same views,
   fitted to its own input;
2. with ``--mixup A`` each image is blended with another of the batch (``lam`` from
   Beta(A, A), the larger share its own), labels and class weights with it. With
   ``--cutmix P`` a share P of the batches are CutMix batches instead (Yun et al., ICCV
   2019): a box of each image, drawn in coordinates relative to the image, is replaced by
   the same box of its partner, and the targets take the partner's share by the box's area;
3. the *same* tensor goes through the frozen teacher and the student, inside one train
   step, so the teacher is asked about exactly the image the student sees (Beyer et al.,
   "Knowledge distillation: A good teacher is patient and consistent", CVPR 2022). With a
   full-size teacher both pools are mixed with the same partners and shares; resizing is
   linear, so the teacher's tensor is the same mixed image as the student's, seen at the
   teacher's resolution (up to uint8 rounding of each view);
4. loss ``a * KL(teacher_T || student_T) * T^2 + (1 - a) * CE(mixed label)``, weighted.

Every random choice of an epoch (order, mirrors, partners, shares) is drawn in NumPy from
``(seed, epoch)``, so an epoch is a pure function of the run's settings. After each epoch
the run folder gets the student and optimizer variables (``resume/state.npz``, written
atomically) and ``resume/state.json``; ``sortcam train DATA --resume RUN`` continues
bit-identically from the last finished epoch (weights, optimizer moments, schedule step,
dropout RNG, data position). BatchNorm moving statistics are re-estimated before every
evaluation and before the model is saved (Keras MobileNetV2's momentum 0.999 leaves them far
behind a network trained from scratch): on the clean train photos (``bn_stats="clean"``) or
on the batches of the epoch just trained (``"train"``, the distribution the weights were
fitted under; see :func:`set_bn_stats`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sortcam import strict_json
from sortcam.errors import ModelError, UsageError
from sortcam.model.augment import AugmentSpec, augment_photo
from sortcam.preprocess import DEFAULT_RANGE, fit_resize, to_float

if TYPE_CHECKING:
    from sortcam.model.train import TrainConfig

STATE_VERSION = 1
# Settings that may differ between a run and its resumption (where it lives, how it was started).
RESUME_FREE = ("out_dir", "resume", "data_dir", "teacher_cache", "stop_after")


# ----------------------------------------------------------------------------- the pool and the epochs


def view_pool(
    config: TrainConfig,
    photos: list[npt.NDArray[np.uint8]],
    labels: npt.NDArray[np.int32],
    cache: Path,
    teacher_size: int = 0,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int32], npt.NDArray[np.uint8] | None]:
    """``views`` views per photo at the student's size (view 0 the photo itself), cached in ``cache``.

    With ``teacher_size`` also the same views fitted to ``teacher_size`` x ``teacher_size``
    (third value; ``None`` without): one augmentation, two resizes of it.
    """
    key: dict[str, Any] = {
        "views": config.views,
        "seed": config.seed,
        "height": config.height,
        "width": config.width,
        "fit": config.fit,
        "augment": config.augment,
        "n": len(photos),
        "labels_sha": hashlib.sha256(labels.astype(np.int32).tobytes()).hexdigest()[:16],
    }
    if teacher_size:
        key["teacher_size"] = teacher_size  # absent otherwise, so pools cached before it still match
    pool_labels = np.repeat(labels, config.views).astype(np.int32)
    meta = cache / "views.json"
    tfile = cache / "teacher_views.npy"
    if meta.is_file() and (cache / "views.npy").is_file() and (tfile.is_file() or not teacher_size):
        try:
            theirs = json.loads(meta.read_text()).get("key", {})
        except (OSError, ValueError):
            theirs = None
        if theirs == key:
            print(f"view pool: reusing {cache}", flush=True)
            return np.load(cache / "views.npy"), pool_labels, np.load(tfile) if teacher_size else None
        if theirs is not None and config.teacher_cache:
            from sortcam.model.train import _refuse_other_cache

            _refuse_other_cache(cache, "view pool", theirs, key)
    cache.mkdir(parents=True, exist_ok=True)
    spec = AugmentSpec(**config.augment)
    rng = np.random.default_rng(config.seed)
    out = np.empty((len(photos) * config.views, config.height, config.width, 3), np.uint8)
    tout = np.empty((len(out), teacher_size, teacher_size, 3), np.uint8) if teacher_size else None
    t0 = time.time()
    for i, p in enumerate(photos):
        for v in range(config.views):
            view = p if v == 0 else augment_photo(p, rng, spec)
            out[i * config.views + v] = fit_resize(view, config.height, config.width, config.fit)
            if tout is not None:
                tout[i * config.views + v] = fit_resize(view, teacher_size, teacher_size, config.fit)
        if (i + 1) % 200 == 0 or i + 1 == len(photos):
            rate = (i + 1) / max(time.time() - t0, 1e-6)
            print(
                f"view pool: {i + 1}/{len(photos)} photos x {config.views} views, "
                f"eta {(len(photos) - i - 1) / rate:.0f}s",
                flush=True,
            )
    meta.unlink(missing_ok=True)  # the key goes last: a pool cut short is never taken for a finished one
    tmp = cache / "views.tmp.npy"
    np.save(tmp, out)
    tmp.replace(cache / "views.npy")
    if tout is not None:
        ttmp = cache / "teacher_views.tmp.npy"
        np.save(ttmp, tout)
        ttmp.replace(tfile)
    meta.write_text(json.dumps({"key": key}, indent=2))
    return out, pool_labels, tout


Plan = tuple[Any, ...]
"""One batch of an epoch: ``(idx, mirror, partner, lam)``, and with ``--cutmix`` a fifth item,
the CutMix boxes ``(y0, y1, x0, x1)`` relative to the image (float32, one row per image), or
``None`` for a batch that is mixed by blending."""


def epoch_plan(n: int, batch: int, seed: int, epoch: int, mixup: float, flip: bool, cutmix: float = 0.0) -> list[Plan]:
    """The batches of one epoch: for each, pool indices, mirror flags, mixup partner (index within
    the batch) and the image's own share ``lam`` (1 without mixup); with ``cutmix`` > 0, the boxes
    of a CutMix batch (or ``None``). A pure function of its arguments; ``cutmix`` 0 draws exactly
    the numbers it drew before the option existed, so older runs resume bit-identically."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    mirror = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
    plan: list[Plan] = []
    for start in range(0, n, batch):
        idx = order[start : start + batch]
        b = len(idx)
        if mixup > 0:
            lam = rng.beta(mixup, mixup, size=b).astype(np.float32)
            lam = np.maximum(lam, 1.0 - lam)
            partner = rng.permutation(b)
        else:
            lam = np.ones(b, np.float32)
            partner = np.arange(b)
        if cutmix <= 0:
            plan.append((idx, mirror[idx], partner, lam))
            continue
        box = None
        if rng.random() < cutmix:
            if mixup <= 0:
                partner = rng.permutation(b)
            cut = np.sqrt(rng.random(b))  # the box's side for an area share ~ U(0, 1), as in CutMix
            cy, cx = rng.random(b), rng.random(b)
            box = np.stack(
                [np.clip(cy - cut / 2, 0, 1), np.clip(cy + cut / 2, 0, 1), np.clip(cx - cut / 2, 0, 1),
                 np.clip(cx + cut / 2, 0, 1)], axis=1,
            ).astype(np.float32)  # fmt: skip
            lam = (1.0 - (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2])).astype(np.float32)
        plan.append((idx, mirror[idx], partner, lam, box))
    return plan


def box_pixels(box: npt.NDArray[np.float32], h: int, w: int) -> npt.NDArray[np.int64]:
    """Relative boxes ``(y0, y1, x0, x1)`` as pixel bounds on an ``h`` x ``w`` image (rounded)."""
    return np.rint(box * np.array([h, h, w, w], np.float32)).astype(np.int64)


def cut_share(box: npt.NDArray[np.float32], h: int, w: int) -> npt.NDArray[np.float32]:
    """Each image's own share of a CutMix batch on an ``h`` x ``w`` grid: 1 minus the pasted pixels' fraction."""
    px = box_pixels(box, h, w)
    return (1.0 - (px[:, 1] - px[:, 0]) * (px[:, 3] - px[:, 2]) / float(h * w)).astype(np.float32)


def _mixed_images(
    pool: npt.NDArray[np.uint8], idx: npt.NDArray[np.int64], mirror: npt.NDArray[np.bool_],
    partner: npt.NDArray[np.int64], lam: npt.NDArray[np.float32], box: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:  # fmt: skip
    img = pool[idx].copy()
    img[mirror] = img[mirror][:, :, ::-1]
    x = to_float(img, DEFAULT_RANGE)
    if box is not None:  # CutMix: the partner's pixels in the box, at this pool's size
        out = x.copy()
        for i, (y0, y1, x0, x1) in enumerate(box_pixels(box, x.shape[1], x.shape[2])):
            out[i, y0:y1, x0:x1] = x[partner[i], y0:y1, x0:x1]
        return out
    lx = lam[:, None, None, None]
    return (lx * x + (1.0 - lx) * x[partner]).astype(np.float32)


def make_batch(
    pool: npt.NDArray[np.uint8],
    onehot: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32],
    item: Plan,
    teacher_pool: npt.NDArray[np.uint8] | None = None,
) -> tuple[Any, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """One training batch ``(x, y, w)``: mirrored, mixed images in the model's range; mixed labels and weights.

    With ``teacher_pool``, ``x`` is ``(student images, teacher images)``: the same views,
    mirrors, partners and shares (or CutMix boxes, relative to the image) at both sizes. A
    CutMix batch's labels and weights take the shares of the pixels the student sees.
    """
    idx, mirror, partner, lam = item[:4]
    box = item[4] if len(item) > 4 else None
    x: Any = _mixed_images(pool, idx, mirror, partner, lam, box)
    if teacher_pool is not None:
        x = (x, _mixed_images(teacher_pool, idx, mirror, partner, lam, box))
    if box is not None:
        lam = cut_share(box, pool.shape[1], pool.shape[2])
    y = onehot[idx]
    ly = lam[:, None]
    y = ly * y + (1.0 - ly) * y[partner]
    w = weight[idx]
    w = lam * w + (1.0 - lam) * w[partner]
    return x, y.astype(np.float32), w.astype(np.float32)


def epoch_dataset(
    pool: npt.NDArray[np.uint8],
    onehot: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32],
    plan: list[Any],
    teacher_pool: npt.NDArray[np.uint8] | None = None,
) -> Any:
    """A ``tf.data`` pipeline over one epoch's batches, built in a background thread (prefetch)."""
    from sortcam.model.train import _tf

    tf = _tf()
    k = onehot.shape[1]

    def gen() -> Any:
        for item in plan:
            yield make_batch(pool, onehot, weight, item, teacher_pool)

    x_sig: Any = tf.TensorSpec((None, *pool.shape[1:]), tf.float32)
    if teacher_pool is not None:
        x_sig = (x_sig, tf.TensorSpec((None, *teacher_pool.shape[1:]), tf.float32))
    sig = (x_sig, tf.TensorSpec((None, k), tf.float32), tf.TensorSpec((None,), tf.float32))
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    return ds.apply(tf.data.experimental.assert_cardinality(len(plan))).prefetch(2)


# ----------------------------------------------------------------------------- model pieces


def consistent_trainee(model_logits: Any, teacher: Any) -> Any:
    """One model, two heads on the same input: ``[student logits | teacher logits]``.

    The teacher is frozen (``trainable = False``, BatchNorm in inference mode); the loss
    reads its half as the soft target, so teacher and student always see the same tensor.
    A teacher with another input size makes it a two-input model, ``(student image,
    teacher image)``: the same mixed view at the two sizes (see :func:`make_batch`).
    """
    from sortcam.model.train import _keras

    keras = _keras()
    teacher.trainable = False

    class FrozenTeacher(keras.layers.Layer):  # type: ignore[misc,name-defined]
        """Calls the teacher in inference mode always: a nested model's ``training=False`` given at
        construction is overridden by the outer ``fit`` in Keras 3, which would switch on its dropout."""

        def __init__(self, model: Any) -> None:
            super().__init__(trainable=False, name="teacher")
            self.model = model

        def call(self, x: Any) -> Any:
            return self.model(x, training=False)

    inp = keras.Input(model_logits.input_shape[1:], name="image")
    s = model_logits(inp)
    if tuple(teacher.input_shape[1:]) == tuple(model_logits.input_shape[1:]):
        inputs: Any = inp
        t = FrozenTeacher(teacher)(inp)
    else:
        t_inp = keras.Input(teacher.input_shape[1:], name="teacher_image")
        inputs = (inp, t_inp)
        t = FrozenTeacher(teacher)(t_inp)
    return keras.Model(inputs, keras.layers.Concatenate(name="student_teacher")([s, t]), name="consistent_trainee")


def online_kd_loss(num_classes: int, temperature: float, alpha: float) -> Any:
    """``a * KL(teacher_T || student_T) * T^2 + (1 - a) * CE(y)`` on ``y_pred = [student | teacher]`` logits."""
    from sortcam.model.train import _tf

    tf = _tf()

    def loss(y_true: Any, y_pred: Any) -> Any:
        s_logits = y_pred[:, :num_classes]
        t_logits = tf.stop_gradient(y_pred[:, num_classes:])
        ce = tf.nn.softmax_cross_entropy_with_logits(y_true, s_logits)
        p_t = tf.nn.softmax(t_logits / temperature)
        kl = tf.reduce_sum(
            p_t * (tf.nn.log_softmax(t_logits / temperature) - tf.nn.log_softmax(s_logits / temperature)), axis=-1
        )
        return alpha * kl * temperature**2 + (1.0 - alpha) * ce

    return loss


def reestimate_bn(model: Any, x: npt.NDArray[np.float32], batch: int = 128) -> int:
    """Set every BatchNorm layer's moving mean and variance to their average over ``x`` (clean photos).

    Returns the number of BatchNorm layers updated.
    """
    return reestimate_bn_batches(model, (x[start : start + batch] for start in range(0, len(x), batch)))


def reestimate_bn_batches(model: Any, batches: Iterable[npt.NDArray[np.float32]]) -> int:
    """Set every BatchNorm layer's moving mean and variance to the plain mean of their statistics over ``batches``.

    The k-th batch enters with momentum ``k / (k + 1)``, which makes the moving value the
    plain mean of the batch statistics ("precise BatchNorm"). Returns the number of
    BatchNorm layers updated (0, and nothing changed, for no layer or no batch).
    """
    from sortcam.model.train import _keras

    keras = _keras()
    bns = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns:
        return 0
    saved = [layer.momentum for layer in bns]
    k = 0
    try:
        for xb in batches:
            if not len(xb):
                continue
            for layer in bns:
                layer.momentum = k / (k + 1.0)
            model(xb, training=True)
            k += 1
    finally:
        for layer, m in zip(bns, saved, strict=True):
            layer.momentum = m
    return len(bns) if k else 0


def training_batches(pool: npt.NDArray[np.uint8], plan: list[Plan]) -> Iterator[npt.NDArray[np.float32]]:
    """The student's images of each batch of ``plan``, exactly as training feeds them (mirrored, mixed)."""
    for item in plan:
        idx, mirror, partner, lam = item[:4]
        yield _mixed_images(pool, idx, mirror, partner, lam, item[4] if len(item) > 4 else None)


def set_bn_stats(
    model: Any, how: str, clean_x: npt.NDArray[np.float32], pool: npt.NDArray[np.uint8], plan: list[Plan]
) -> int:
    """Re-estimate the BatchNorm statistics: ``clean`` over the clean train photos, ``train`` over
    the batches of ``plan`` (the training distribution: views, mirrors, mixup / CutMix)."""
    if how == "train":
        return reestimate_bn_batches(model, training_batches(pool, plan))
    return reestimate_bn(model, clean_x)


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


# ----------------------------------------------------------------------------- resume state


def recipe_key(config: TrainConfig) -> dict[str, Any]:
    """The settings that define a run (everything but where it lives)."""
    d = asdict(config)
    for k in RESUME_FREE:
        d.pop(k, None)
    return d


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_state(out: Path, student: Any, optimizer: Any, meta: dict[str, Any]) -> None:
    """Student and optimizer variables (``resume/state.npz``) and where the run is (``state.json``), atomically."""
    d = out / "resume"
    d.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {f"m{i:04d}": np.asarray(v) for i, v in enumerate(student.variables)}
    arrays.update({f"o{i:04d}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    tmp = d / "state.tmp.npz"
    np.savez(tmp, **arrays)
    tmp.replace(d / "state.npz")
    meta = {**meta, "version": STATE_VERSION, "sha256": file_sha256(d / "state.npz")}
    tmpj = d / "state.tmp.json"
    tmpj.write_text(json.dumps(meta, indent=2))
    tmpj.replace(d / "state.json")


def read_state_meta(run: Path) -> dict[str, Any]:
    """``RUN/resume/state.json``; one-line errors when ``RUN`` is not a resumable run."""
    p = run / "resume" / "state.json"
    if not run.is_dir():
        raise UsageError(f"--resume {run}: no such run folder")
    if not p.is_file():
        raise UsageError(
            f"--resume {run}: not a resumable run (no resume/state.json; only runs distilled from a "
            "`sortcam teacher` file can resume)"
        )
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"--resume {run}: unreadable resume/state.json ({exc})") from None
    if meta.get("version") != STATE_VERSION:
        raise ModelError(f"--resume {run}: state version {meta.get('version')} (this sortcam writes {STATE_VERSION})")
    return meta


def restore_state(run: Path, meta: dict[str, Any], student: Any, optimizer: Any) -> None:
    """Assign the saved variables back; refuses a state whose file or shapes do not match."""
    path = run / "resume" / "state.npz"
    if not path.is_file() or file_sha256(path) != meta.get("sha256"):
        raise ModelError(f"--resume {run}: resume/state.npz is missing or does not match state.json")
    with np.load(path) as z:
        for prefix, variables in (("m", student.variables), ("o", optimizer.variables)):
            keys = sorted(k for k in z.files if k.startswith(prefix))
            if len(keys) != len(variables):
                raise ModelError(
                    f"--resume {run}: saved state has {len(keys)} {prefix}-variables, the run builds {len(variables)}"
                )
            for k, v in zip(keys, variables, strict=True):
                a = z[k]
                if tuple(a.shape) != tuple(v.shape):
                    raise ModelError(f"--resume {run}: variable {v.path} has shape {tuple(v.shape)}, saved {a.shape}")
                v.assign(a)


def check_resume(
    run: Path, meta: dict[str, Any], config: TrainConfig, data_fps: tuple[str, ...], teacher_sha: str
) -> None:
    """The run must be of the same recipe, data set and teacher; one line naming what differs."""
    ours = recipe_key(config)
    # a setting added after the run was saved counts as its default there
    defaults = config.defaults()
    saved = {**{k: v for k, v in defaults.items() if k in ours}, **meta.get("recipe", {})}
    diff = [k for k in sorted(set(saved) | set(ours)) if saved.get(k) != ours.get(k)]
    if diff:
        k = diff[0]
        raise UsageError(
            f"--resume {run}: the run is another recipe ({k} = {saved.get(k)!r} there, {ours.get(k)!r} here"
            + (f"; {len(diff) - 1} more" if len(diff) > 1 else "")
            + ")"
        )
    if meta.get("data") not in data_fps:  # ``dataset_fingerprints``: today's value or a record's older one
        raise UsageError(f"--resume {run}: the run was trained on another data set (fingerprint differs)")
    if meta.get("teacher_sha256") != teacher_sha:
        raise UsageError(f"--resume {run}: the run was distilled from another teacher (teacher file sha256 differs)")


def enable_determinism() -> None:
    """Deterministic TensorFlow kernels (set ``SORTCAM_DETERMINISTIC=1``; the tests do)."""
    if os.environ.get("SORTCAM_DETERMINISTIC") == "1":
        from sortcam.model.train import _tf

        _tf().config.experimental.enable_op_determinism()


# ----------------------------------------------------------------------------- the loop


def train_consistent(
    config: TrainConfig,
    model_probs: Any,
    model_logits: Any,
    teacher: Any,
    pool: npt.NDArray[np.uint8],
    pool_labels: npt.NDArray[np.int32],
    teacher_pool: npt.NDArray[np.uint8] | None,
    clean_x: npt.NDArray[np.float32],
    val_x: npt.NDArray[np.float32],
    val_y: npt.NDArray[np.int32],
    cw: npt.NDArray[np.float32],
    out: Path,
    data_fp: str,
    teacher_sha: str,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """Run (or continue) the fixed schedule; returns the last epoch's entry."""
    from sortcam.model.train import _compile, _optimizer, _warm_steps, val_scores

    nc = cw.shape[0]
    trainee = consistent_trainee(model_logits, teacher.model)
    steps = math.ceil(len(pool) / config.batch_size)
    total = config.epochs
    _compile(
        trainee,
        _optimizer(config.lr, config.weight_decay, steps * total, _warm_steps(steps, total)),
        online_kd_loss(nc, config.temperature, config.distill_alpha),
    )
    start = 0
    run_id = 1
    if config.resume:
        meta = read_state_meta(out)
        restore_state(out, meta, model_probs, trainee.optimizer)
        start = int(meta["epoch"])
        run_id = int(meta.get("run", 1)) + 1
        print(f"resume: {out} after epoch {start}/{total} (run {run_id})", flush=True)
        if start >= total:
            print("resume: the run is already finished", flush=True)
    onehot = np.eye(nc, dtype=np.float32)[pool_labels]
    weight = cw[pool_labels]
    flip = bool(config.augment.get("flip", True))
    t0 = time.time()
    last: dict[str, Any] = history[-1] if history else {}
    end = min(total, start + config.stop_after) if config.stop_after > 0 else total
    for epoch in range(start, end):
        plan = epoch_plan(len(pool), config.batch_size, config.seed, epoch, config.mixup, flip, config.cutmix)
        ds = epoch_dataset(pool, onehot, weight, plan, teacher_pool)
        logs = trainee.fit(ds, epochs=1, shuffle=False, verbose=2 if sys.stdout.isatty() else 0).history
        raw = val_scores(model_probs, val_x, val_y, nc)
        set_bn_stats(model_probs, config.bn_stats, clean_x, pool, plan)
        acc, min_recall = val_scores(model_probs, val_x, val_y, nc)
        lr = trainee.optimizer.learning_rate
        entry = {
            "phase": "distill",
            "run": run_id,
            "epoch": epoch + 1,
            "loss": float(logs["loss"][-1]),
            "val_accuracy": acc,
            "val_min_recall": min_recall,
            "val_accuracy_before_bn_reestimate": raw[0],
            "lr": float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr)),
            "time_s": round(time.time() - t0, 1),
        }
        history.append(entry)
        last = entry
        model_probs.save(out / "model.keras")
        (out / "history.json").write_text(strict_json.dumps(history, indent=1))
        save_state(
            out,
            model_probs,
            trainee.optimizer,
            {
                "epoch": epoch + 1,
                "run": run_id,
                "recipe": recipe_key(config),
                "data": data_fp,
                "teacher_sha256": teacher_sha,
            },
        )
        done = epoch + 1 - start
        eta = (time.time() - t0) / done * (total - epoch - 1)
        print(
            f"[distill] epoch {epoch + 1}/{total} loss {entry['loss']:.4f} val_acc {acc:.4f} "
            f"(before BN re-estimate {raw[0]:.4f}) min_recall {min_recall:.3f} lr {entry['lr']:.2e} "
            f"{entry['time_s']:.0f}s eta {eta:.0f}s",
            flush=True,
        )
    if end < total:
        print(
            f"stopped after epoch {end}/{total} (--stop-after); continue with: sortcam train DATA --resume {out}",
            flush=True,
        )
    return last
