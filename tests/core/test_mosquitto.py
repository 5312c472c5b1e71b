"""sortcam's one mosquitto launcher (the demo, ``sortcam bench host`` and the tests' broker fixture)."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sortcam.errors import BrokerError, DependencyError
from sortcam.mosquitto import Mosquitto, find_mosquitto

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")


def _round_trip(port: int) -> bytes:
    """Subscribe, publish at QoS 1 and return what came back through the broker."""
    got = threading.Event()
    payload: list[bytes] = []

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        payload.append(msg.payload)
        got.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="launcher-test")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.subscribe("t/x", qos=1)  # the broker handles it before the publish on this connection
        client.publish("t/x", b"hello", qos=1).wait_for_publish(5)
        assert got.wait(5), "nothing came back through the broker"
    finally:
        client.loop_stop()
        client.disconnect()
    return payload[0]


def test_temporary_broker_serves_and_leaves_nothing_behind() -> None:
    broker = Mosquitto()
    with broker:
        folder = broker.conf.parent
        assert broker.conf.is_file() and "max_queued_messages 0" in broker.conf.read_text()
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert _round_trip(broker.port) == b"hello"
        proc = broker.proc
    assert proc is not None and proc.poll() is not None
    assert not folder.exists()
    assert broker.version().startswith("mosquitto")


def test_a_bad_config_is_one_line_with_mosquittos_reason(tmp_path: Path) -> None:
    broker = Mosquitto(workdir=tmp_path / "b", extra_conf="bogus_option 1\n")
    with pytest.raises(BrokerError) as err:
        broker.start()
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"mosquitto on 127.0.0.1:{broker.port} exited with code")
    assert 'Unknown configuration variable "bogus_option"' in text
    assert broker.proc is None


def test_restart_keeps_the_port_and_an_edited_config(tmp_path: Path) -> None:
    broker = Mosquitto(workdir=tmp_path / "b", persistence=True).start()
    try:
        port = broker.port
        broker.stop()
        broker.conf.write_text(broker.conf.read_text() + "max_inflight_messages 50\n")
        broker.start()
        assert broker.port == port and "max_inflight_messages 50" in broker.conf.read_text()
        assert _round_trip(port) == b"hello"
    finally:
        broker.kill()


def test_no_binary_is_a_dependency_error(tmp_path: Path) -> None:
    broker = Mosquitto(workdir=tmp_path / "b")
    broker.exe = None
    with pytest.raises(DependencyError, match="mosquitto is not installed"):
        broker.start()
