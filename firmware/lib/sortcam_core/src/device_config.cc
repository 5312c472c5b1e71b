#include "sortcam/device_config.h"

#include <cstdio>
#include <cstring>

#include "sortcam/mqtt_contract.h"

namespace sortcam {

namespace {

template <size_t N>
void ReadString(SettingsStore* store, const char* key, const char* fallback, char (&out)[N]) {
  if (!store->GetString(key, out, N)) std::snprintf(out, N, "%s", fallback);
}

uint32_t ReadU32(SettingsStore* store, const char* key, uint32_t fallback) {
  uint32_t value = fallback;
  return store->GetU32(key, &value) ? value : fallback;
}

uint32_t FloatBits(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

}  // namespace

ConfigRepairs LoadDeviceConfig(SettingsStore* store, const CompiledDefaults& defaults, const uint8_t mac[6],
                               DeviceConfig* config) {
  ReadString(store, "wifi_ssid", defaults.wifi_ssid, config->wifi_ssid);
  ReadString(store, "wifi_pass", defaults.wifi_password, config->wifi_password);
  ReadString(store, "mqtt_uri", defaults.mqtt_uri, config->mqtt_uri);
  ReadString(store, "mqtt_user", defaults.mqtt_username, config->mqtt_username);
  ReadString(store, "mqtt_pass", defaults.mqtt_password, config->mqtt_password);
  ReadString(store, "device_id", defaults.device_id, config->device_id);
  ReadString(store, "topic_root", defaults.topic_root, config->topic_root);
  char trigger[sizeof ConfigRepairs{}.trigger_name];
  ReadString(store, "trigger", defaults.trigger, trigger);
  const DecisionConfig fallback;
  const uint32_t bits = ReadU32(store, "threshold", FloatBits(fallback.threshold));
  std::memcpy(&config->decision.threshold, &bits, sizeof bits);
  const auto read_int = [store](const char* key, int value) {
    return static_cast<int>(ReadU32(store, key, static_cast<uint32_t>(value)));
  };
  config->decision.stable_frames = read_int("stable", fallback.stable_frames);
  config->decision.max_frames = read_int("max_frames", fallback.max_frames);
  config->decision.change_threshold = read_int("change", fallback.change_threshold);
  config->interval_ms = ReadU32(store, "interval_ms", 0);
  config->trigger_gpio = read_int("trigger_gpio", defaults.trigger_gpio);
  char collect_size[16];
  ReadString(store, "collect_size", defaults.collect_size, collect_size);
  ConfigRepairs repairs = RepairConfig(trigger, mac, config, collect_size);
  std::snprintf(repairs.trigger_name, sizeof repairs.trigger_name, "%s", trigger);
  return repairs;
}

bool SaveDecisionSettings(const DeviceConfig& config, SettingsStore* store) {
  return store->SetU32("threshold", FloatBits(config.decision.threshold)) &&
         store->SetString("trigger", TriggerName(config.decision.trigger)) &&
         store->SetU32("interval_ms", config.interval_ms) && store->Commit();
}

ConfigRepairs RepairConfig(const char* trigger_name, const uint8_t mac[6], DeviceConfig* config,
                           const char* collect_size_name) {
  ConfigRepairs repairs;
  if (collect_size_name != nullptr &&
      !CollectSizeFromName(collect_size_name, std::strlen(collect_size_name), &config->collect_size)) {
    config->collect_size = kDefaultCollectSize;
    repairs.collect_size = true;
  }
  if (!TriggerFromName(trigger_name, std::strlen(trigger_name), &config->decision.trigger)) {
    config->decision.trigger = Trigger::kContinuous;
    repairs.trigger = true;
  }
  if (!IsValidConfig(config->decision)) {
    const Trigger trigger = config->decision.trigger;
    config->decision = DecisionConfig{};
    config->decision.trigger = trigger;
    repairs.decision = true;
  }
  if (config->interval_ms > mqtt::kIntervalMaxMs) {
    config->interval_ms = 0;
    repairs.interval = true;
  }
  if (!mqtt::IsValidDeviceId(config->device_id)) {
    std::snprintf(config->device_id, sizeof config->device_id, "cam-%02x%02x%02x", mac[3], mac[4], mac[5]);
    repairs.device_id = true;
  }
  return repairs;
}

}  // namespace sortcam
