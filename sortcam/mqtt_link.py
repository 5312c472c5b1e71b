"""The MQTT transport the parts share: the broker URL and a configured paho client.

``mqtt://[user:pass@]host[:port]`` or ``mqtts://...`` (default ports 1883 / 8883). The
console and ``sortcam collect`` build their clients here; the host controller (its MQTT 5
session) and the twin still set up their own, to be moved here (review of 2026-12-01).
paho is imported inside :func:`make_client`, so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from sortcam.errors import UsageError


@dataclass(frozen=True)
class BrokerURL:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The URL without credentials, for messages."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerURL:
    """``mqtt://[user:pass@]host[:port]`` or ``mqtts://...``; a bad one is a :class:`UsageError`."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise UsageError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise UsageError(f"broker URL {url!r}: bad port") from None
    if not parts.hostname:
        raise UsageError(f"broker URL {url!r}: no host")
    return BrokerURL(
        parts.hostname, port, tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def make_client(broker: BrokerURL, client_id: str, ca_file: str | None = None) -> Any:
    """A paho client (callback API 2, MQTT 3.1.1, which every broker the line meets speaks) for ``broker``:
    credentials and TLS set, reconnecting after 1 to 10 s. The caller sets callbacks and connects."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311)
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(ca_certs=ca_file)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client
