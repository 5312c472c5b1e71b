"""``sortcam host`` (run the controller), ``sortcam host events`` (query its event log)
and ``sortcam bench host``. Thin: parsing here, the work in :mod:`sortcam.host.controller`.

paho and pyserial are imported inside the handlers so ``sortcam --help`` stays cheap.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from sortcam.errors import ContractError, UsageError

log = logging.getLogger("sortcam.host")

SWITCH_INTERVAL_S = 0.0005
"""CPython's GIL switch interval for the controller process (default 0.005 s); see :func:`_run`."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sortcam host`` and ``sortcam host events``."""
    p = subparsers.add_parser(
        "host",
        help="run the MQTT-to-sorter controller for one line (see also: sortcam host events)",
        description="Subscribe to <root>/+/classification, decide a bin per item and drive the sorter over "
        "serial, exactly once. Stop with Ctrl-C / SIGTERM (in-flight items are finished or recorded).",
    )
    p.add_argument("--broker", metavar="URL", help="mqtt://HOST:PORT or mqtts://HOST:PORT (user:pass@ allowed)")
    p.add_argument(
        "--serial",
        metavar="PORT",
        help="sorter port: a device path (/dev/ttyUSB0) or a pyserial URL (socket://host:port, rfc2217://...)",
    )
    p.add_argument(
        "--line", metavar="LINE", help="line id, [A-Za-z0-9_-]{1,32}; decisions go to <root>/line/LINE/decision"
    )
    p.add_argument(
        "--config", metavar="FILE", help="JSON or .toml config: gates, label map, threshold, delays, timeouts"
    )
    p.add_argument("--card", metavar="FILE", help="model card for classes and default bins (default: the shipped one)")
    p.add_argument("--root", default=None, help="MQTT topic root (default sortcam)")
    p.add_argument(
        "--state-db",
        metavar="FILE",
        help="SQLite state and event log (default: host-LINE.db in the "
        "state folder, $SORTCAM_STATE_DIR or $XDG_STATE_HOME/sortcam; printed at start)",
    )
    p.add_argument(
        "--metrics-port", type=int, metavar="P", help="serve Prometheus metrics on http://127.0.0.1:P/metrics"
    )
    p.add_argument("--metrics-host", metavar="ADDR", help="address for the metrics server (default 127.0.0.1)")
    p.add_argument("--client-id", metavar="ID", help="fixed MQTT client id (default sortcam-host-<line>)")
    p.add_argument("--shared-group", metavar="G", help="MQTT 5 shared subscription $share/G/<root>/+/classification")
    p.add_argument(
        "--mqtt-version",
        choices=("auto", "5", "3.1.1"),
        help="MQTT protocol (default auto: 5, falling back to 3.1.1 for brokers without it)",
    )
    p.add_argument("--threshold", type=float, help="confidence below this goes to the reject bin (0..1)")
    p.add_argument("--deadline-ms", type=int, help="an item not acknowledged this long after receipt is missed")
    p.add_argument("--ack-timeout-ms", type=int, help="wait this long for ACK before writing SORT again")
    p.add_argument("--retries", type=int, help="extra writes of a SORT without ACK before it is missed")
    p.add_argument("--username", help="MQTT user (or SORTCAM_MQTT_USERNAME)")
    p.add_argument(
        "--password",
        help="MQTT password; better SORTCAM_MQTT_PASSWORD or --password-file, which other "
        "users of the machine cannot read in the process list",
    )
    p.add_argument(
        "--password-file",
        metavar="FILE",
        help="file whose first line is the MQTT password (or SORTCAM_MQTT_PASSWORD_FILE)",
    )
    p.add_argument("--ca-file", metavar="FILE", help="CA certificate for mqtts://")
    p.add_argument("--drain-s", type=float, default=3.0, help="on stop, wait this long for in-flight ACKs (s)")
    p.set_defaults(func=_run)
    sub = p.add_subparsers(dest="host_command", metavar="SUBCOMMAND")
    e = sub.add_parser("events", help="query the controller's event log (items, or --system events)")
    e.add_argument(
        "--db",
        metavar="FILE",
        help="the controller's --state-db (default: that of --line in the state folder, or the only one there)",
    )
    e.add_argument("--line", metavar="LINE", help="the controller's line, to find its default state db")
    e.add_argument("--device", help="only this device")
    e.add_argument("--status", choices=("sent", "acked", "missed", "rejected"), help="only items in this state")
    e.add_argument("--last", type=int, default=50, help="newest N rows (default 50; 0 = all)")
    e.add_argument("--system", action="store_true", help="show non-item events: invalid messages, sorter EVT, link")
    e.add_argument("--json", action="store_true", help="one JSON object per line")
    e.set_defaults(func=_events)
    r = sub.add_parser("prune", help="delete finished items and events older than N days from the event log")
    r.add_argument(
        "--db",
        metavar="FILE",
        help="the controller's --state-db (default: that of --line in the state folder, or the only one there)",
    )
    r.add_argument("--line", metavar="LINE", help="the controller's line, to find its default state db")
    r.add_argument(
        "--older-than-days",
        type=float,
        required=True,
        metavar="N",
        help="delete rows finished more than N days ago (N >= 1; keep well beyond the broker's session expiry)",
    )
    r.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    r.set_defaults(func=_prune)


def register_bench(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``sortcam bench host``."""
    b = subparsers.add_parser("host", help="controller throughput and latency: mosquitto + pty sorter + controller")
    b.add_argument("-n", "--items", type=int, default=3000, help="items to publish (default 3000)")
    b.add_argument("--window", type=int, default=8, help="SORTs in flight at once (default 8)")
    b.add_argument("--rate", type=float, default=200.0, help="items/s of the steady-rate run (default 200)")
    b.add_argument("--devices", type=int, default=4, help="publishing devices (default 4)")
    b.add_argument("--out", default="benchmarks", help="folder for host.json and host.md (default benchmarks/)")
    b.add_argument("--no-record", action="store_true", help="print only, do not write benchmarks/host.*")
    b.set_defaults(func=_bench)


def _run(args: argparse.Namespace) -> int:
    from .config import build_config
    from .controller import Controller

    missing = [name for name in ("broker", "serial", "line") if not getattr(args, name)]
    if missing:
        raise UsageError(f"sortcam host needs {', '.join('--' + m for m in missing)}")
    overrides: dict[str, Any] = {
        "root": args.root,
        "state_db": Path(args.state_db) if args.state_db else None,
        "metrics_port": args.metrics_port,
        "metrics_host": args.metrics_host,
        "client_id": args.client_id,
        "shared_group": args.shared_group,
        "mqtt_version": args.mqtt_version,
        "threshold": args.threshold,
        "deadline_ms": args.deadline_ms,
        "ack_timeout_ms": args.ack_timeout_ms,
        "retries": args.retries,
        "username": args.username,
        "password": args.password,
        "password_file": args.password_file,
        "ca_file": args.ca_file,
    }
    cfg = build_config(
        broker=args.broker,
        serial_url=args.serial,
        line=args.line,
        config_file=args.config,
        card_path=args.card,
        overrides=overrides,
    )
    assert cfg.state_db is not None
    cfg.state_db = cfg.state_db.absolute()  # the controller may chdir nowhere, but messages should say where
    print(f"sortcam host: state and event log in {cfg.state_db}", flush=True)
    # The controller's threads (paho's network loop, decide, the serial worker and its reader)
    # hand every item on; with CPython's default 5 ms GIL switch interval a woken thread can
    # wait that long behind a busy one, which is most of the latency tail and keeps the
    # serial window from refilling. 0.5 ms costs a little throughput for a short tail.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    ctl = Controller(cfg, drain_s=args.drain_s)

    def on_signal(signum: int, frame: Any) -> None:
        log.info("got %s", signal.Signals(signum).name)
        ctl.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ctl.run()
    return 0


ITEM_COLUMNS = (
    "sort_id",
    "received_ts",
    "device",
    "boot",
    "seq",
    "label",
    "confidence",
    "bin",
    "gate",
    "reason",
    "status",
    "miss_reason",
    "attempts",
    "duplicates",
    "write_ms",
    "ack_ms",
)
EVENT_COLUMNS = ("id", "ts", "kind", "device", "detail")


def _events(args: argparse.Namespace) -> int:
    from .store import format_table, open_readonly, query_events, query_items

    if args.last < 0:
        raise UsageError("--last must be >= 0")
    db = open_readonly(_event_db(args))
    try:
        last = args.last or None
        columns: tuple[str, ...]
        if args.system:
            rows = query_events(db, device=args.device, last=last)
            columns = EVENT_COLUMNS
        else:
            rows = query_items(db, device=args.device, status=args.status, last=last)
            columns = ITEM_COLUMNS
    finally:
        db.close()
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
    else:
        print(format_table(rows, columns))
    return 0


def _prune(args: argparse.Namespace) -> int:
    from .store import prune

    path = _event_db(args)
    items, events = prune(path, args.older_than_days, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{path}: {verb} {items} finished items and {events} events older than {args.older_than_days:g} days")
    return 0


def _event_db(args: argparse.Namespace) -> Path:
    """``--db``, else the state folder's db of ``--line``, else its only host db."""
    from sortcam.mqtt_contract import check_line_id
    from sortcam.state import host_db, host_dbs, state_dir

    if args.db:
        return Path(args.db)
    if args.line:
        try:
            return host_db(check_line_id(args.line))
        except ContractError as exc:
            raise UsageError(f"--line: {exc}") from None
    found = host_dbs()
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no controller state db in {state_dir()}: give --db FILE (the controller's --state-db)")
    names = ", ".join(p.name for p in found)
    raise UsageError(f"{len(found)} controller state dbs in {state_dir()} ({names}): give --line LINE or --db FILE")


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    if args.items < 1 or args.window < 1 or args.devices < 1:
        raise UsageError("--items, --window and --devices must be >= 1")
    run_bench(
        items=args.items,
        window=args.window,
        devices=args.devices,
        out_dir=None if args.no_record else Path(args.out),
        paced_rate=args.rate,
    )
    return 0
