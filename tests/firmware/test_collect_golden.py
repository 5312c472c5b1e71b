"""The committed dataset-capture vectors are exactly what the Python side computes today.

``tests/data/golden/collect_cmds.txt`` and ``collect_pacing.txt`` (``collect_golden.py``
beside this file) hold the firmware's cmd parser and ``FrameCollector`` to
``sortcam.mqtt_contract.validate_cmd`` and the twin's collection code (``sim/twin.py``);
this test regenerates them and fails on any difference. After an intended change run
``python tests/firmware/collect_golden.py``, then the C++ tests.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import collect_golden
import pytest


def test_collect_vectors_are_up_to_date(tmp_path: Path) -> None:
    collect_golden.generate(tmp_path)
    stale = [
        name
        for name in collect_golden.FILES
        if not filecmp.cmp(tmp_path / name, collect_golden.GOLDEN_DIR / name, shallow=False)
    ]
    assert not stale, f"{', '.join(stale)} differ: run 'python tests/firmware/collect_golden.py' and the C++ tests"


def test_the_vectors_cover_each_rule() -> None:
    cmds = (collect_golden.GOLDEN_DIR / "collect_cmds.txt").read_text().splitlines()[1:]
    accepted = [line.split() for line in cmds if line.split()[1] == "1"]
    # hex, verdict, cmd, threshold, trigger, interval_ms, collect_every_ms, collect_for_s
    assert any(c[7] == "0" for c in accepted), "a stop"
    assert any(c[6] == "-" and c[7] != "-" for c in accepted), "collect_for_s alone (the default pace)"
    assert any(c[6] == "600000" and c[7] == "3600" for c in accepted), "both upper limits"
    pacing = [
        line.split()
        for line in (collect_golden.GOLDEN_DIR / "collect_pacing.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    names = {p[0] for p in pacing}
    assert {
        "steady",
        "lease_runs_out",
        "stop_and_start",
        "renew_same_pace",
        "renew_new_pace",
        "items_share_seq",
        "random",
    } <= names
    assert sum(1 for p in pacing if p[1] == "f" and p[3] == "1") >= 50


def test_the_twin_and_the_millisecond_rules_agree_on_a_planted_boundary() -> None:
    """The generator's own check: times off the 125 ms grid could part the float and integer clocks."""
    lines = collect_golden.run_twin([("c", 1000, 2000, 4), ("f", 1000, 0, 0), ("f", 3000, 0, 0), ("f", 5000, 0, 0)])
    assert lines == ["c 1000 2000 4", "f 1000 1 0", "f 3000 1 1", "f 5000 0 -"]
    with pytest.raises(AssertionError, match="part"):
        ref = collect_golden._Reference
        collect_golden._Reference = _Lenient  # type: ignore[misc]  # also sends at the lease's last instant
        try:
            collect_golden.run_twin([("c", 1000, 2000, 4), ("f", 1000, 0, 0), ("f", 3000, 0, 0), ("f", 5000, 0, 0)])
        finally:
            collect_golden._Reference = ref  # type: ignore[misc]


class _Lenient(collect_golden._Reference):
    def due(self, t: int) -> bool:
        if self.active and t == self.until:
            self.until += 1
        return super().due(t)
