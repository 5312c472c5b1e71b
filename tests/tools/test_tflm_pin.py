"""The op table export checks against is the one of the esp-tflite-micro the firmware pins."""

from __future__ import annotations

from sortcam.card import load_card
from sortcam.tools.esp_ops import ESP_TFLITE_MICRO_VERSION
from sortcam.tools.export import pinned_tflm_version
from sortcam.tools.tflite_info import read_info


def test_firmware_pins_the_tflm_version_of_the_op_table() -> None:
    assert pinned_tflm_version() == ESP_TFLITE_MICRO_VERSION


def test_shipped_model_ops_are_in_the_pinned_tflm() -> None:
    from sortcam.tools.esp_ops import SUPPORTED_OPS

    info = read_info(load_card().model_path)
    assert info.op_names and all(name in SUPPORTED_OPS for name in info.op_names)
