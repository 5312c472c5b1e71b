"""`sortcam export`, `sortcam collect` and `sortcam bench model` (no TensorFlow)."""

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
    _register_collect(subparsers)


def _register_collect(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = subparsers.add_parser(
        "collect",
        help="photos of your own belt for training: frames from a device over MQTT, or from a webcam",
        description="Store a full camera frame every --every seconds in DIR, as an unlabelled folder that "
        "'sortcam console --data DIR' opens in its labelling queue (labels land in DIR/labelled/<class>/, "
        "ready for 'sortcam train'). Frames are JPEG, samples/<device>/<boot>/<seq>.jpg; nothing is overwritten.",
        epilog="examples:\n"
        "  sortcam collect --broker mqtt://192.168.1.10:1883 --device cam1 --out belt-photos --minutes 30\n"
        "  sortcam collect --source webcam:0 --out belt-photos --every 5",
    )
    c.add_argument("--out", required=True, metavar="DIR", help="folder for the frames (created; may hold earlier runs)")
    c.add_argument("--broker", metavar="URL", help="the line's broker, mqtt:// or mqtts:// (with --device)")
    c.add_argument(
        "--device",
        metavar="ID",
        help="device id of the camera or twin to collect from (with --broker); "
        "with --source: the name its frames get (default webcamN or video)",
    )
    c.add_argument(
        "--source",
        metavar="webcam:N|VIDEO",
        help="collect straight from a webcam or a video file instead of a device (needs sortcam[video])",
    )
    c.add_argument(
        "--every",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between frames, 2..600 (2 is the fastest a device sends)",
    )
    c.add_argument("--minutes", type=float, metavar="M", help="stop after M minutes (default: run until Ctrl-C)")
    c.add_argument("--root", default="sortcam", help="MQTT topic root")
    c.add_argument("--ca-file", metavar="FILE", help="CA certificate for mqtts://")
    c.set_defaults(func=_collect)


def _collect(args: argparse.Namespace) -> int:
    import signal
    import threading
    from pathlib import Path

    from sortcam.errors import DataError, UsageError
    from sortcam.tools.collect import FrameFolder, MqttCollector, check_every, collect_video

    if args.source and args.broker:
        raise UsageError("give either --source (a webcam or video) or --broker and --device (a device), not both")
    if not args.source and not (args.broker and args.device):
        raise UsageError("sortcam collect needs --broker URL and --device ID, or --source webcam:N")
    check_every(args.every)
    if args.minutes is not None and not 0 < args.minutes <= 10080:
        raise UsageError(f"--minutes {args.minutes:g}: expected more than 0 and at most a week (10080)")
    folder = FrameFolder(Path(args.out))
    stop = threading.Event()
    collector: MqttCollector | None = None
    until = f"for {args.minutes:g} min" if args.minutes else "until Ctrl-C"
    try:
        if args.source:
            what = args.source
        else:
            collector = MqttCollector(
                args.broker,
                args.device,
                folder,
                every_s=args.every,
                minutes=args.minutes,
                root=args.root,
                ca_file=args.ca_file,
            )
            what = f"{args.device} at {collector.broker.url}"

        def on_signal(signum: int, frame: object) -> None:
            stop.set()
            if collector is not None:
                collector.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        print(f"collect: a frame every {args.every:g} s from {what} into {folder.root} {until}", flush=True)
        if collector is not None:
            stats = collector.run()
        else:
            stats = collect_video(
                args.source, folder, device=args.device, every_s=args.every, minutes=args.minutes, stop=stop
            )
    finally:
        folder.close()
    extra = "".join(
        f", {n} {what}" for n, what in ((stats.duplicates, "already there"), (stats.refused, "refused")) if n
    )
    if stats.frames == 0 and stats.duplicates == 0:
        raise DataError(
            f"no frame came from {args.device or args.source}"
            + ("" if args.source else " (is it online, on this --root, and does its firmware know collect_for_s?)")
        )
    print(
        f"collect: {stats.frames} frames ({stats.bytes / 1e6:.1f} MB){extra} in {folder.root / 'samples'}; "
        f"label them: sortcam console --data {folder.root}",
        flush=True,
    )
    return 0


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
        json.dumps(
            {
                k: result[k]
                for k in (
                    "flash_bytes",
                    "arena_measured_bytes",
                    "macs",
                    "esp32_latency_ms_estimate",
                    "esp32s3_latency_ms_estimate",
                )
            }
        )
    )
    print(f"wrote {jp} and {mp}")
    return 0
