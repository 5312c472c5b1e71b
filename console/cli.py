"""``sortcam console``: the operator web console (see docs/console.md)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from sortcam import mqtt_contract as mc
from sortcam.cli_help import add_alias
from sortcam.errors import UsageError
from sortcam.state import console_data

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sortcam console``."""
    p = subparsers.add_parser(
        "console",
        help="operator web console: line view, classify, label, retrain, promote",
        description="Serve the operator console on localhost. State-changing actions need a token "
        "(--token, or $SORTCAM_CONSOLE_TOKEN, or a random one printed at start).",
    )
    p.add_argument(
        "--broker",
        default="mqtt://127.0.0.1:1883",
        help="MQTT broker URL (mqtt:// or mqtts://); 'none' runs without the line view feed",
    )
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    p.add_argument("--root", default=mc.DEFAULT_ROOT, help="MQTT topic root (default sortcam)")
    p.add_argument("--line", default="line1", help="line id whose decisions to show (default line1)")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder for samples, labels and retrain jobs, or the folder of "
        "'sortcam collect --out' (default: console in the state folder, $SORTCAM_STATE_DIR or "
        "$XDG_STATE_HOME/sortcam; printed at start)",
    )
    p.add_argument("--token", default=None, help="token for labels, retrain and promote")
    card = p.add_argument("--card", metavar="CARD", help="the line's model card (default: the shipped model)")
    add_alias(p, card, "--model")
    p.add_argument(
        "--firmware-dir",
        default=None,
        help="where promotion writes the C sources "
        "(default firmware/src for the shipped model; 'none' for a line of twins only)",
    )
    p.add_argument(
        "--bins", default=None, help="JSON bin map (label -> bin) or host config with 'bins'; default: the model card's"
    )
    p.add_argument("--threshold", type=float, default=0.6, help="confidence below which items go to labelling")
    p.add_argument("--max-upload-mb", type=float, default=16.0, help="upload limit per request in MB")
    g = p.add_argument_group("retrain")
    g.add_argument("--train-data", default=None, help="the current model's training data (for mode oldnew)")
    g.add_argument("--val-data", default=None, help="validation images for comparing candidate and current model")
    g.add_argument("--min-per-class", type=int, default=5, help="fewest training images per class (default 5)")
    g.add_argument("--retrain-weights", default="imagenet", help="backbone start: imagenet, none or a weights file")
    g.add_argument("--retrain-alpha", type=float, default=0.35)
    g.add_argument("--retrain-epochs", type=int, default=10)
    g.add_argument("--retrain-fine-tune-epochs", type=int, default=5)
    g.add_argument("--retrain-batch", type=int, default=32)
    p.set_defaults(func=run)
    sub = p.add_subparsers(dest="console_command", metavar="SUBCOMMAND")
    r = sub.add_parser("prune", help="delete old items and their sample frames from the console's data folder")
    r.add_argument("--data", metavar="DIR", help="the console's data folder (default: console in the state folder)")
    r.add_argument(
        "--older-than-days",
        type=float,
        required=True,
        metavar="N",
        help="delete items first seen more than N days ago (N >= 1); the labelling queue is kept",
    )
    r.add_argument(
        "--threshold",
        type=float,
        default=0.6,
        help="the console's --threshold, which decides what is in the labelling queue",
    )
    r.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    r.set_defaults(func=_prune)


def register_bench(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """No benchmark targets."""


def run(args: argparse.Namespace) -> int:
    from sortcam.extras import require

    require("flask", "console", "sortcam console")
    from sortcam.console.app import load_bins, start_console
    from sortcam.console.retrain import RetrainSettings

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected 0..65535")
    if not 0.0 <= args.threshold <= 1.0:
        raise UsageError(f"--threshold {args.threshold}: expected 0..1")
    if args.max_upload_mb <= 0:
        raise UsageError("--max-upload-mb must be > 0")
    if args.min_per_class < 1:
        raise UsageError("--min-per-class must be >= 1")
    settings = RetrainSettings(
        old_data=Path(args.train_data) if args.train_data else None,
        val_data=Path(args.val_data) if args.val_data else None,
        min_per_class=args.min_per_class,
        weights=args.retrain_weights,
        alpha=args.retrain_alpha,
        epochs=args.retrain_epochs,
        fine_tune_epochs=args.retrain_fine_tune_epochs,
        batch_size=args.retrain_batch,
    )
    broker = None if args.broker.lower() == "none" else args.broker
    data = Path(args.data) if args.data else console_data()
    handle = start_console(
        broker,
        args.port,
        root=args.root,
        line=args.line,
        data_dir=data,
        token=args.token or os.environ.get("SORTCAM_CONSOLE_TOKEN") or None,
        card=args.card,
        host=args.host,
        firmware_dir=_firmware_dir(args.firmware_dir),
        no_firmware=(args.firmware_dir or "").lower() == "none",
        bins=load_bins(Path(args.bins)) if args.bins else None,
        threshold=args.threshold,
        max_upload_mb=args.max_upload_mb,
        retrain=settings,
    )
    print(f"sortcam console: {handle.url} (data in {handle.console.data_dir})", flush=True)
    if handle.console.generated_token:
        print(f"sortcam console: token {handle.token}", flush=True)
    if handle.console.classifier.error:
        print(f"sortcam console: warning: {handle.console.classifier.error}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        handle.stop()
    return 0


def _prune(args: argparse.Namespace) -> int:
    from sortcam.console.store import prune

    if not 0.0 <= args.threshold <= 1.0:
        raise UsageError(f"--threshold {args.threshold}: expected 0..1")
    data = Path(args.data) if args.data else console_data()
    items, files = prune(data, args.older_than_days, args.threshold, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{data}: {verb} {items} items and {files} sample frames older than {args.older_than_days:g} days")
    return 0


def _firmware_dir(value: str | None) -> Path | None:
    return None if value is None or value.lower() == "none" else Path(value)
