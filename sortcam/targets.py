"""The boards a model is built for: firmware env, budgets, and the speed used for latency estimates.

One table for `sortcam build`, `sortcam bench model` and the docs (docs/firmware.md, "Boards").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    env: str
    """The PlatformIO env in platformio.ini."""
    flash_bytes: int
    """Room for the model array in the app partition (firmware/partitions.csv)."""
    arena_bytes: int
    """TFLM tensor arena the firmware can allocate (internal RAM or PSRAM)."""
    macs_per_s: float
    """int8 multiply-accumulates per second with ESP-NN, for latency estimates."""
    basis: str


TARGETS: dict[str, Target] = {
    "esp32cam": Target(
        "esp32cam", "esp32cam", 1_000_000, 300 * 1024, 7.39e6 / 0.380,
        "Espressif person detection: 7.39 M MACs in 380 ms with ESP-NN on a 240 MHz ESP32 (19.4 M MACs/s)",
    ),
    "esp32s3cam": Target(
        "esp32s3cam", "esp32s3cam", 1_000_000, 300 * 1024, 137e6,
        "ESP-NN's ESP32-S3 kernels, about 137 M MACs/s from Espressif's person-detection figures (estimate)",
    ),
}  # fmt: skip
