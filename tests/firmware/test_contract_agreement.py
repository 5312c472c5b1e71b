"""The C++ headers and the Python contract modules define the same protocol.

Parses ``firmware/lib/sortcam_core/include/sortcam/{mqtt_contract,serial_protocol,version}.h``
(plain ``constexpr`` declarations) and compares every topic name, payload field list,
limit, command, trigger and serial verb with ``sortcam.mqtt_contract``,
``sortcam.serial_contract`` and ``sortcam.device_core``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sortcam import device_core, mqtt_contract, serial_contract

INCLUDE = Path(__file__).resolve().parents[2] / "firmware" / "lib" / "sortcam_core" / "include" / "sortcam"

_SCALAR = re.compile(r"constexpr\s+(?:const\s+)?[\w:]+(?:\s*\*)?\s*(k\w+)\s*=\s*([^;]+);")
_ARRAY = re.compile(r"constexpr\s+const\s+char\s*\*\s*(k\w+)\[\]\s*=\s*\{([^}]*)\};", re.S)


def parse_header(name: str) -> dict[str, object]:
    """``constexpr`` scalars (int or string) and string arrays of one header."""
    text = re.sub(r"//[^\n]*", "", (INCLUDE / name).read_text())
    values: dict[str, object] = {}
    for key, body in _ARRAY.findall(text):
        values[key] = tuple(re.findall(r'"([^"]*)"', body))
    for key, raw in _SCALAR.findall(text):
        raw = raw.strip()
        if raw.startswith('"'):
            values[key] = raw.strip('"')
        elif re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)[uUlL]*", raw):
            values[key] = int(raw.rstrip("uUlL"), 0)
    return values


MQTT = parse_header("mqtt_contract.h")
SERIAL = parse_header("serial_protocol.h")


@pytest.mark.parametrize(
    ("cpp", "py"),
    [
        ("kVersion", mqtt_contract.VERSION),
        ("kDefaultRoot", mqtt_contract.DEFAULT_ROOT),
        ("kMaxPayload", mqtt_contract.MAX_PAYLOAD),
        ("kLabelMax", mqtt_contract.LABEL_MAX),
        ("kSeqMax", mqtt_contract.SEQ_MAX),
        ("kLatencyMaxMs", mqtt_contract.LATENCY_MAX_MS),
        ("kTopMax", mqtt_contract.TOP_MAX),
        ("kQos", mqtt_contract.QOS),
        ("kClassification", mqtt_contract.CLASSIFICATION),
        ("kStatus", mqtt_contract.STATUS),
        ("kCmd", mqtt_contract.CMD),
        ("kDecision", mqtt_contract.DECISION),
        ("kSample", mqtt_contract.SAMPLE),
        ("kLineLevel", mqtt_contract.LINE_LEVEL),
        ("kHost", mqtt_contract.HOST),
        ("kModel", mqtt_contract.MODEL),
        ("kStates", mqtt_contract.STATES),
        ("kCommands", mqtt_contract.COMMANDS),
        ("kTriggers", mqtt_contract.TRIGGERS),
        ("kClassificationFields", mqtt_contract.CLASSIFICATION_FIELDS),
        ("kStatusFields", mqtt_contract.STATUS_FIELDS),
        ("kSampleFields", mqtt_contract.SAMPLE_FIELDS),
        ("kSampleMaxPayload", mqtt_contract.SAMPLE_MAX_PAYLOAD),
        ("kSampleMinIntervalMs", round(mqtt_contract.SAMPLE_MIN_INTERVAL_S * 1000)),
        ("kSampleBurst", mqtt_contract.SampleRateLimiter().burst),
        ("kSetKeys", mqtt_contract.SET_KEYS),
        ("kCollectEveryMinMs", mqtt_contract.COLLECT_EVERY_MIN_MS),
        ("kCollectEveryMaxMs", mqtt_contract.COLLECT_EVERY_MAX_MS),
        ("kCollectEveryDefaultMs", mqtt_contract.COLLECT_EVERY_DEFAULT_MS),
        ("kCollectForMaxS", mqtt_contract.COLLECT_FOR_MAX_S),
        ("kCollectMaxSide", mqtt_contract.COLLECT_MAX_SIDE),
        ("kSampleJpegMax", mqtt_contract.SAMPLE_JPEG_MAX),
    ],
)
def test_mqtt_header_matches_python(cpp: str, py: object) -> None:
    assert cpp in MQTT, f"{cpp} missing from mqtt_contract.h"
    assert MQTT[cpp] == py


def test_sample_topic_and_writer_fields() -> None:
    import json

    assert mqtt_contract.sample_topic("sortcam", "cam1") == f"sortcam/cam1/{MQTT['kSample']}"
    raw = mqtt_contract.encode_sample(
        device="cam1",
        boot="5f3a9c01",
        seq=1,
        jpeg=b"\xff\xd8\xff\xd9",
        label="paper",
        confidence=0.25,
        width=160,
        height=120,
    )
    assert tuple(json.loads(raw)) == MQTT["kSampleFields"]
    assert mqtt_contract.SAMPLE_MIN_INTERVAL_S * 1000 == MQTT["kSampleMinIntervalMs"]  # whole milliseconds


def test_every_topic_is_built_from_the_contract() -> None:
    """Each topic the line uses comes from sortcam.mqtt_contract, spelled with the header's names."""
    root, dev, line = "sortcam", "cam1", "L1"
    assert mqtt_contract.classification_topic(root, dev) == f"{root}/{dev}/{MQTT['kClassification']}"
    assert mqtt_contract.status_topic(root, dev) == f"{root}/{dev}/{MQTT['kStatus']}"
    assert mqtt_contract.cmd_topic(root, dev) == f"{root}/{dev}/{MQTT['kCmd']}"
    assert mqtt_contract.sample_topic(root, dev) == f"{root}/{dev}/{MQTT['kSample']}"
    assert mqtt_contract.decision_topic(root, line) == f"{root}/{MQTT['kLineLevel']}/{line}/{MQTT['kDecision']}"
    assert mqtt_contract.host_status_topic(root, line) == f"{root}/{MQTT['kLineLevel']}/{line}/{MQTT['kHost']}"
    assert mqtt_contract.model_topic(root) == f"{root}/{MQTT['kModel']}"


def test_no_topic_is_spelled_outside_the_contract() -> None:
    """The host, simulator, console and tools build topics through sortcam.mqtt_contract only."""
    repo = INCLUDE.parents[4]
    spelled = re.compile(r"""["'/](classification|status|cmd|decision|sample|host|model)["']""")
    topicish = re.compile(r"""f["'][^"']*(/line/|\{[^}]*root[^}]*\}/)""")  # an f-string that builds a topic
    offenders = []
    for folder in ("host", "sim", "console", "tools", "sortcam"):
        for path in sorted((repo / folder).rglob("*.py")):
            if path.name == "mqtt_contract.py":
                continue
            for n, text in enumerate(path.read_text().splitlines(), 1):
                if topicish.search(text) and spelled.search(text):
                    offenders.append(f"{path.relative_to(repo)}:{n}: {text.strip()}")
    assert not offenders, "topics built outside sortcam/mqtt_contract.py:\n" + "\n".join(offenders)


def test_device_id_limit_matches_the_regex() -> None:
    assert f"{{1,{MQTT['kDeviceIdMax']}}}" in mqtt_contract.DEVICE_ID_RE.pattern


def test_set_keys_and_interval_limit_match_validate_cmd() -> None:
    assert MQTT["kSetKeys"] == mqtt_contract.SET_KEYS
    for key in MQTT["kSetKeys"]:  # type: ignore[union-attr]
        value = '"gpio"' if key == "trigger" else "0"
        extra = ',"collect_for_s":0' if key == "collect_every_ms" else ""  # collect_every_ms needs collect_for_s
        if key == "collect_every_ms":
            value = str(MQTT["kCollectEveryMinMs"])
        mqtt_contract.validate_cmd(f'{{"cmd":"set","{key}":{value}{extra}}}')
    limit = MQTT["kIntervalMaxMs"]
    mqtt_contract.validate_cmd(f'{{"cmd":"set","interval_ms":{limit}}}')
    with pytest.raises(mqtt_contract.ContractError):
        mqtt_contract.validate_cmd(f'{{"cmd":"set","interval_ms":{limit + 1}}}')  # type: ignore[operator]
    with pytest.raises(mqtt_contract.ContractError):
        mqtt_contract.validate_cmd('{"cmd":"set","gain":1}')


def test_collect_limits_match_validate_cmd() -> None:
    """The header's collect limits are validate_cmd's edges, and the JPEG limit fits one sample message."""
    lo, hi, for_max = MQTT["kCollectEveryMinMs"], MQTT["kCollectEveryMaxMs"], MQTT["kCollectForMaxS"]
    for every, for_s in ((lo, 0), (hi, for_max)):
        mqtt_contract.validate_cmd(f'{{"cmd":"set","collect_every_ms":{every},"collect_for_s":{for_s}}}')
    for bad in (
        f'"collect_every_ms":{lo - 1},"collect_for_s":1',
        f'"collect_every_ms":{hi + 1},"collect_for_s":1',  # type: ignore[operator]
        f'"collect_for_s":{for_max + 1}',
        f'"collect_every_ms":{lo}',
    ):  # type: ignore[operator]
        with pytest.raises(mqtt_contract.ContractError):
            mqtt_contract.validate_cmd(f'{{"cmd":"set",{bad}}}')
    assert MQTT["kCollectEveryMinMs"] == MQTT["kSampleMinIntervalMs"]
    jpeg = b"\xff\xd8" + b"\x00" * (int(MQTT["kSampleJpegMax"]) - 2)  # type: ignore[call-overload]
    raw = mqtt_contract.encode_sample(
        device="c" * 32,
        boot="b" * 32,
        seq=mqtt_contract.SEQ_MAX,
        jpeg=jpeg,
        width=int(MQTT["kCollectMaxSide"]),
        height=int(MQTT["kCollectMaxSide"]),
    )  # type: ignore[call-overload]
    assert len(raw) <= MQTT["kSampleMaxPayload"]  # type: ignore[operator]
    assert mqtt_contract.is_collected_frame(mqtt_contract.validate_sample(raw))


def test_status_writer_uses_the_declared_fields() -> None:
    import json

    raw = device_core.encode_status(device_core.DeviceStatus(device="cam1", model="0123456789ab"))
    keys = tuple(json.loads(raw))
    assert keys == tuple(MQTT["kStatusFields"]) + tuple(MQTT["kStatusExtraFields"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cpp", "py"),
    [
        ("kVersion", serial_contract.VERSION),
        ("kBaud", serial_contract.BAUD),
        ("kMaxLine", serial_contract.MAX_LINE),
        ("kIdMin", serial_contract.ID_MIN),
        ("kIdMax", serial_contract.ID_MAX),
        ("kGateMax", serial_contract.GATE_MAX),
        ("kDelayMaxMs", serial_contract.DELAY_MAX_MS),
        ("kNakReasons", serial_contract.NAK_REASONS),
        ("kEvents", serial_contract.EVENTS),
        ("kHostVerbs", serial_contract.HOST_VERBS),
        ("kSorterVerbs", serial_contract.SORTER_VERBS),
    ],
)
def test_serial_header_matches_python(cpp: str, py: object) -> None:
    assert cpp in SERIAL, f"{cpp} missing from serial_protocol.h"
    assert SERIAL[cpp] == py


def test_firmware_version_matches_device_core() -> None:
    assert parse_header("version.h")["kFirmwareVersion"] == device_core.FW_VERSION


def test_parser_reads_what_it_claims() -> None:
    """Guard against a parser that silently finds nothing (the tests above would pass vacuously)."""
    assert len(MQTT) >= 24 and len(SERIAL) >= 11
