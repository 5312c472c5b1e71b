"""The model array compiled into the firmware is the shipped model, byte for byte.

``sortcam export`` writes ``firmware/src/model_data.cc`` from ``model/sortcam_trashnet.tflite``;
this test parses the C array back and compares it, so a stale export cannot be flashed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "model" / "sortcam_trashnet.tflite"
MODEL_DATA = REPO / "firmware" / "src" / "model_data.cc"
SETTINGS = REPO / "firmware" / "src" / "model_settings.h"


def parse_c_array(text: str) -> bytes:
    """Bytes of the ``g_model_data`` initializer (hex or decimal literals)."""
    match = re.search(r"g_model_data\s*\[\s*\w*\s*\]\s*=\s*\{(.*?)\};", text, re.S)
    assert match, "g_model_data initializer not found in model_data.cc"
    body = re.sub(r"/\*.*?\*/|//[^\n]*", "", match.group(1), flags=re.S)
    return bytes(int(tok, 0) for tok in re.split(r"[\s,]+", body) if tok)


def test_parse_c_array_reads_hex_and_decimal() -> None:
    text = "alignas(16) const unsigned char g_model_data[] = {\n 0x1c, 0x00, 255, // x\n 0x7F,\n};"
    assert parse_c_array(text) == bytes([0x1C, 0, 255, 0x7F])


def test_model_data_matches_shipped_tflite() -> None:
    assert MODEL.exists(), "model/sortcam_trashnet.tflite is missing: the shipped model must be in model/"
    if not MODEL_DATA.exists():
        pytest.fail("firmware/src/model_data.cc is missing: run 'sortcam export' to generate it from the shipped model")
    text = MODEL_DATA.read_text()
    data = parse_c_array(text)
    model = MODEL.read_bytes()
    assert len(data) == len(model), (
        f"model_data.cc holds {len(data)} bytes, the .tflite {len(model)}: re-run sortcam export"
    )
    assert data == model, "model_data.cc differs from model/sortcam_trashnet.tflite: re-run sortcam export"
    length = re.search(r"g_model_data_len\s*=\s*(\d+)", text)
    assert length and int(length.group(1)) == len(model)
    assert "alignas(16)" in text


def test_model_settings_declare_what_the_firmware_uses() -> None:
    assert SETTINGS.exists(), "firmware/src/model_settings.h is missing: run 'sortcam export' on the shipped model"
    text = SETTINGS.read_text()
    for name in (
        "kInputHeight",
        "kInputWidth",
        "kInputChannels",
        "kNumClasses",
        "kClassLabels",
        "kArenaBytes",
        "kModelId",
        "kFitCrop",
        "kRangeLo",
        "kRangeHi",
    ):
        assert name in text, f"model_settings.h lacks {name}"


def test_the_firmwares_model_id_is_the_arrays_hash() -> None:
    """What the board publishes as ``model`` is computed from the bytes it runs, at export, never copied from a card."""
    if not (MODEL_DATA.exists() and SETTINGS.exists()):
        pytest.fail("firmware/src/model_data.cc or model_settings.h is missing: run 'sortcam export'")
    sha = hashlib.sha256(parse_c_array(MODEL_DATA.read_text())).hexdigest()
    text = SETTINGS.read_text()
    declared = re.search(r'kModelSha256\s*=\s*"([0-9a-f]{64})"', text)
    model_id = re.search(r'kModelId\s*=\s*"([0-9a-f]{12})"', text)
    assert declared and model_id, "model_settings.h lacks kModelSha256 or kModelId"
    assert declared.group(1) == sha, "model_settings.h names another model than model_data.cc: re-run sortcam export"
    assert model_id.group(1) == sha[:12]
