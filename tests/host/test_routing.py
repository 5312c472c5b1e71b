"""Routing, duplicates and bad input through the real controller process."""

from __future__ import annotations

import json
import signal

import pytest
from host_helpers import LABEL_GATE, classification, wait_until

from sortcam import mqtt_contract as mc
from sortcam import serial_contract as sc


def test_routes_each_label_to_its_gate_once(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory()
    labels = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
    for seq, label in enumerate(labels):
        rig.publish(classification(seq=seq, label=label, confidence=0.91))
    final = wait_until(lambda: len(rig.mqtt.final()) == 6 and rig.mqtt.final(), what="6 acked decisions")
    for seq, label in enumerate(labels):
        d = final[("cam1", "b00t0001", seq)]
        mc.validate_decision(json.dumps(d))
        assert d["status"] == "acked", d
        assert d["gate"] == LABEL_GATE[label] and d["reason"] == "label"
        assert d["biodegradable"] is (label in ("cardboard", "paper"))
        assert rig.sorter.moves[d["sort_id"]] == LABEL_GATE[label]
    # one "sent" then one "acked" per item, in that order; serial ids increasing in arrival order
    assert len(rig.mqtt.decisions("sent")) == 6
    for sort_id in rig.sorter.moves:
        assert [d["status"] for d in rig.mqtt.decisions() if d["sort_id"] == sort_id] == ["sent", "acked"]
    ids = [final[("cam1", "b00t0001", s)]["sort_id"] for s in range(6)]
    assert ids == sorted(ids) and len(set(ids)) == 6
    # the belt delay of the device goes into the SORT (less the device's latency and ours)
    assert all(0 < m.delay_ms <= 1500 - 40 for m in rig.sorter.sorts)
    assert rig.controller.stop() == 0
    rows = rig.controller.events()
    assert [r["status"] for r in rows] == ["acked"] * 6
    assert all(r["write_ms"] is not None and r["ack_ms"] >= r["write_ms"] for r in rows)


def test_low_confidence_and_unknown_label_go_to_reject(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory()
    rig.publish(classification(seq=1, label="metal", confidence=0.3))
    rig.publish(classification(seq=2, label="banana", confidence=0.99))
    final = wait_until(lambda: len(rig.mqtt.final()) == 2 and rig.mqtt.final(), what="2 decisions")
    low, unknown = final[("cam1", "b00t0001", 1)], final[("cam1", "b00t0001", 2)]
    assert (low["bin"], low["gate"], low["reason"]) == ("reject", 0, "low_confidence")
    assert (unknown["bin"], unknown["gate"], unknown["reason"]) == ("reject", 0, "unknown_label")
    assert unknown["biodegradable"] is None
    assert sorted(rig.sorter.moves.values()) == [0, 0]


def test_per_device_belt_delay(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory()
    rig.publish(classification(device="cam2", seq=0, latency_ms=0), device="cam2")
    wait_until(lambda: rig.sorter.sorts, what="a SORT")
    assert 800 < rig.sorter.sorts[0].delay_ms <= 900


def test_duplicates_never_move_the_sorter_twice(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory()
    payload = classification(seq=7, label="glass")
    for _ in range(5):
        rig.publish(payload)
    rig.publish(classification(seq=8, label="glass"))
    wait_until(lambda: len(rig.mqtt.final()) == 2, what="2 decisions")
    wait_until(
        lambda: "duplicate" in rig.controller.log() and rig.controller.log().count("duplicate") >= 4,
        what="4 duplicates logged",
    )
    assert len(rig.sorter.moves) == 2
    assert len(rig.mqtt.decisions("sent")) == 2
    rows = rig.controller.events()
    assert [r["duplicates"] for r in rows] == [4, 0]


def test_a_boot_with_a_trailing_newline_is_not_a_new_item(rig_factory) -> None:  # noqa: ANN001
    """Issue 16: ``^...$`` let "b00t0001\\n" pass for a new boot, so seq 7 was sorted twice."""
    rig = rig_factory()
    rig.publish(classification(seq=7, label="glass"))
    wait_until(lambda: len(rig.mqtt.final()) == 1, what="the first decision")
    for boot in ("b00t0001\n", "b00t0001\r", " b00t0001", "b00t0001\x00", "b00t000\u0661"):
        rig.publish(classification(boot=boot, seq=7, label="glass"))
    rig.publish(classification(seq=8, label="metal"))  # a good one after the near misses
    wait_until(lambda: len(rig.mqtt.final()) == 2, what="the second good item's decision")
    invalid = wait_until(
        lambda: (
            [e for e in rig.controller.events("--system") if e["kind"] == "invalid"]
            if len(rig.controller.events("--system")) >= 5
            else None
        ),
        what="5 invalid events",
    )
    assert len(invalid) == 5 and all("boot id" in e["detail"] for e in invalid), invalid
    assert len(rig.sorter.moves) == 2
    assert sorted((r["boot"], r["seq"]) for r in rig.controller.events()) == [("b00t0001", 7), ("b00t0001", 8)]
    assert rig.controller.proc.poll() is None


DUPLICATE_KEYS = {
    # each keeps the already-sorted item's values in its last copy: a last-wins parser sorts it again
    "seq twice": classification(seq=7).replace(b'"seq":7', b'"seq":9,"seq":7'),
    "label twice": classification(seq=7).replace(b'"label":"plastic"', b'"label":"metal","label":"plastic"'),
    "device cam2 then cam1": classification(seq=7).replace(b'"device":"cam1"', b'"device":"cam2","device":"cam1"'),
}


def test_payloads_with_a_key_twice_are_refused_and_never_sorted(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory()
    for payload in DUPLICATE_KEYS.values():
        rig.publish(payload)
    rig.publish(classification(seq=99, label="metal"))
    wait_until(lambda: rig.mqtt.final(), what="the good item's decision")
    assert list(rig.mqtt.final()) == [("cam1", "b00t0001", 99)]
    assert list(rig.sorter.moves.values()) == [3]
    invalid = wait_until(
        lambda: (
            [e for e in rig.controller.events("--system") if e["kind"] == "invalid"]
            if len(rig.controller.events("--system")) >= len(DUPLICATE_KEYS)
            else None
        ),
        what="invalid events",
    )
    details = sorted(e["detail"] for e in invalid)
    assert len(details) == len(DUPLICATE_KEYS)
    assert [d.split(": ", 1)[1] for d in details] == sorted(
        ["payload holds 'seq' twice", "payload holds 'label' twice", "payload holds 'device' twice"]
    )
    assert "holds 'device' twice" in rig.controller.log()  # the reason is logged, one line each
    assert rig.controller.proc.poll() is None


BAD_PAYLOADS = {
    "malformed_json": b'{"v":1,"device":"cam1",',
    "not_utf8": b"\xff\xfe\x00",
    "array": b"[1,2,3]",
    "wrong_type_seq": classification(seq=3).replace(b'"seq":3', b'"seq":"3"'),
    "bool_confidence": classification(seq=3).replace(b'"confidence":0.9000', b'"confidence":true'),
    "huge": b'{"v":1,"pad":"' + b"x" * 200000 + b'"}',
    "unknown_version": classification(seq=3).replace(b'"v":1', b'"v":2'),
    "negative_seq": classification(seq=3).replace(b'"seq":3', b'"seq":-1'),
    "huge_seq": classification(seq=3).replace(b'"seq":3', b'"seq":4294967296'),
    "confidence_above_1": classification(seq=3).replace(b'"confidence":0.9000', b'"confidence":1.5'),
    "confidence_below_0": classification(seq=3).replace(b'"confidence":0.9000', b'"confidence":-0.1'),
    "nan_confidence": classification(seq=3).replace(b'"confidence":0.9000', b'"confidence":NaN'),
    "device_mismatch": classification(device="cam9", seq=3),
    "bad_device_in_payload": classification(seq=3).replace(b'"device":"cam1"', b'"device":"cam 1!"'),
    "missing_label": classification(seq=3).replace(b'"label":"plastic",', b""),
    "empty": b"",
}


def test_every_bad_input_is_counted_and_never_sorted(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(extra=("--metrics-port", "0"))
    for payload in BAD_PAYLOADS.values():
        rig.publish(payload)
    # a device id the contract forbids, in the topic itself
    rig.mqtt.publish("sortcam/" + "x" * 40 + "/classification", classification(seq=3)).wait_for_publish(5)
    rig.publish(classification(seq=99, label="metal"))  # a good one after all the bad ones
    wait_until(lambda: rig.mqtt.final(), what="the good item's decision")
    final = rig.mqtt.final()
    assert list(final) == [("cam1", "b00t0001", 99)]
    assert list(rig.sorter.moves.values()) == [3]
    invalid = wait_until(
        lambda: len(rig.controller.events("--system")) >= len(BAD_PAYLOADS) + 1 and rig.controller.events("--system"),
        what="invalid events",
    )
    assert sum(1 for e in invalid if e["kind"] == "invalid") == len(BAD_PAYLOADS) + 1
    assert rig.controller.proc.poll() is None
    port = int(wait_until(lambda: _metrics_port(rig.controller.log()), what="metrics port"))
    text = _scrape(port)
    assert "sortcam_host_acked_total 1.0" in text
    counted = sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("sortcam_host_invalid_messages_total{")
    )
    assert counted == len(BAD_PAYLOADS) + 1
    assert rig.controller.stop(signal.SIGINT) == 0


def _metrics_port(log: str) -> str | None:
    for line in log.splitlines():
        if "metrics on http://" in line:
            return line.rsplit(":", 1)[1].split("/")[0]
    return None


def _scrape(port: int) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        return resp.read().decode()


@pytest.mark.parametrize(
    "answer,expect_status,expect_reason",
    [
        ("nak:checksum", "acked", None),
        ("nak:busy", "acked", None),
        ("garble", "acked", None),
        ("silent", "acked", None),
        ("nak:gate", "missed", "nak_gate"),
        ("nak:jam", "acked", None),
    ],
)
def test_sorter_faults_are_retried_with_the_same_id(rig_factory, answer, expect_status, expect_reason) -> None:  # noqa: ANN001
    # the first copy of every SORT gets the fault; a retry with the same id is acknowledged
    rig = rig_factory(behaviour=lambda item_id, nth: answer if nth == 1 else "ack")
    rig.publish(classification(seq=1, label="paper"))
    final = wait_until(lambda: rig.mqtt.final(), what="a final decision")
    d = final[("cam1", "b00t0001", 1)]
    assert d["status"] == expect_status and d.get("miss_reason") == expect_reason
    ids = {m.item_id for m in rig.sorter.sorts}
    assert ids == {d["sort_id"]}
    if expect_status == "acked":
        assert d["attempts"] >= 2 and rig.sorter.copies[d["sort_id"]] >= 2
        assert rig.sorter.moves == {d["sort_id"]: 1}
    else:
        assert rig.sorter.copies[d["sort_id"]] == 1


def test_sorter_that_stays_full_misses_with_the_reason(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(behaviour=lambda item_id, nth: "nak:full")
    rig.sorter.send(sc.evt_line("BIN_FULL 3"))
    rig.publish(classification(seq=1, label="metal"))
    d = wait_until(lambda: rig.mqtt.final(), what="a final decision")[("cam1", "b00t0001", 1)]
    assert (d["status"], d["miss_reason"]) == ("missed", "nak_full")
    assert rig.sorter.copies[d["sort_id"]] == 4 and not rig.sorter.moves
    events = wait_until(
        lambda: [e for e in rig.controller.events("--system") if e["kind"] == "sorter_evt"],
        what="the EVT in the event log",
    )
    assert events[0]["detail"] == "BIN_FULL 3"


def test_silent_sorter_items_are_missed_not_dropped(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(behaviour=lambda item_id, nth: "silent", items={"deadline_ms": 1500})
    for seq in range(3):
        rig.publish(classification(seq=seq))
    final = wait_until(lambda: len(rig.mqtt.final()) == 3 and rig.mqtt.final(), what="3 missed")
    assert {d["status"] for d in final.values()} == {"missed"}
    assert {d["miss_reason"] for d in final.values()} == {"no_ack"}
    # every SORT was written 1 + retries times with its own id, never a new one
    assert all(n == 4 for n in rig.sorter.copies.values()) and len(rig.sorter.copies) == 3
    assert rig.controller.proc.poll() is None
    rows = rig.controller.events("--status", "missed")
    assert len(rows) == 3


def test_library_api_in_process(mqtt_broker, pty_pair, tmp_path) -> None:  # noqa: ANN001
    """The demo runs the controller in-process: start, wait_ready, metrics, stop."""
    import urllib.request
    from pathlib import Path

    from host_helpers import Mqtt, ScriptedSorter, write_config

    from sortcam.host.config import build_config
    from sortcam.host.controller import Controller

    sorter = ScriptedSorter(pty_pair.master)
    cfg = build_config(
        broker=mqtt_broker.url,
        serial_url=str(pty_pair.path),
        line="demo",
        config_file=write_config(tmp_path / "c.json"),
        overrides={"state_db": Path(tmp_path / "lib.db"), "metrics_port": 0},
    )
    ctl = Controller(cfg, drain_s=1.0)
    ctl.start()
    client = Mqtt(mqtt_broker.url, topics=("sortcam/line/demo/+",))
    try:
        assert ctl.wait_ready(10)
        client.publish("sortcam/cam1/classification", classification(seq=5, label="paper"))
        wait_until(lambda: ctl.metrics.get("acked_total") == 1, what="one acked item")
        assert sorter.moves and list(sorter.moves.values()) == [1]
        assert ctl.metrics_server is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{ctl.metrics_server.port}/healthz", timeout=5) as resp:
            assert resp.status == 200
        wait_until(lambda: any(t.endswith("/host") for t, _ in client.messages), what="retained host status")
    finally:
        ctl.stop()
        sorter.stop()
    host_status = [json.loads(p) for t, p in client.messages if t.endswith("/host")]
    assert host_status[0]["state"] == "online"
    wait_until(
        lambda: [json.loads(p) for t, p in client.messages if t.endswith("/host")][-1]["state"] == "offline",
        what="offline status on stop",
    )
    client.close()


def test_gate_beyond_the_sorters_gates_is_reported(rig_factory) -> None:  # noqa: ANN001
    rig = rig_factory(gates={"landfill": 9})  # the scripted sorter answers PONG with 6 gates
    events = wait_until(
        lambda: [e for e in rig.controller.events("--system") if e["kind"] == "config_mismatch"],
        what="a config mismatch event",
    )
    assert "gate 9" in events[0]["detail"] and "0..5" in events[0]["detail"]


def test_db_refusing_commits_stalls_without_acking_then_recovers(
    mqtt_broker,
    pty_pair,
    tmp_path,  # noqa: ANN001
    monkeypatch,
) -> None:  # noqa: ANN001
    """A failing disk: nothing is acknowledged or sorted until the commit succeeds."""
    import sqlite3
    from pathlib import Path

    from host_helpers import Mqtt, ScriptedSorter, write_config

    from sortcam.host.config import build_config
    from sortcam.host.controller import Controller
    from sortcam.host.store import StateStore

    failures = {"left": 2}
    real = StateStore.record_items

    def flaky(self, items):  # noqa: ANN001, ANN202
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, items)

    monkeypatch.setattr(StateStore, "record_items", flaky)
    sorter = ScriptedSorter(pty_pair.master)
    cfg = build_config(
        broker=mqtt_broker.url,
        serial_url=str(pty_pair.path),
        line="db",
        config_file=write_config(tmp_path / "c.json"),
        overrides={"state_db": Path(tmp_path / "h.db")},
    )
    ctl = Controller(cfg, drain_s=0.5)
    ctl.start()
    client = Mqtt(mqtt_broker.url)
    try:
        assert ctl.wait_ready(10)
        client.publish("sortcam/cam1/classification", classification(seq=1, label="metal"))
        wait_until(lambda: ctl.metrics.get("acked_total") == 1, what="the item acked after the db came back")
        assert ctl.metrics.get("db_errors_total") == 2 and list(sorter.moves.values()) == [3]
    finally:
        ctl.stop()
        sorter.stop()
        client.close()
