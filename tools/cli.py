"""`sortcam export` and `sortcam bench model` (no TensorFlow)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``export`` to the `sortcam` command."""
    p = subparsers.add_parser("export", help="write the firmware's C++ model sources from a full-int8 .tflite")
    p.add_argument(
        "model", metavar="MODEL.tflite", nargs="?", help="default: the shipped model/sortcam_trashnet.tflite"
    )
    p.add_argument("--out", help="output folder (default firmware/src)")
    p.add_argument("--card", help="model card (default: the .json beside the model)")
    p.set_defaults(func=_export)


def register_bench(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sortcam bench model``."""
    b = subparsers.add_parser(
        "model", help="flash, arena, MACs, TFLM latency, accuracy, ESP32 and ESP32-S3 latency estimates"
    )
    b.add_argument("--card", help="model card (default: the shipped model/sortcam_trashnet.json)")
    b.add_argument("--data", help="dataset folder: re-score int8 accuracy on its val split in TFLM")
    b.add_argument("--runs", type=int, default=20, help="timed TFLM invokes (default 20)")
    b.add_argument("--out", help="folder for model.json and model.md (default benchmarks/)")
    b.set_defaults(func=_bench)


def _export(args: argparse.Namespace) -> int:
    from sortcam.card import DEFAULT_MODEL_NAME, MODEL_DIR
    from sortcam.tools.export import export_model

    model = args.model or str(MODEL_DIR / f"{DEFAULT_MODEL_NAME}.tflite")
    for path in export_model(model, args.out, args.card):
        print(f"wrote {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sortcam.tools.bench_model import bench_model, write_bench

    result = bench_model(args.card, args.data, args.runs)
    argv = ["bench", "model"]
    for flag, value in (("--card", args.card), ("--data", args.data), ("--out", args.out)):
        if value:
            argv += [flag, str(value)]
    if args.runs != 20:
        argv += ["--runs", str(args.runs)]
    jp, mp = write_bench(result, Path(args.out) if args.out else None, argv=argv)
    print(mp.read_text())
    print(
        json.dumps({k: result[k] for k in ("flash_bytes", "arena_measured_bytes", "macs", "esp32_latency_ms_estimate",
                                           "esp32s3_latency_ms_estimate")})
    )
    print(f"wrote {jp} and {mp}")
    return 0
