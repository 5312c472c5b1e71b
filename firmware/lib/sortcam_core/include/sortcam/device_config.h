// The camera's settings and what makes stored ones usable.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/collect.h"
#include "sortcam/detector.h"

namespace sortcam {

// Settings of one camera: NVS first, the compiled defaults from secrets.ini for anything
// NVS does not hold yet (board/config). `set` commands change decision and interval_ms.
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
  int trigger_gpio = -1;     // beam-break input (active low); -1: none
  CollectSize collect_size = kDefaultCollectSize;  // JPEG size of a frame a collector asks for
};

// What RepairConfig changed, for the log.
struct ConfigRepairs {
  char trigger_name[16] = "";  // the trigger setting as read
  bool trigger = false;    // unknown trigger name: continuous
  bool decision = false;   // decision settings out of range: the defaults (trigger kept)
  bool interval = false;   // interval_ms above mqtt::kIntervalMaxMs: 0
  bool device_id = false;  // empty or invalid device id: "cam-" + the MAC's last three bytes
  bool collect_size = false;  // unknown collect_size name: kDefaultCollectSize
};

// Settings as NVS and the compiled defaults gave them (trigger_name: the stored trigger;
// collect_size_name: the stored collect_size, nullptr for the default), made usable; mac is
// the Wi-Fi station MAC.
ConfigRepairs RepairConfig(const char* trigger_name, const uint8_t mac[6], DeviceConfig* config,
                           const char* collect_size_name = nullptr);

// Where settings persist: NVS on the chip (namespace "sortcam"), a map in the tests. Keys are
// the names below, at most 15 characters as NVS requires.
class SettingsStore {
 public:
  virtual ~SettingsStore() = default;
  virtual bool GetString(const char* key, char* out, size_t size) = 0;  // false: not stored
  virtual bool GetU32(const char* key, uint32_t* value) = 0;
  virtual bool SetString(const char* key, const char* value) = 0;
  virtual bool SetU32(const char* key, uint32_t value) = 0;
  virtual bool Commit() = 0;
};

// The first-boot defaults: secrets.ini's [secrets] through platformio.ini's build flags,
// the board's beam-break pin, DecisionConfig's own defaults for the rest.
struct CompiledDefaults {
  const char* wifi_ssid = "";
  const char* wifi_password = "";
  const char* mqtt_uri = "";
  const char* mqtt_username = "";
  const char* mqtt_password = "";
  const char* device_id = "";
  const char* topic_root = "";
  const char* trigger = "continuous";
  int trigger_gpio = -1;
  const char* collect_size = "svga";  // a kCollectSizes name
};

// Every setting from the store, else its default, then RepairConfig. The threshold is
// stored as the bits of its float32.
ConfigRepairs LoadDeviceConfig(SettingsStore* store, const CompiledDefaults& defaults, const uint8_t mac[6],
                               DeviceConfig* config);

// Persists what a `set` command may change (threshold, trigger, interval_ms).
bool SaveDecisionSettings(const DeviceConfig& config, SettingsStore* store);

}  // namespace sortcam
