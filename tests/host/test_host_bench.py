"""``sortcam bench host`` end to end on a few items (the recorded figures use thousands)."""

from __future__ import annotations

import json
from pathlib import Path

from sortcam.cli import main


def test_bench_host_small(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    rc = main(["bench", "host", "-n", "40", "--devices", "2", "--window", "4", "--rate", "100", "--out", str(tmp_path)])
    assert rc == 0
    result = json.loads((tmp_path / "host.json").read_text())
    assert [r["lost"] for r in result["runs"]] == [0, 0, 0, 0, 0]
    assert [r["moved_twice"] for r in result["runs"]] == [0, 0, 0, 0, 0]
    assert [r["acked"] for r in result["runs"]] == [40, 40, 10, 10, 10]
    assert [r["window"] for r in result["runs"]] == [4, 4, 1, 4, 4]
    assert "nagle broker" in result["runs"][4]["mode"]
    assert result["serial_limit_115200"]["stop_and_wait_per_s"] > 0
    assert "| sorter link |" in (tmp_path / "host.md").read_text()
    capsys.readouterr()
