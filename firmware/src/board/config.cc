#include "board/config.h"

#include <cstdio>
#include <cstring>

#include "board/camera_pins.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "sortcam/mqtt_contract.h"

// Compiled defaults; platformio.ini fills them from secrets.ini ([secrets] section).
#ifndef SORTCAM_WIFI_SSID
#define SORTCAM_WIFI_SSID ""
#endif
#ifndef SORTCAM_WIFI_PASSWORD
#define SORTCAM_WIFI_PASSWORD ""
#endif
#ifndef SORTCAM_MQTT_URI
#define SORTCAM_MQTT_URI "mqtt://192.168.1.10:1883"
#endif
#ifndef SORTCAM_MQTT_USERNAME
#define SORTCAM_MQTT_USERNAME ""
#endif
#ifndef SORTCAM_MQTT_PASSWORD
#define SORTCAM_MQTT_PASSWORD ""
#endif
#ifndef SORTCAM_DEVICE_ID
#define SORTCAM_DEVICE_ID ""
#endif
#ifndef SORTCAM_TOPIC_ROOT
#define SORTCAM_TOPIC_ROOT "sortcam"
#endif
#ifndef SORTCAM_TRIGGER
#define SORTCAM_TRIGGER "continuous"
#endif
#ifndef SORTCAM_THRESHOLD
#define SORTCAM_THRESHOLD 0.6f
#endif

namespace sortcam {
namespace board {
namespace {

constexpr const char* kTag = "config";
constexpr const char* kNamespace = "sortcam";

void ReadString(nvs_handle_t nvs, const char* key, const char* fallback, char* out, size_t size) {
  size_t len = size;
  if (nvs != 0 && nvs_get_str(nvs, key, out, &len) == ESP_OK) {
    ESP_LOGI(kTag, "%s from NVS", key);
    return;
  }
  std::snprintf(out, size, "%s", fallback);
}

uint32_t ReadU32(nvs_handle_t nvs, const char* key, uint32_t fallback) {
  uint32_t value = fallback;
  if (nvs != 0 && nvs_get_u32(nvs, key, &value) == ESP_OK) return value;
  return fallback;
}

}  // namespace

void LoadConfig(DeviceConfig* config) {
  esp_err_t err = nvs_flash_init();
  if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
    ESP_LOGW(kTag, "NVS layout changed (%s): erasing it", esp_err_to_name(err));
    ESP_ERROR_CHECK(nvs_flash_erase());
    err = nvs_flash_init();
  }
  ESP_ERROR_CHECK(err);
  nvs_handle_t nvs = 0;
  if (nvs_open(kNamespace, NVS_READONLY, &nvs) != ESP_OK) nvs = 0;  // first boot: nothing stored yet

  ReadString(nvs, "wifi_ssid", SORTCAM_WIFI_SSID, config->wifi_ssid, sizeof config->wifi_ssid);
  ReadString(nvs, "wifi_pass", SORTCAM_WIFI_PASSWORD, config->wifi_password, sizeof config->wifi_password);
  ReadString(nvs, "mqtt_uri", SORTCAM_MQTT_URI, config->mqtt_uri, sizeof config->mqtt_uri);
  ReadString(nvs, "mqtt_user", SORTCAM_MQTT_USERNAME, config->mqtt_username, sizeof config->mqtt_username);
  ReadString(nvs, "mqtt_pass", SORTCAM_MQTT_PASSWORD, config->mqtt_password, sizeof config->mqtt_password);
  ReadString(nvs, "device_id", SORTCAM_DEVICE_ID, config->device_id, sizeof config->device_id);
  ReadString(nvs, "topic_root", SORTCAM_TOPIC_ROOT, config->topic_root, sizeof config->topic_root);

  char trigger[16];
  ReadString(nvs, "trigger", SORTCAM_TRIGGER, trigger, sizeof trigger);
  if (!TriggerFromName(trigger, std::strlen(trigger), &config->decision.trigger)) {
    ESP_LOGW(kTag, "unknown trigger '%s': using continuous", trigger);
    config->decision.trigger = Trigger::kContinuous;
  }
  float threshold = SORTCAM_THRESHOLD;
  uint32_t bits = 0;
  std::memcpy(&bits, &threshold, sizeof bits);
  bits = ReadU32(nvs, "threshold", bits);
  std::memcpy(&threshold, &bits, sizeof bits);
  config->decision.threshold = threshold;
  config->decision.stable_frames = static_cast<int>(ReadU32(nvs, "stable", 3));
  config->decision.max_frames = static_cast<int>(ReadU32(nvs, "max_frames", 10));
  config->decision.change_threshold = static_cast<int>(ReadU32(nvs, "change", 12));
  config->interval_ms = ReadU32(nvs, "interval_ms", 0);
  config->trigger_gpio = static_cast<int>(ReadU32(nvs, "trigger_gpio", static_cast<uint32_t>(kCameraPins.trigger_gpio)));
  if (nvs != 0) nvs_close(nvs);

  if (!IsValidConfig(config->decision)) {
    ESP_LOGW(kTag, "stored decision settings out of range: using defaults");
    config->decision = DecisionConfig{};
  }
  if (config->device_id[0] == '\0' || !mqtt::IsValidDeviceId(config->device_id)) {
    uint8_t mac[6] = {};
    esp_read_mac(mac, ESP_MAC_WIFI_STA);
    std::snprintf(config->device_id, sizeof config->device_id, "cam-%02x%02x%02x", mac[3], mac[4], mac[5]);
  }
  ESP_LOGI(kTag, "device %s, broker %s, root %s, trigger %s, threshold %.2f", config->device_id, config->mqtt_uri,
           config->topic_root, TriggerName(config->decision.trigger), static_cast<double>(config->decision.threshold));
  if (config->wifi_ssid[0] == '\0') ESP_LOGE(kTag, "no Wi-Fi SSID: set wifi_ssid in secrets.ini and rebuild");
}

bool SaveDecisionSettings(const DeviceConfig& config) {
  nvs_handle_t nvs = 0;
  if (nvs_open(kNamespace, NVS_READWRITE, &nvs) != ESP_OK) return false;
  uint32_t bits = 0;
  std::memcpy(&bits, &config.decision.threshold, sizeof bits);
  bool ok = nvs_set_u32(nvs, "threshold", bits) == ESP_OK;
  ok = ok && nvs_set_str(nvs, "trigger", TriggerName(config.decision.trigger)) == ESP_OK;
  ok = ok && nvs_set_u32(nvs, "interval_ms", config.interval_ms) == ESP_OK;
  ok = ok && nvs_commit(nvs) == ESP_OK;
  nvs_close(nvs);
  if (!ok) ESP_LOGE(kTag, "could not persist settings to NVS");
  return ok;
}

}  // namespace board
}  // namespace sortcam
