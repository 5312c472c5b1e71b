"""sortcam.mqtt_link without a broker: the URL, where credentials come from, the client it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from sortcam.errors import BrokerError, ConfigError
from sortcam.mqtt_link import BrokerURL, Will, make_client, parse_broker_url, resolve_credentials


@pytest.mark.parametrize(
    "url,expect",
    [
        ("mqtt://h", BrokerURL("h", 1883, False)),
        ("h:1884", BrokerURL("h", 1884, False)),
        ("mqtts://h", BrokerURL("h", 8883, True)),
        ("ssl://u:p%40ss@h:9", BrokerURL("h", 9, True, "u", "p@ss")),
    ],
)
def test_parse(url: str, expect: BrokerURL) -> None:
    assert parse_broker_url(url) == expect
    assert "@" not in str(parse_broker_url(url))


@pytest.mark.parametrize("url,why", [("ftp://h", "scheme"), ("mqtt://h:x", "bad port"), ("mqtt://:1", "no host")])
def test_bad_urls_are_config_errors(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_broker_url(url)


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SORTCAM_MQTT_USERNAME", "SORTCAM_MQTT_PASSWORD", "SORTCAM_MQTT_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_credentials_precedence(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bare, in_url = BrokerURL("h", 1), BrokerURL("h", 1, False, "url-user", "url-pw")
    assert resolve_credentials(bare) == (None, None)
    secret = tmp_path / "pw"
    secret.write_text("from-file\nignored\n")
    assert resolve_credentials(bare, "u", password_file=secret) == ("u", "from-file")
    clean_env.setenv("SORTCAM_MQTT_PASSWORD_FILE", str(secret))
    clean_env.setenv("SORTCAM_MQTT_USERNAME", "env-user")
    assert resolve_credentials(bare) == ("env-user", "from-file")
    clean_env.setenv("SORTCAM_MQTT_PASSWORD", "env-pw")
    assert resolve_credentials(bare) == ("env-user", "env-pw")
    assert resolve_credentials(in_url) == ("url-user", "url-pw")
    assert resolve_credentials(in_url, "cli", "cli-pw") == ("cli", "cli-pw")


def test_unreadable_password_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password file"):
        resolve_credentials(BrokerURL("h", 1), password_file=tmp_path / "absent")


def test_client_options(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    clean_env.setenv("SORTCAM_MQTT_USERNAME", "line")
    clean_env.setenv("SORTCAM_MQTT_PASSWORD", "s3cret")
    client = make_client(
        BrokerURL("h", 1), "c1", will=Will("t/host", b"offline"), version="5", persistent=True, manual_ack=True
    )
    assert client.protocol == mqtt.MQTTv5 and client._manual_ack  # noqa: SLF001 (paho has no getter)
    assert client.username == "line" and client.password == "s3cret"
    assert client._will_topic == b"t/host" and client._will_retain  # noqa: SLF001
    v3 = make_client(BrokerURL("h", 1), "c2", version="3.1.1", persistent=True)
    assert v3.protocol == mqtt.MQTTv311 and not v3._clean_session  # noqa: SLF001
    with pytest.raises(BrokerError, match="CA file"):
        make_client(BrokerURL("h", 1, True), "c3", str(tmp_path / "absent-ca.pem"))


def test_acknowledged_reads_pahos_flag() -> None:
    """The controller marks a final decision published through acknowledged(): pin paho's flag."""
    from paho.mqtt.client import MQTTMessageInfo
    from paho.mqtt.enums import MQTTErrorCode

    from sortcam.mqtt_link import acknowledged

    info = MQTTMessageInfo(7)
    info.rc = MQTTErrorCode.MQTT_ERR_NO_CONN  # published while the link was down
    assert not acknowledged(info)
    info._set_as_published()  # noqa: SLF001 (what paho does when the PUBACK arrives after the reconnect)
    assert acknowledged(info)


def test_shared_property_tables_decode_the_same() -> None:
    import struct

    from paho.mqtt import _packet
    from paho.mqtt.enums import MQTTProtocolVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from sortcam.mqtt_link import share_property_tables

    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 30
    props.UserProperty = ("line", "A")
    props.UserProperty = ("cam", "1")
    packet = struct.pack("!H", 5) + b"a/b/c" + struct.pack("!H", 9) + props.pack() + b"payload"
    before = _packet.decode_publish(0x32, packet, MQTTProtocolVersion.MQTTv5)
    share_property_tables()
    share_property_tables()
    after = _packet.decode_publish(0x32, packet, MQTTProtocolVersion.MQTTv5)
    assert getattr(_packet.Properties, "shared_tables", False)
    assert after.properties is not None and before.properties is not None
    assert (
        after.properties.json()
        == before.properties.json()
        == {"MessageExpiryInterval": 30, "UserProperty": [("line", "A"), ("cam", "1")]}
    )
    assert (after.topic, after.mid, after.payload) == (b"a/b/c", 9, b"payload")
    fresh = _packet.Properties(PacketTypes.PUBLISH)
    fresh.ContentType = "x"  # setting one object's property leaves the next one empty
    assert _packet.Properties(PacketTypes.PUBLISH).isEmpty()


def test_clients_turn_nagle_off(mqtt_broker) -> None:  # noqa: ANN001
    """Every connection a sortcam client opens has TCP_NODELAY, and the launched broker is told
    to set it on its side: small MQTT packets are not held back for the TCP ACK of the one before."""
    import socket
    import time

    client = make_client(BrokerURL("127.0.0.1", mqtt_broker.port), "nodelay-probe")
    client.connect("127.0.0.1", mqtt_broker.port)
    try:
        client.loop_start()
        end = time.monotonic() + 5
        while not client.is_connected() and time.monotonic() < end:
            time.sleep(0.02)
        sock = client.socket()
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.loop_stop()
        client.disconnect()
    assert "set_tcp_nodelay true" in mqtt_broker.conf.read_text().splitlines()
