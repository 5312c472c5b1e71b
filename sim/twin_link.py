"""The device twin's MQTT session, through :mod:`sortcam.mqtt_link`, as the firmware's
``board/mqtt_link`` is the board's: the Last Will ``offline`` on the device's status topic,
a clean MQTT 3.1.1 session per boot, ``cmd`` and ``<root>/model`` subscribed, incoming
commands queued for the camera loop (never acted on in paho's network thread), QoS 1
publishes tracked so :meth:`TwinLink.flush` can wait for them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sortcam import mqtt_contract as mc
from sortcam.errors import BrokerError, DependencyError
from sortcam.mqtt_link import Will, make_client, parse_broker_url

log = logging.getLogger("sortcam.sim.twin")

CONNECT_TIMEOUT_S = 10.0


class TwinLink:
    """One device's session. ``on_online`` runs on every (re)connect, in paho's thread, once
    the subscriptions are sent (the twin publishes its ``online`` status there)."""

    def __init__(self, device: str, root: str, on_online: Callable[[], None]) -> None:
        self.device = device
        self.root = root
        self.status_topic = mc.status_topic(root, device)
        self.cmd_topic = mc.cmd_topic(root, device)
        self.model_topic = mc.model_topic(root)
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue()
        """``(topic, payload)`` of ``cmd`` and model messages, for the camera loop."""
        self.client: Any = None
        self.broker_url = ""
        self.ca_file: str | None = None
        self._on_online = on_online
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._pending: list[Any] = []
        self._closing = False

    @property
    def up(self) -> bool:
        return self.client is not None

    def connect(
        self,
        broker_url: str,
        client_id: str | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
        ca_file: str | None = None,
    ) -> None:
        """Connect and wait for the broker's answer; raises :class:`BrokerError`.

        ``ca_file`` verifies an ``mqtts://`` broker (default: the system's CAs); credentials
        come from the URL or the environment (:func:`sortcam.mqtt_link.resolve_credentials`)."""
        try:
            import paho.mqtt.client  # noqa: F401
        except ImportError as exc:  # pragma: no cover - a runtime dependency
            raise DependencyError(f"paho-mqtt is not installed: {exc}") from None
        broker = parse_broker_url(broker_url)
        self.broker_url, self.ca_file = broker_url, ca_file
        client = make_client(
            broker,
            client_id or f"sortcam-twin-{self.device}",
            ca_file,
            will=Will(self.status_topic, mc.offline_status(self.device), mc.QOS, True),
        )
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self._connected.clear()
        self._connect_error = None
        self._closing = False
        # Set before the network thread starts: on_connect publishes the online status.
        self.client = client
        try:
            client.connect(broker.host, broker.port, keepalive=15)
        except (OSError, ValueError) as exc:
            self.client = None
            raise BrokerError(f"cannot reach MQTT broker {broker}: {exc}") from None
        client.loop_start()
        if not self._connected.wait(timeout_s) or self._connect_error:
            client.loop_stop()
            self.client = None
            raise BrokerError(f"MQTT broker {broker} did not accept the twin: {self._connect_error or 'timeout'}")

    def reconnect(self) -> None:
        """:meth:`close`, then connect again to the same broker (a reboot)."""
        self.close()
        self.connect(self.broker_url, ca_file=self.ca_file)

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        """QoS 1; nothing while not connected (a camera without a network drops its items)."""
        if self.client is None:
            return
        info = self.client.publish(topic, payload, qos=mc.QOS, retain=retain)
        self._pending.append(info)
        if len(self._pending) > 256:
            self._pending = [p for p in self._pending if not p.is_published()]

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every QoS 1 publish so far is acknowledged by the broker."""
        deadline = time.monotonic() + timeout_s
        for info in list(self._pending):
            while not info.is_published():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
        self._pending = []
        return True

    def close(self) -> None:
        """Clean stop: publish ``offline`` (a clean disconnect does not fire the Will), disconnect."""
        client = self.client
        if client is None:
            return
        self._closing = True
        try:
            self.flush(5.0)
            info = client.publish(self.status_topic, mc.offline_status(self.device), qos=mc.QOS, retain=True)
            info.wait_for_publish(5.0)
        except (RuntimeError, ValueError) as exc:
            log.debug("twin: offline status not sent: %s", exc)
        client.disconnect()
        client.loop_stop()
        self.client = None

    # --- paho's network thread ----------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            self._connect_error = str(reason_code)
            self._connected.set()
            return
        client.subscribe(self.cmd_topic, qos=mc.QOS)
        client.subscribe(self.model_topic, qos=mc.QOS)
        try:
            self._on_online()
        except Exception:  # a bug there must not stop paho's loop
            log.exception("twin %s: publishing the online status failed", self.device)
        self._connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not self._closing and getattr(reason_code, "value", 0) != 0:
            log.warning("twin %s: disconnected from the broker (%s); paho reconnects", self.device, reason_code)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        topic = str(msg.topic)
        if topic not in (self.cmd_topic, self.model_topic):
            # amqtt 0.12 can replay a retained message the client never subscribed to
            # (seen after a reconnect with the same client id); it is not for us.
            log.debug("twin %s: ignoring message on %s", self.device, topic)
            return
        self.commands.put((topic, bytes(msg.payload)))
