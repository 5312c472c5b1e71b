#include "board/config.h"

#include "board/camera_pins.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "nvs.h"
#include "nvs_flash.h"

// The first-boot defaults come from secrets.ini through platformio.ini's build flags; its
// [secrets] section holds the fallbacks, so they live in one place.
#if !defined(SORTCAM_WIFI_SSID) || !defined(SORTCAM_MQTT_URI) || !defined(SORTCAM_TRIGGER)
#error "build with PlatformIO (platformio.ini passes the SORTCAM_* settings from secrets.ini)"
#endif

namespace sortcam {
namespace board {
namespace {

constexpr const char* kTag = "config";
constexpr const char* kNamespace = "sortcam";

// SettingsStore over one open NVS handle; 0: nothing stored yet (first boot).
class NvsStore : public SettingsStore {
 public:
  explicit NvsStore(nvs_handle_t nvs) : nvs_(nvs) {}
  bool GetString(const char* key, char* out, size_t size) override {
    size_t len = size;
    const bool found = nvs_ != 0 && nvs_get_str(nvs_, key, out, &len) == ESP_OK;
    if (found) ESP_LOGI(kTag, "%s from NVS", key);
    return found;
  }
  bool GetU32(const char* key, uint32_t* value) override { return nvs_ != 0 && nvs_get_u32(nvs_, key, value) == ESP_OK; }
  bool SetString(const char* key, const char* value) override { return nvs_set_str(nvs_, key, value) == ESP_OK; }
  bool SetU32(const char* key, uint32_t value) override { return nvs_set_u32(nvs_, key, value) == ESP_OK; }
  bool Commit() override { return nvs_commit(nvs_) == ESP_OK; }

 private:
  nvs_handle_t nvs_;
};

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
  CompiledDefaults defaults;
  defaults.wifi_ssid = SORTCAM_WIFI_SSID;
  defaults.wifi_password = SORTCAM_WIFI_PASSWORD;
  defaults.mqtt_uri = SORTCAM_MQTT_URI;
  defaults.mqtt_username = SORTCAM_MQTT_USERNAME;
  defaults.mqtt_password = SORTCAM_MQTT_PASSWORD;
  defaults.device_id = SORTCAM_DEVICE_ID;
  defaults.topic_root = SORTCAM_TOPIC_ROOT;
  defaults.trigger = SORTCAM_TRIGGER;
  defaults.trigger_gpio = kCameraPins.trigger_gpio;
  uint8_t mac[6] = {};
  esp_read_mac(mac, ESP_MAC_WIFI_STA);
  NvsStore store(nvs);
  const ConfigRepairs repairs = LoadDeviceConfig(&store, defaults, mac, config);
  if (nvs != 0) nvs_close(nvs);
  if (repairs.trigger) ESP_LOGW(kTag, "unknown trigger '%s': using continuous", repairs.trigger_name);
  if (repairs.decision) ESP_LOGW(kTag, "stored decision settings out of range: using defaults");
  if (repairs.interval) ESP_LOGW(kTag, "stored interval_ms out of range: using 0");
  if (repairs.collect_size) ESP_LOGW(kTag, "unknown collect_size: using %s", CollectSizeOf(kDefaultCollectSize).name);
  ESP_LOGI(kTag, "device %s, broker %s, root %s, trigger %s, threshold %.2f", config->device_id, config->mqtt_uri,
           config->topic_root, TriggerName(config->decision.trigger), static_cast<double>(config->decision.threshold));
  if (config->wifi_ssid[0] == '\0') ESP_LOGE(kTag, "no Wi-Fi SSID: set wifi_ssid in secrets.ini and rebuild");
}

bool SaveDecisionSettings(const DeviceConfig& config) {
  nvs_handle_t nvs = 0;
  if (nvs_open(kNamespace, NVS_READWRITE, &nvs) != ESP_OK) return false;
  NvsStore store(nvs);
  const bool ok = sortcam::SaveDecisionSettings(config, &store);
  nvs_close(nvs);
  if (!ok) ESP_LOGE(kTag, "could not persist settings to NVS");
  return ok;
}

}  // namespace board
}  // namespace sortcam
