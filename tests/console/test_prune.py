"""``sortcam console prune``: old items and their frames go, the labelling queue stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_errors import one_line_error

from sortcam.cli import main
from sortcam.console.store import Store, prune

DAY = 86400.0


def _classification(seq: int, label: str, confidence: float) -> dict:
    return {
        "device": "cam1",
        "boot": "b1",
        "seq": seq,
        "label": label,
        "class_id": 0,
        "confidence": confidence,
        "top": [[label, confidence]],
        "model": "0123456789ab",
        "latency_ms": 30.0,
    }


def test_prune_keeps_the_queue_and_recent_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = 1000 * DAY
    store = Store(tmp_path / "console.db", threshold=0.6)  # stays open, like a running console
    frames = {}
    # seq: (age in days, confidence, labelled)
    cases = {1: (40, 0.95, False), 2: (40, 0.30, False), 3: (40, 0.30, True), 4: (2, 0.95, False)}
    for seq, (age, conf, labelled) in cases.items():
        ts = now - age * DAY
        store.add_classification(_classification(seq, "paper", conf), now=ts)
        rel = f"samples/cam1/b1/{seq}.jpg"
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"\xff\xd8jpeg")
        frames[seq] = tmp_path / rel
        store.add_sample("cam1", "b1", seq, rel, now=ts)
        if labelled:
            store.set_labelled("cam1", "b1", seq, "paper", now=ts)

    assert prune(tmp_path, 30, 0.6, now=now, dry_run=True) == (2, 2)
    assert all(f.exists() for f in frames.values())
    assert prune(tmp_path, 30, 0.6, now=now) == (2, 2)
    left = sorted(item["seq"] for item in store.recent(100))
    assert left == [2, 4]  # 2 waits for a label; 4 is recent; 1 (sure) and 3 (labelled) are gone
    assert [f.exists() for f in (frames[1], frames[2], frames[3], frames[4])] == [False, True, False, True]
    assert [item["seq"] for item in store.queue()] == [2]
    store.close()

    assert main(["console", "prune", "--data", str(tmp_path), "--older-than-days", "1", "--dry-run"]) == 0
    assert "would delete 1 items and 1 sample frames" in capsys.readouterr().out
    for argv, message in (
        (["console", "prune", "--data", str(tmp_path), "--older-than-days", "0"], "must be >= 1"),
        (["console", "prune", "--data", str(tmp_path / "nope"), "--older-than-days", "7"], "no console item store"),
    ):
        assert main(argv) == 1
        one_line_error(capsys, message)


def test_prune_never_deletes_outside_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    outside = tmp_path / "precious.jpg"
    outside.write_bytes(b"keep")
    store = Store(data / "console.db")
    store.add_classification(_classification(1, "glass", 0.99), now=0.0)
    store.add_sample("cam1", "b1", 1, "../precious.jpg", now=0.0)
    store.close()
    assert prune(data, 1, now=10 * DAY) == (1, 0)
    assert outside.read_bytes() == b"keep"
