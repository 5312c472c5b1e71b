"""The virtual sorter: the serial contract on a real pty, and its faults against the real controller."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from sortcam import mqtt_contract as mc
from sortcam import serial_contract as sc
from sortcam.card import ModelCard
from sortcam.errors import UsageError
from sortcam.sim.sorter import FaultPlan, VirtualSorter, parse_faults


@pytest.fixture()
def sorter_port() -> Iterator[tuple[VirtualSorter, serial.Serial]]:
    sorter = VirtualSorter(gates=4).start()
    port = serial.Serial(sorter.device_path, sc.BAUD, timeout=2)
    try:
        yield sorter, port
    finally:
        port.close()
        sorter.stop()


def ask(port: serial.Serial, line: bytes) -> str:
    port.write(line)
    answer = port.readline()
    assert answer.endswith(b"\n"), f"no answer to {line!r}"
    return sc.decode(answer)


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        (sc.ping_line(), "PONG simsorter-1 4"),
        (sc.sort_line(7, 2, 0), "ACK 7"),
        (b"SORT 8 1 0*00\n", "NAK 8 checksum"),  # bad checksum, id readable
        (b"SORT x 1 0*00\n", "NAK 0 checksum"),  # bad checksum, id unreadable
        (b"SORT 9 1\n", "NAK 9 syntax"),  # no checksum at all (id still readable)
        (sc.encode("SORT 9 1"), "NAK 9 syntax"),
        (sc.sort_line(10, 4, 0), "NAK 10 gate"),  # 4 gates: 0..3
        (sc.encode("HELLO"), "NAK 0 syntax"),
    ],
)
def test_serial_contract(sorter_port: tuple[VirtualSorter, serial.Serial], line: bytes, answer: str) -> None:
    _, port = sorter_port
    assert ask(port, line) == answer


def test_belt_delay_scheduling_and_idempotent_ids(sorter_port: tuple[VirtualSorter, serial.Serial]) -> None:
    sorter, port = sorter_port
    assert ask(port, sc.sort_line(1, 3, 400)) == "ACK 1"
    assert ask(port, sc.sort_line(2, 1, 50)) == "ACK 2"
    assert ask(port, sc.sort_line(1, 3, 400)) == "ACK 1"  # a retry: ACK again, no second item
    assert sorter.wait_idle(5)
    assert sorter.contents() == {0: [], 1: [2], 2: [], 3: [1]}
    assert [d.item_id for d in sorter.drops] == [2, 1]  # ordered by belt delay, not by arrival
    assert sorter.drops[1].dropped_at - sorter.drops[1].accepted_at >= 0.4
    assert ask(port, sc.sort_line(1, 3, 0)) == "ACK 1"  # still done after landing
    time.sleep(0.1)
    assert len(sorter.drops) == 2 and sorter.duplicate_sorts == 2


def test_jam_then_clear_and_bin_full() -> None:
    sorter = VirtualSorter(gates=3, faults=parse_faults(["jam:1", "bin-full:2:1"])).start()
    port = serial.Serial(sorter.device_path, sc.BAUD, timeout=2)
    try:
        assert ask(port, sc.sort_line(1, 0, 0)) == "ACK 1"
        assert sc.decode(port.readline()) == "EVT JAM"  # after the first drop
        assert ask(port, sc.sort_line(2, 0, 0)) == "NAK 2 jam"
        sorter.clear_jam()
        assert sc.decode(port.readline()) == "EVT CLEARED"
        assert ask(port, sc.sort_line(3, 2, 0)) == "ACK 3"
        assert sc.decode(port.readline()) == "EVT BIN_FULL 2"
        assert ask(port, sc.sort_line(4, 2, 0)) == "NAK 4 full"
        assert ask(port, sc.sort_line(5, 1, 0)) == "ACK 5"
        assert sorter.wait_idle(2) and sorter.contents() == {0: [1], 1: [5], 2: [3]}
    finally:
        port.close()
        sorter.stop()


def test_wire_faults() -> None:
    # faults are spent in this order: a lost line, then an unanswered one, then a bad checksum
    sorter = VirtualSorter(faults=parse_faults(["no-answer", "bad-checksum:1", "drop-line"])).start()
    port = serial.Serial(sorter.device_path, sc.BAUD, timeout=0.5)
    try:
        port.write(sc.sort_line(1, 1, 0))
        assert port.readline() == b""  # lost on the wire: not acted on
        port.write(sc.sort_line(2, 1, 0))
        assert port.readline() == b""  # acted on, not answered
        port.write(sc.sort_line(3, 1, 0))
        with pytest.raises(sc.ChecksumError):
            sc.decode(port.readline())
        assert sorter.wait_idle(2) and sorter.contents()[1] == [2, 3]
        assert ask(port, sc.sort_line(1, 1, 0)) == "ACK 1"
    finally:
        port.close()
        sorter.stop()


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["melt"], "unknown fault"),
        (["jam:x"], "AFTER"),
        (["bin-full"], "needs a gate"),
        (["bin-full:99"], "outside"),
        (["no-answer:1:2"], "at most a COUNT"),
    ],
)
def test_bad_fault_specs(specs: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_faults(specs)


def test_fault_plan_parsing() -> None:
    plan = parse_faults(["jam:3:1.5", "bin-full:2", "no-answer:2", "no-answer", "bad-checksum:4"])
    assert plan == FaultPlan(jam_after=3, jam_for_s=1.5, bin_capacity={2: 0}, no_answer=3, bad_checksum=4)


# --- the controller's fault paths, driven by the sorter's faults ---------------------------


class Line:
    """Real mosquitto + the virtual sorter + the real host controller (in-process)."""

    def __init__(
        self, broker_url: str, tmp: Path, card: ModelCard, faults: list[str], recorder_factory: Any, **overrides: Any
    ) -> None:
        from sortcam.host.config import build_config
        from sortcam.host.controller import Controller

        self.sorter = VirtualSorter(faults=parse_faults(faults)).start()
        cfg = build_config(
            broker=broker_url,
            serial_url=self.sorter.device_path,
            line="t",
            card_path=card.path,
            overrides={
                "state_db": tmp / "host.db",
                "default_belt_delay_ms": 50,
                "ack_timeout_ms": 150,
                "retries": 3,
                "deadline_ms": 3000,
                **overrides,
            },
        )
        self.rec = recorder_factory(broker_url, ["sortcam/line/t/decision"])
        self.controller = Controller(cfg)
        self.controller.start()
        assert self.controller.wait_ready(15)

    def publish(self, seq: int, label: str = "glass") -> None:
        self.rec.publish(
            "sortcam/cam1/classification",
            mc.encode_classification(
                device="cam1",
                boot="b00t",
                seq=seq,
                label=label,
                class_id=1,
                confidence=0.9,
                top=[(label, 0.9)],
                latency_ms=5,
                model="abcdef012345",
            ),
        )

    def final(self, n: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = [json.loads(p) for p in self.rec.on("/decision")]
            done = [d for d in done if d.get("status") in ("acked", "missed", "rejected")]
            if len(done) >= n:
                return done
            time.sleep(0.05)
        raise AssertionError(f"no {n} final decisions: {self.rec.on('/decision')}")

    def close(self) -> None:
        self.controller.stop()
        self.sorter.stop()


@pytest.fixture()
def line_factory(mqtt_broker: Any, tmp_path: Path, recorder_factory: Any, tiny_card: ModelCard) -> Iterator[Any]:
    made: list[Line] = []

    def make(faults: list[str], **overrides: Any) -> Line:
        line = Line(mqtt_broker.url, tmp_path, tiny_card, faults, recorder_factory, **overrides)
        made.append(line)
        return line

    yield make
    for line in made:
        line.close()


@pytest.mark.parametrize("fault", ["no-answer:1", "bad-checksum:1", "drop-line:1", "jam:0:0.4"])
def test_transient_faults_are_retried_and_sorted_once(line_factory: Any, fault: str) -> None:
    line = line_factory([fault])
    line.publish(1)
    (final,) = line.final(1)
    assert final["status"] == "acked" and final["attempts"] >= 2
    assert line.sorter.wait_idle(5)
    gate = final["gate"]
    assert line.sorter.contents()[gate] == [final["sort_id"]]  # in its bin exactly once
    sorts = [r for r in line.sorter.received if r.startswith("SORT ")]
    assert len(sorts) >= 2 and len({s.split()[1] for s in sorts}) == 1  # retried with the same id


@pytest.mark.parametrize(
    ("fault", "reason", "moved"),
    [
        ("drop-line:99", "no_ack", False),  # every SORT lost on the wire
        ("no-answer:99", "no_ack", True),  # the sorter acts but every ACK is lost
        ("jam:0", None, False),
        ("bin-full:4", None, False),
    ],
)
def test_permanent_faults_end_as_missed_never_silently(
    line_factory: Any, fault: str, reason: str | None, moved: bool
) -> None:
    line = line_factory([fault], deadline_ms=1500)
    line.publish(1, "glass")  # glass -> gate 4
    (final,) = line.final(1)
    assert final["status"] == "missed" and final.get("miss_reason")
    if reason:
        assert final["miss_reason"] == reason
    assert line.sorter.wait_idle(5)
    landed = [i for ids in line.sorter.contents().values() for i in ids]
    assert landed == ([final["sort_id"]] if moved else [])  # never twice, even with retries


def test_sorter_cli_prints_its_pty_and_serves_until_ctrl_c(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    link = tmp_path / "sorter"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sortcam.cli", "sim", "sorter", "--gates", "3", "--link", str(link)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()[0]
        assert first.startswith("/dev/") and link.resolve() == Path(first).resolve()
        with serial.Serial(str(link), sc.BAUD, timeout=2) as port:
            assert ask(port, sc.ping_line()) == "PONG simsorter-1 3"
            assert ask(port, sc.sort_line(5, 2, 0)) == "ACK 5"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0
    assert "drop: item 5 -> gate 2" in out and "gate 2: 1" in out
    assert not link.exists()
