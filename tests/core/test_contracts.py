"""The Python halves of the MQTT and serial contracts (docs/DESIGN.md)."""

from __future__ import annotations

import json

import pytest

from sortcam import mqtt_contract as mc
from sortcam import serial_contract as sc
from sortcam.errors import ContractError


def good_classification(**over: object) -> dict[str, object]:
    d: dict[str, object] = {
        "v": 1,
        "device": "cam-1",
        "boot": "a1b2c3d4",
        "seq": 7,
        "label": "paper",
        "class_id": 3,
        "confidence": 0.91,
        "top": [["paper", 0.91], ["cardboard", 0.05], ["trash", 0.02]],
        "latency_ms": 412,
        "model": "0123456789ab",
    }
    d.update(over)
    return d


def test_encoded_classification_validates_and_is_compact() -> None:
    raw = mc.encode_classification(
        device="cam-1",
        boot="a1b2c3d4",
        seq=7,
        label="paper",
        class_id=3,
        confidence=0.91,
        top=[("paper", 0.91), ("cardboard", 0.05), ("trash", 0.02)],
        latency_ms=412,
        model="0123456789ab",
    )
    assert raw.startswith(b'{"v":1,"device":"cam-1","boot":"a1b2c3d4","seq":7,')
    assert b'"confidence":0.9100' in raw
    d = mc.validate_classification(raw, topic_device="cam-1")
    assert list(d) == list(mc.CLASSIFICATION_FIELDS)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"v": NaN}', "NaN"),
        (json.dumps(good_classification(v=2)).encode(), "unsupported version"),
        (json.dumps(good_classification(v=True)).encode(), "unsupported version"),
        (json.dumps(good_classification(device="bad id!")).encode(), "bad device id"),
        (json.dumps(good_classification(seq=-1)).encode(), "outside"),
        (json.dumps(good_classification(seq=2**40)).encode(), "outside"),
        (json.dumps(good_classification(seq="7")).encode(), "must be an integer"),
        (json.dumps(good_classification(confidence=1.5)).encode(), "outside"),
        (json.dumps(good_classification(confidence=True)).encode(), "must be a number"),
        (json.dumps(good_classification(top=[])).encode(), "'top'"),
        (json.dumps(good_classification(top=[["paper", 2]])).encode(), "bad 'top' entry"),
        (json.dumps({k: v for k, v in good_classification().items() if k != "label"}).encode(), "missing 'label'"),
        (b'{"v":1,"pad":"' + b"x" * 5000 + b'"}', "exceeds"),
        (json.dumps(good_classification(confidence=10**400)).encode(), "outside"),
    ],
)
def test_bad_classifications_are_rejected_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(ContractError, match=why):
        mc.validate_classification(payload)


def test_topic_device_must_match_payload() -> None:
    with pytest.raises(ContractError, match="differs from topic"):
        mc.validate_classification(json.dumps(good_classification()).encode(), topic_device="cam-2")


def test_topics() -> None:
    assert mc.classification_topic("sortcam", "cam-1") == "sortcam/cam-1/classification"
    assert mc.decision_topic("sortcam", "L1") == "sortcam/line/L1/decision"
    assert mc.subscription("plant/a", "status") == "plant/a/+/status"
    assert mc.parse_device_topic("plant/a", "plant/a/cam_2/status") == ("cam_2", "status")
    with pytest.raises(ContractError):
        mc.parse_device_topic("sortcam", "sortcam/line/L1/decision")
    with pytest.raises(ContractError):
        mc.classification_topic("sortcam", "a/b")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"cmd":"capture"}',
        b'{"v":1,"cmd":"set","threshold":0.6}',
        b'{"cmd":"set","trigger":"gpio"}',
        b'{"cmd":"reboot"}',
    ],
)
def test_good_commands(payload: bytes) -> None:
    assert mc.validate_cmd(payload)["cmd"] in mc.COMMANDS


@pytest.mark.parametrize(
    "payload",
    [
        b'{"cmd":"dance"}',
        b'{"cmd":"set"}',
        b'{"cmd":"set","threshold":2}',
        b'{"cmd":"set","color":1}',
        b'{"cmd":"reboot","now":true}',
        b'{"v":9,"cmd":"capture"}',
        b'"capture"',
    ],
)
def test_bad_commands(payload: bytes) -> None:
    with pytest.raises(ContractError):
        mc.validate_cmd(payload)


def test_status_and_last_will() -> None:
    mc.validate_status(mc.offline_status("cam-1"), topic_device="cam-1")
    online = mc.encode(
        {
            "device": "cam-1",
            "state": "online",
            "fw": "0.1.0",
            "model": "0123456789ab",
            "uptime_s": 12.5,
            "free_heap": 100000,
            "rssi": -60,
            "fps": 2.5,
        }
    )
    assert mc.validate_status(online)["state"] == "online"
    with pytest.raises(ContractError, match="missing 'fw'"):
        mc.validate_status(b'{"v":1,"state":"online"}')


def test_decision_payload() -> None:
    d = mc.encode(
        {
            "device": "cam-1",
            "boot": "a1b2c3d4",
            "seq": 1,
            "label": "glass",
            "bin": "glass",
            "reason": "label",
            "ts": 1700000000.5,
        }
    )
    assert mc.validate_decision(d)["bin"] == "glass"
    with pytest.raises(ContractError, match="'reason'"):
        mc.validate_decision(d.replace(b'"label","ts"', b'"maybe","ts"'))


def test_serial_checksum_is_nmea_xor() -> None:
    # PING: 0x50 ^ 0x49 ^ 0x4E ^ 0x47 = 0x10
    assert sc.ping_line() == b"PING*10\n"
    assert sc.decode(b"PING*10\r\n") == "PING"
    line = sc.sort_line(42, 3, 1500)
    assert line.startswith(b"SORT 42 3 1500*") and line.endswith(b"\n")
    assert sc.parse(sc.decode(line)) == sc.Message("SORT", item_id=42, gate=3, delay_ms=1500)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"PING*3F\n", sc.ChecksumError),
        (b"PING\n", ContractError),
        (b"PING*ZZ\n", ContractError),
        (b"PING*+A\n", ContractError),
        (b"PING* A\n", ContractError),
        (b"\xffPING*10\n", ContractError),
    ],
)
def test_serial_bad_lines(line: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        sc.decode(line)


@pytest.mark.parametrize(
    "body",
    [
        "SORT 0 1 10",
        "SORT 1 16 10",
        "SORT 1 1 -5",
        "SORT 1 1 600001",
        "SORT x 1 1",
        "SORT 1 1",
        "ACK",
        "HELLO",
        "SORT 99999999999 1 1",
    ],
)
def test_serial_bad_messages(body: str) -> None:
    with pytest.raises(ContractError):
        sc.parse(body)


def test_sorter_messages_round_trip() -> None:
    for raw, msg in [
        (sc.ack_line(5), sc.Message("ACK", item_id=5)),
        (sc.nak_line(5, "gate"), sc.Message("NAK", item_id=5, reason="gate")),
        (sc.pong_line("1.0", 6), sc.Message("PONG", fw="1.0", bins=6)),
        (sc.evt_line("BIN_FULL 2"), sc.Message("EVT", text="BIN_FULL 2")),
    ]:
        assert sc.parse(sc.decode(raw)) == msg
