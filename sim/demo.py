"""``sortcam demo``: the whole line on one desktop, no hardware, and a report.

Parts, each the real thing a line runs, wired the way a line wires them:

- an MQTT broker on a free loopback port (:mod:`sortcam.sim.broker`), unless ``--broker``;
- the virtual sorter on a pty pair (:class:`sortcam.sim.sorter.VirtualSorter`);
- the host controller (:class:`sortcam.host.controller.Controller`, the code behind
  ``sortcam host``) with its own SQLite state in a temporary folder, talking to the broker
  and to the sorter's pty exactly as it talks to a real line;
- the device twin (:class:`sortcam.sim.twin.DeviceTwin`) playing the sample images.

A watcher subscribes to classifications and decisions; the sorter reports every drop.
The live view prints one line per item as it lands. When the twin has played its items
the demo waits for every item to reach an end (in a bin, or reported missed/rejected by
the controller), stops everything, and reports:

- ``items``: items played; ``published``: classifications published;
- ``sorted``: items that landed in a bin (the reject bin included: low confidence lands
  there); ``lost``: items that vanished without trace (neither in a bin nor reported
  ``missed``/``rejected``) -- must be 0;
- ``missed``: items the controller could not sort in time; ``no_gate``: items whose bin has
  no gate on the sorter (decision status ``rejected``: never sent, so in no bin);
- ``duplicates``: extra drops of an item already in a bin -- must be 0;
- ``routing_accuracy``: share of items with a known true class (their folder) that
  landed in that class's bin (card bin map); ``label_accuracy``: share labelled right;
- ``bins``: per bin its gate, count and the true classes in it;
- ``latency_ms``: p50/p90/p99/max of the device (capture to decision), of the controller
  (classification published to decision received) and end to end (classification
  published to the item in its bin, belt delay included).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sortcam import mqtt_contract as mc
from sortcam.card import REJECT_BIN, ModelCard, load_card
from sortcam.errors import BrokerError, ContractError, DataError, ModelError, UsageError
from sortcam.extras import require
from sortcam.mqtt_link import make_client, parse_broker_url
from sortcam.sim.broker import EmbeddedBroker, LocalBroker, start_local_broker
from sortcam.sim.sorter import DEFAULT_GATES, Drop, FaultPlan, VirtualSorter
from sortcam.sim.sources import SAMPLES_DIR, list_folder
from sortcam.sim.twin import DeviceTwin, TwinItem
from sortcam.state import demo_console_data

log = logging.getLogger(__name__)

DEMO_LINE = "demo"
DEMO_DEVICE = "cam-demo"
DEFAULT_ITEMS = 24
DEFAULT_RATE = 2.0
"""Items per second on the demo belt."""
BELT_DELAY_MS = 800
"""Camera-to-gate travel time on the demo belt."""
SETTLE_TIMEOUT_S = 30.0
"""After the last item, how long the demo waits for every item to reach an end."""
FINAL_STATUSES = ("acked", "missed", "rejected")


@dataclass
class DemoOptions:
    items: int = DEFAULT_ITEMS
    source: Path = SAMPLES_DIR
    broker: str | None = None
    """An external broker URL; None starts a local one of ``broker_kind``."""
    broker_kind: str = "amqtt"
    report: Path | None = None
    rate: float = DEFAULT_RATE
    card: Path | None = None
    root: str = mc.DEFAULT_ROOT
    belt_delay_ms: int = BELT_DELAY_MS
    faults: FaultPlan = field(default_factory=FaultPlan)
    gates: int = DEFAULT_GATES
    live: bool = True
    settle_timeout_s: float = SETTLE_TIMEOUT_S
    host_overrides: dict[str, Any] = field(default_factory=dict)
    """Extra controller settings (``HostConfig`` field -> value), e.g. ``ack_timeout_ms``."""
    console: bool = False
    """Also serve the operator console (``sortcam.console``) on the demo's broker."""
    console_port: int = 8080
    console_data: Path = field(default_factory=demo_console_data)
    console_token: str | None = None
    forever: bool = False
    """Loop the samples until ``stop_event`` is set (or Ctrl-C) instead of ``items`` items."""
    hold_console: bool = False
    """With ``console``: after the report, keep the console (and the broker it reads) up until ``stop_event``."""
    stop_event: threading.Event | None = None
    """Set it to end the run early (the demo then settles and reports as usual)."""
    on_ready: Callable[[dict[str, str]], None] | None = None
    """Called once every part runs, with ``broker``, ``sorter`` and (with ``console``) ``console``, ``token``."""


@dataclass
class Decided:
    """What the controller said about one item (latest message wins, per status)."""

    device: str
    boot: str
    seq: int
    bin: str = ""
    gate: int | None = None
    sort_id: int | None = None
    reason: str = ""
    statuses: list[str] = field(default_factory=list)
    first_at: float = 0.0


class Watcher:
    """An MQTT client that records decisions (and counts classifications) for the report."""

    def __init__(self, url: str, root: str, line: str) -> None:
        broker = parse_broker_url(url)
        self.root = root
        self.decision_topic = mc.decision_topic(root, line)
        self.decided: dict[tuple[str, str, int], Decided] = {}
        self.invalid: list[str] = []
        self.classifications = 0
        self.statuses: dict[str, str] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.on_decision: Any = None
        self.client = make_client(broker, f"sortcam-demo-watch-{time.time_ns()}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._ready.set()
        try:
            self.client.connect(broker.host, broker.port)
        except OSError as exc:
            raise BrokerError(f"cannot reach MQTT broker {broker}: {exc}") from None
        self.client.loop_start()
        self.client.subscribe(
            [
                (self.decision_topic, 1),
                (mc.subscription(root, mc.CLASSIFICATION), 1),
                (mc.subscription(root, mc.STATUS), 1),
            ]
        )
        if not self._ready.wait(10):
            raise BrokerError(f"MQTT broker {broker} did not confirm the demo's subscription")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self._handle(str(msg.topic), bytes(msg.payload))
        except Exception:  # a watcher bug must not kill paho's thread
            log.exception("demo watcher: cannot handle %s", msg.topic)

    def _handle(self, topic: str, payload: bytes) -> None:
        if topic == self.decision_topic:
            try:
                d = mc.validate_decision(payload)
            except ContractError as exc:
                self.invalid.append(f"decision: {exc}")
                return
            key = (str(d["device"]), str(d["boot"]), int(d["seq"]))
            with self._lock:
                rec = self.decided.setdefault(key, Decided(*key, first_at=time.time()))
                rec.bin = str(d["bin"])
                rec.reason = str(d["reason"])
                if isinstance(d.get("gate"), int):
                    rec.gate = d["gate"]
                if isinstance(d.get("sort_id"), int):
                    rec.sort_id = d["sort_id"]
                rec.statuses.append(str(d.get("status", "sent")))
            if self.on_decision is not None:
                self.on_decision(rec)
            return
        device, kind = mc.parse_device_topic(self.root, topic)
        if kind == mc.CLASSIFICATION:
            try:
                mc.validate_classification(payload, device)
                self.classifications += 1
            except ContractError as exc:
                self.invalid.append(f"classification: {exc}")
        elif kind == mc.STATUS and payload:
            try:
                self.statuses[device] = str(mc.validate_status(payload, device)["state"])
            except ContractError as exc:
                self.invalid.append(f"status: {exc}")

    def snapshot(self) -> dict[tuple[str, str, int], Decided]:
        with self._lock:
            return {
                k: Decided(v.device, v.boot, v.seq, v.bin, v.gate, v.sort_id, v.reason, list(v.statuses), v.first_at)
                for k, v in self.decided.items()
            }

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class LiveView:
    """Prints one line per item as it lands (or is given up), with running bin counts."""

    def __init__(self, out: TextIO, enabled: bool, total: int) -> None:
        self.out = out
        self.enabled = enabled
        self.total = total
        self.counts: Counter[str] = Counter()
        self.done = 0
        self._lock = threading.Lock()

    def header(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.out, flush=True)

    def item(self, rec: TwinItem | None, bin_name: str, gate: int | None, outcome: str, correct: bool | None) -> None:
        with self._lock:
            self.done += 1
            self.counts[bin_name] += 1
            if not self.enabled:
                return
            mark = {True: "ok", False: "XX", None: "  "}[correct]
            total = f"{self.total:<4d}" if self.total else "... "
            name = rec.source if rec is not None else "?"
            label = f"{rec.label} {rec.confidence:.2f}" if rec is not None else "?"
            where = f"{bin_name} (gate {gate})" if gate is not None else bin_name
            counts = " ".join(f"{b}:{n}" for b, n in sorted(self.counts.items()))
            print(
                f"{self.done:4d}/{total} {name:28.28s} {label:18s} -> {where:22.22s} {outcome:7s} {mark}  [{counts}]",
                file=self.out,
                flush=True,
            )


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max (nearest rank) of ``values``; empty -> {}."""
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: float) -> float:
        idx = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
        return round(float(ordered[idx]), 1)

    return {"n": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99), "max": round(float(ordered[-1]), 1)}


def build_report(
    card: ModelCard,
    played: int,
    undetected: list[str],
    records: dict[tuple[str, int], TwinItem],
    decided: dict[tuple[str, str, int], Decided],
    drops: list[Drop],
    device: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The demo's report (see the module doc for the keys)."""
    drops_by_id: dict[int, list[Drop]] = defaultdict(list)
    for drop in drops:
        drops_by_id[drop.item_id].append(drop)
    gate_bins: dict[int, str] = {}
    for d in decided.values():
        if d.gate is not None and d.bin:
            gate_bins[d.gate] = d.bin
    sorted_n = correct_route = with_truth = correct_label = duplicates = 0
    missed = no_gate = lost_n = 0
    lost_items: list[str] = []
    bins: dict[str, dict[str, Any]] = {}
    device_lat: list[float] = []
    host_lat: list[float] = []
    e2e_lat: list[float] = []
    claimed: set[int] = set()
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for (boot, seq), rec in records.items():
        device_lat.append(float(rec.latency_ms))
        dec = decided.get((device, boot, seq))
        item_drops: list[Drop] = []
        if dec is not None:
            host_lat.append((dec.first_at - rec.published_at) * 1000.0)
            if dec.sort_id is not None:
                item_drops = drops_by_id.get(dec.sort_id, [])
                claimed.add(dec.sort_id)
        if rec.truth is not None:
            with_truth += 1
            correct_label += rec.label == rec.truth
            confusion[rec.truth][rec.label] += 1
        if item_drops:
            sorted_n += 1
            duplicates += len(item_drops) - 1
            drop = item_drops[0]
            bin_name = gate_bins.get(drop.gate, dec.bin if dec else f"gate{drop.gate}")
            slot = bins.setdefault(bin_name, {"gate": drop.gate, "count": 0, "true_classes": Counter()})
            slot["count"] += 1
            slot["true_classes"][rec.truth or "unknown"] += 1
            if rec.truth is not None and bin_name == card.bin_for(rec.truth) and bin_name != REJECT_BIN:
                correct_route += 1
            e2e_lat.append((drop.dropped_at - rec.published_mono) * 1000.0)
        elif dec is not None and "missed" in dec.statuses:
            missed += 1
        elif dec is not None and "rejected" in dec.statuses:
            no_gate += 1
        else:
            lost_n += 1
            lost_items.append(f"{rec.source} (boot {boot} seq {seq})")
    lost_n += len(undetected)
    lost_items.extend(f"{name} (never detected)" for name in undetected)
    stray = sum(len(v) for k, v in drops_by_id.items() if k not in claimed)
    report: dict[str, Any] = {
        "items": played,
        "published": len(records),
        "sorted": sorted_n,
        "lost": lost_n,
        "duplicates": duplicates,
        "missed": missed,
        "no_gate": no_gate,
        "stray_drops": stray,
        "routing_accuracy": round(correct_route / with_truth, 4) if with_truth else None,
        "label_accuracy": round(correct_label / with_truth, 4) if with_truth else None,
        "bins": {
            name: {"gate": v["gate"], "count": v["count"], "true_classes": dict(sorted(v["true_classes"].items()))}
            for name, v in sorted(bins.items(), key=lambda kv: kv[1]["gate"])
        },
        "expected_bin": {c: card.bin_for(c) for c in card.classes},
        "confusion": {t: dict(sorted(c.items())) for t, c in sorted(confusion.items())},
        "latency_ms": {
            "device": percentiles(device_lat),
            "controller": percentiles(host_lat),
            "end_to_end": percentiles(e2e_lat),
        },
        "lost_items": lost_items,
        "model": {"id": card.model_id, "path": str(card.model_path), "classes": card.classes},
    }
    report.update(extra or {})
    return report


def format_report(report: dict[str, Any]) -> str:
    """The stdout table of a report."""
    lines = ["", "== sortcam demo report =="]
    ra = report.get("routing_accuracy")
    la = report.get("label_accuracy")
    lines.append(
        f"items {report['items']}  published {report['published']}  sorted {report['sorted']}  "
        f"lost {report['lost']}  duplicates {report['duplicates']}  missed {report['missed']}  "
        f"no gate {report['no_gate']}"
    )
    lines.append(
        f"routing accuracy {ra:.1%}  label accuracy {la:.1%}"
        if ra is not None and la is not None
        else "routing accuracy n/a (no true classes: images not in class folders)"
    )
    lines.append("")
    lines.append(f"{'bin':10s} {'gate':>4s} {'items':>5s}  true classes in it")
    for name, slot in report["bins"].items():
        content = ", ".join(f"{c} {n}" for c, n in slot["true_classes"].items())
        lines.append(f"{name:10s} {slot['gate']:>4d} {slot['count']:>5d}  {content}")
    lines.append("")
    lines.append(f"{'latency (ms)':22s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s}")
    for name, p in report["latency_ms"].items():
        if p:
            lines.append(f"{name:22s} {p['p50']:8.1f} {p['p90']:8.1f} {p['p99']:8.1f} {p['max']:8.1f}")
    if report.get("lost_items"):
        lines.append("lost: " + "; ".join(report["lost_items"]))
    return "\n".join(lines)


def run_demo(opts: DemoOptions, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the line, print the live view and the report table to ``out``; return the report."""
    if opts.items < 1:
        raise UsageError("--items must be at least 1")
    if opts.rate < 0:
        raise UsageError("--rate must be >= 0 (0 = as fast as the twin can)")
    if opts.console:
        require("flask", "demo", "sortcam demo --console")
    try:
        card = load_card(opts.card)
    except ModelError as exc:
        if opts.card is not None:
            raise
        raise ModelError(f"{exc} (the shipped model is missing: give --card CARD)") from None
    card.read_model()  # before anything starts: the card must describe its file, and model ids are the file's hash
    items = list_folder(opts.source, card.classes)
    from sortcam.host.config import build_config  # the controller's own code, not a copy
    from sortcam.host.controller import Controller

    broker: LocalBroker | None = None
    sorter: VirtualSorter | None = None
    controller: Any = None
    watcher: Watcher | None = None
    twin: DeviceTwin | None = None
    view = LiveView(out, opts.live, 0 if opts.forever else opts.items)
    console: Any = None
    records_by_sort: dict[int, TwinItem] = {}
    drops_seen: list[Drop] = []
    started = time.monotonic()
    printed = False
    with tempfile.TemporaryDirectory(prefix="sortcam-demo-") as tmp:
        try:
            if opts.broker:
                url = opts.broker
                broker_desc = f"external broker {url}"
            else:
                broker = start_local_broker(opts.broker_kind)
                url = broker.url
                broker_desc = f"{type(broker).__name__} on {url}"
            decided_lock = threading.Lock()
            twin_records: dict[tuple[str, int], TwinItem] = {}

            def on_drop(drop: Drop) -> None:
                drops_seen.append(drop)
                rec = records_by_sort.get(drop.item_id)
                dec = watcher.snapshot().get((DEMO_DEVICE, rec.boot, rec.seq)) if (watcher and rec) else None
                bin_name = dec.bin if dec else f"gate{drop.gate}"
                correct = (card.bin_for(rec.truth) == bin_name) if rec is not None and rec.truth else None
                view.item(rec, bin_name, drop.gate, "sorted", correct)

            sorter = VirtualSorter(gates=opts.gates, faults=opts.faults, on_drop=on_drop).start()
            overrides: dict[str, Any] = {
                "state_db": Path(tmp) / "host.db",
                "root": opts.root,
                "default_belt_delay_ms": opts.belt_delay_ms,
                **opts.host_overrides,
            }
            if broker is not None and isinstance(broker, EmbeddedBroker):
                # amqtt speaks MQTT 3.1.1 only: skip the controller's MQTT 5 probe
                overrides.setdefault("mqtt_version", "3.1.1")
            cfg = build_config(
                broker=url, serial_url=sorter.device_path, line=DEMO_LINE, card_path=card.path, overrides=overrides
            )
            watcher = Watcher(url, opts.root, DEMO_LINE)

            def on_decision(dec: Decided) -> None:
                twin_rec = twin_records.get((dec.boot, dec.seq))
                with decided_lock:
                    if twin_rec is not None and dec.sort_id is not None:
                        records_by_sort[dec.sort_id] = twin_rec
                status = dec.statuses[-1] if dec.statuses else ""
                if status in ("missed", "rejected"):
                    view.item(twin_rec, dec.bin, dec.gate, status, False if twin_rec and twin_rec.truth else None)

            watcher.on_decision = on_decision
            controller = Controller(cfg)
            controller.start()
            if not controller.wait_ready(15):
                raise BrokerError(
                    f"the host controller did not connect and subscribe to {url} within 15 s "
                    "(try --broker-kind mosquitto or --broker URL)"
                )
            ready = {"broker": url, "sorter": sorter.device_path}
            if opts.console:
                from sortcam.console.app import start_console

                console = start_console(
                    url,
                    opts.console_port,
                    root=opts.root,
                    line=DEMO_LINE,
                    data_dir=opts.console_data,
                    token=opts.console_token,
                    card=card.path,
                )
                ready.update(console=console.url, token=console.token)
            twin = DeviceTwin(DEMO_DEVICE, card, root=opts.root)
            twin_records = twin.records
            twin.connect(url)
            if opts.stop_event is not None:
                stop_event, the_twin = opts.stop_event, twin
                threading.Thread(
                    target=lambda: (stop_event.wait(), the_twin.stop()), name="sortcam-demo-stop", daemon=True
                ).start()
            how_many = "items until stopped" if opts.forever else f"{opts.items} items"
            view.header(
                f"sortcam demo: {how_many} at {opts.rate:g}/s from {opts.source} | model {card.model_id} "
                f"({card.input.width}x{card.input.height}) | {broker_desc} | sorter {sorter.device_path} "
                f"({opts.gates} gates, belt {opts.belt_delay_ms} ms)"
            )
            if console is not None:
                view.header(
                    f"console: {console.url}  (token for labels, retrain, promote: {console.token}; "
                    f"data in {opts.console_data})"
                )
            if opts.on_ready is not None:
                opts.on_ready(ready)
            if opts.forever:
                played = twin.run_folder(items, rate=opts.rate, loop=True, count=None)
            else:
                played = twin.run_folder(items, rate=opts.rate, loop=opts.items > len(items), count=opts.items)
            twin.flush(10.0)
            settled = _settle(twin, watcher, sorter, opts.settle_timeout_s)
            if not settled:
                log.warning("demo: not every item reached an end within %.0f s", opts.settle_timeout_s)
            report = build_report(
                card,
                played,
                list(twin.stats.undetected_sources),
                dict(twin.records),
                watcher.snapshot(),
                list(sorter.drops),
                DEMO_DEVICE,
                extra={
                    "broker": broker_desc,
                    "belt_delay_ms": opts.belt_delay_ms,
                    "rate_items_per_s": opts.rate,
                    "twin": {"frames": twin.stats.frames, "invokes": twin.stats.invokes},
                    "sorter": {
                        "device": sorter.device_path,
                        "naks": len(sorter.naks),
                        "repeated_sorts": sorter.duplicate_sorts,
                    },
                    "invalid_messages": list(watcher.invalid),
                    "settled": settled,
                    "duration_s": round(time.monotonic() - started, 2),
                },
            )
            if console is not None and opts.hold_console and opts.stop_event is not None:
                print(format_report(report), file=out, flush=True)
                printed = True
                print(f"\nconsole still serving on {console.url}; Ctrl-C stops", file=out, flush=True)
                opts.stop_event.wait()
        finally:
            for part, stop in (
                ("console", lambda: console.stop() if console else None),
                ("twin", lambda: twin.close() if twin else None),
                ("controller", lambda: controller.stop() if controller else None),
                ("watcher", lambda: watcher.close() if watcher else None),
                ("sorter", lambda: sorter.stop() if sorter else None),
                ("broker", lambda: broker.stop() if broker else None),
            ):
                try:
                    stop()
                except Exception as exc:  # stopping: report, go on stopping the rest
                    log.warning("demo: stopping the %s: %s", part, exc)
    if not printed:
        print(format_report(report), file=out, flush=True)
    if opts.report is not None:
        write_report(report, opts.report)
        print(f"report written to {opts.report}", file=out, flush=True)
    return report


def _settle(twin: DeviceTwin, watcher: Watcher, sorter: VirtualSorter, timeout_s: float) -> bool:
    """Wait until every published item has a final decision and the belt is empty."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        decided = watcher.snapshot()
        done = all(
            any(s in FINAL_STATUSES for s in decided[(twin.device, boot, seq)].statuses)
            for (boot, seq) in twin.records
            if (twin.device, boot, seq) in decided
        ) and all((twin.device, boot, seq) in decided for (boot, seq) in twin.records)
        if done and sorter.wait_idle(0):
            return True
        time.sleep(0.05)
    return False


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write the JSON report (atomically)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(path)
    except OSError as exc:
        raise DataError(f"cannot write report {path}: {exc.strerror or exc}") from None
