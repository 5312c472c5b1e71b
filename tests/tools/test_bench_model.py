"""`sortcam bench model` records sizes, MACs, latency and the ESP32 estimate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_errors import one_line_error
from tinydata import TinyModel

from sortcam.card import load_card
from sortcam.cli import main
from sortcam.tools.bench_model import ESP32_MACS_PER_S, ESP32S3_MACS_PER_S


def test_bench_model_records_json_and_markdown(tiny_model: TinyModel, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "model",
                "--card",
                str(tiny_model.card),
                "--data",
                str(tiny_model.data),
                "--runs",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads((out / "model.json").read_text())
    card = load_card(tiny_model.card)
    assert result["flash_bytes"] == tiny_model.tflite.stat().st_size
    assert result["macs"] == card.macs
    assert result["esp32_latency_ms_estimate"] == pytest.approx(card.macs / ESP32_MACS_PER_S * 1000, abs=0.1)
    assert result["esp32s3_latency_ms_estimate"] == pytest.approx(card.macs / ESP32S3_MACS_PER_S * 1000, abs=0.1)
    assert ESP32S3_MACS_PER_S == pytest.approx(137e6, rel=0.01)  # Espressif: person detection in 54 ms
    assert 0 < result["arena_measured_bytes"] <= card.arena_bytes
    assert result["tflm_latency_ms_here"]["runs"] == 3
    assert result["int8_tflm_rescored"]["accuracy"] == card.metrics["int8"]["accuracy"]
    assert result["command"].startswith("sortcam bench model") and result["machine"] and result["date"]
    md = (out / "model.md").read_text()
    assert "ESP32 latency" in md and "ESP32-S3 latency" in md and "flash" in md


def test_shipped_model_estimates_for_both_chips(tmp_path: Path) -> None:
    """The shipped model, no training: both estimates follow the MAC count, in JSON and markdown."""
    from sortcam.tools.bench_model import bench_model, write_bench

    card_path = Path(__file__).resolve().parents[2] / "model" / "sortcam_trashnet.json"
    result = bench_model(str(card_path), None, 1)
    assert result["esp32s3_latency_ms_estimate"] == pytest.approx(result["macs"] / ESP32S3_MACS_PER_S * 1000, abs=0.1)
    assert result["esp32s3_latency_ms_estimate"] < result["esp32_latency_ms_estimate"] / 6
    _, md = write_bench(result, tmp_path, argv=["bench", "model"])
    assert f"| ESP32-S3 latency (estimate) | {result['esp32s3_latency_ms_estimate']:.0f} ms |" in md.read_text()
    assert not re.search(r"\bnan\b", md.read_text(), re.IGNORECASE)  # a figure it lacks is said, not printed as nan


def test_bench_model_without_a_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "model", "--card", str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 1
    one_line_error(capsys, "model card not found")
