"""MQTT subscriber that feeds the console's :class:`~sortcam.console.store.Store`.

Subscribes (QoS 1) to the devices' classification, status and sample topics, the
line's decision topic and the retained model announcement. Every payload is checked
against :mod:`sortcam.mqtt_contract`; a bad one is logged and counted, never raised
out of the paho callback (an exception there would stop the network loop).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sortcam import mqtt_contract as mc
from sortcam.console.store import Store
from sortcam.errors import BrokerError, ContractError
from sortcam.mqtt_link import BrokerURL, make_client, parse_broker_url

__all__ = ["BrokerURL", "MqttFeed", "parse_broker_url"]

log = logging.getLogger(__name__)


class MqttFeed:
    """The console's MQTT client: subscribe, validate, store; publish model announcements.

    ``samples_dir`` receives sample JPEGs as ``<device>/<boot>/<seq>.jpg``.
    """

    def __init__(
        self, store: Store, broker_url: str, root: str, line: str, data_dir: Path, ca_file: str | None = None
    ) -> None:
        self.store = store
        self.root = mc.check_root(root)
        self.decision_topic = mc.decision_topic(root, line)
        self.model_topic = mc.model_topic(root)
        self.data_dir = Path(data_dir)
        self.broker = parse_broker_url(broker_url)
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.model_announcement: dict[str, Any] | None = None
        self.messages = 0
        self._stopping = False
        self._client = make_client(self.broker, f"sortcam-console-{uuid.uuid4().hex[:8]}", ca_file)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    @property
    def url(self) -> str:
        return self.broker.url

    def start(self) -> None:
        """Connect in the background; the console runs (and says so) while the broker is away."""
        try:
            self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot connect to {self.url}: {exc}") from None
        self._client.loop_start()

    def stop(self) -> None:
        self._stopping = True  # our own disconnect is no reason to warn about reconnecting
        self._client.disconnect()
        self._client.loop_stop()

    def publish_model(self, payload: bytes, timeout_s: float = 5.0) -> bool:
        """Publish the retained model announcement; ``True`` when the broker acknowledged it.

        When the broker is away, paho keeps the message queued and sends it on reconnect.
        """
        info = self._client.publish(self.model_topic, payload, qos=mc.QOS, retain=True)
        try:
            info.wait_for_publish(timeout=timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    # --- paho callbacks (never raise) ----------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            self.last_error = f"broker refused the connection: {reason_code}"
            log.warning("%s", self.last_error)
            return
        subs = [
            (mc.subscription(self.root, mc.CLASSIFICATION), mc.QOS),
            (mc.subscription(self.root, mc.STATUS), mc.QOS),
            (mc.subscription(self.root, mc.SAMPLE), mc.QOS),
            (self.decision_topic, mc.QOS),
            (self.model_topic, mc.QOS),
        ]
        client.subscribe(subs)
        self.last_error = None
        self.connected.set()
        log.info("console subscribed on %s under %s/", self.url, self.root)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.connected.clear()
        if self._stopping:
            return
        self.last_error = f"disconnected from {self.url} ({reason_code}); reconnecting"
        log.warning("%s", self.last_error)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self.handle(msg.topic, bytes(msg.payload))
        except ContractError as exc:
            self.store.rejected_messages += 1
            log.warning("bad message on %s: %s", msg.topic, exc)
        except Exception:  # a bug here must not stop the network loop
            self.store.rejected_messages += 1
            log.exception("error handling message on %s", msg.topic)

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> None:
        """Route one message by topic; raises :class:`ContractError` for a bad one."""
        now = time.time() if now is None else now
        self.messages += 1
        if topic == self.decision_topic:
            self.store.add_decision(mc.validate_decision(payload), now)
            return
        if topic == self.model_topic:
            if payload:  # an empty retained message clears the topic
                self.model_announcement = mc.validate_model_announcement(payload)
            return
        device, kind = mc.parse_device_topic(self.root, topic)
        if kind == mc.CLASSIFICATION:
            self.store.add_classification(mc.validate_classification(payload, device), now)
        elif kind == mc.STATUS:
            if payload:
                self.store.set_status(device, mc.validate_status(payload, device), now)
        elif kind == mc.SAMPLE:
            self._store_sample(mc.validate_sample(payload, device), now)

    def _store_sample(self, msg: dict[str, Any], now: float) -> None:
        device, boot, seq = msg["device"], msg["boot"], int(msg["seq"])
        rel = Path("samples") / device / boot / f"{seq}.jpg"
        path = self.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".jpg.tmp")
        tmp.write_bytes(msg["jpeg"])
        tmp.replace(path)
        self.store.add_sample(device, boot, seq, rel.as_posix(), now, msg.get("label"), msg.get("confidence"))
