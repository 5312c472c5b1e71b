"""``sortcam sim camera``, ``sortcam sim sorter``, ``sortcam demo``, ``sortcam bench sim``.

Thin wrappers: argument parsing here, the work in :mod:`sortcam.sim.twin`,
:mod:`sortcam.sim.sorter`, :mod:`sortcam.sim.demo` and :mod:`sortcam.sim.bench`. Heavy
imports (paho, the TFLM runtime, the host controller) happen inside the handlers, so
``sortcam --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sortcam.cli_help import add_alias
from sortcam.errors import UsageError

log = logging.getLogger("sortcam.sim")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sim camera``, ``sim sorter`` and ``demo`` to the ``sortcam`` command."""
    sim = subparsers.add_parser("sim", help="simulator parts: device twin, virtual sorter")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="PART")
    sim_sub.required = True

    cam = sim_sub.add_parser(
        "camera",
        help="device twin: an ESP32-CAM on images, a video or a webcam, publishing over MQTT",
        description="Run the device twin: same preprocessing, int8 model (TFLM), decision logic and MQTT "
        "messages as the firmware.",
    )
    cam.add_argument(
        "--source",
        required=True,
        metavar="DIR|VIDEO|webcam:N",
        help="folder of images (class sub-folders give the true class), a video file, or webcam:N",
    )
    cam.add_argument(
        "--broker",
        required=True,
        metavar="URL",
        help="mqtt://HOST:PORT or mqtts://HOST:PORT (credentials: SORTCAM_MQTT_USERNAME, "
        "SORTCAM_MQTT_PASSWORD or SORTCAM_MQTT_PASSWORD_FILE)",
    )
    cam.add_argument("--ca-file", metavar="FILE", help="CA certificate for mqtts:// (default: the system's CAs)")
    cam.add_argument("--device", required=True, metavar="ID", help="device id, [A-Za-z0-9_-]{1,32}")
    card = cam.add_argument("--card", metavar="CARD", help="model card .json (default: the shipped model)")
    add_alias(cam, card, "--model")
    cam.add_argument(
        "--rate",
        type=float,
        default=1.0,
        metavar="ITEMS_PER_S",
        help="items per second for a folder source (default 1; 0 = as fast as possible)",
    )
    cam.add_argument("--loop", action="store_true", help="start over at the end of the source")
    items = cam.add_argument("--items", type=int, metavar="N", help="stop after N items (default: the source's end)")
    add_alias(cam, items, "--count")
    cam.add_argument("--root", default="sortcam", help="MQTT topic root (default sortcam)")
    cam.add_argument(
        "--trigger",
        choices=("continuous", "gpio", "command"),
        default="continuous",
        help="continuous: presence test; gpio: a beam-break per item; command: wait for 'capture'",
    )
    cam.add_argument("--threshold", type=float, default=None, help="vote threshold 0..1 (default 0.6)")
    cam.add_argument("--rgb565", action="store_true", help="pass frames through the camera's RGB565 colour depth")
    cam.add_argument(
        "--no-reuse",
        action="store_true",
        help="invoke the model on every frame, even an identical one (slower, same results)",
    )
    cam.set_defaults(func=cmd_camera)

    srt = sim_sub.add_parser(
        "sorter",
        help="virtual sorter on a pty pair: prints the device path to give 'sortcam host --serial'",
        description="Serve the serial contract on a pty: checksums, belt-delay scheduling, idempotent ids, "
        "gates and bins, injectable faults.",
    )
    srt.add_argument("--gates", type=int, default=6, metavar="N", help="number of gates/bins (default 6)")
    srt.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault (repeatable): jam[:AFTER[:FOR_S]], bin-full:GATE[:CAPACITY], "
        "no-answer[:COUNT], drop-line[:COUNT], bad-checksum[:COUNT]",
    )
    srt.add_argument("--link", metavar="PATH", help="also make a symlink PATH to the pty (e.g. /tmp/sorter)")
    srt.add_argument("--fw", default="simsorter-1", help="firmware name in PONG (default simsorter-1)")
    srt.set_defaults(func=cmd_sorter)

    demo = subparsers.add_parser(
        "demo",
        help="run the whole line with no hardware (broker, device twin, host controller, virtual sorter) + report",
        description="Start a local MQTT broker (unless --broker), the virtual sorter, the host controller and "
        "the device twin on the bundled sample images; show the items as they are sorted; end with a report.",
    )
    demo.add_argument(
        "--items",
        type=int,
        metavar="N",
        help="items to run (default 24; with --console: until "
        "Ctrl-C, or N items and then the console alone until Ctrl-C)",
    )
    demo.add_argument(
        "--source", metavar="DIR", help="folder of images in class sub-folders (default: the bundled samples)"
    )
    demo.add_argument("--broker", metavar="URL", help="use this broker instead of starting one")
    demo.add_argument(
        "--broker-kind",
        choices=("auto", "amqtt", "mosquitto"),
        default="amqtt",
        help="broker to start: amqtt (embedded, the default), mosquitto (child process), "
        "auto (mosquitto when installed, else amqtt)",
    )
    demo.add_argument("--report", metavar="FILE.json", help="also write the report as JSON")
    demo.add_argument("--rate", type=float, default=2.0, metavar="R", help="items per second (default 2)")
    card = demo.add_argument("--card", metavar="CARD", help="model card .json (default: the shipped model)")
    add_alias(demo, card, "--model")
    demo.add_argument(
        "--belt-delay-ms", type=int, default=800, metavar="MS", help="camera-to-gate travel time (default 800)"
    )
    demo.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a sorter fault (see 'sortcam sim sorter --help')",
    )
    demo.add_argument("--quiet", action="store_true", help="no live view, only the report")
    demo.add_argument("--forever", action="store_true", help="loop the samples until Ctrl-C, then report")
    demo.add_argument(
        "--console",
        action="store_true",
        help="also serve the operator console on the demo line (until Ctrl-C; see --items)",
    )
    g = demo.add_argument_group("with --console (the names of 'sortcam console')")
    port = g.add_argument("--port", type=int, default=8080, metavar="P", help="console HTTP port (0 picks a free one)")
    add_alias(demo, port, "--console-port")
    data = g.add_argument(
        "--data",
        metavar="DIR",
        help="console folder for samples, labels and retrain jobs "
        "(default: demo-console in the state folder, $SORTCAM_STATE_DIR or $XDG_STATE_HOME/sortcam)",
    )
    add_alias(demo, data, "--console-data")
    token = g.add_argument("--token", metavar="TOKEN", help="console token (default: generated and printed)")
    add_alias(demo, token, "--console-token")
    demo.set_defaults(func=cmd_demo)


def register_bench(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sortcam bench sim``."""
    b = subparsers.add_parser("sim", help="device twin frames per second (preprocess + TFLM invoke)")
    card = b.add_argument("--card", metavar="CARD", help="model card .json (default: the shipped model)")
    add_alias(b, card, "--model")
    b.add_argument("--frames", type=int, default=50, help="frames to time (default 50)")
    b.add_argument("--out", default="benchmarks", help="folder for sim.json and sim.md (default benchmarks/)")
    b.add_argument("--no-record", action="store_true", help="print only, do not write benchmarks/sim.*")
    b.add_argument("--note", default="", help="a remark recorded with the figures (e.g. which model and why)")
    b.set_defaults(func=cmd_bench)


def _quiet_libraries(verbose: bool) -> None:
    """The demo's live view is the output; the parts' INFO logs would bury it."""
    if verbose:
        return
    for name in ("sortcam.host", "sortcam.sim", "sortcam.console", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # paho's own log through the controller: at shutdown it reports the closed socket as an
    # ERROR; the controller logs every real problem itself on "sortcam.host".
    logging.getLogger("sortcam.host.mqtt").setLevel(logging.CRITICAL)


def _install_stop(stop: Any) -> None:
    """SIGINT/SIGTERM call ``stop()`` instead of raising inside a library call."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        stop()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def cmd_camera(args: argparse.Namespace) -> int:
    from sortcam import device_core as dc
    from sortcam.card import load_card
    from sortcam.errors import ConfigError
    from sortcam.sim.twin import DeviceTwin, open_source

    if args.items is not None and args.items < 1:
        raise UsageError("--items must be at least 1")
    if args.rate < 0:
        raise UsageError("--rate must be >= 0")
    card = load_card(args.card)
    try:
        config = dc.DecisionConfig(trigger=args.trigger)
        if args.threshold is not None:
            config.threshold = args.threshold
            config.validate()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    kind, src = open_source(args.source, card.classes)
    twin = DeviceTwin(
        args.device,
        card,
        config,
        root=args.root,
        rgb565=args.rgb565,
        reuse_identical_frames=not args.no_reuse,
        on_item=lambda r: print(
            f"seq {r.seq:5d}  {r.source:30.30s} {r.label:10s} {r.confidence:.2f}  {r.latency_ms} ms", flush=True
        ),
    )
    twin.connect(args.broker, ca_file=args.ca_file)
    _install_stop(twin.stop)
    print(
        f"twin {args.device} online at {args.broker} (boot {twin.sequencer.boot}, model {twin.model_id}); Ctrl-C stops",
        flush=True,
    )
    try:
        if kind == "folder":
            assert isinstance(src, list)
            n = twin.run_folder(src, rate=args.rate, loop=args.loop, count=args.items)
        else:
            from sortcam.sim.sources import VideoFrames

            assert isinstance(src, VideoFrames)
            try:
                n = twin.run_video(src, loop=args.loop, count=args.items)
            finally:
                src.close()
        twin.flush(10.0)
    finally:
        twin.close()
    print(
        f"played {n} {'items' if kind == 'folder' else 'frames'}; published {twin.stats.items} items, "
        f"{twin.stats.undetected} not detected, {twin.stats.rejected_cmds} commands rejected",
        flush=True,
    )
    return 0


def cmd_sorter(args: argparse.Namespace) -> int:
    import os

    from sortcam.sim.sorter import VirtualSorter, parse_faults

    faults = parse_faults(args.fault)

    def on_drop(drop: Any) -> None:
        print(f"drop: item {drop.item_id} -> gate {drop.gate}", flush=True)

    sorter = VirtualSorter(gates=args.gates, faults=faults, fw=args.fw, on_drop=on_drop).start()
    link = Path(args.link) if args.link else None
    stop = threading.Event()
    _install_stop(stop.set)
    try:
        if link is not None:
            try:
                if link.is_symlink():
                    link.unlink()
                os.symlink(sorter.device_path, link)
            except OSError as exc:
                raise UsageError(f"cannot create link {link}: {exc.strerror or exc}") from None
        print(sorter.device_path + (f" (also {link})" if link else ""), flush=True)
        print(
            f"virtual sorter: {args.gates} gates; give the path above to 'sortcam host --serial'; Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        sorter.stop()
        if link is not None and link.is_symlink():
            link.unlink()
    contents = sorter.contents()
    print("bins: " + ", ".join(f"gate {g}: {len(ids)}" for g, ids in contents.items()), flush=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sortcam.sim.demo import DEFAULT_ITEMS, DemoOptions, run_demo
    from sortcam.sim.sorter import parse_faults
    from sortcam.sim.sources import SAMPLES_DIR
    from sortcam.state import demo_console_data

    _quiet_libraries(bool(getattr(args, "verbose", False)))
    if not args.console:
        unused = [
            flag
            for flag, value in (("--port", args.port != 8080), ("--data", args.data), ("--token", args.token))
            if value
        ]
        if unused:
            print(f"sortcam: warning: {', '.join(unused)} only matter with --console; ignored", file=sys.stderr)
    opts = DemoOptions(
        items=args.items if args.items is not None else DEFAULT_ITEMS,
        source=Path(args.source) if args.source else SAMPLES_DIR,
        broker=args.broker,
        broker_kind=args.broker_kind,
        report=Path(args.report) if args.report else None,
        rate=args.rate,
        card=Path(args.card) if args.card else None,
        belt_delay_ms=args.belt_delay_ms,
        faults=parse_faults(args.fault),
        live=not args.quiet,
        console=args.console,
        console_port=args.port,
        console_data=Path(args.data) if args.data else demo_console_data(),
        console_token=args.token,
        # --console alone runs until Ctrl-C; --console --items N plays N items, then the console stays up
        forever=args.forever or (args.console and args.items is None),
        hold_console=args.console and args.items is not None and not args.forever,
        stop_event=threading.Event(),
    )
    if not 0 <= opts.belt_delay_ms <= 600000:
        raise UsageError("--belt-delay-ms must be 0..600000")
    if not 0 <= opts.console_port <= 65535:
        raise UsageError("--port must be 0..65535")
    stop_event = opts.stop_event
    assert stop_event is not None
    _install_stop(stop_event.set)  # Ctrl-C ends the belt; the demo still settles and reports
    report = run_demo(opts)
    return 0 if report["lost"] == 0 and report["duplicates"] == 0 else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from sortcam.sim.bench import command_line, run_bench, write_results

    t0 = time.monotonic()
    result = run_bench(args.card, frames=args.frames)
    if args.note:
        result["note"] = args.note
    print(
        f"twin: {result['frames_per_s']} frames/s over {result['frames']} frames "
        f"(preprocess {result['preprocess_ms']['mean']} ms + invoke {result['invoke_ms']['mean']} ms per frame, "
        f"{time.monotonic() - t0:.1f} s)",
        flush=True,
    )
    if not args.no_record:
        parts = ["bench", "sim", "--frames", str(args.frames)]
        if args.card:
            parts += ["--card", args.card]
        if args.out != "benchmarks":
            parts += ["--out", args.out]
        if args.note:
            parts += ["--note", args.note]
        js, md = write_results(result, Path(args.out), command_line(parts))
        print(f"recorded in {js} and {md}", flush=True)
    return 0
