"""Every validator judges the whole string, and no JSON reader lets a repeated key win.

Issue 16: ``BOOT_ID_RE`` and ``DEVICE_ID_RE`` matched with ``^...$``, and ``$`` also matches
before a final ``\\n``, so ``"b00t0004\\n"`` passed for a new boot and an item was sorted
twice; ``json.loads`` keeps the last of two equal keys, so ``{"seq":7,"seq":8}`` read as 8.
Hypothesis feeds each validator near misses of valid values: surrounding whitespace,
``\\n``, ``\\r``, NUL, and Unicode look-alikes of the allowed characters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from near_misses import DIGIT_INTRUDERS, ID_ALPHABET, INTRUDERS, SETTINGS, near_miss, valid_ids

from sortcam import mqtt_contract as mc
from sortcam import serial_contract as sc
from sortcam import strict_json
from sortcam.errors import ConfigError, ContractError, ModelError, SortcamError, UsageError


def refuses(check: Callable[[Any], Any], text: str | bytes, error: type[Exception] = ContractError) -> None:
    with pytest.raises(error):
        check(text)


# --- ids and topics -------------------------------------------------------------------------

ID_CHECKS: dict[str, Callable[[str], Any]] = {
    "check_device_id": mc.check_device_id,
    "check_boot_id": mc.check_boot_id,
    "check_line_id": mc.check_line_id,
    "device_topic": lambda t: mc.device_topic("sortcam", t, mc.CLASSIFICATION),
    "decision_topic": lambda t: mc.decision_topic("sortcam", t),
    "host_status_topic": lambda t: mc.host_status_topic("sortcam", t),
    "parse_device_topic": lambda t: mc.parse_device_topic("sortcam", f"sortcam/{t}/classification"),
}


@pytest.mark.parametrize("name", sorted(ID_CHECKS))
@SETTINGS
@given(text=valid_ids)
def test_id_checks_take_every_valid_id(name: str, text: str) -> None:
    ID_CHECKS[name](text)


@pytest.mark.parametrize("name", sorted(ID_CHECKS))
@SETTINGS
@given(text=near_miss())
def test_id_checks_refuse_near_misses(name: str, text: str) -> None:
    refuses(ID_CHECKS[name], text)


@pytest.mark.parametrize("name", sorted(ID_CHECKS))
def test_id_checks_refuse_a_trailing_newline(name: str) -> None:
    """The issue's case, kept as a plain example: hypothesis may shrink elsewhere."""
    refuses(ID_CHECKS[name], "b00t0004\n")


@SETTINGS
@given(text=near_miss(st.sampled_from(["sortcam", "plant2/line"]), ("\n", "\r", "\r\n", "\0", "\x7f", "+", "#")))
def test_topic_root_refuses_control_characters_and_wildcards(text: str) -> None:
    refuses(mc.check_root, text)


@pytest.mark.parametrize("root", ["sortcam\n", " sortcam", "sortcam ", "/sortcam", "sortcam/", "", "sort\0cam"])
def test_topic_root_refuses_surrounding_space_and_slashes(root: str) -> None:
    refuses(mc.check_root, root)
    assert mc.check_root("plant 2/line") == "plant 2/line"


# --- payload fields ----------------------------------------------------------------------------


def classification(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "v": 1,
        "device": "cam1",
        "boot": "b00t0004",
        "seq": 7,
        "label": "paper",
        "class_id": 3,
        "confidence": 0.91,
        "top": [["paper", 0.91]],
        "latency_ms": 40,
        "model": "0123456789ab",
    }
    d.update(over)
    return d


def sample(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"v": 1, "device": "cam1", "boot": "b00t0004", "seq": 7, "jpeg": "/9j/2Q=="}
    d.update(over)
    return d


def decision(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "v": 1,
        "device": "cam1",
        "boot": "b00t0004",
        "seq": 7,
        "label": "paper",
        "bin": "paper",
        "reason": "label",
        "ts": 1.5,
    }
    d.update(over)
    return d


SHA = "ab" * 32
ANNOUNCEMENT = {"v": 1, "model": SHA[:12], "sha256": SHA, "classes": ["a", "b"], "card": "c.json", "ts": 1.0}

PAYLOAD_FIELDS: dict[str, tuple[Callable[[bytes], Any], Callable[..., dict[str, Any]], str]] = {
    "classification.device": (lambda p: mc.validate_classification(p), classification, "device"),
    "classification.boot": (lambda p: mc.validate_classification(p), classification, "boot"),
    "sample.device": (lambda p: mc.validate_sample(p), sample, "device"),
    "sample.boot": (lambda p: mc.validate_sample(p), sample, "boot"),
    "decision.device": (mc.validate_decision, decision, "device"),
    "decision.boot": (mc.validate_decision, decision, "boot"),
    "status.device": (lambda p: mc.validate_status(p), lambda **o: {"v": 1, "state": "offline", **o}, "device"),
    "host.line": (
        lambda p: mc.validate_host_status(p),
        lambda **o: {"v": 1, "state": "online", "line": "L1", "client_id": "h", "ts": 1.0, **o},
        "line",
    ),
}


@pytest.mark.parametrize("name", sorted(PAYLOAD_FIELDS))
@SETTINGS
@given(text=near_miss())
def test_payload_id_fields_refuse_near_misses(name: str, text: str) -> None:
    validate, make, key = PAYLOAD_FIELDS[name]
    validate(json.dumps(make()).encode())  # the unchanged payload passes
    refuses(validate, json.dumps(make(**{key: text})).encode())


HEX_FIELDS: dict[str, tuple[Callable[[bytes], Any], Callable[[str], dict[str, Any]], st.SearchStrategy[str]]] = {
    "classification.model": (
        lambda p: mc.validate_classification(p),
        lambda t: classification(model=t),
        st.text("0123456789abcdef", min_size=1, max_size=63),
    ),
    "announcement.sha256": (
        mc.validate_model_announcement,
        lambda t: {**ANNOUNCEMENT, "sha256": t, "model": t[:12]},
        st.just(SHA),
    ),
    "announcement.model": (mc.validate_model_announcement, lambda t: {**ANNOUNCEMENT, "model": t}, st.just(SHA[:12])),
}


@pytest.mark.parametrize("name", sorted(HEX_FIELDS))
@SETTINGS
@given(data=st.data())
def test_hex_fields_refuse_near_misses(name: str, data: st.DataObject) -> None:
    validate, make, valid = HEX_FIELDS[name]
    good = data.draw(valid)
    validate(json.dumps(make(good)).encode())
    bad = data.draw(near_miss(st.just(good), INTRUDERS + ("A", "g", "\uff41")))
    refuses(validate, json.dumps(make(bad)).encode())


@SETTINGS
@given(text=near_miss(st.just(SHA), ("\n", " ", "\0", "A", "\uff41")))
def test_model_announcement_encoder_refuses_near_miss_hashes(text: str) -> None:
    refuses(lambda t: mc.encode_model_announcement(sha256=t, classes=["a", "b"], card="c", ts=1.0), text)


def test_sample_encoder_refuses_a_bad_boot() -> None:
    with pytest.raises(ContractError, match="boot id"):
        mc.encode_sample(device="cam1", boot="b00t0004\n", seq=1, jpeg=b"\xff\xd8\xff\xd9")


# --- serial numbers ----------------------------------------------------------------------------


@SETTINGS
@given(text=near_miss(st.integers(1, 999999).map(str), DIGIT_INTRUDERS))
def test_serial_numbers_refuse_near_misses(text: str) -> None:
    refuses(sc.parse, f"SORT {text} 1 100")
    refuses(sc.parse, f"ACK {text}")


def test_serial_decode_refuses_non_ascii_text() -> None:
    with pytest.raises(ContractError, match="not ASCII"):
        sc.decode("ACK \u0663*00")


# --- elsewhere: host config, webcam sources (the console: tests/console/test_bad_requests.py) -------------


def _host_config(**over: Any) -> Any:
    from sortcam.host.config import HostConfig
    from sortcam.mqtt_link import BrokerURL

    return HostConfig(
        broker=BrokerURL("127.0.0.1", 1883, False),
        serial_url="/dev/null",
        line="L1",
        label_bins={"paper": "paper"},
        gates={"paper": 1, "reject": 0},
        **over,
    ).validate()


@SETTINGS
@given(text=near_miss(st.text(ID_ALPHABET + ".:", min_size=1, max_size=60)))
def test_host_client_id_refuses_near_misses(text: str) -> None:
    if text.strip(ID_ALPHABET + ".:") == "":
        return  # "." and ":" are allowed in a client id
    refuses(lambda t: _host_config(client_id=t), text, ConfigError)


@SETTINGS
@given(text=near_miss())
def test_host_shared_group_and_belt_devices_refuse_near_misses(text: str) -> None:
    _host_config(client_id="sortcam-host:L1.a", shared_group="g-1", belt_delay_ms={"cam_1": 100})
    refuses(lambda t: _host_config(shared_group=t), text, ConfigError)
    refuses(lambda t: _host_config(belt_delay_ms={t: 100}), text, ConfigError)


@SETTINGS
@given(text=near_miss(st.integers(0, 999).map(lambda n: f"webcam:{n}"), DIGIT_INTRUDERS))
def test_webcam_source_refuses_near_misses(text: str) -> None:
    from sortcam.sim.sources import source_kind

    with pytest.raises(SortcamError):
        source_kind(text)


# --- duplicate keys ---------------------------------------------------------------------------


def _twice(good: dict[str, Any], key: str, first: Any) -> bytes:
    """``good`` as JSON with ``key`` twice: ``first``, then the good value (which a last-wins parser keeps)."""
    parts = (
        [f"{json.dumps(key)}:{json.dumps(first)}"]
        + [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in good.items() if k != key]
        + [f"{json.dumps(key)}:{json.dumps(good[key])}"]
    )
    return ("{" + ",".join(parts) + "}").encode()


DUPLICATES: list[tuple[str, Callable[[bytes], Any], dict[str, Any], str, Any]] = [
    ("classification seq", lambda p: mc.validate_classification(p, "cam1"), classification(), "seq", 6),
    ("classification label", lambda p: mc.validate_classification(p, "cam1"), classification(), "label", "glass"),
    (
        "classification device cam2 then cam1",
        lambda p: mc.validate_classification(p, "cam1"),
        classification(),
        "device",
        "cam2",
    ),
    ("sample boot", lambda p: mc.validate_sample(p, "cam1"), sample(), "boot", "other"),
    ("decision bin", mc.validate_decision, decision(), "bin", "glass"),
    ("cmd", mc.validate_cmd, {"cmd": "capture"}, "cmd", "reboot"),
    ("cmd threshold", mc.validate_cmd, {"cmd": "set", "threshold": 0.5}, "threshold", [[1]]),
    (
        "status state",
        lambda p: mc.validate_status(p, "cam1"),
        {"v": 1, "device": "cam1", "state": "offline"},
        "state",
        "online",
    ),
    ("model announcement", mc.validate_model_announcement, ANNOUNCEMENT, "card", "/elsewhere.json"),
    (
        "host status",
        mc.validate_host_status,
        {"v": 1, "state": "online", "line": "L1", "client_id": "h", "ts": 1.0},
        "state",
        "offline",
    ),
]


@pytest.mark.parametrize(("name", "validate", "good", "key", "first"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_payloads_with_a_key_twice_are_refused(
    name: str, validate: Callable[[bytes], Any], good: dict[str, Any], key: str, first: Any
) -> None:
    validate(json.dumps(good).encode())
    with pytest.raises(ContractError, match=f"holds '{key}' twice"):
        validate(_twice(good, key, first))


def test_nested_duplicate_keys_are_refused_too() -> None:
    payload = json.dumps(classification())[:-1] + ', "extra": {"a": 1, "a": 2}}'
    with pytest.raises(ContractError, match="holds 'a' twice"):
        mc.validate_classification(payload.encode())


@SETTINGS
@given(keys=st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=6))
def test_strict_json_refuses_exactly_the_repeated_keys(keys: list[str]) -> None:
    text = "{" + ",".join(f"{json.dumps(k)}:{i}" for i, k in enumerate(keys)) + "}"
    if len(set(keys)) == len(keys):
        assert strict_json.loads(text) == json.loads(text)
    else:
        with pytest.raises(strict_json.DuplicateKeyError):
            strict_json.loads(text)


@SETTINGS
@given(value=st.recursive(st.floats() | st.integers() | st.text(max_size=3) | st.none(),
                          lambda kid: st.lists(kid, max_size=3) | st.dictionaries(st.text(max_size=3), kid, max_size=3),
                          max_leaves=8))  # fmt: skip
def test_strict_json_dumps_writes_json_any_reader_takes(value: Any) -> None:
    """NaN and the infinities become null, every finite value round-trips; never ``NaN`` text."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    text = strict_json.dumps(value)
    back = json.loads(text, parse_constant=refuse)
    assert back == json.loads(json.dumps(strict_json.finite(value)))
    if isinstance(value, float) and not math.isfinite(value):
        assert back is None


def test_host_config_and_model_card_with_a_key_twice_are_refused(tmp_path: Path) -> None:
    from sortcam.card import load_card
    from sortcam.host.config import read_config_file

    cfg = tmp_path / "host.json"
    cfg.write_text('{"threshold": 0.9, "threshold": 0.1}')
    with pytest.raises(ConfigError, match="duplicate key 'threshold'"):
        read_config_file(cfg)
    card = tmp_path / "card.json"
    card.write_text('{"tflite": "a.tflite", "tflite": "b.tflite", "classes": ["a", "b"]}')
    with pytest.raises(ModelError, match="duplicate key 'tflite'"):
        load_card(card)


def test_usage_errors_keep_their_exit_code() -> None:
    assert UsageError("x").exit_code == 2 and UsageError("x").http_status == 400
