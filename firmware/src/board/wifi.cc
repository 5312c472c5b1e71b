#include "board/wifi.h"

#include <atomic>
#include <cstring>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "sortcam/backoff.h"

namespace sortcam {
namespace board {
namespace {

constexpr const char* kTag = "wifi";

std::atomic<bool> g_connected{false};
Backoff g_backoff;  // the event loop task alone uses it
esp_timer_handle_t g_retry_timer = nullptr;

void Retry(void*) { esp_wifi_connect(); }

void OnWifiEvent(void*, esp_event_base_t base, int32_t id, void* data) {
  if (base == WIFI_EVENT && id == WIFI_EVENT_STA_START) {
    esp_wifi_connect();
  } else if (base == WIFI_EVENT && id == WIFI_EVENT_STA_DISCONNECTED) {
    g_connected = false;
    const auto* event = static_cast<const wifi_event_sta_disconnected_t*>(data);
    const uint32_t delay_ms = g_backoff.Next();
    ESP_LOGW(kTag, "disconnected (reason %d); retrying in %lu ms", event->reason, static_cast<unsigned long>(delay_ms));
    esp_timer_stop(g_retry_timer);
    esp_timer_start_once(g_retry_timer, static_cast<uint64_t>(delay_ms) * 1000);
  } else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP) {
    const auto* event = static_cast<const ip_event_got_ip_t*>(data);
    ESP_LOGI(kTag, "connected, address " IPSTR, IP2STR(&event->ip_info.ip));
    g_connected = true;
    g_backoff.Reset();
  }
}

}  // namespace

void StartWifi(const char* ssid, const char* password) {
  ESP_ERROR_CHECK(esp_netif_init());
  ESP_ERROR_CHECK(esp_event_loop_create_default());
  esp_netif_create_default_wifi_sta();
  wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
  ESP_ERROR_CHECK(esp_wifi_init(&init));
  esp_timer_create_args_t timer_args = {};
  timer_args.callback = &Retry;
  timer_args.dispatch_method = ESP_TIMER_TASK;
  timer_args.name = "wifi_retry";
  ESP_ERROR_CHECK(esp_timer_create(&timer_args, &g_retry_timer));
  ESP_ERROR_CHECK(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, &OnWifiEvent, nullptr, nullptr));
  ESP_ERROR_CHECK(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, &OnWifiEvent, nullptr, nullptr));
  wifi_config_t config = {};
  std::strncpy(reinterpret_cast<char*>(config.sta.ssid), ssid, sizeof config.sta.ssid);
  std::strncpy(reinterpret_cast<char*>(config.sta.password), password, sizeof config.sta.password);
  ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
  ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &config));
  // Modem sleep adds latency to every MQTT packet; the camera is mains powered.
  ESP_ERROR_CHECK(esp_wifi_set_ps(WIFI_PS_NONE));
  ESP_ERROR_CHECK(esp_wifi_start());
  ESP_LOGI(kTag, "connecting to '%s'", ssid);
}

bool WifiConnected() { return g_connected; }

int WifiRssi() {
  wifi_ap_record_t ap = {};
  if (!g_connected || esp_wifi_sta_get_ap_info(&ap) != ESP_OK) return 0;
  return ap.rssi;
}

}  // namespace board
}  // namespace sortcam
