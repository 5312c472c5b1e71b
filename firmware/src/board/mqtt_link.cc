#include "board/mqtt_link.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "esp_crt_bundle.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "mqtt_client.h"
#include "sortcam/mqtt_contract.h"
#include "sortcam/payload.h"

namespace sortcam {
namespace board {
namespace {

constexpr const char* kTag = "mqtt";
constexpr int kMaxInFlight = 4;
constexpr int64_t kBackoffMinUs = 1000 * 1000;
constexpr int64_t kBackoffMaxUs = 60 * 1000 * 1000;
constexpr int kSampleOutboxBudget = 2 * static_cast<int>(mqtt::kSampleMaxPayload);  // bytes, in PSRAM

esp_mqtt_client_handle_t g_client = nullptr;
char g_classification_topic[128];
char g_status_topic[128];
char g_cmd_topic[128];
char g_sample_topic[128];
char g_will[160];
std::atomic<bool> g_connected{false};
std::atomic<bool> g_status_requested{false};
std::atomic<uint32_t> g_rejected{0};
int64_t g_backoff_us = kBackoffMinUs;
int64_t g_next_attempt_us = 0;
int g_in_flight = 0;
// The event handler runs in the MQTT task: it hands results to the main loop through
// queues and never touches the outbox itself.
QueueHandle_t g_acks = nullptr;      // msg_id of PUBACKed classifications
QueueHandle_t g_dropped = nullptr;   // msg_id the client gave up on (outbox expiry)
QueueHandle_t g_commands = nullptr;  // parsed, valid commands

void OnData(const esp_mqtt_event_t& event) {
  if (event.topic_len != static_cast<int>(std::strlen(g_cmd_topic)) ||
      std::memcmp(event.topic, g_cmd_topic, event.topic_len) != 0) {
    return;
  }
  if (event.current_data_offset != 0 || event.data_len != event.total_data_len) {
    ++g_rejected;
    ESP_LOGW(kTag, "rejected command: %d bytes arrive in pieces (limit is the client buffer)", event.total_data_len);
    return;
  }
  Command command;
  char error[96];
  if (!ParseCommand(event.data, static_cast<size_t>(event.data_len), &command, error, sizeof error)) {
    ++g_rejected;
    ESP_LOGW(kTag, "rejected command: %s", error);
    return;
  }
  if (xQueueSend(g_commands, &command, 0) != pdTRUE) {
    ++g_rejected;
    ESP_LOGW(kTag, "rejected command: queue full");
  }
}

void OnEvent(void*, esp_event_base_t, int32_t event_id, void* event_data) {
  const auto* event = static_cast<const esp_mqtt_event_t*>(event_data);
  switch (static_cast<esp_mqtt_event_id_t>(event_id)) {
    case MQTT_EVENT_CONNECTED:
      ESP_LOGI(kTag, "connected; subscribing to %s", g_cmd_topic);
      esp_mqtt_client_subscribe(g_client, g_cmd_topic, mqtt::kQos);
      g_connected = true;
      g_status_requested = true;
      break;
    case MQTT_EVENT_DISCONNECTED:
      ESP_LOGW(kTag, "disconnected");
      g_connected = false;
      break;
    case MQTT_EVENT_PUBLISHED:
      xQueueSend(g_acks, &event->msg_id, 0);
      break;
    case MQTT_EVENT_DELETED:
      xQueueSend(g_dropped, &event->msg_id, 0);
      break;
    case MQTT_EVENT_DATA:
      OnData(*event);
      break;
    case MQTT_EVENT_ERROR:
      ESP_LOGW(kTag, "client error (type %d)",
               event->error_handle != nullptr ? static_cast<int>(event->error_handle->error_type) : -1);
      break;
    default:
      break;
  }
}

}  // namespace

bool StartMqtt(const MqttSettings& s) {
  if (mqtt::BuildDeviceTopic(s.topic_root, s.device_id, mqtt::kClassification, g_classification_topic,
                             sizeof g_classification_topic) == 0 ||
      mqtt::BuildDeviceTopic(s.topic_root, s.device_id, mqtt::kStatus, g_status_topic, sizeof g_status_topic) == 0 ||
      mqtt::BuildDeviceTopic(s.topic_root, s.device_id, mqtt::kCmd, g_cmd_topic, sizeof g_cmd_topic) == 0 ||
      mqtt::BuildDeviceTopic(s.topic_root, s.device_id, mqtt::kSample, g_sample_topic, sizeof g_sample_topic) == 0) {
    ESP_LOGE(kTag, "bad topic root '%s' or device id '%s'", s.topic_root, s.device_id);
    return false;
  }
  const size_t will_len = EncodeOfflineStatus(s.device_id, g_will, sizeof g_will);
  g_acks = xQueueCreate(16, sizeof(int));
  g_dropped = xQueueCreate(16, sizeof(int));
  g_commands = xQueueCreate(4, sizeof(Command));

  esp_mqtt_client_config_t config = {};
  config.broker.address.uri = s.uri;
  if (std::strncmp(s.uri, "mqtts://", 8) == 0) {
    config.broker.verification.crt_bundle_attach = esp_crt_bundle_attach;  // public CAs
  }
  config.credentials.client_id = s.device_id;
  if (s.username[0] != '\0') config.credentials.username = s.username;
  if (s.password[0] != '\0') config.credentials.authentication.password = s.password;
  config.session.last_will.topic = g_status_topic;
  config.session.last_will.msg = g_will;
  config.session.last_will.msg_len = static_cast<int>(will_len);
  config.session.last_will.qos = mqtt::kQos;
  config.session.last_will.retain = 1;
  config.session.keepalive = 30;
  config.network.disable_auto_reconnect = true;  // PumpMqtt reconnects with backoff
  g_client = esp_mqtt_client_init(&config);
  if (g_client == nullptr) {
    ESP_LOGE(kTag, "cannot create the MQTT client for %s", s.uri);
    return false;
  }
  esp_mqtt_client_register_event(g_client, MQTT_EVENT_ANY, &OnEvent, nullptr);
  return esp_mqtt_client_start(g_client) == ESP_OK;
}

bool MqttConnected() { return g_connected; }

void PumpMqtt(Outbox* outbox) {
  int msg_id = 0;
  while (xQueueReceive(g_acks, &msg_id, 0) == pdTRUE) {
    if (outbox->Acked(msg_id)) g_in_flight = std::max(0, g_in_flight - 1);
  }
  while (xQueueReceive(g_dropped, &msg_id, 0) == pdTRUE) {
    if (outbox->Requeue(msg_id)) g_in_flight = std::max(0, g_in_flight - 1);
  }
  const int64_t now = esp_timer_get_time();
  if (!g_connected) {
    g_in_flight = 0;
    if (now >= g_next_attempt_us) {
      // The client keeps unacknowledged QoS 1 messages and resends them itself; ours wait
      // in the outbox until PUBACK either way, so nothing is lost and nothing doubles.
      esp_mqtt_client_reconnect(g_client);
      g_next_attempt_us = now + g_backoff_us;
      g_backoff_us = std::min(g_backoff_us * 2, kBackoffMaxUs);
    }
    return;
  }
  g_backoff_us = kBackoffMinUs;
  while (g_in_flight < kMaxInFlight) {
    const char* data = nullptr;
    size_t len = 0;
    const int slot = outbox->NextPending(&data, &len);
    if (slot < 0) break;
    const int id = esp_mqtt_client_enqueue(g_client, g_classification_topic, data, static_cast<int>(len), mqtt::kQos,
                                           0, true);
    if (id < 0) break;  // client outbox full: try again next loop
    outbox->MarkInFlight(slot, id);
    ++g_in_flight;
  }
}

bool PublishStatus(const char* payload, size_t len) {
  if (!g_connected) return false;
  return esp_mqtt_client_enqueue(g_client, g_status_topic, payload, static_cast<int>(len), mqtt::kQos, 1, true) >= 0;
}

bool PublishSample(const char* payload, size_t len) {
  if (!g_connected) return false;
  if (esp_mqtt_client_get_outbox_size(g_client) + static_cast<int>(len) > kSampleOutboxBudget) return false;
  // Its PUBACK (or expiry) reaches PumpMqtt like any other; the outbox ignores unknown ids.
  return esp_mqtt_client_enqueue(g_client, g_sample_topic, payload, static_cast<int>(len), mqtt::kQos, 0, true) >= 0;
}

bool TakeStatusRequest() { return g_status_requested.exchange(false); }

bool NextCommand(Command* command) { return xQueueReceive(g_commands, command, 0) == pdTRUE; }

uint32_t RejectedCommands() { return g_rejected; }

}  // namespace board
}  // namespace sortcam
