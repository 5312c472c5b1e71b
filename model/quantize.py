"""Full-int8 post-training quantization, TFLM check, and the model card.

``quantize`` turns a trained float Keras model into a ``.tflite`` whose every tensor is
int8 (int32 biases), with int8 input and output, calibrated on a representative set of
train images fed through the one preprocessing. It then loads the result in the TFLM
runtime, invokes it, measures the smallest arena that works, counts MACs, scores float
and int8 on val and writes the model card beside the ``.tflite``.

Optional quantization-aware training (``--qat``) uses tensorflow-model-optimization,
which only works with legacy tf-keras (``TF_USE_LEGACY_KERAS=1``) and flat functional
models: it runs in a child process (``python -m sortcam.model.qat``) that rebuilds the
MobileNetV2 student in tf-keras, copies the weights, fine-tunes with fake-quant nodes
and converts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sortcam.card import MODEL_DIR, TRASHNET_BINS, TRASHNET_BIODEGRADABLE, InputSpec, ModelCard, PreprocessSpec
from sortcam.errors import DataError, ModelError, UsageError, first_line
from sortcam.model.data import index_dataset, index_for, load_split, merged_from
from sortcam.preprocess import DEFAULT_RANGE, RESIZE_METHOD, to_float
from sortcam.runtime import Int8Classifier, capture_native_output

log = logging.getLogger(__name__)

ARENA_MARGIN = 1.10
"""The card's ``arena_bytes`` is the TFLM-measured minimum plus 10% (rounded up to 1 KiB):
ESP-NN's optimised kernels may ask for scratch buffers the reference kernels do not."""
FLASH_LIMIT = 1_000_000
ARENA_LIMIT = 300 * 1024


def representative_images(
    data_dir: str | Path,
    classes: list[str],
    height: int,
    width: int,
    fit: str,
    count: int,
    seed: int,
    training: dict[str, Any] | None = None,
) -> npt.NDArray[np.float32]:
    """``count`` train images (stratified draw, fixed seed) as float model input; ``training``
    (the run's settings) draws the train split as the run did (:func:`index_for`)."""
    index = index_for(data_dir, training, classes=classes)
    split = index.split("train")
    if len(split) == 0:
        raise DataError(f"{data_dir}: no train images for calibration")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split))[: max(1, count)]
    sub = type(split)([split.paths[i] for i in order], [split.labels[i] for i in order])
    loaded, _ = load_split(sub, height, width, fit)
    if len(loaded.images) == 0:
        raise DataError("no readable calibration images")
    return to_float(loaded.images, DEFAULT_RANGE)


def convert_full_int8(model: Any, rep: npt.NDArray[np.float32]) -> bytes:
    """Keras 3 model to a full-int8 flatbuffer (batch 1, int8 in and out)."""
    from sortcam.model.train import _tf

    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep_data() -> Any:
        for i in range(len(rep)):
            yield [rep[i : i + 1]]

    converter.representative_dataset = rep_data
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with capture_native_output(), warnings.catch_warnings():
        # The converter warns that int8 input statistics were "expected, but not specified": they
        # come from the representative set, and the result is checked and measured after conversion.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        try:
            data = converter.convert()
        except Exception as exc:
            first = first_line(exc, 300)
            raise ModelError(f"TFLite conversion failed: {first}") from None
    return bytes(data)


def int8_logit_shift(model: Any, data: bytes, rep: npt.NDArray[np.float32]) -> npt.NDArray[np.float64] | None:
    """The mean difference, int8 minus float, of the logits (the input of the final SOFTMAX) over
    the calibration images ``rep``, centred (softmax ignores a common shift). ``None`` when the
    model has no layer named ``logits`` before its softmax.

    The int8 logits are read from the TensorFlow Lite interpreter with every tensor kept; its int8
    kernels compute what TFLM's reference kernels do, up to rounding in a few ops, which is far
    below the shift this measures.
    """
    from sortcam.model.train import _keras

    keras = _keras()
    try:
        head = keras.Model(model.inputs, model.get_layer("logits").output)
    except ValueError:
        return None
    from sortcam.model.bias_correct import int8_input, interpreter

    interp = interpreter(data)
    try:  # a private method of the interpreter (TensorFlow 2.21); without it there is nothing to measure
        ops = interp._get_ops_details()
    except AttributeError:
        return None
    softmax = [op for op in ops if op.get("op_name") == "SOFTMAX"]
    if not softmax:
        return None
    logits_index = int(softmax[-1]["inputs"][0])
    scale, zero = next(d for d in interp.get_tensor_details() if d["index"] == logits_index)["quantization"]
    inp = interp.get_input_details()[0]
    zq = np.empty((len(rep), int(head.output_shape[-1])), np.float64)
    for i in range(len(rep)):
        interp.set_tensor(inp["index"], int8_input(interp, rep[i : i + 1]))
        interp.invoke()
        zq[i] = (interp.get_tensor(logits_index).astype(np.float64).reshape(-1) - zero) * scale
    zf = np.asarray(head.predict(rep, batch_size=64, verbose=0), np.float64)
    shift = (zq - zf).mean(axis=0)
    return shift - shift.mean()


def convert_bias_corrected(
    model: Any, rep: npt.NDArray[np.float32], data: bytes, max_layers: int | None = None
) -> tuple[bytes, dict[str, Any], list[float] | None] | None:  # fmt: skip
    """Layer-wise bias correction (``sortcam.model.bias_correct``): every layer's bias moved against
    the mean int8 - float error of its output on the calibration images, in graph order. Returns
    the new flatbuffer, what was done, and the centred logit shift of plain PTQ (``data``) where it
    can be read; ``None`` when no layer's output can be found in the int8 graph."""
    from sortcam.model.bias_correct import convert_layer_bias_corrected

    shift = int8_logit_shift(model, data, rep)
    fixed = convert_layer_bias_corrected(
        model, rep, data, progress=lambda m: print(m, flush=True), max_layers=max_layers
    )
    if fixed is None:
        return None
    corrected, info = fixed
    return corrected, info, (None if shift is None else [round(float(v), 4) for v in shift])


def check_full_int8(data: bytes, name: str) -> None:
    """Refuse, with the reason, a model that is float or hybrid (the firmware needs full int8)."""
    from sortcam.tools.tflite_info import read_info

    problem = read_info(data, name).quantization_problem()
    if problem:
        raise ModelError(f"{name} is not usable on the ESP32: {problem}")


def train_meta(model_path: Path) -> dict[str, Any]:
    """The settings of the `sortcam train` run that wrote ``model_path`` (its train_config.json
    beside it), or {} when there is none or it cannot be read."""
    try:
        return dict(json.loads(model_path.with_name("train_config.json").read_text()))
    except (OSError, ValueError):
        return {}


def _recipe_facts(model_path: Path, depth: int = 0) -> dict[str, Any]:
    """The teacher and the cost of the run that made ``model_path``, from its ``summary.json``
    (with the cost of the run it was warm-started from, ``init_cpu_hours``, included)."""
    import os

    try:
        summary = json.loads(model_path.with_name("summary.json").read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, Any] = {}
    if summary.get("teacher"):
        teacher = {k: summary.get(f"teacher_{k}") for k in ("val_accuracy", "cv_accuracy", "crossfit_train_accuracy")}
        teacher = {k: v for k, v in teacher.items() if v is not None}
        teacher["kind"] = summary.get("teacher_kind", "linear probe on a frozen backbone")
        teacher["file"] = Path(str(summary["teacher"])).name
        out["teacher"] = teacher
    wall = float(summary.get("train_time_total_s") or summary.get("train_time_s") or 0.0)
    teacher_s = 0.0
    if summary.get("teacher_kind") and Path(str(summary["teacher"])).with_name("teacher.json").is_file():
        tmeta = Path(str(summary["teacher"])).with_name("teacher.json")
        try:
            teacher_s = float(json.loads(tmeta.read_text()).get("train_time_s", 0.0))
        except (OSError, ValueError):
            teacher_s = 0.0
    if wall:
        cores = os.cpu_count() or 1
        cost: dict[str, Any] = {
            "student_wall_s": round(wall, 1),
            "teacher_wall_s": round(teacher_s, 1),
            "cores": cores,
            "cpu_hours": round((wall + teacher_s) * cores / 3600.0, 2),
            "epochs": summary.get("epochs_done"),
        }
        # A warm-started run (--init) costs its own time plus the run it started from.
        init = train_meta(model_path).get("init")
        if init and depth < 8:
            before = _recipe_facts(Path(str(init)), depth + 1).get("training_cost", {})
            if before.get("cpu_hours"):
                cost["this_run_cpu_hours"] = cost["cpu_hours"]
                cost["init_cpu_hours"] = before["cpu_hours"]
                cost["cpu_hours"] = round(cost["cpu_hours"] + before["cpu_hours"], 2)
        out["training_cost"] = cost
    return out


def make_card(
    tflite_path: Path,
    data: bytes,
    classes: list[str],
    height: int,
    width: int,
    fit: str,
    metrics: dict[str, Any],
    arena_measured: int,
    extra: dict[str, Any],
) -> ModelCard:
    """Card for ``tflite_path`` with sizes measured here; TrashNet classes get the default bins."""
    from sortcam.card import sha256_file
    from sortcam.tools.tflite_info import read_info

    info = read_info(data, str(tflite_path))
    arena = int(-(-int(arena_measured * ARENA_MARGIN) // 1024) * 1024)
    trashnet = set(classes) == set(TRASHNET_BINS)
    return ModelCard(
        tflite=tflite_path.name,
        classes=list(classes),
        input=InputSpec(height, width, 3, "rgb"),
        preprocess=PreprocessSpec(fit, RESIZE_METHOD, DEFAULT_RANGE),
        bins=dict(TRASHNET_BINS) if trashnet else {},
        biodegradable=dict(TRASHNET_BIODEGRADABLE) if trashnet else {},
        metrics=metrics,
        flash_bytes=len(data),
        arena_bytes=arena,
        macs=info.macs,
        sha256=sha256_file(tflite_path),
        extra={"arena_measured_bytes": int(arena_measured), "ops": info.op_names, **extra},
    )


def quantize(
    model_path: str | Path,
    data_dir: str | Path,
    out: str | Path | None = None,
    name: str = "sortcam_trashnet",
    representative: int = 300,
    fit: str | None = None,
    qat: bool = False,
    qat_epochs: int = 3,
    seed: int = 1337,
    evaluate: bool = True,
    note: str | None = None,
    bias_correct: bool = False,
    qat_distill_views: int = 4,
    bias_correct_layers: int | None = None,
    eval_data: str | Path | None = None,
    recipe_card: str | Path | None = None,
) -> ModelCard:
    """Quantize (or, for a full-int8 ``.tflite``, re-check) a model and write its card; returns the card."""
    from sortcam.model.evaluate import evaluate_model

    mp = Path(model_path)
    if bias_correct and qat:
        raise UsageError("--bias-correct is for post-training quantization; it does not go with --qat")
    if bias_correct_layers is not None and (not bias_correct or bias_correct_layers < 1):
        raise UsageError("--bias-correct-layers N needs --bias-correct and N >= 1")
    if bias_correct and mp.suffix == ".tflite":
        raise UsageError("--bias-correct needs the float .keras model, not a .tflite")
    if not mp.is_file():
        raise ModelError(f"model not found: {mp}")
    out_path = Path(out) if out else MODEL_DIR / f"{name}.tflite"
    if out_path.suffix != ".tflite":
        out_path = out_path / f"{name}.tflite"
    meta = train_meta(mp)
    extra: dict[str, Any] = {}
    if recipe_card is not None:
        extra["recipe_metrics"] = _recipe_metrics(recipe_card)
    if mp.suffix == ".tflite":
        data = mp.read_bytes()
        check_full_int8(data, str(mp))
        from sortcam.card import load_card

        try:
            old = load_card(mp)
            classes, fit = list(old.classes), fit or old.preprocess.fit
        except ModelError:
            raise ModelError(f"{mp} is already full int8 but has no card beside it to take classes from") from None
        clf0 = Int8Classifier(data)
        height, width = clf0.input_shape[1], clf0.input_shape[2]
        float_model_path = None
    else:
        from sortcam.model.train import classes_for, load_keras_model

        model = load_keras_model(mp)
        _, height, width, _ = (int(v) if v is not None else 0 for v in model.input_shape)
        classes = classes_for(mp) or index_dataset(data_dir).classes
        if int(model.output_shape[-1]) != len(classes):
            raise ModelError(f"{mp} has {model.output_shape[-1]} outputs but {len(classes)} classes")
        _check_recipe_classes(extra, classes, recipe_card)  # before the minutes of conversion
        if fit is None and "fit" not in meta:
            log.warning(
                "no train_config.json beside %s: assuming --fit crop; pass --fit stretch if it was trained so", mp
            )
        fit = fit or str(meta.get("fit", "crop"))
        print(f"calibration: {representative} train images at {height}x{width} ({fit})", flush=True)
        rep = representative_images(data_dir, classes, height, width, fit, representative, seed, meta)
        if qat:
            data = _run_qat(
                mp, data_dir, classes, height, width, fit, qat_epochs, seed, representative, qat_distill_views
            )
            extra["qat_epochs"] = qat_epochs
            extra["qat_distill_views"] = qat_distill_views
        else:
            data = convert_full_int8(model, rep)
            if bias_correct:
                fixed = convert_bias_corrected(model, rep, data, bias_correct_layers)
                if fixed is None:
                    log.warning(
                        "--bias-correct: no layer's output of %s can be found in the int8 graph (or this "
                        "TensorFlow's interpreter lists no ops, or it lacks tensorflow.lite.tools."
                        "flatbuffer_utils); left as plain PTQ",
                        mp,
                    )
                else:
                    data, info, shift = fixed
                    if shift is not None:
                        info["logit_shift_before"] = dict(zip(classes, shift, strict=True))
                        print(
                            "bias correction: plain PTQ's int8 - float logit shift on the calibration images "
                            + ", ".join(f"{c} {v:+.3f}" for c, v in zip(classes, shift, strict=True)),
                            flush=True,
                        )
                    extra["bias_correction"] = info
                    if info["kept_plain"]:
                        log.warning("--bias-correct: the corrected logits sit further from the float ones; "
                                    "kept plain PTQ")  # fmt: skip
                    print(
                        f"bias correction: {info['layers']} layers; logit RMS error on the calibration images "
                        f"{info['logit_rms_error_before']} -> {info['logit_rms_error_after']}",
                        flush=True,
                    )
        check_full_int8(data, "converted model")
        float_model_path = mp
    _check_recipe_classes(extra, classes, recipe_card)  # a .tflite re-check: before anything is written
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.resolve() != mp.resolve():
        out_path.write_bytes(data)
    print("TFLM: loading and invoking the int8 model, measuring the arena", flush=True)
    with capture_native_output():
        clf = Int8Classifier(data, name=str(out_path))
        clf.invoke_int8(np.zeros(clf.input_shape, np.int8))
    from sortcam.runtime import measure_arena

    arena = measure_arena(data)
    metrics: dict[str, Any] = {}
    eval_dir = eval_data if eval_data is not None else data_dir
    if evaluate and not len(index_for(eval_dir, meta, classes=classes).split("val")):
        # A folder of train photos only (scripts/merge_splits.py): nothing held out to score.
        print(f"{eval_dir} has no val photos: the card gets no accuracy figures (--eval-data DIR)", flush=True)
        evaluate = False
    if evaluate:
        tmp = _temp_card(out_path, classes, height, width, fit)
        tmp.extra["training"] = _card_training(meta)
        int8_m, int8_s, _ = evaluate_model(out_path, eval_dir, "val", card=tmp, fit=fit)
        metrics["int8"] = _brief(int8_m)
        if float_model_path is not None:
            float_m, float_s, _ = evaluate_model(float_model_path, eval_dir, "val", fit=fit)
            metrics["float"] = _brief(float_m)
            if len(float_s.labels) == len(int8_s.labels):
                agree = float((float_s.probs.argmax(1) == int8_s.probs.argmax(1)).mean())
                metrics["float_int8_agreement"] = round(agree, 4)
        metrics["data"] = int8_m["data"]
        if "seen_in_training" in int8_m:
            metrics["seen_in_training"] = int8_m["seen_in_training"]
    if meta:
        extra["training"] = _card_training(meta)
    extra.update(_recipe_facts(mp))
    if note:
        extra["notes"] = note
    card = make_card(out_path, data, classes, height, width, fit, metrics, arena, extra)
    card.save(out_path.with_suffix(".json"))
    hist = mp.with_name("history.json")
    if mp.suffix == ".keras" and hist.is_file():
        # The report of the int8 model draws its training curves from this copy.
        out_path.with_suffix(".history.json").write_text(hist.read_text())
    problems = []
    if card.flash_bytes > FLASH_LIMIT:
        problems.append(f"flash {card.flash_bytes} B > {FLASH_LIMIT}")
    if card.arena_bytes > ARENA_LIMIT:
        problems.append(f"arena {card.arena_bytes} B > {ARENA_LIMIT}")
    if problems:
        log.warning("model does not fit an ESP32-CAM budget: %s", "; ".join(problems))
    return card


def _recipe_metrics(path: str | Path) -> dict[str, Any]:
    """The held-out figures of the recipe's fit without val (``--recipe-card``), for the card of
    its fit on train + val, which has no held-out figure of its own."""
    from sortcam.card import load_card

    other = load_card(path)
    m = other.metrics
    if "int8" not in m:
        raise UsageError(f"--recipe-card {path}: the card has no int8 figures")
    if m.get("seen_in_training"):
        raise UsageError(f"--recipe-card {path}: its figures are on photos that model trained on")
    return {
        "model": other.sha256[:12],
        "classes": list(other.classes),
        "fit_on": (other.extra.get("training") or {}).get("data_dir"),
        **{k: m[k] for k in ("int8", "float", "float_int8_agreement", "data") if k in m},
    }


def _check_recipe_classes(extra: dict[str, Any], classes: list[str], recipe_card: str | Path | None) -> None:
    recipe = extra.get("recipe_metrics")
    if recipe is not None and recipe["classes"] != classes:
        raise UsageError(f"--recipe-card {recipe_card}: its classes {recipe['classes']} are not this model's")


def _card_training(meta: dict[str, Any]) -> dict[str, Any]:
    """The card's ``training`` block: the run's settings, and the splits a merged folder holds."""
    training = {k: v for k, v in meta.items() if k not in ("out_dir", "teacher_cache", "resume")}
    merged = merged_from(meta.get("data_dir", "")) if meta.get("data_dir") else None
    if merged:
        # A folder of scripts/merge_splits.py: name the splits it trained on, so a figure on
        # them is never read as a held-out one (sortcam evaluate checks this).
        training["merged_from"] = merged
    return training


def _temp_card(path: Path, classes: list[str], height: int, width: int, fit: str) -> ModelCard:
    return ModelCard(
        tflite=path.name,
        classes=classes,
        input=InputSpec(height, width),
        preprocess=PreprocessSpec(fit=fit),
        path=path.with_suffix(".json"),
    )


def _brief(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "top3_accuracy": m["top3_accuracy"],
        "min_recall": m["min_recall"],
        "recall": {k: v["recall"] for k, v in m["per_class"].items()},
        "precision": {k: v["precision"] for k, v in m["per_class"].items()},
        "images": m["images"],
    }


def _run_qat(
    model_path: Path,
    data_dir: str | Path,
    classes: list[str],
    height: int,
    width: int,
    fit: str,
    epochs: int,
    seed: int,
    representative: int,
    distill_views: int = 4,
) -> bytes:
    """Quantization-aware fine-tuning in a child process with legacy tf-keras (see ``sortcam.model.qat``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "qat.tflite"
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        cmd = [
            sys.executable,
            "-m",
            "sortcam.model.qat",
            str(model_path),
            str(data_dir),
            str(out),
            "--height",
            str(height),
            "--width",
            str(width),
            "--fit",
            fit,
            "--epochs",
            str(epochs),
            "--seed",
            str(seed),
            "--representative",
            str(representative),
            "--classes",
            ",".join(classes),
            "--distill-views",
            str(distill_views),
        ]
        proc = subprocess.run(cmd, env=env, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0 or not out.is_file():
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise ModelError(f"quantization-aware training failed: {last}")
        return out.read_bytes()


def quantize_cli(args: argparse.Namespace) -> int:
    card = quantize(
        args.model,
        args.data_dir,
        args.out,
        args.name,
        args.representative,
        args.fit,
        args.qat,
        args.qat_epochs,
        args.seed,
        not args.no_eval,
        getattr(args, "note", None),
        bias_correct=getattr(args, "bias_correct", False),
        bias_correct_layers=getattr(args, "bias_correct_layers", None),
        qat_distill_views=getattr(args, "qat_distill_views", 4),
        eval_data=getattr(args, "eval_data", None),
        recipe_card=getattr(args, "recipe_card", None),
    )
    m = card.metrics
    print(f"wrote {card.model_path} and {card.path}")
    print(
        f"flash {card.flash_bytes} B, arena {card.arena_bytes} B "
        f"(measured {card.extra.get('arena_measured_bytes')} B), "
        f"MACs {card.macs / 1e6:.2f} M, ops {', '.join(card.extra.get('ops', []))}"
    )
    if "int8" in m:
        line = f"val accuracy: int8 {m['int8']['accuracy']:.4f}"
        if "float" in m:
            line += f", float {m['float']['accuracy']:.4f}, agreement {m.get('float_int8_agreement')}"
        print(line + f"  ({m.get('data')})")
    return 0
