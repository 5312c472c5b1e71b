// Device settings: NVS first, compiled defaults (from the git-ignored secrets.ini, via
// platformio.ini build flags) for anything NVS does not hold yet. `set` commands persist.
#pragma once

#include <cstdint>

#include "sortcam/detector.h"

namespace sortcam {
namespace board {

struct DeviceConfig {
  char wifi_ssid[33] = "";
  char wifi_password[65] = "";
  char mqtt_uri[128] = "";  // mqtt://host:1883 or mqtts://host:8883 (TLS, certificate bundle)
  char mqtt_username[65] = "";
  char mqtt_password[65] = "";
  char device_id[33] = "";  // [A-Za-z0-9_-]{1,32}; empty = "cam-" + last 3 MAC bytes
  char topic_root[65] = "";
  DecisionConfig decision;
  uint32_t interval_ms = 0;  // minimum time between frames; 0 = as fast as inference allows
  int trigger_gpio = -1;     // beam-break input (active low): NVS, else the board's (camera_pins.h); -1: none
};

// Initialises NVS (erasing it when its layout is from another IDF version) and reads the
// settings. Logs where each came from; never logs passwords.
void LoadConfig(DeviceConfig* config);

// Persists the tunables a `set` command may change. False when NVS refuses.
bool SaveDecisionSettings(const DeviceConfig& config);

}  // namespace board
}  // namespace sortcam
