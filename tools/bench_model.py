"""``sortcam bench model``: sizes, MACs, TFLM latency and accuracy of a shipped model.

Records ``benchmarks/model.json`` and ``benchmarks/model.md`` (machine, date, command).
No TensorFlow: the int8 model runs in the TFLM runtime; the float/int8 agreement and
float accuracy come from the model card (``sortcam quantize`` measured them with TF).

ESP32 latency is estimated from the MAC count: Espressif's person-detection model
counts 7.39 M MACs and runs in 380 ms with ESP-NN on a 240 MHz ESP32, about
19.4 M MACs per second; 500 ms per item therefore allows about 9.7 M MACs. The
ESP32-S3 estimate ([env:esp32s3cam]) uses the same model's 54 ms with ESP-NN's S3
kernels (its vector instructions) at 240 MHz in esp-tflite-micro's figures, about
137 M MACs per second. Both are estimates from another model, not measurements.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sortcam.benchinfo import machine
from sortcam.card import load_card
from sortcam.checkout import repo_root
from sortcam.runtime import Int8Classifier, capture_native_output, measure_arena
from sortcam.tools.tflite_info import read_info

ESP32_MACS_PER_S = 7.39e6 / 0.380
"""Person detection: 7.39 M MACs in 380 ms with ESP-NN at 240 MHz (about 19.4 M MACs/s)."""
ESP32S3_MACS_PER_S = 7.39e6 / 0.054
"""Person detection on the ESP32-S3: 54 ms with ESP-NN's S3 kernels at 240 MHz (about 137 M MACs/s)."""
TARGET_LATENCY_MS = 500.0
FLASH_LIMIT = 1_000_000
ARENA_LIMIT = 300 * 1024
REPO = repo_root()


def bench_model(
    card_path: str | Path | None = None, data_dir: str | Path | None = None, runs: int = 20
) -> dict[str, Any]:
    """Measure the model; ``data_dir`` (optional) re-scores int8 accuracy on its val split in TFLM."""
    card = load_card(card_path)
    data = card.read_model()  # the reported sha256 is the file's, checked against the card
    info = read_info(data, str(card.model_path))
    with capture_native_output():
        clf = Int8Classifier(data, name=str(card.model_path))
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=clf.input_shape, dtype=np.int16).astype(np.int8)
    clf.invoke_int8(x)
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        clf.invoke_int8(x)
        times.append((time.perf_counter() - t0) * 1000.0)
    arena = measure_arena(data)
    est_ms = info.macs / ESP32_MACS_PER_S * 1000.0
    result: dict[str, Any] = {
        "model": card.tflite,
        "sha256": card.sha256,
        "input": f"{card.input.height}x{card.input.width}x{card.input.channels}",
        "flash_bytes": len(data),
        "flash_limit_bytes": FLASH_LIMIT,
        "arena_measured_bytes": arena,
        "arena_card_bytes": card.arena_bytes,
        "arena_limit_bytes": ARENA_LIMIT,
        "macs": info.macs,
        "ops": {o.name: o.count for o in info.ops},
        "tflm_latency_ms_here": {
            "median": round(float(np.median(times)), 2),
            "min": round(float(min(times)), 2),
            "runs": len(times),
        },
        "esp32_latency_ms_estimate": round(est_ms, 1),
        "esp32_estimate_basis": "MACs / 19.4 M MACs/s (person detection: 7.39 M MACs in 380 ms, ESP-NN, 240 MHz)",
        "esp32_target_ms": TARGET_LATENCY_MS,
        "esp32s3_latency_ms_estimate": round(info.macs / ESP32S3_MACS_PER_S * 1000.0, 1),
        "esp32s3_estimate_basis": "MACs / 137 M MACs/s (person detection: 7.39 M MACs in 54 ms, ESP-NN, ESP32-S3, "
        "240 MHz)",
        "metrics_from_card": card.metrics,
    }
    if "float_int8_agreement" in card.metrics:
        result["float_int8_agreement"] = card.metrics["float_int8_agreement"]
    recipe = card.extra.get("recipe_metrics")
    if recipe:
        result["recipe_metrics"] = recipe
    # The held-out figure: the card's own, or, for a fit on train + val, its recipe's without val.
    held_out = card.metrics if not card.metrics.get("seen_in_training") else (recipe or {})
    teacher = card.extra.get("teacher")
    if teacher:
        result["teacher"] = teacher
        student = held_out.get("int8", {}).get("accuracy")
        if student is not None and teacher.get("val_accuracy") is not None:
            result["student_teacher_gap_points"] = round(100 * (float(teacher["val_accuracy"]) - student), 1)
    if card.extra.get("training_cost"):
        result["training_cost"] = card.extra["training_cost"]
    if data_dir is not None:
        from sortcam.model.evaluate import evaluate_model

        m, _, _ = evaluate_model(card.model_path, data_dir, "val", card=card)
        result["int8_tflm_rescored"] = {
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "min_recall": m["min_recall"],
            "data": m["data"],
            "recall": {k: v["recall"] for k, v in m["per_class"].items()},
        }
    return result


def write_bench(
    result: dict[str, Any], out_dir: Path | None = None, argv: list[str] | None = None
) -> tuple[Path, Path]:
    """Write ``model.json`` and ``model.md`` with machine, date and the command."""
    out = out_dir or (REPO if REPO is not None else Path.cwd()) / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    command = "sortcam " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    host = machine()
    meta: dict[str, Any] = {
        "machine": host,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
    }
    full = {**meta, **result}
    jp, mp = out / "model.json", out / "model.md"
    jp.write_text(json.dumps(full, indent=2) + "\n")
    m = result.get("metrics_from_card", {})
    i8, fl = m.get("int8", {}), m.get("float", {})
    lines = [
        "# Model benchmark",
        "",
        "- machine: " + ", ".join(f"{k} {v}" for k, v in host.items()),
        f"- date: {meta['date']}",
        f"- command: `{command}`",
        "",
        "| figure | value | budget |",
        "|---|---|---|",
        f"| model | `{result['model']}` ({result['input']}, sha256 {result['sha256'][:12]}) | |",
        f"| flash | {result['flash_bytes']:,} B | ≤ {FLASH_LIMIT:,} B |",
        f"| arena (TFLM measured / card) | {result['arena_measured_bytes']:,} B / {result['arena_card_bytes']:,} B "
        f"| ≤ {ARENA_LIMIT:,} B |",
        f"| MACs | {result['macs'] / 1e6:.2f} M | ≤ 9.7 M |",
        f"| ESP32 latency (estimate) | {result['esp32_latency_ms_estimate']:.0f} ms | ≤ {TARGET_LATENCY_MS:.0f} ms |",
        f"| ESP32-S3 latency (estimate) | {result['esp32s3_latency_ms_estimate']:.0f} ms "
        f"| ≤ {TARGET_LATENCY_MS:.0f} ms |",
        f"| TFLM latency here (reference kernels) | {result['tflm_latency_ms_here']['median']:.1f} ms median | |",
    ]
    seen = bool(m.get("seen_in_training"))
    rm = result.get("recipe_metrics") or {}
    if rm.get("int8"):
        what = f"the recipe fitted without val, {rm.get('model', '?')}, on {rm.get('data', '?')}"
        lines.append(f"| int8 accuracy ({what}) | {rm['int8'].get('accuracy', 0):.4f} | ≥ 0.90 |")
        lines.append(f"| its int8 min per-class recall | {rm['int8'].get('min_recall', 0):.4f} | ≥ 0.85 |")
    if i8:
        budget = "not held out" if seen else "≥ 0.90"
        lines.append(f"| int8 accuracy ({m.get('data', '?')}) | {i8.get('accuracy', 0):.4f} | {budget} |")
        lines.append(f"| int8 min per-class recall | {i8.get('min_recall', 0):.4f} | {'' if seen else '≥ 0.85'} |")
    if fl:
        lines.append(f"| float accuracy ({m.get('data', '?')}) | {fl.get('accuracy', 0):.4f} | |")
    if "float_int8_agreement" in result:
        lines.append(f"| float/int8 top-1 agreement | {result['float_int8_agreement']:.4f} | |")
    if "teacher" in result:
        t = result["teacher"]
        if t.get("val_accuracy") is not None:
            lines.append(f"| teacher ({t.get('kind', '?')}) val accuracy | {t['val_accuracy']:.4f} | |")
        else:  # fitted with no val split (a train + val fit): there is nothing it did not see
            lines.append(f"| teacher ({t.get('kind', '?')}) val accuracy | none: it trained on val too | |")
        if "cv_accuracy" in t:
            lines.append(f"| teacher cross-validated accuracy on train | {t['cv_accuracy']:.4f} | |")
        if "student_teacher_gap_points" in result:
            lines.append(
                f"| student (int8{', the recipe without val' if seen else ''}) to teacher gap on val "
                f"| {result['student_teacher_gap_points']:.1f} points | |"
            )
    if "training_cost" in result:
        c = result["training_cost"]
        lines.append(
            f"| training cost of the recipe | {c['cpu_hours']:.2f} CPU-hours ({c['cores']} cores; student "
            f"{c['student_wall_s'] / 60:.0f} min, teacher {c['teacher_wall_s'] / 60:.0f} min wall"
            + (f"; warm-started from a run of {c['init_cpu_hours']:.2f} CPU-hours" if "init_cpu_hours" in c else "")
            + ") | |"
        )
    if "int8_tflm_rescored" in result:
        r = result["int8_tflm_rescored"]
        lines.append(f"| int8 accuracy re-scored here ({r['data']}) | {r['accuracy']:.4f} | |")
    if i8.get("recall"):
        lines += [
            "",
            "Per-class int8 recall ("
            + str(m.get("data", "?"))
            + "): "
            + ", ".join(f"{k} {v:.3f}" for k, v in i8["recall"].items()),
        ]
    if rm.get("int8", {}).get("recall"):
        lines += [
            "",
            f"Per-class int8 recall of the recipe fitted without val ({rm.get('data', '?')}, held out): "
            + ", ".join(f"{k} {v:.3f}" for k, v in rm["int8"]["recall"].items()),
        ]
    lines += [
        "",
        "ESP32 latency = MACs / 19.4 M MACs/s (Espressif person detection: 7.39 M MACs in 380 ms with",
        "ESP-NN on a 240 MHz ESP32); ESP32-S3 latency = MACs / 137 M MACs/s (the same model in 54 ms with",
        "ESP-NN's S3 kernels at 240 MHz). TFLM latency here uses the reference kernels on this machine's CPU.",
        "",
    ]
    mp.write_text("\n".join(lines))
    return jp, mp
