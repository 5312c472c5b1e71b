"""Golden vectors of dataset capture (``sortcam collect``) for the firmware's core.

Writes two files into ``tests/data/golden`` (``python tests/firmware/collect_golden.py``;
``tests/firmware/test_collect_golden.py`` regenerates them and fails on any drift):

- ``collect_cmds.txt``: ``set`` commands with ``collect_every_ms`` / ``collect_for_s``
  (a table plus seeded mutations) and :func:`sortcam.mqtt_contract.validate_cmd`'s verdict
  and values, for ``ParseCommand`` (``tests/firmware/cpp/command_test.cc``);
- ``collect_pacing.txt``: event sequences (``set`` commands, camera frames, classified
  items) run through the twin's own ``DeviceTwin._set_collect`` and ``_collect_frame``
  (``sim/twin.py``) on a stubbed clock, with which frames the twin sends and the ``seq``
  each takes, for ``FrameCollector`` (``tests/firmware/cpp/collect_test.cc``).

Nothing here depends on the model, so a new model leaves these files as they are. They
live beside ``sortcam.tools.golden``'s files rather than in it: this generator belongs to
the firmware's tests. Times are whole multiples of 125 ms, which float seconds hold
exactly, so the twin's float clock and the firmware's integer milliseconds cannot part on
a boundary; the generator checks its integer-millisecond reading of the rules against the
twin's and fails where they differ.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from unittest import mock

import numpy as np

from sortcam import device_core as dc
from sortcam import mqtt_contract as mc
from sortcam.errors import ContractError
from sortcam.tools.golden import GOLDEN_DIR, _mutate

FILES = ("collect_cmds.txt", "collect_pacing.txt")
ABSENT = "-"

# --- commands -------------------------------------------------------------------------

CMD_TABLE: tuple[bytes, ...] = tuple(
    p if isinstance(p, bytes) else p.encode()
    for p in (
        '{"cmd":"set","collect_every_ms":2000,"collect_for_s":60}',
        '{"v":1,"cmd":"set","collect_every_ms":600000,"collect_for_s":3600}',
        '{"cmd":"set","collect_for_s":60}',
        '{"cmd":"set","collect_for_s":0}',
        '{"cmd":"set","collect_every_ms":5000,"collect_for_s":0}',
        '{"cmd":"set","collect_for_s":-0}',
        '{"cmd":"set","collect_every_ms":2000}',
        '{"cmd":"set","collect_every_ms":1999,"collect_for_s":60}',
        '{"cmd":"set","collect_every_ms":600001,"collect_for_s":60}',
        '{"cmd":"set","collect_every_ms":0,"collect_for_s":60}',
        '{"cmd":"set","collect_every_ms":-2000,"collect_for_s":60}',
        '{"cmd":"set","collect_for_s":3601}',
        '{"cmd":"set","collect_for_s":-1}',
        '{"cmd":"set","collect_for_s":60.0}',
        '{"cmd":"set","collect_for_s":6e1}',
        '{"cmd":"set","collect_every_ms":2000.0,"collect_for_s":60}',
        '{"cmd":"set","collect_every_ms":2e3,"collect_for_s":60}',
        '{"cmd":"set","collect_for_s":true}',
        '{"cmd":"set","collect_for_s":false}',
        '{"cmd":"set","collect_for_s":"60"}',
        '{"cmd":"set","collect_for_s":null}',
        '{"cmd":"set","collect_for_s":[60]}',
        '{"cmd":"set","collect_every_ms":"2000","collect_for_s":60}',
        '{"cmd":"set","collect_every_ms":null,"collect_for_s":60}',
        '{"cmd":"set","collect_for_s":60,"collect_for_s":60}',
        '{"cmd":"set","collect_for_s":60,"threshold":0.5,"trigger":"gpio","interval_ms":100}',
        '{"cmd":"set","collect_every_ms":3000,"collect_for_s":20,"interval_ms":60001}',
        '{"cmd":"set","collect_for":60}',
        '{"cmd":"set","collect_every_s":2,"collect_for_s":60}',
        '{"cmd":"capture","collect_for_s":60}',
        '{"cmd":"reboot","collect_every_ms":2000,"collect_for_s":60}',
        '{"cmd":"set","collect_for_s":99999999999999999999}',
        '{"cmd":"set","collect_for_s":3600,"collect_every_ms":2000}',
        '{"cmd":"set","collect_for_s":1}',
        '{"cmd":"set","collect_every_ms":2001,"collect_for_s":1}',
        '{"cmd":"set", "collect_every_ms" : 2000 , "collect_for_s" : 60 }\n',
    )
)
CMD_ALPHABET = b'{}":,.-+0123456789e _collectverymsfo'


def _cmd_line(payload: bytes) -> str | None:
    """Case line for a payload, or None when the Python validator itself fails (left out)."""
    try:
        d = mc.validate_cmd(payload)
    except ContractError:
        return f"{payload.hex() or ABSENT} 0"
    except (OverflowError, ValueError):
        return None
    thr = f"{float(d['threshold'])!r}" if "threshold" in d else ABSENT
    values = [d["cmd"], thr] + [
        str(d.get(k, ABSENT)) for k in ("trigger", "interval_ms", "collect_every_ms", "collect_for_s")
    ]
    return f"{payload.hex()} 1 " + " ".join(values)


def write_cmds(out: Path, mutations: int = 600) -> None:
    rng = random.Random(2026)
    lines = [
        "# payload_hex verdict(1 ok / 0 rejected) [cmd threshold trigger interval_ms collect_every_ms collect_for_s]"
    ]
    seen: set[bytes] = set()
    for payload in CMD_TABLE:
        seen.add(payload)
        if (line := _cmd_line(payload)) is not None:
            lines.append(line)
    seeds = CMD_TABLE[:6]
    while len(seen) < len(CMD_TABLE) + mutations:
        payload = bytes(_mutate(rng, rng.choice(seeds), CMD_ALPHABET, max_edits=3))
        if payload in seen:
            continue
        seen.add(payload)
        if (line := _cmd_line(payload)) is not None:
            lines.append(line)
    (out / "collect_cmds.txt").write_text("\n".join(lines) + "\n")


# --- pacing ---------------------------------------------------------------------------

Event = tuple[str, int, int, int]
"""``("c", t_ms, every_ms, for_s)`` a set command, ``("f", t_ms, 0, 0)`` a camera frame,
``("i", t_ms, 0, 0)`` an item classified (it takes a seq)."""


def _frames(start: int, stop: int, step: int) -> list[Event]:
    return [("f", t, 0, 0) for t in range(start, stop, step)]


def _random_events(rng: random.Random, n: int) -> list[Event]:
    events: list[Event] = []
    t = 1000
    for _ in range(n):
        t += 125 * rng.randint(0, 24)
        r = rng.random()
        if r < 0.06:
            every = rng.choice([2000, 2000, 2125, 3000, 5000])
            events.append(("c", t, every, rng.choice([0, 1, 3, 5, 10, 60])))
        elif r < 0.12:
            events.append(("i", t, 0, 0))
        else:
            events.append(("f", t, 0, 0))
    return events


def sequences() -> list[tuple[str, list[Event]]]:
    rng = random.Random(7)
    return [
        ("steady", [("c", 1000, 2000, 10)] + _frames(1000, 14000, 500)),
        (
            "renew_same_pace",
            [("c", 1000, 2000, 60)] + _frames(1250, 3125, 250) + [("c", 3125, 2000, 60)] + _frames(3125, 9000, 250),
        ),
        (
            "renew_new_pace",
            [("c", 1000, 2000, 60)] + _frames(1000, 4000, 250) + [("c", 4000, 5000, 60)] + _frames(4000, 16000, 250),
        ),
        (
            "stop_and_start",
            [("c", 1000, 2000, 60)]
            + _frames(1000, 5000, 250)
            + [("c", 5000, 2000, 0)]
            + _frames(5000, 9000, 250)
            + [("c", 9125, 2000, 60)]
            + _frames(9125, 12000, 250),
        ),
        (
            "lease_runs_out",
            [("c", 1000, 3000, 5)] + _frames(1000, 9000, 125) + [("c", 9000, 3000, 5)] + _frames(9000, 16000, 125),
        ),
        (
            "renew_after_expiry",
            [("c", 1000, 2000, 3)] + _frames(1000, 4500, 500) + [("c", 4500, 2000, 3)] + _frames(4500, 9000, 500),
        ),
        (
            "edges",
            [
                ("c", 1000, 2000, 4),
                ("f", 1000, 0, 0),
                ("f", 2875, 0, 0),
                ("f", 3000, 0, 0),
                ("f", 4875, 0, 0),
                ("f", 5000, 0, 0),
                ("f", 5125, 0, 0),
            ],
        ),
        ("slow_loop", [("c", 1000, 2000, 30)] + _frames(1000, 32000, 1375)),
        (
            "items_share_seq",
            [("i", 500, 0, 0), ("c", 1000, 2000, 20)]
            + [e for t in range(1000, 12000, 750) for e in (("f", t, 0, 0), ("i", t + 125, 0, 0))],
        ),
        ("slowest_longest", [("c", 1000, 600000, 3600)] + _frames(1000, 3_700_000, 125_000)),
        ("no_command", _frames(1000, 8000, 500)),
        ("random", _random_events(rng, 400)),
    ]


class _NoLink:
    """Stands in for the twin's MQTT session: publishing goes nowhere (no broker)."""

    up = False

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        pass


def _twin() -> object:
    """A DeviceTwin with only what its collection code reads (no model, no broker)."""
    from sortcam.sim.twin import DeviceTwin, TwinStats

    twin = DeviceTwin.__new__(DeviceTwin)
    twin.device = "cam1"
    twin.root = mc.DEFAULT_ROOT
    twin.stats = TwinStats()
    twin.sequencer = dc.Sequencer(boot="5f3a9c01")
    twin.link = _NoLink()  # type: ignore[attr-defined]
    twin._collect_until = 0.0
    twin._collect_every_s = mc.COLLECT_EVERY_DEFAULT_MS / 1000.0
    twin._collect_next = 0.0
    return twin


class _Reference:
    """The rules in integer milliseconds, as the firmware's FrameCollector reads them."""

    def __init__(self) -> None:
        self.active, self.every, self.until, self.next = False, mc.COLLECT_EVERY_DEFAULT_MS, 0, 0

    def set(self, t: int, every: int, for_s: int) -> None:
        running = self.active and t < self.until
        if not running or every != self.every:
            self.next = t
        self.every = every
        self.active = for_s > 0
        self.until = t + for_s * 1000

    def due(self, t: int) -> bool:
        if not self.active or t >= self.until:
            self.active = False
            return False
        if t < self.next:
            return False
        self.next = t + self.every
        return True


def run_twin(events: list[Event]) -> list[str]:
    """``events`` through the twin; one output line per event."""
    import sortcam.sim.twin as twin_module

    twin = _twin()
    ref = _Reference()
    frame = np.zeros((12, 16, 3), np.uint8)
    lines: list[str] = []
    for kind, t, every, for_s in events:
        if kind == "c":
            with mock.patch.object(twin_module.time, "monotonic", return_value=t / 1000):
                twin._set_collect(every, for_s)  # type: ignore[attr-defined]
            ref.set(t, every, for_s)
            lines.append(f"c {t} {every} {for_s}")
        elif kind == "i":
            lines.append(f"i {t} {twin.sequencer.next()}")  # type: ignore[attr-defined]
        else:
            before = twin.stats.collected  # type: ignore[attr-defined]
            seq = twin.sequencer.seq  # type: ignore[attr-defined]
            twin._collect_frame(frame, t / 1000)  # type: ignore[attr-defined]
            sent = twin.stats.collected != before  # type: ignore[attr-defined]
            if sent != ref.due(t):
                raise AssertionError(f"the twin and the millisecond rules part at t={t} ms")
            lines.append(f"f {t} 1 {seq}" if sent else f"f {t} 0 {ABSENT}")
    return lines


def write_pacing(out: Path) -> None:
    lines = [
        "# sequence event: 'c <t_ms> <every_ms> <for_s>' a set command; 'i <t_ms> <seq>' an item takes a seq;",
        "# 'f <t_ms> <sent 1/0> <seq|->' a camera frame and whether the twin sends it to the collector",
    ]
    for name, events in sequences():
        lines += [f"{name} {line}" for line in run_twin(events)]
    (out / "collect_pacing.txt").write_text("\n".join(lines) + "\n")


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_cmds(out)
    write_pacing(out)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN_DIR)
