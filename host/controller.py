"""The host controller: MQTT classifications in, bin decisions out, SORTs to the sorter.

Library use (the CLI ``sortcam host`` is a thin wrapper over this)::

    from sortcam.host.config import build_config
    from sortcam.host.controller import Controller

    cfg = build_config(broker="mqtt://127.0.0.1:1883", serial_url="/dev/ttyUSB0", line="A")
    ctl = Controller(cfg)
    ctl.start()          # returns once the serial port is open and MQTT is connecting
    ctl.wait_ready(10)   # optional: True once subscribed
    ...
    ctl.stop()           # graceful: stop taking messages, drain the sorter, close

``Controller.run()`` is ``start()`` plus blocking until ``stop()`` is called from another
thread or a signal handler.

Per message: paho's network thread queues it; the ``decide`` thread validates it with
:func:`sortcam.mqtt_contract.validate_classification`, decides a bin and commits the item
(identity, decision, a fresh serial id) to SQLite, all messages that arrived together in
one transaction; only then are the decisions published (``status: sent``, by
:class:`~sortcam.host.decisions.DecisionPublisher`), the burst's jobs handed to the serial
worker in one go, and the messages acknowledged to the broker (``manual_ack``). A
duplicate identity is acknowledged and counted, nothing else. When the sorter ACKs (or
the item is missed) the row is updated and a second decision message (``acked`` or
``missed``) is published. The MQTT client comes from :mod:`sortcam.mqtt_link`.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from sortcam import mqtt_contract as mc
from sortcam import mqtt_link
from sortcam.errors import BrokerError, ContractError

from .config import HostConfig
from .decisions import DecisionPublisher, decision_row, row_from_db
from .devices import DeviceTable
from .metrics import Metrics, MetricsServer
from .serial_link import SorterLink, SortJob
from .store import NewItem, StateStore

log = logging.getLogger("sortcam.host")

RECONNECT = mqtt_link.ReconnectPolicy(min_delay_s=1, max_delay_s=4)
"""A lost broker is retried after 1 s, backing off to 4 s (docs/host.md, "Fault behaviour")."""


@dataclass(frozen=True)
class Decision:
    bin: str
    gate: int | None
    reason: str
    biodegradable: bool | None


class Decider:
    """Label and confidence to bin: the label map, then the confidence threshold."""

    def __init__(self, cfg: HostConfig) -> None:
        self.cfg = cfg

    def decide(self, label: str, confidence: float) -> Decision:
        bio = self.cfg.biodegradable.get(label)
        if label not in self.cfg.label_bins:
            bin_name, reason = self.cfg.reject_bin, "unknown_label"
        elif confidence < self.cfg.threshold:
            bin_name, reason = self.cfg.reject_bin, "low_confidence"
        else:
            bin_name, reason = self.cfg.label_bins[label], "label"
        return Decision(bin_name, self.cfg.gate_for(bin_name), reason, bio)


class Controller:
    """One controller for one line: an MQTT client, a :class:`SorterLink`, a :class:`StateStore`."""

    def __init__(self, config: HostConfig, *, drain_s: float = 3.0) -> None:
        self.cfg = config
        self.drain_s = drain_s
        self.metrics = Metrics()
        self.devices = DeviceTable(config.stale_after_s, self._log_device_change)
        self.metrics.devices(self.devices.states)
        self.decider = Decider(config)
        self.store: StateStore | None = None
        self.link: SorterLink | None = None
        self.metrics_server: MetricsServer | None = None
        self.client: mqtt.Client | None = None
        self._stopping = threading.Event()
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._ready = threading.Event()
        self._fatal: str | None = None
        self.mqtt_version = ""
        self._connected = False
        self._recovered_unpublished: list[Any] = []
        self._housekeeper: threading.Thread | None = None
        self._msg_queue: queue.Queue[tuple[mqtt.MQTTMessage, float, float]] = queue.Queue()
        self._decider_thread = threading.Thread(target=self._decide_loop, name="decide", daemon=True)
        self.decision_topic = mc.decision_topic(config.root, config.line)
        self.status_topic = mc.host_status_topic(config.root, config.line)
        self.decisions = DecisionPublisher(
            self.decision_topic, self.metrics, self._mark_published, lambda: self._connected
        )
        self._sent_lock = threading.Lock()
        """Held from handing a burst to the sorter until its "sent" decisions are published; the
        finisher waits on it only for a job whose ``sent_out`` is still False, so an item's "sent"
        goes out before its "acked" or "missed"."""

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Open the db, the serial port and the metrics port, recover, connect. Raises
        :class:`SortcamError` subclasses on anything a user must fix."""
        cfg = self.cfg
        assert cfg.state_db is not None  # HostConfig resolves the default
        self.store = StateStore(cfg.state_db, cfg.db_sync)
        try:
            self.link = SorterLink(
                cfg.serial_url,
                on_done=self._on_sort_done,
                on_event=self._on_link_event,
                metrics=self.metrics,
                baud=cfg.baud,
                ack_timeout_ms=cfg.ack_timeout_ms,
                retries=cfg.retries,
                window=cfg.window,
                ping_interval_s=cfg.ping_interval_s,
                reconnect_s=cfg.reconnect_s,
                compensate_latency=cfg.compensate_latency,
                max_gate=max((g for g in cfg.gates.values() if g is not None), default=0),
            )
            self.link.start()
            if cfg.metrics_port is not None:
                try:
                    self.metrics_server = MetricsServer(self.metrics, cfg.metrics_host, cfg.metrics_port, self._health)
                except OSError as exc:
                    raise BrokerError(f"cannot serve metrics on port {cfg.metrics_port}: {exc.strerror}") from None
                self.metrics_server.start()
                log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, self.metrics_server.port)
            self._recover()
            self._decider_thread.start()
            self.client = self._connect_first()
            self.decisions.client = self.client
            self.client.loop_start()
            self._housekeeper = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
            self._housekeeper.start()
        except BaseException:
            self._stopping.set()  # ends the decide thread
            if self.link is not None:
                self.link.stop(0)
            self._teardown()
            raise
        log.info(
            "controller for line %s: broker %s, sorter %s, db %s", cfg.line, cfg.broker, cfg.serial_url, cfg.state_db
        )

    def wait_ready(self, timeout: float) -> bool:
        """True once connected and subscribed (within ``timeout`` seconds)."""
        return self._ready.wait(timeout)

    def request_stop(self) -> None:
        """Ask :meth:`run` to stop gracefully; safe from a signal handler."""
        self._stop_requested.set()

    def run(self) -> None:
        """``start()`` then block until :meth:`request_stop` or :meth:`stop`, then stop gracefully."""
        self.start()
        while not self._stop_requested.wait(0.25):
            if self._fatal:
                break
        self.stop()
        if self._fatal:
            raise BrokerError(self._fatal)

    def stop(self) -> None:
        """Graceful stop: no new messages (un-acked ones stay with the broker), let the
        sorter finish what is in flight for up to ``drain_s``, publish offline, close.
        Unfinished items stay ``sent`` in the db and are re-sent with the same id on the next start."""
        self._stop_requested.set()
        if self._stopping.is_set():
            self._stopped.wait(self.drain_s + 15)
            return
        self._stopping.set()
        log.info("stopping: no new items; draining the sorter for up to %.1f s", self.drain_s)
        try:
            if self._decider_thread.is_alive():
                self._decider_thread.join(5.0)  # finishes the batch it holds; queued ones stay un-acked
            if self.link is not None:
                left = self.link.stop(self.drain_s)
                if left:
                    log.warning(
                        "%d item(s) not acknowledged yet; they stay recorded and are re-sent "
                        "with the same id on the next start",
                        left,
                    )
            if self.client is not None:
                try:
                    info = self.client.publish(self.status_topic, self._host_status("offline"), qos=1, retain=True)
                    if self._connected:
                        info.wait_for_publish(2.0)
                except (RuntimeError, ValueError):
                    pass
                self.decisions.flush(wait_s=1.0)
        finally:
            self._teardown()
            self._stopped.set()
            log.info("controller stopped")

    def _teardown(self) -> None:
        if self.client is not None:
            self.client.disable_logger()  # paho reports its own clean disconnect as an error
            try:
                self.client.disconnect()
            except Exception:
                pass
            self.client.loop_stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None
        if self.store is not None:
            self.decisions.flush()
            self.store.close()
            self.store = None

    # --- MQTT ----------------------------------------------------------------------

    def _connect_first(self) -> mqtt.Client:
        """Connect once, synchronously (:func:`sortcam.mqtt_link.connect_first`): a wrong
        address, certificate or password is a clear error at start. Both MQTT 5 and the
        3.1.1 fallback keep a persistent session."""
        cfg = self.cfg
        client, self.mqtt_version = mqtt_link.connect_first(
            self._make_client,
            cfg.broker,
            version=cfg.mqtt_version,
            keepalive_s=cfg.keepalive_s,
            session_expiry_s=cfg.session_expiry_s,
        )
        return client

    def _make_client(self, version: str) -> mqtt.Client:
        cfg = self.cfg
        client = mqtt_link.make_client(
            cfg.broker,
            cfg.client_id,
            cfg.ca_file,
            username=cfg.username,
            password=cfg.password,
            password_file=cfg.password_file,
            will=mqtt_link.Will(self.status_topic, self._host_status("offline")),
            version=version,
            persistent=True,
            manual_ack=True,
            reconnect=RECONNECT,
            logger=logging.getLogger("sortcam.host.mqtt"),
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _host_status(self, state: str) -> bytes:
        return mc.encode_host_status(state=state, line=self.cfg.line, client_id=self.cfg.client_id, ts=time.time())

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self.metrics.inc("mqtt_connect_failures_total")
            text = f"broker {self.cfg.broker} refused the connection: {reason}"
            log.error("%s", text)
            if mqtt_link.refused_for_good(reason):
                self._fatal = text
            return
        self._connected = True
        self.metrics.set("mqtt_connected", 1)
        self.metrics.inc("mqtt_connects_total")
        log.info(
            "connected to %s as %s (session present: %s)", self.cfg.broker, self.cfg.client_id, flags.session_present
        )
        topic = mc.subscription(self.cfg.root, mc.CLASSIFICATION)
        if self.cfg.shared_group:
            topic = f"$share/{self.cfg.shared_group}/{topic}"
        client.subscribe([(topic, mc.QOS), (mc.subscription(self.cfg.root, mc.STATUS), mc.QOS)])
        client.publish(self.status_topic, self._host_status("online"), qos=1, retain=True)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused the subscription: %s", ", ".join(str(r) for r in failed))
            self._fatal = f"broker {self.cfg.broker} refused the subscription: {failed[0]}"
            return
        if not self._ready.is_set():
            log.info("subscribed; controller ready")
        self._ready.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected = False
        self.metrics.set("mqtt_connected", 0)
        if not self._stopping.is_set():
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # not acknowledged: the broker keeps it for our next session
        received_mono = time.monotonic()  # first: the latency figures are intervals from this stamp
        self._msg_queue.put((msg, time.time(), received_mono))

    def _decide_loop(self) -> None:
        """Group commit: take every message that has arrived, record them in one
        transaction, then acknowledge and act. One message alone costs one commit; a
        burst costs one commit for the lot, which is what keeps up with the broker."""
        while not self._stopping.is_set():
            try:
                first = self._msg_queue.get(timeout=0.25)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 512:
                try:
                    batch.append(self._msg_queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._handle_batch(batch)
            except Exception:  # unacknowledged messages come again with the next session; the line runs on
                log.exception("handling a burst of %d message(s) failed", len(batch))
                self.metrics.inc("handler_errors_total")

    def _handle_batch(self, batch: list[tuple[mqtt.MQTTMessage, float, float]]) -> None:
        assert self.store is not None and self.client is not None
        to_ack: list[mqtt.MQTTMessage] = []
        records: list[tuple[mqtt.MQTTMessage, NewItem, float]] = []
        for msg, received_ts, received_mono in batch:
            try:
                item = self._parse(msg, received_ts)
            except Exception:  # a message that trips a bug is recorded and skipped, never a stalled line
                log.exception("internal error on a message from %s; recorded as invalid", msg.topic)
                self.metrics.inc("handler_errors_total")
                self._invalid("internal", None, f"{msg.topic}: internal error (see the controller log)")
                item = None
            if item is None:
                to_ack.append(msg)
            else:
                records.append((msg, item, received_mono))
        results = self._record_durably([item for _, item, _ in records]) if records else []
        if results is None:
            return  # stopping while the db refused: nothing acknowledged, the broker redelivers
        # Every decision in the batch is durable now: hand the burst to the sorter in one go,
        # then publish the decisions ("sent", "rejected"), then acknowledge, so neither the
        # messages' nor the acks' client work stands between an item's receipt and its SORT.
        # A crash before the acks: the broker redelivers, the db knows every identity, nothing
        # moves twice.
        jobs: list[SortJob] = []
        decided: list[tuple[dict[str, Any], str]] = []
        for (msg, item, received_mono), (sort_id, is_new, old_status) in zip(records, results, strict=True):
            try:
                acted = self._act(msg, item, received_mono, sort_id, is_new, old_status)
            except Exception:  # recorded already: a restart re-sends it with its id
                log.exception("acting on item %d failed; it stays recorded as %s", sort_id, item.status)
                self.metrics.inc("handler_errors_total")
                continue
            if acted is not None:
                row, job = acted
                decided.append((row, item.status))
                if job is not None:
                    jobs.append(job)
        assert self.link is not None
        with self._sent_lock:
            self.link.submit_many(jobs)
            try:
                for row, status in decided:
                    try:
                        self.decisions.publish(row, status, final=status == "rejected")
                    except Exception:  # the item is recorded and on its way; only its message is missing
                        log.exception("publishing the decision of item %d failed", row["sort_id"])
                        self.metrics.inc("handler_errors_total")
            finally:
                for job in jobs:
                    job.sent_out = True
        for msg in to_ack:
            self.client.ack(msg.mid, msg.qos)
        for msg, _, _ in records:
            self.client.ack(msg.mid, msg.qos)

    def _record_durably(self, items: list[NewItem]) -> list[tuple[int, bool, str]] | None:
        """Commit the batch, retrying while the database refuses (disk full, locked, I/O):
        nothing is acknowledged until it is recorded, so a failing disk stalls visibly
        instead of losing items. None if asked to stop meanwhile."""
        assert self.store is not None
        while True:
            try:
                return self.store.record_items(items)
            except (sqlite3.Error, OSError) as exc:
                self.metrics.inc("db_errors_total")
                log.error(
                    "cannot record %d item(s) in %s: %s; retrying in 1 s (nothing acknowledged)",
                    len(items),
                    self.cfg.state_db,
                    exc,
                )
                if self._stopping.wait(1.0):
                    return None

    def _act(
        self, msg: mqtt.MQTTMessage, item: NewItem, received_mono: float, sort_id: int, is_new: bool, old_status: str
    ) -> tuple[dict[str, Any], SortJob | None] | None:
        """Count a duplicate (None), or the decision's message row and the job for the sorter, if any."""
        if not is_new:
            self.metrics.inc("duplicates_total")
            log.info(
                "duplicate %s/%s/%d (sort id %d, %s) ignored%s",
                item.device,
                item.boot,
                item.seq,
                sort_id,
                old_status,
                " (redelivery)" if msg.dup else "",
            )
            return None
        self.metrics.inc("decisions_total", labels={"bin": item.bin, "reason": item.reason})
        row = decision_row(item, sort_id)
        log.debug(
            "item %s/%s/%d -> %s (gate %s, %s), sort id %d",
            item.device,
            item.boot,
            item.seq,
            item.bin,
            item.gate,
            item.reason,
            sort_id,
        )
        if item.status != "sent" or item.gate is None:
            return row, None
        return row, SortJob(
            sort_id=sort_id,
            gate=item.gate,
            belt_delay_ms=item.belt_delay_ms,
            device_latency_ms=item.device_latency_ms,
            received_mono=received_mono,
            received_ts=item.received_ts,
            deadline_mono=received_mono + self.cfg.deadline_ms / 1000.0,
            device=item.device,
            context=row,
            sent_out=False,
        )

    def _parse(self, msg: mqtt.MQTTMessage, received_ts: float) -> NewItem | None:
        """A valid classification as a decided :class:`NewItem`; anything else is handled
        here (status, invalid) and gives None."""
        try:
            device, kind = mc.parse_device_topic(self.cfg.root, msg.topic)
        except ContractError as exc:
            self._invalid("topic", None, f"{msg.topic}: {exc}")
            return None
        if kind == mc.STATUS:
            self._on_status(device, msg)
            return None
        if kind != mc.CLASSIFICATION:
            return None
        self.metrics.inc("messages_total")
        try:
            data = mc.validate_classification(bytes(msg.payload), device)
        except ContractError as exc:
            self._invalid("classification", device, f"{msg.topic}: {exc}")
            return None
        self.devices.seen(device)
        decision = self.decider.decide(data["label"], data["confidence"])
        return NewItem(
            device=device,
            boot=data["boot"],
            seq=data["seq"],
            label=data["label"],
            class_id=data["class_id"],
            confidence=float(data["confidence"]),
            biodegradable=decision.biodegradable,
            bin=decision.bin,
            gate=decision.gate,
            reason=decision.reason,
            status="sent" if decision.gate is not None else "rejected",
            device_latency_ms=float(data["latency_ms"]),
            belt_delay_ms=self.cfg.belt_delay_for(device),
            received_ts=received_ts,
            decided_ts=time.time(),
            deadline_ts=received_ts + self.cfg.deadline_ms / 1000.0,
        )

    def _invalid(self, what: str, device: str | None, detail: str) -> None:
        self.metrics.inc("invalid_messages_total", labels={"kind": what})
        log.warning("invalid %s ignored: %s", what, detail[:300])
        if self.store is not None:
            self.store.log_event("invalid", detail, device)

    def _on_status(self, device: str, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return  # a cleared retained status
        try:
            data = mc.validate_status(bytes(msg.payload), device)
        except ContractError as exc:
            self._invalid("status", device, f"{msg.topic}: {exc}")
            return
        self.devices.status(device, data)

    def _log_device_change(self, device: str, what: str) -> None:
        if self.store is not None:
            self.store.log_event("device", what, device)

    # --- decisions out -------------------------------------------------------------

    def _mark_published(self, sort_ids: list[int]) -> None:
        if self.store is not None:
            self.store.mark_published(sort_ids)

    def _on_sort_done(self, batch: list[tuple[SortJob, str, str | None]]) -> None:
        now_mono = time.monotonic()
        rows = []
        for job, status, miss_reason in batch:
            # wall-clock times from the job's own receipt stamp and monotonic intervals: a pair
            # of clock reads here could be split by a thread switch, which would add to them
            to_wall = job.received_ts - job.received_mono
            written_ts = None if job.first_write_mono is None else job.first_write_mono + to_wall
            done_ts = (job.done_mono or now_mono) + to_wall
            rows.append((job.sort_id, status, miss_reason, job.attempts, job.delay_ms, written_ts, done_ts))
        assert self.store is not None
        self.store.finish_many(rows)
        if not all(job.sent_out for job, _, _ in batch):
            with self._sent_lock:  # wait until the deciding thread has published their "sent"
                pass
        for job, status, miss_reason in batch:
            if status == "acked":
                self.metrics.inc("acked_total")
                self.metrics.observe("receipt_to_ack_seconds", (job.done_mono or now_mono) - job.received_mono)
            else:
                self.metrics.inc("missed_total", labels={"reason": miss_reason or "unknown"})
                log.warning(
                    "item %s (sort id %d) MISSED: %s after %d attempt(s)",
                    job.device,
                    job.sort_id,
                    miss_reason,
                    job.attempts,
                )
            extra: dict[str, Any] = {"attempts": job.attempts}
            if miss_reason:
                extra["miss_reason"] = miss_reason
            self.decisions.publish(job.context, status, final=True, extra=extra)

    def _on_link_event(self, kind: str, detail: str) -> None:
        if self.store is not None:
            self.store.log_event(kind, detail)

    # --- recovery and housekeeping ---------------------------------------------------

    def _recover(self) -> None:
        """Re-send every un-acknowledged SORT with its original id; re-publish final
        decisions that may not have reached the broker before the last stop."""
        assert self.store is not None and self.link is not None
        now, now_mono = time.time(), time.monotonic()
        pending = self.store.pending()
        for row in pending:
            context = row_from_db(row)
            self.link.submit(
                SortJob(
                    sort_id=row["sort_id"],
                    gate=row["gate"],
                    belt_delay_ms=row["belt_delay_ms"],
                    device_latency_ms=row["device_latency_ms"],
                    received_mono=now_mono - (now - row["received_ts"]),
                    received_ts=row["received_ts"],
                    deadline_mono=now_mono + (row["deadline_ts"] - now),
                    device=row["device"],
                    context=context,
                    attempts=row["attempts"],
                )
            )
        self._recovered_unpublished = self.store.unpublished_final()
        if pending:
            log.warning(
                "recovered %d un-acknowledged item(s) from %s; re-sending with their ids",
                len(pending),
                self.cfg.state_db,
            )
            self.store.log_event("recover", f"{len(pending)} un-acknowledged item(s) re-sent")
            self.metrics.inc("recovered_items_total", len(pending))

    def _republish_recovered(self) -> None:
        rows, self._recovered_unpublished = self._recovered_unpublished, []
        for row in rows:
            extra: dict[str, Any] = {"attempts": row["attempts"]}
            if row["miss_reason"]:
                extra["miss_reason"] = row["miss_reason"]
            self.decisions.publish(row_from_db(row), row["status"], final=True, extra=extra)

    def _housekeeping(self) -> None:
        while not self._stopping.wait(0.5):
            try:
                if self._connected:
                    self._republish_recovered()
                self.decisions.flush()
                if self.store is not None:
                    self.store.checkpoint()
                self.devices.check_stale()
                if self.link is not None:
                    self.metrics.set("serial_backlog", self.link.backlog)
            except Exception:
                log.exception("housekeeping failed")

    def _health(self) -> tuple[bool, str]:
        mqtt_ok = self._connected
        serial_ok = self.link is not None and self.link.up
        text = f"mqtt {'up' if mqtt_ok else 'down'}, serial {'up' if serial_ok else 'down'}"
        return mqtt_ok and serial_ok, text
