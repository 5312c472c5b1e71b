"""The MQTT transport every part shares: the broker URL, credentials, a configured paho
client, the reconnect policy and the first connect (the Python side of the firmware's
``board/mqtt_link``).

- :func:`parse_broker_url`: ``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``
  (default ports 1883 / 8883) to a :class:`BrokerURL`.
- :func:`resolve_credentials`: username and password from, in this order, what the caller
  passes (a CLI option), the URL, ``$SORTCAM_MQTT_USERNAME`` / ``$SORTCAM_MQTT_PASSWORD``,
  and a password file (``password_file`` or ``$SORTCAM_MQTT_PASSWORD_FILE``, first line),
  so a password never has to be on a command line, where every user of the machine sees it.
- :func:`make_client`: a paho client (callback API 2) with TLS (``ca_file``, or the
  system's CAs), credentials, the Last Will, MQTT 5 or 3.1.1, a persistent session and
  manual acknowledgement when asked, and the :class:`ReconnectPolicy`.
- :func:`connect_first`: connect once, synchronously, so a wrong address, certificate or
  password is one clear :class:`BrokerError` at start; ``auto`` tries MQTT 5 and falls
  back to 3.1.1 for brokers that refuse or ignore it (amqtt). Later losses reconnect in
  paho's network thread (``loop_start``) by the policy, to the same session.

The controller, the twin, the console feed, ``sortcam collect``, the demo's watcher and the
benches build their clients here. paho is imported inside the functions, so importing this
module stays cheap.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sortcam.errors import BrokerError, ConfigError, UsageError

log = logging.getLogger(__name__)

USERNAME_ENV = "SORTCAM_MQTT_USERNAME"
PASSWORD_ENV = "SORTCAM_MQTT_PASSWORD"
PASSWORD_FILE_ENV = "SORTCAM_MQTT_PASSWORD_FILE"
MQTT_VERSIONS: tuple[str, ...] = ("auto", "5", "3.1.1")
FALLBACK_WAIT_S = 3.0
"""How long an MQTT 5 CONNECT may go unanswered before ``auto`` tries 3.1.1."""
CONNECT_TIMEOUT_S = 10.0
_REFUSED_FOR_GOOD = (0x85, 0x86, 0x87, 0x8C)
"""CONNACK reasons a retry cannot fix: bad client id, bad credentials, not authorized, bad auth method."""


@dataclass(frozen=True)
class BrokerURL:
    """Where the broker is. ``username``/``password`` only as given in the URL."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The URL without credentials, for messages."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class Will:
    """The Last Will: what the broker publishes for us when we vanish without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class ReconnectPolicy:
    """After a lost connection paho waits ``min_delay_s``, doubling up to ``max_delay_s``,
    between attempts, and resumes the same session (persistent clients)."""

    min_delay_s: int = 1
    max_delay_s: int = 10


def parse_broker_url(url: str) -> BrokerURL:
    """``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``; a bad one is a :class:`ConfigError`."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"broker URL {url!r}: bad port") from None
    if not parts.hostname:
        raise ConfigError(f"broker URL {url!r}: no host")
    return BrokerURL(
        parts.hostname,
        port,
        tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def resolve_credentials(
    broker: BrokerURL, username: str | None = None, password: str | None = None, password_file: str | Path | None = None
) -> tuple[str | None, str | None]:
    """``(username, password)``: the arguments, else the URL's, else the environment, else the
    password file (``password_file`` or ``$SORTCAM_MQTT_PASSWORD_FILE``; its first line).
    An unreadable password file is a :class:`ConfigError`."""
    user = username or broker.username or os.environ.get(USERNAME_ENV) or None
    secret = password or broker.password or os.environ.get(PASSWORD_ENV) or None
    path = password_file or os.environ.get(PASSWORD_FILE_ENV) or None
    if secret is None and path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read MQTT password file {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        secret = lines[0] if lines and lines[0] else None
    return user, secret


def make_client(
    broker: BrokerURL,
    client_id: str,
    ca_file: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    password_file: str | Path | None = None,
    will: Will | None = None,
    version: str = "3.1.1",
    persistent: bool = False,
    manual_ack: bool = False,
    reconnect: ReconnectPolicy = ReconnectPolicy(),
    logger: logging.Logger | None = None,
) -> Any:
    """A paho client for ``broker``, not connected; the caller sets callbacks and connects
    (:func:`connect_first`, or ``connect_async``). ``version`` ``5`` or ``3.1.1``;
    ``persistent`` keeps the session across connections (3.1.1 ``clean_session=False``; for
    MQTT 5 pass ``clean_start=False`` and a session expiry at connect, as :func:`connect_first`
    does). Raises :class:`BrokerError` for a CA file TLS cannot use."""
    import paho.mqtt.client as mqtt

    if version == "5":
        share_property_tables()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
        )
    elif version == "3.1.1":
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
            manual_ack=manual_ack,
        )
    else:
        raise UsageError(f"MQTT version must be 5 or 3.1.1, got {version!r}")
    if logger is not None:
        client.enable_logger(logger)
    user, secret = resolve_credentials(broker, username, password, password_file)
    if user:
        client.username_pw_set(user, secret)
    if broker.tls:
        try:
            client.tls_set(ca_certs=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"cannot set up TLS with CA file {ca_file or '(system CAs)'}: {exc}") from None
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    client.reconnect_delay_set(min_delay=reconnect.min_delay_s, max_delay=reconnect.max_delay_s)
    client.max_queued_messages_set(0)
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """TCP_NODELAY on every connection the client opens. MQTT packets are small; with Nagle's
    algorithm one waits for the TCP ACK of the one before, which the broker's kernel may
    hold back for up to 40 ms (delayed ACK), and items then arrive in clumps."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (a unix socket, a test double)
        pass


def connect_first(
    make: Callable[[str], Any],
    broker: BrokerURL,
    *,
    version: str = "auto",
    keepalive_s: int = 15,
    session_expiry_s: int | None = None,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> tuple[Any, str]:
    """Connect once, synchronously; returns ``(client, version)`` with ``version`` ``5`` or ``3.1.1``.

    ``make(version)`` builds the client (:func:`make_client` plus the caller's callbacks).
    The caller's ``on_connect`` still runs for this first CONNACK (and every later one).
    ``session_expiry_s`` (MQTT 5) asks for a persistent session (``clean_start=False``).
    ``auto`` tries MQTT 5, then 3.1.1 when the broker refuses the protocol, closes the
    socket or stays silent. Raises :class:`BrokerError`; the client is not started
    (call ``loop_start()``).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if version not in MQTT_VERSIONS:
        raise UsageError(f"MQTT version must be one of {', '.join(MQTT_VERSIONS)}, got {version!r}")
    versions = ["5", "3.1.1"] if version == "auto" else [version]
    for n, v in enumerate(versions):
        client = make(v)
        connack: list[Any] = []
        user_on_connect = client.on_connect

        def on_connect(
            c: Any,
            userdata: Any,
            flags: Any,
            reason: Any,
            properties: Any,
            _user: Any = user_on_connect,
            _got: list[Any] = connack,
        ) -> None:
            _got.append(reason)
            if _user is not None:
                _user(c, userdata, flags, reason, properties)

        client.on_connect = on_connect
        try:
            if v == "5":
                props = None
                if session_expiry_s is not None:
                    props = Properties(PacketTypes.CONNECT)
                    props.SessionExpiryInterval = session_expiry_s
                client.connect(
                    broker.host,
                    broker.port,
                    keepalive=keepalive_s,
                    clean_start=session_expiry_s is None,
                    properties=props,
                )
            else:
                client.connect(broker.host, broker.port, keepalive=keepalive_s)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"cannot reach MQTT broker {broker}: {exc}") from None
        can_fall_back = n + 1 < len(versions)
        end = time.monotonic() + (FALLBACK_WAIT_S if can_fall_back else timeout_s)
        rc = mqtt.MQTT_ERR_SUCCESS
        while not connack and time.monotonic() < end:
            rc = client.loop(0.1)
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                break
        if not connack:
            if can_fall_back:
                log.info("no MQTT 5 answer from %s; trying MQTT 3.1.1", broker)
                _drop(client)
                continue
            if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                raise BrokerError(f"MQTT broker {broker} closed the connection ({mqtt.error_string(rc)})")
            raise BrokerError(f"MQTT broker {broker} did not answer CONNECT within {timeout_s:g} s")
        reason = connack[0]
        if not reason.is_failure:
            return client, v
        if reason.value == 0x84 and can_fall_back:  # unsupported protocol version
            log.info("broker %s does not speak MQTT 5; using MQTT 3.1.1", broker)
            _drop(client)
            continue
        _drop(client)
        raise BrokerError(f"broker {broker} refused the connection: {reason}")
    raise BrokerError(f"cannot connect to MQTT broker {broker}")


def share_property_tables() -> None:
    """Let paho decode MQTT 5 PUBLISH properties with tables built once, not once per message.

    paho's ``Properties.__init__`` builds the same read-only tables (the property names,
    types and packet kinds, some sixty entries) for every object, and its decoder makes one
    per received MQTT 5 PUBLISH: a third of the network thread's time per item in the host
    benchmark's profile. The subclass shares one set of tables; nothing else changes (no
    method writes them; tests/core/test_mqtt_link.py decodes properties through it).
    Idempotent; only paho's packet decoder uses it."""
    from paho.mqtt import _packet
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if getattr(_packet.Properties, "shared_tables", False):
        return
    template = Properties(PacketTypes.PUBLISH)

    class SharedTablesProperties(Properties):
        shared_tables = True

        def __init__(self, packetType: int) -> None:  # noqa: N803 (paho's name)
            self.packetType = packetType
            self.types = template.types
            self.names = template.names
            self.properties = template.properties

    _packet.Properties = SharedTablesProperties  # type: ignore[misc]


def acknowledged(info: Any) -> bool:
    """True once the broker acknowledged the QoS 1 publish behind paho's ``MQTTMessageInfo``.

    Unlike ``info.is_published()`` this also holds for a message published while the link
    was down: paho keeps it and sends it after the reconnect, but its ``rc`` stays
    ``MQTT_ERR_NO_CONN`` and ``is_published()`` raises. (paho < 3 keeps the flag in
    ``_published``; tests/core/test_mqtt_link.py pins it.)"""
    return bool(info._published)


def refused_for_good(reason: Any) -> bool:
    """A CONNACK refusal that reconnecting cannot cure (credentials, authorization, client id)."""
    return bool(getattr(reason, "is_failure", False)) and getattr(reason, "value", 0) in _REFUSED_FOR_GOOD


def _drop(client: Any) -> None:
    client.on_disconnect = None
    client.on_connect = None
    try:
        client.disconnect()
    except Exception:  # a socket already closed by the broker
        pass
