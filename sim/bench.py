"""``sortcam bench sim``: how many frames per second the device twin runs on this machine.

One frame is what the twin does for every camera frame: the preprocessing of
:mod:`sortcam.preprocess` (crop, fixed-point resize, int8 lookup) of a 256x192 sample
photo plus one TFLM invoke of the model (no reuse of identical frames: every frame is
invoked). Preprocessing and invoke are also timed apart. Results go to
``benchmarks/sim.json`` and ``benchmarks/sim.md`` with the machine, the date and the
command.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sortcam.benchinfo import machine
from sortcam.card import load_card
from sortcam.errors import DataError, UsageError
from sortcam.preprocess import fit_resize, int8_lut
from sortcam.runtime import Int8Classifier
from sortcam.sim.sources import SAMPLES_DIR, list_folder, read_item


def run_bench(card_path: str | None = None, frames: int = 50, warmup: int = 3) -> dict[str, Any]:
    """Time ``frames`` twin frames; returns the figures (times in ms, rates per second)."""
    if frames < 1:
        raise UsageError("--frames must be at least 1")
    card = load_card(card_path)
    clf = Int8Classifier(card.read_model(), name=str(card.model_path))
    h, w = clf.input_shape[1], clf.input_shape[2]
    lut = int8_lut(clf.input_quant.scale, clf.input_quant.zero_point, card.preprocess.range)
    images = [read_item(i) for i in list_folder(SAMPLES_DIR, card.classes)]
    if not images:
        raise DataError("no sample images to benchmark with")
    for i in range(warmup):
        clf.invoke_int8(lut[fit_resize(images[i % len(images)], h, w, card.preprocess.fit)])
    pre_s: list[float] = []
    inv_s: list[float] = []
    t_all = time.perf_counter()
    for i in range(frames):
        img = images[i % len(images)]
        t0 = time.perf_counter()
        x = lut[fit_resize(img, h, w, card.preprocess.fit)]
        t1 = time.perf_counter()
        clf.invoke_int8(x)
        t2 = time.perf_counter()
        pre_s.append(t1 - t0)
        inv_s.append(t2 - t1)
        if sys.stderr.isatty():
            print(f"\rbench sim: frame {i + 1}/{frames}", end="", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_all
    if sys.stderr.isatty():
        print(file=sys.stderr)

    def ms(values: list[float]) -> dict[str, float]:
        arr = np.array(values) * 1000.0
        return {
            "mean": round(float(arr.mean()), 3),
            "p50": round(float(np.percentile(arr, 50)), 3),
            "p99": round(float(np.percentile(arr, 99)), 3),
        }

    return {
        "benchmark": "sim",
        "what": f"device twin frame: preprocess ({card.preprocess.fit} fit + fixed-point bilinear resize + int8 LUT) "
        "of a 256x192 photo + TFLM invoke",
        "frames": frames,
        "frames_per_s": round(frames / total, 2),
        "preprocess_ms": ms(pre_s),
        "invoke_ms": ms(inv_s),
        "model": {
            "id": card.model_id,
            "path": str(card.model_path),
            "input": f"{w}x{h}x3 int8",
            "macs": card.macs,
        },
        "runtime": "tflite-micro (TFLM reference kernels, Python binding)",
        "machine": machine(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_results(result: dict[str, Any], out_dir: Path, command: str) -> tuple[Path, Path]:
    """``sim.json`` and ``sim.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {**result, "command": command}
    js = out_dir / "sim.json"
    js.write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    md = out_dir / "sim.md"
    md.write_text(
        "# Device twin throughput (`sortcam bench sim`)\n\n"
        f"- command: `{command}`\n"
        f"- date: {result['date']}\n"
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}\n"
        f"- model: `{result['model']['path']}` (id {result['model']['id']}, input {result['model']['input']}"
        + (f", {result['model']['macs']:,} MACs per the card" if result["model"]["macs"] else "")
        + ")\n"
        f"- runtime: {result['runtime']}\n" + (f"- note: {result['note']}\n" if result.get("note") else "") + "\n"
        f"One frame = {result['what']}; every frame invoked (no reuse of identical frames).\n\n"
        "| frames | frames/s | preprocess ms (mean / p50 / p99) | invoke ms (mean / p50 / p99) |\n"
        "|---|---|---|---|\n"
        f"| {result['frames']} | {result['frames_per_s']} | "
        f"{result['preprocess_ms']['mean']} / {result['preprocess_ms']['p50']} / {result['preprocess_ms']['p99']} | "
        f"{result['invoke_ms']['mean']} / {result['invoke_ms']['p50']} / {result['invoke_ms']['p99']} |\n\n"
        "The machine is shared (other jobs may run during the measurement); the twin's demo\n"
        "reuses the output of identical consecutive frames, so it needs about one invoke per item.\n"
    )
    return js, md


def command_line(argv: list[str] | None = None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "sortcam " + " ".join(shlex.quote(a) for a in args)
