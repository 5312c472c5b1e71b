"""`sortcam teacher --ensemble`: several teacher files averaged into one teacher file.

The ensemble's output is the log of its members' mean probabilities (optionally with each
member also shown the mirrored image, ``--flip-average``), so softmax of it is that mean and
a student distils from it like from any teacher. Members may differ in input size: the
ensemble takes the largest, and each smaller member sees the image resized to its own input.

Its ``teacher.json`` lists the members (path, sha256, input, their CV and val figures). When
every member carries a cross-validation on the same photos and folds (``sortcam teacher
--folds K``), the ensemble's CV is computed from their out-of-fold probabilities: each photo's
mean comes only from models that never trained on it. Val is scored on the ensemble itself.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sortcam.errors import ModelError, UsageError
from sortcam.model.data import index_dataset, load_split, parse_split_spec
from sortcam.model.teacher import (
    OOF_FILE,
    TEACHER_KIND,
    _accuracy_block,
    _keras,
    cv_pairing_problem,
    load_oof,
    load_teacher,
    predict_logits,
)

_LAYERS: dict[str, Any] = {}


def ensemble_layers() -> dict[str, Any]:
    """The layers of sortcam's own that teacher files hold (registered with Keras once, before saving or
    loading): an ensemble's two, and a ``keras.applications`` teacher's input preprocessing."""
    if _LAYERS:
        return _LAYERS
    keras = _keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="sortcam")
    class MirrorImage(keras.layers.Layer):  # type: ignore[misc,name-defined]
        """The image mirrored left to right (NHWC)."""

        def call(self, x: Any) -> Any:
            return ops.flip(x, axis=2)

    @keras.saving.register_keras_serializable(package="sortcam")
    class MeanProbabilityLogits(keras.layers.Layer):  # type: ignore[misc,name-defined]
        """``log(mean_i softmax(logits_i))``: logits whose softmax is the members' mean probability."""

        def call(self, xs: Any) -> Any:
            stacked = ops.stack([ops.log_softmax(x, axis=-1) for x in xs], axis=0)
            return ops.logsumexp(stacked, axis=0) - math.log(len(xs))

    @keras.saving.register_keras_serializable(package="sortcam")
    class AppPreprocess(keras.layers.Layer):  # type: ignore[misc,name-defined]
        """A ``keras.applications`` module's ``preprocess_input`` on RGB in [0, 255], named by its
        module so that a saved teacher loads back (a Lambda of it does not deserialize)."""

        def __init__(self, module: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.module = module
            self._fn = importlib.import_module(module).preprocess_input

        def call(self, x: Any) -> Any:
            return self._fn(x)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "module": self.module}

    _LAYERS.update(
        {"MirrorImage": MirrorImage, "MeanProbabilityLogits": MeanProbabilityLogits, "AppPreprocess": AppPreprocess}
    )
    return _LAYERS


def build_ensemble_model(members: list[Any], flip_average: bool) -> Any:
    """One Keras model: the largest member input; every member (and its mirror view) averaged."""
    keras = _keras()
    layers = ensemble_layers()
    size = max(m.input_shape[1] for m in members)
    inputs = keras.Input((size, size, 3), name="image")
    mirrored = layers["MirrorImage"](name="mirror")(inputs) if flip_average else None
    outs = []
    for i, m in enumerate(members):
        m = keras.Model(m.inputs[0], m.outputs[0], name=f"member{i}")
        m.trainable = False
        s = int(m.input_shape[1])
        views = [inputs] + ([mirrored] if mirrored is not None else [])
        for j, v in enumerate(views):
            if s != size:
                v = keras.layers.Resizing(s, s, interpolation="bilinear", antialias=True, name=f"to{s}_{i}_{j}")(v)
            outs.append(m(v, training=False))
    logits = layers["MeanProbabilityLogits"](name="mean_probability")(outs) if len(outs) > 1 else outs[0]
    return keras.Model(inputs, logits, name="sortcam_teacher_ensemble")


def _member_cv(metas: list[dict[str, Any]], paths: list[Path]) -> tuple[list[dict[str, Any]], str]:
    """Each member's out-of-fold arrays, or why the ensemble gets no CV (one line)."""
    arrays = []
    for meta, path in zip(metas, paths, strict=True):
        if not (meta.get("cv") or {}).get("oof_file"):
            return [], f"{path} has no cross-validation with out-of-fold probabilities"
        try:
            arrays.append(load_oof(meta, path.with_name("teacher.json")))
        except ModelError as exc:
            return [], str(exc)
    why = cv_pairing_problem(metas, arrays, [str(p) for p in paths])
    return ([], why) if why else (arrays, "")


def build_ensemble(
    data_dir: str,
    members: list[str],
    out_dir: str,
    flip_average: bool = False,
    seed: int = 1337,
    split: str = "70/10/20",
) -> dict[str, Any]:
    """Write ``OUT/teacher.keras`` (the ensemble) and its ``teacher.json``; return the metadata."""
    if len(members) < 1:
        raise UsageError("--ensemble needs at least one teacher file")
    paths = [Path(m) for m in members]
    if len(set(p.resolve() for p in paths)) != len(paths):
        raise UsageError("--ensemble names the same teacher file twice")
    out = Path(out_dir)
    if any(out.resolve() == p.parent.resolve() for p in paths):
        raise UsageError(f"--out {out} holds a member teacher; write the ensemble to another folder")
    index = index_dataset(data_dir, parse_split_spec(split), seed)
    classes = index.classes
    from sortcam.model.consistent import file_sha256

    loaded = [load_teacher(p, classes) for p in paths]  # one-line errors: missing, other classes
    metas = [t.meta for t in loaded]
    model = build_ensemble_model([t.model for t in loaded], flip_average)
    size = int(model.input_shape[1])
    fit = {str(m["config"].get("fit", "stretch")) for m in metas}
    if len(fit) != 1:
        raise UsageError(f"--ensemble members fit photos differently ({sorted(fit)})")
    fit_mode = fit.pop()
    print(
        f"teacher ensemble: {len(paths)} members at {sorted({t.input_size for t in loaded})}, input {size}x{size}"
        + (", each also on the mirrored image" if flip_average else ""),
        flush=True,
    )
    t0 = time.time()
    meta: dict[str, Any] = {
        "kind": TEACHER_KIND,
        "classes": classes,
        "config": {
            "ensemble": [str(p) for p in paths],
            "flip_average": flip_average,
            "data_dir": data_dir,
            "seed": seed,
            "split": split,
            "fit": fit_mode,
            "size": size,
            "via": 0,
            "folds": (metas[0].get("cv") or {}).get("folds", 0),
        },
        "members": [
            {
                "path": str(p),
                "sha256": file_sha256(p),
                "input": t.input_size,
                "backbone": t.meta.get("config", {}).get("backbone"),
                "cv_accuracy": (t.meta.get("cv") or {}).get("accuracy"),
                "val_accuracy": (t.meta.get("val") or {}).get("accuracy"),
            }
            for p, t in zip(paths, loaded, strict=True)
        ],
    }
    arrays, why = _member_cv(metas, paths)
    out.mkdir(parents=True, exist_ok=True)
    (out / OOF_FILE).unlink(missing_ok=True)
    if arrays:
        views = [a["probs"] for a in arrays] + ([a["probs_flip"] for a in arrays] if flip_average else [])
        probs = np.mean(views, axis=0).astype(np.float32)
        flipped = np.mean([a["probs_flip"] for a in arrays], axis=0).astype(np.float32)
        labels = arrays[0]["labels"].astype(np.int32)
        pred = probs.argmax(1)
        meta["cv"] = {
            "folds": meta["config"]["folds"],
            **_accuracy_block(pred, labels, classes),
            "predicted": [int(p) for p in pred],
            "labels": [int(t) for t in labels],
            "oof_file": OOF_FILE,
            "from": "the members' out-of-fold probabilities, averaged",
        }
        np.savez_compressed(out / OOF_FILE, probs=probs, probs_flip=flipped, labels=labels, fold=arrays[0]["fold"])
        print(f"[teacher] ensemble CV on train (from the members' folds): {meta['cv']['accuracy']:.4f}", flush=True)
    else:
        meta["cv_missing"] = why
        print(f"[teacher] no ensemble CV: {why}", flush=True)
    va, _ = load_split(index.split("val"), size, size, fit_mode)
    if len(va.labels):
        pred = predict_logits(model, va.images).argmax(1)
        meta["val"] = _accuracy_block(pred, va.labels, classes)
        print(f"[teacher] ensemble val accuracy (watched): {meta['val']['accuracy']:.4f}", flush=True)
    meta["train_time_s"] = round(time.time() - t0, 1)
    tmp = out / "teacher.part.keras"
    try:
        model.save(tmp)
    except Exception as exc:  # pragma: no cover - disk full and the like
        raise ModelError(f"cannot write {tmp}: {exc}") from None
    tmp.replace(out / "teacher.keras")
    (out / "teacher.json").write_text(json.dumps(meta, indent=2))
    print(f"teacher: wrote {out / 'teacher.keras'} ({len(paths)} members)", flush=True)
    return meta
