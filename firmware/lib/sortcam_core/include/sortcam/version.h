// Firmware identity reported in MQTT status and serial PONG.
// Mirrors sortcam.device_core.FW_VERSION (checked by tests/firmware/test_contract_agreement.py).
#pragma once

namespace sortcam {

constexpr const char* kFirmwareVersion = "0.1.0";

}  // namespace sortcam
