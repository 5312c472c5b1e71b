"""Configuration, decisions and the CLI's one-line errors (in-process, no broker needed
unless stated)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_line_error
from host_helpers import CLASSES, write_config

from sortcam import card as card_mod
from sortcam.cli import main
from sortcam.errors import ConfigError
from sortcam.host.config import build_config
from sortcam.host.controller import Decider
from sortcam.host.store import NewItem, StateStore, open_readonly, prune, query_events, query_items
from sortcam.mqtt_link import BrokerURL

TOML = """
threshold = 0.7
reject_bin = "manual"
classes = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]

[gates]
manual = 0
paper = 1
plastic = 2
metal = 3
glass = 4
landfill = 5

[labels]
cardboard = "paper"
paper = "paper"
plastic = "plastic"
metal = "metal"
glass = "glass"
trash = "landfill"

[biodegradable]
paper = true
cardboard = true

[belt_delay_ms]
default = 1200
cam-7 = 800

[serial]
ack_timeout_ms = 150
retries = 2

[items]
deadline_ms = 3000
"""


def test_toml_config(tmp_path: Path) -> None:
    path = tmp_path / "line.toml"
    path.write_text(TOML)
    cfg = build_config(
        broker="mqtt://127.0.0.1:1884",
        serial_url="/dev/null",
        line="A",
        config_file=path,
        card_path=tmp_path / "no-card.json",
    )
    assert cfg.broker == BrokerURL("127.0.0.1", 1884, False)
    assert cfg.belt_delay_for("cam-7") == 800 and cfg.belt_delay_for("other") == 1200
    assert (cfg.ack_timeout_ms, cfg.retries, cfg.deadline_ms, cfg.client_id) == (150, 2, 3000, "sortcam-host-A")
    d = Decider(cfg)
    assert d.decide("cardboard", 0.9) == d.decide("paper", 0.8)
    assert d.decide("cardboard", 0.9).gate == 1 and d.decide("cardboard", 0.9).biodegradable is True
    assert (d.decide("metal", 0.69).bin, d.decide("metal", 0.69).reason) == ("manual", "low_confidence")
    assert (d.decide("sofa", 1.0).gate, d.decide("sofa", 1.0).reason) == (0, "unknown_label")


def test_model_card_gives_classes_and_bins(tmp_path: Path) -> None:
    card = card_mod.ModelCard(
        tflite="m.tflite",
        classes=list(CLASSES),
        input=card_mod.InputSpec(96, 96),
        bins=dict(card_mod.TRASHNET_BINS),
        biodegradable=dict(card_mod.TRASHNET_BIODEGRADABLE),
    )
    card.save(tmp_path / "m.json")
    cfg = build_config(
        broker="mqtts://u:p@broker.example", serial_url="socket://127.0.0.1:9", line="B", card_path=tmp_path / "m.json"
    )
    assert cfg.broker.tls and cfg.broker.port == 8883 and (cfg.username, cfg.password) == ("u", "p")
    assert cfg.label_bins == card_mod.TRASHNET_BINS
    assert Decider(cfg).decide("trash", 0.9).gate == 5


@pytest.mark.parametrize(
    "config,message",
    [
        ({"labels": {"trash": "compost"}}, "has no entry in gates"),
        ({"gates": {"reject": 0, "paper": 16, "plastic": 2, "metal": 3, "glass": 4, "landfill": 5}}, "0..15"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"serial": {"ack_timeout_ms": 0}}, "ack_timeout_ms"),
        ({"serial": {"baud_rate": 9600}}, "unknown keys in [serial]"),
        ({"colour": "red"}, "unknown keys"),
        ({"belt_delay_ms": {"default": -5}}, "belt_delay_ms"),
        ({"reject_bin": "nowhere"}, "reject bin"),
    ],
)
def test_bad_config_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict, message: str
) -> None:
    path = write_config(tmp_path / "c.json", **config)
    rc = main(
        [
            "host",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--serial",
            "/dev/null",
            "--line",
            "L",
            "--config",
            str(path),
            "--state-db",
            str(tmp_path / "db"),
        ]
    )
    assert rc == 1
    one_line_error(capsys, message)


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path / "c.json")
    base = ["host", "--line", "L", "--state-db", str(tmp_path / "db"), "--config", str(cfg)]
    cases = [
        (["host", "--serial", "/dev/null"], 2, "needs --broker, --line"),
        (base + ["--broker", "mqtt://127.0.0.1:1", "--serial", str(tmp_path / "nope")], 1, "cannot open serial port"),
        (base + ["--broker", "ftp://x", "--serial", "loop://"], 1, "scheme must be"),
        (base + ["--broker", "mqtt://127.0.0.1:1", "--serial", "loop://"], 1, "cannot reach MQTT broker"),
        (["host", "events", "--db", str(tmp_path / "missing.db")], 1, "no event log"),
        (
            base[:-2] + ["--config", str(tmp_path / "absent.toml"), "--broker", "mqtt://h", "--serial", "loop://"],
            1,
            "cannot read config",
        ),
    ]
    for argv, code, message in cases:
        assert main(argv) == code, argv
        one_line_error(capsys, message)
    # no model card and no [labels]: a clear message, not a traceback
    monkeypatch.setattr(card_mod, "MODEL_DIR", tmp_path / "empty")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"threshold": 0.5}))
    rc = main(["host", "--broker", "mqtt://h", "--serial", "loop://", "--line", "L", "--config", str(bare)])
    err = capsys.readouterr().err
    if not (Path(card_mod.__file__).parent.parent / "model" / "sortcam_trashnet.json").exists():
        assert rc == 1 and "model card not found" in err and "[labels]" in err


def test_store_identity_and_ids_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    item = NewItem(
        device="d",
        boot="b",
        seq=1,
        label="glass",
        class_id=1,
        confidence=0.9,
        biodegradable=False,
        bin="glass",
        gate=4,
        reason="label",
        status="sent",
        device_latency_ms=10,
        belt_delay_ms=1000,
        received_ts=1.0,
        decided_ts=1.0,
        deadline_ts=5.0,
    )
    store = StateStore(db)
    first = store.record_item(item)
    assert first[1] is True
    with pytest.raises(ConfigError, match="in use"):
        StateStore(db)
    store.close()
    store = StateStore(db)
    assert store.record_item(item) == (first[0], False, "sent")
    item.seq = 2
    second = store.record_item(item)
    assert second[0] > first[0]
    assert [r["sort_id"] for r in store.pending()] == [first[0], second[0]]
    store.finish(first[0], "acked", miss_reason=None, attempts=1, delay_ms=900, written_ts=1.01, done_ts=1.02)
    store.close()
    rows = query_items(open_readonly(db))
    assert [r["status"] for r in rows] == ["acked", "sent"] and rows[0]["duplicates"] == 1
    assert rows[0]["write_ms"] == pytest.approx(10.0) and rows[0]["ack_ms"] == pytest.approx(20.0)


def test_prune_deletes_only_old_finished_published_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    day = 86400.0
    now = 100 * day
    store = StateStore(db)  # stays open: prune runs beside a live controller

    def item(seq: int, ts: float, status: str = "sent") -> int:
        new = NewItem(
            device="d",
            boot="b",
            seq=seq,
            label="glass",
            class_id=1,
            confidence=0.9,
            biodegradable=False,
            bin="glass",
            gate=4,
            reason="label",
            status=status,
            device_latency_ms=10,
            belt_delay_ms=1000,
            received_ts=ts,
            decided_ts=ts,
            deadline_ts=ts + 5,
        )
        return store.record_item(new)[0]

    old_acked, old_unpub, old_sent, new_acked = (
        item(1, now - 40 * day),
        item(2, now - 40 * day),
        item(3, now - 40 * day),
        item(4, now - 2 * day),
    )
    for sid, ts in ((old_acked, now - 40 * day), (old_unpub, now - 40 * day), (new_acked, now - 2 * day)):
        store.finish(sid, "acked", miss_reason=None, attempts=1, delay_ms=900, written_ts=ts, done_ts=ts + 1)
    store.mark_published([old_acked, new_acked])
    store.log_event("link", "serial down", ts=now - 40 * day)
    store.log_event("link", "serial up", ts=now - 1 * day)

    assert prune(db, 30, now=now, dry_run=True) == (1, 1)
    assert len(query_items(open_readonly(db))) == 4
    assert prune(db, 30, now=now) == (1, 1)
    left = {r["sort_id"]: r["status"] for r in query_items(open_readonly(db), last=None)}
    assert left == {old_unpub: "acked", old_sent: "sent", new_acked: "acked"}
    assert [e["detail"] for e in query_events(open_readonly(db))] == ["serial up"]
    # the identity counter never goes back: a new item gets a bigger id than any deleted one
    assert item(5, now) > new_acked
    store.close()

    assert main(["host", "prune", "--db", str(db), "--older-than-days", "1", "--dry-run"]) == 0
    assert "would delete 1 finished items and 1 events" in capsys.readouterr().out
    for argv, message in (
        (["host", "prune", "--db", str(db), "--older-than-days", "0.5"], "must be >= 1"),
        (["host", "prune", "--db", str(tmp_path / "none.db"), "--older-than-days", "7"], "no event log"),
    ):
        assert main(argv) == 1
        one_line_error(capsys, message)
