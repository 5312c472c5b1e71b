"""``sortcam bench sim`` measures and records (figures are not asserted: no wall-clock checks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_errors import one_line_error

from sortcam.card import ModelCard
from sortcam.cli import main


def test_bench_sim_records_json_and_md(
    tiny_card: ModelCard, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["bench", "sim", "--card", str(tiny_card.path), "--frames", "4", "--out", str(tmp_path)])
    assert rc == 0
    result = json.loads((tmp_path / "sim.json").read_text())
    assert result["frames"] == 4 and result["frames_per_s"] > 0
    assert result["model"]["id"] == tiny_card.sha256[:12]
    assert result["command"].startswith("sortcam bench sim") and result["machine"]["cores"]
    md = (tmp_path / "sim.md").read_text()
    assert "frames/s" in md and result["date"] in md and "sortcam bench sim" in md
    assert "frames/s" in capsys.readouterr().out


def test_bench_sim_bad_frames_is_one_line(tiny_card: ModelCard, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sim", "--card", str(tiny_card.path), "--frames", "0", "--no-record"]) == 2
    one_line_error(capsys, "--frames")
