"""``sortcam bench host``: controller throughput and latency, end to end, with real parts.

It starts its own ``mosquitto`` on a free loopback port, a fast scripted sorter on a pty
pair (in this process), and the controller as a subprocess (``python -m sortcam.cli host``,
as an operator runs it). It then publishes ``items`` classifications at the maximum rate
(QoS 1) and waits until every one is acknowledged by the sorter.

Figures (all from the controller's own event log, so they are what it measured):

- sustained items/s: items / (last ACK - first MQTT receipt);
- p50/p99 latency from MQTT receipt to the first serial write of its ``SORT``, and to its ACK;
- loss: items published minus items acknowledged (must be 0), and ids moved twice (must be 0).

Two sorter modes: ``pty`` answers as fast as it can (a pty has no baud rate), and
``115200`` paces both directions as a real 115200 8N1 line would (10 bits per byte),
to check the controller against the physical limit of the link; a third run publishes
at a steady rate below that limit, for the latency of a line that keeps up. A third figure, the broker
alone (publisher to a plain QoS 1 subscriber), shows where the ceiling of this machine is.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sortcam import benchinfo
from sortcam import mqtt_contract as mc
from sortcam import serial_contract as sc
from sortcam.card import TRASHNET_BINS
from sortcam.errors import SortcamError
from sortcam.mosquitto import Mosquitto
from sortcam.mqtt_link import BrokerURL, make_client

BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop


class FastSorter:
    """Answers every ``SORT`` with ``ACK`` and ``PING`` with ``PONG`` on a pty master.

    ``baud``: None answers at once; a number paces both directions like a real full-duplex
    UART: each line occupies its direction for ``len * 10 / baud`` seconds, a SORT is read
    while earlier ACKs are still being sent, and an ACK leaves once its SORT is in and the
    previous ACK is out (a reader thread times the lines, a writer thread sends the replies).
    """

    def __init__(self, master_fd: int, baud: int | None) -> None:
        self.fd = master_fd
        self.baud = baud
        self.acked: dict[int, int] = {}
        self.twice = 0
        self.sort_bytes = 0
        self.ack_bytes = 0
        self.last_ack = 0.0
        self._stop = threading.Event()
        self._replies: collections.deque[tuple[float, bytes]] = collections.deque()
        self._reply_ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="fast-sorter", daemon=True)
        self._thread.start()
        self._writer = threading.Thread(target=self._write_replies, name="fast-sorter-tx", daemon=True)
        if baud:
            self._writer.start()

    def stop(self) -> None:
        self._stop.set()
        with self._reply_ready:
            self._reply_ready.notify()
        self._thread.join(2)
        if self._writer.is_alive():
            self._writer.join(2)

    def _run(self) -> None:
        import select

        buf = b""
        rx_free = tx_free = 0.0
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            now = time.monotonic()
            buf += data
            out: list[tuple[float, bytes]] = []
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                try:
                    msg = sc.parse(sc.decode(raw))
                except SortcamError:
                    out.append((now, sc.nak_line(0, "checksum")))
                    continue
                if self.baud:
                    rx_free = max(rx_free, now) + (len(raw) + 1) * BITS_PER_BYTE / self.baud
                if msg.verb == "PING":
                    reply = sc.pong_line("bench-1", 6)
                elif msg.verb == "SORT":
                    if msg.item_id in self.acked:
                        self.twice += 1
                    self.acked.setdefault(msg.item_id, msg.gate)
                    self.sort_bytes += len(raw) + 1
                    reply = sc.ack_line(msg.item_id)
                    self.ack_bytes += len(reply)
                else:
                    continue
                if self.baud:
                    tx_free = max(tx_free, rx_free) + len(reply) * BITS_PER_BYTE / self.baud
                out.append((tx_free if self.baud else now, reply))
            if not out:
                continue
            if self.baud:
                with self._reply_ready:
                    self._replies.extend(out)
                    self._reply_ready.notify()
            else:
                os.write(self.fd, b"".join(reply for _, reply in out))
                self.last_ack = time.monotonic()

    def _write_replies(self) -> None:
        """Send each paced reply when its line time is over (all that are due in one write)."""
        while not self._stop.is_set():
            with self._reply_ready:
                while not self._replies and not self._stop.is_set():
                    self._reply_ready.wait(0.05)
                if self._stop.is_set():
                    return
                due = self._replies[0][0]
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            now = time.monotonic()
            batch = []
            with self._reply_ready:
                while self._replies and self._replies[0][0] <= now:
                    batch.append(self._replies.popleft()[1])
            if batch:
                try:
                    os.write(self.fd, b"".join(batch))
                except OSError:
                    return
                self.last_ack = time.monotonic()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[k]


def _payloads(items: int, devices: int) -> list[tuple[str, bytes]]:
    labels = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
    out = []
    for i in range(items):
        device = f"bench{i % devices}"
        label = labels[i % len(labels)]
        top = [(label, 0.9), (labels[(i + 1) % 6], 0.06), (labels[(i + 2) % 6], 0.04)]
        payload = mc.encode_classification(
            device=device,
            boot="bench001",
            seq=i // devices,
            label=label,
            class_id=labels.index(label),
            confidence=0.9,
            top=top,
            latency_ms=50,
            model="0123456789ab",
        )
        out.append((mc.classification_topic(mc.DEFAULT_ROOT, device), payload))
    return out


def _client(port: int, client_id: str) -> Any:
    return make_client(BrokerURL("127.0.0.1", port), client_id)


def _publisher(port: int, client_id: str) -> Any:
    client = _client(port, client_id)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def broker_ceiling(port: int, items: int, devices: int) -> dict[str, float]:
    """Publisher to a plain QoS 1 subscriber, no controller: the broker + paho ceiling here."""
    got = 0
    first = last = 0.0
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        nonlocal got, first, last
        now = time.monotonic()
        first = first or now
        last = now
        got += 1
        if got >= items:
            done.set()

    sub = _client(port, "bench-ceiling-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.subscribe("ceiling/+/classification", qos=1)
    sub.loop_start()
    subscribed.wait(10)
    pub = _publisher(port, "bench-ceiling-pub")
    start = time.monotonic()
    for topic, payload in _payloads(items, devices):
        pub.publish(topic.replace(mc.DEFAULT_ROOT, "ceiling", 1), payload, qos=1)
    done.wait(120)
    pub.loop_stop()
    sub.loop_stop()
    pub.disconnect()
    sub.disconnect()
    span = max(last - start, 1e-9)
    return {"items": items, "received": got, "items_per_s": round(got / span, 1)}


def run_mode(
    workdir: Path,
    broker_port: int,
    items: int,
    devices: int,
    window: int,
    baud: int | None,
    progress: Callable[[str], None],
    rate: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One controller run against a :class:`FastSorter`; returns the figures.

    ``rate``: publish at this many items/s instead of as fast as possible; ``note`` is added
    to the row's name (and keeps its folder apart)."""
    from .store import open_readonly, query_items

    mode = (
        ("pty" if baud is None else str(baud))
        + (f"-at-{rate:g}" if rate else "")
        + f"-w{window}"
        + ("-" + note.split()[0] if note else "")
    )
    run_dir = workdir / f"run-{mode}"
    run_dir.mkdir()
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    slave_path = os.ttyname(slave)
    config = {
        "classes": ["cardboard", "glass", "metal", "paper", "plastic", "trash"],
        "labels": dict(TRASHNET_BINS),
        "serial": {"ack_timeout_ms": 2000, "retries": 5, "window": window, "ping_interval_s": 5.0},
        "items": {"deadline_ms": 120000},
    }
    (run_dir / "host.json").write_text(json.dumps(config))
    db = run_dir / "host.db"
    sorter = FastSorter(master, baud)
    log_path = run_dir / "controller.log"
    cmd = [
        sys.executable,
        "-m",
        "sortcam.cli",
        "host",
        "--broker",
        f"mqtt://127.0.0.1:{broker_port}",
        "--serial",
        slave_path,
        "--line",
        "bench",
        "--config",
        str(run_dir / "host.json"),
        "--state-db",
        str(db),
        "--client-id",
        f"sortcam-bench-{mode}",
    ]
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 30
        while "controller ready" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > end:
                raise SortcamError(f"controller did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        payloads = _payloads(items, devices)
        pub = _publisher(broker_port, f"bench-pub-{mode}")
        progress(f"[{mode}] publishing {items} items at {f'{rate:g}/s' if rate else 'max rate'}, window {window}")
        t0 = time.monotonic()
        for i, (topic, payload) in enumerate(payloads):
            if rate:
                wait = t0 + i / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            pub.publish(topic, payload, qos=1)
        publish_s = time.monotonic() - t0
        deadline = time.monotonic() + max(120.0, items / 50.0)
        shown = 0
        while len(sorter.acked) < items and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if len(sorter.acked) - shown >= max(items // 5, 1):
                shown = len(sorter.acked)
                progress(f"[{mode}] {shown}/{items} acknowledged")
        time.sleep(0.5)  # let the last ACKs reach the db
        pub.loop_stop()
        pub.disconnect()
        proc.terminate()
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        sorter.stop()
        os.close(master)
        os.close(slave)
    db_conn = open_readonly(db)
    rows = query_items(db_conn)
    db_conn.close()
    acked = [r for r in rows if r["status"] == "acked"]
    span = max(r["done_ts"] for r in acked) - min(r["received_ts"] for r in rows) if acked else float("nan")
    write_ms = [r["write_ms"] for r in acked if r["write_ms"] is not None]
    ack_ms = [r["ack_ms"] for r in acked if r["ack_ms"] is not None]
    n_sorts = max(len(sorter.acked), 1)
    return {
        "mode": ("pty, unthrottled" if baud is None else f"pty paced at {baud} baud 8N1")
        + (f", items published at {rate:g}/s" if rate else ", items published at max rate")
        + (f", {note}" if note else ""),
        "publish_rate_per_s": rate,
        "items": items,
        "window": window,
        "acked": len(acked),
        "lost": items - len(acked),
        "moved_twice": sorter.twice,
        "controller_exit": rc,
        "publish_s": round(publish_s, 3),
        "items_per_s": round(len(acked) / span, 1) if acked else 0.0,
        "receipt_to_write_ms": {"p50": round(_percentile(write_ms, 50), 3), "p99": round(_percentile(write_ms, 99), 3)},
        "receipt_to_ack_ms": {"p50": round(_percentile(ack_ms, 50), 3), "p99": round(_percentile(ack_ms, 99), 3)},
        "mean_sort_line_bytes": round(sorter.sort_bytes / n_sorts, 1),
        "mean_ack_line_bytes": round(sorter.ack_bytes / n_sorts, 1),
    }


def serial_limits(sort_bytes: float, ack_bytes: float, baud: int = sc.BAUD) -> dict[str, float]:
    """Exchanges per second a ``baud`` 8N1 line allows: one at a time (SORT then ACK) and
    pipelined (full duplex: the longer direction is the limit)."""
    byte_s = baud / BITS_PER_BYTE
    return {
        "baud": baud,
        "stop_and_wait_per_s": round(byte_s / (sort_bytes + ack_bytes), 1),
        "pipelined_per_s": round(byte_s / max(sort_bytes, ack_bytes), 1),
    }


def machine() -> dict[str, Any]:
    import paho.mqtt

    return {**benchinfo.machine(), "paho_mqtt": paho.mqtt.__version__}


def run_bench(items: int, window: int, devices: int, out_dir: Path | None, paced_rate: float = 200.0) -> dict[str, Any]:
    """Run all modes, print a summary, and write ``host.json``/``host.md`` to ``out_dir``.

    Modes: max-rate burst on an unthrottled pty; max-rate burst on a pty paced at 115200
    baud with ``window`` SORTs in flight, and ``items/4`` with one in flight (stop and
    wait); ``items/4`` published at ``paced_rate`` items/s (below the line limit, as a belt
    delivers them) on the paced pty, for the latency of a line that keeps up; and that steady run
    again through a broker at mosquitto's default (Nagle's algorithm on), for comparison."""

    def progress(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="sortcam-bench-host-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto(workdir=workdir / "broker").start()
        try:
            version = broker.version()
            progress(f"broker: {version} on port {broker.port}")
            # the best of three: on a shared machine one run can land on a busy moment
            ceiling = max(
                (broker_ceiling(broker.port, items, devices) for _ in range(3)), key=lambda c: c["items_per_s"]
            )
            progress(f"broker alone: {ceiling['items_per_s']} items/s")
            runs = [
                run_mode(workdir, broker.port, items, devices, window, None, progress),
                run_mode(workdir, broker.port, items, devices, window, sc.BAUD, progress),
                run_mode(workdir, broker.port, max(items // 4, 1), devices, 1, sc.BAUD, progress),
                run_mode(workdir, broker.port, max(items // 4, 1), devices, window, sc.BAUD, progress, rate=paced_rate),
            ]
        finally:
            broker.stop()
        # the same steady run through a broker left at mosquitto's default, Nagle's algorithm on
        nagle = Mosquitto(workdir=workdir / "broker-nagle", tcp_nodelay=False).start()
        try:
            runs.append(
                run_mode(
                    workdir,
                    nagle.port,
                    max(items // 4, 1),
                    devices,
                    window,
                    sc.BAUD,
                    progress,
                    rate=paced_rate,
                    note="nagle broker (set_tcp_nodelay false)",
                )
            )
        finally:
            nagle.stop()
    paced = runs[1]  # the limit of the paced run's own lines (their delays have fewer digits than unthrottled)
    limits = serial_limits(paced["mean_sort_line_bytes"], paced["mean_ack_line_bytes"])
    steady = runs[3]
    goals = {
        "unthrottled_items_per_s": {
            "goal": 2000,
            "measured": runs[0]["items_per_s"],
            "met": runs[0]["items_per_s"] >= 2000,
        },
        "paced_share_of_pipelined_limit": {
            "goal": 0.9,
            "measured": round(paced["items_per_s"] / limits["pipelined_per_s"], 3),
            "met": paced["items_per_s"] >= 0.9 * limits["pipelined_per_s"],
        },
        "steady_p99_receipt_to_write_ms": {
            "goal": 5.0,
            "measured": steady["receipt_to_write_ms"]["p99"],
            "met": steady["receipt_to_write_ms"]["p99"] <= 5.0,
        },
        "lost_and_moved_twice": {
            "goal": 0,
            "measured": sum(r["lost"] + r["moved_twice"] for r in runs),
            "met": not any(r["lost"] or r["moved_twice"] for r in runs),
        },
    }
    result = {
        "benchmark": "host",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": f"sortcam bench host -n {items} --window {window} --devices {devices} --rate {paced_rate:g}",
        "machine": {**machine(), "mosquitto": version},
        "items": items,
        "devices": devices,
        "window": window,
        "broker_alone": ceiling,
        "runs": runs,
        "serial_limit_115200": limits,
        "goals": goals,
    }
    for run in runs:
        progress(
            f"{run['mode']}: {run['items_per_s']} items/s, receipt->write p50 {run['receipt_to_write_ms']['p50']}"
            f" ms p99 {run['receipt_to_write_ms']['p99']} ms, lost {run['lost']}, moved twice "
            f"{run['moved_twice']}"
        )
    progress(
        f"115200 baud limit: {limits['stop_and_wait_per_s']} exchanges/s one at a time, "
        f"{limits['pipelined_per_s']}/s pipelined"
    )
    print(json.dumps(result, indent=2))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "host.json").write_text(json.dumps(result, indent=2) + "\n")
        (out_dir / "host.md").write_text(_markdown(result))
        progress(f"wrote {out_dir / 'host.json'} and {out_dir / 'host.md'}")
    if any(r["lost"] or r["moved_twice"] for r in runs):
        raise SortcamError("bench host: items were lost or moved twice (see the figures above)")
    return result


def _markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Host controller benchmark",
        "",
        f"- date: {r['date']}",
        f"- command: `{r['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['os']}, Python {m['python']}, paho-mqtt {m['paho_mqtt']},"
        f" {m['mosquitto']}; 1-minute load average at start {m['load_average_1m_at_start']}"
        + (" (other jobs were running)" if m["load_average_1m_at_start"] >= 1.0 else ""),
        f"- {r['items']} items from {r['devices']} devices published at max rate (QoS 1) to a local mosquitto; the"
        " controller runs as a subprocess (`sortcam host`), the sorter answers on a pty; figures come from the"
        " controller's event log. SQLite WAL, synchronous=NORMAL; every item is committed (one transaction per"
        " burst of arrivals) before its MQTT ack and its SORT.",
        "",
        "| sorter link | items/s (MQTT receipt to ACK) | receipt to SORT write p50 / p99 (ms) |"
        " receipt to ACK p50 / p99 (ms) | lost | moved twice |",
        "|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        w, a = run["receipt_to_write_ms"], run["receipt_to_ack_ms"]
        lines.append(
            f"| {run['mode']} (window {run['window']}) | {run['items_per_s']} | {w['p50']} / {w['p99']} |"
            f" {a['p50']} / {a['p99']} | {run['lost']} | {run['moved_twice']} |"
        )
    lim = r["serial_limit_115200"]
    lines += [
        "",
        f"Broker alone (publisher to a plain QoS 1 subscriber, same machine, best of 3):"
        f" {r['broker_alone']['items_per_s']} items/s.",
        "",
        f"Physical limit of the serial line at {lim['baud']} baud 8N1 with the paced run's line lengths"
        f" ({r['runs'][1]['mean_sort_line_bytes']} B SORT, {r['runs'][1]['mean_ack_line_bytes']} B ACK):"
        f" {lim['stop_and_wait_per_s']} exchanges/s one at a time, {lim['pipelined_per_s']}/s pipelined"
        " (full duplex, the longer direction limits). The paced sorter models that line: it receives"
        " while it sends.",
        "",
        "Latencies under a max-rate burst include queueing behind the items before them (the burst is"
        " larger than the link drains); the steady-rate run shows the latency of a line that keeps up."
        " The broker of every run but the last has `set_tcp_nodelay true` (docs/host.md advises it); the"
        " last row repeats the steady run through a broker at mosquitto's default, where Nagle's"
        " algorithm holds each small PUBLISH until the TCP ACK of the one before and items reach the"
        " controller in clumps 40 to 48 ms apart (the delayed ACK): a clump's items wait for each other's"
        " serial ACKs.",
        "",
        "| goal | target | measured | met |",
        "|---|---|---|---|",
    ]
    names = {
        "unthrottled_items_per_s": "items/s, one controller process, unthrottled pty",
        "paced_share_of_pipelined_limit": "paced at 115200 baud (window), share of the pipelined limit",
        "steady_p99_receipt_to_write_ms": "p99 receipt to SORT write at the steady rate (ms)",
        "lost_and_moved_twice": "items lost or moved twice, all runs",
    }
    for key, g in r.get("goals", {}).items():
        lines.append(f"| {names.get(key, key)} | {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'no'} |")
    lines += [
        "",
        "Where the time goes (py-spy on the controller during the unthrottled run, before the changes"
        " of 2026-12-01): per item the controller handles 6 MQTT packets (the classification and its"
        " PUBACK, two decision messages and their PUBACKs) where the broker-alone figure handles 2. paho's"
        " network thread took most of the CPU, a third of it building MQTT 5 property tables anew for"
        " every received PUBLISH, and more building reason-code and property objects for every PUBACK"
        " handed to an on_publish callback; the serial worker committed every ACK alone and the decide"
        " thread woke the serial worker once per item. Now the tables are built once"
        " (`sortcam.mqtt_link.share_property_tables`), published decisions are polled instead of called"
        " back, a burst is one hand-over and its SORTs go out before its MQTT acks, finished items are"
        " committed per 5 ms by a finisher thread of their own (off the serial worker's path), WAL"
        " checkpoints run off the item path, and the GIL switch interval is 0.5 ms so a woken thread"
        " does not wait 5 ms behind a busy one (at 200 items/s its effect on the p99 was within this"
        " machine's run-to-run noise). Measured CPU per item in the controller process fell"
        " from about 400 us to about 250 us (same machine, same load).",
        "",
        "The steady p99 (2026-12-02): a trace of each item's stages at 200 items/s showed the time"
        " before the controller, not in it. Items arrived in clumps of up to 9 with gaps of 40 to 48 ms (Nagle's"
        " algorithm in the broker and in paho, which set no TCP_NODELAY), and the clump's last items"
        " waited for a free slot of the window of 8. Now every sortcam client sets TCP_NODELAY"
        " (`sortcam.mqtt_link.make_client`), the launched broker sets `set_tcp_nodelay`, a burst's SORTs"
        " are written by the deciding thread itself, under the serial worker's lock (no thread"
        " hand-over), its decision messages go out after its SORTs, and the recorded write and ACK"
        " times are monotonic intervals from the receipt stamp (a pair of wall and monotonic clock"
        " reads could be split by a thread switch and add to them).",
        "",
    ]
    return "\n".join(lines)
