#include "board/mqtt_link.h"

#include <atomic>
#include <cstring>

#include "board/system.h"
#include "esp_crt_bundle.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"
#include "mqtt_client.h"
#include "sortcam/mqtt_session.h"

namespace sortcam {
namespace board {
namespace {

constexpr const char* kTag = "mqtt";

// The session decides; this file only makes the esp-mqtt calls.
class EspMqttClient : public MqttClient {
 public:
  int Enqueue(const char* topic, const char* data, size_t len, bool retain) override {
    return esp_mqtt_client_enqueue(handle, topic, data, static_cast<int>(len), mqtt::kQos, retain ? 1 : 0, true);
  }
  int OutboxBytes() override { return esp_mqtt_client_get_outbox_size(handle); }
  void Reconnect() override { esp_mqtt_client_reconnect(handle); }
  esp_mqtt_client_handle_t handle = nullptr;
};

MqttSession g_session;
EspMqttClient g_client;
std::atomic<bool> g_connected{false};
std::atomic<bool> g_status_requested{false};
std::atomic<uint32_t> g_rejected{0};
// The event handler runs in the MQTT task: it hands results to the loop through queues and
// never touches the outbox itself.
QueueHandle_t g_acks = nullptr;      // msg_id of PUBACKed messages
QueueHandle_t g_dropped = nullptr;   // msg_id the client gave up on (outbox expiry)
QueueHandle_t g_commands = nullptr;  // parsed, valid commands

void OnData(const esp_mqtt_event_t& event) {
  Command command;
  char error[96];
  const auto received = g_session.OnData(event.topic, static_cast<size_t>(event.topic_len), event.data,
                                         static_cast<size_t>(event.data_len),
                                         static_cast<size_t>(event.current_data_offset),
                                         static_cast<size_t>(event.total_data_len), &command, error, sizeof error);
  if (received == MqttSession::Received::kOtherTopic) return;
  if (received == MqttSession::Received::kCommand && xQueueSend(g_commands, &command, 0) == pdTRUE) return;
  ++g_rejected;
  ESP_LOGW(kTag, "rejected command: %s", received == MqttSession::Received::kCommand ? "queue full" : error);
}

void OnEvent(void*, esp_event_base_t, int32_t event_id, void* event_data) {
  const auto* event = static_cast<const esp_mqtt_event_t*>(event_data);
  switch (static_cast<esp_mqtt_event_id_t>(event_id)) {
    case MQTT_EVENT_CONNECTED:
      ESP_LOGI(kTag, "connected; subscribing to %s", g_session.cmd_topic());
      esp_mqtt_client_subscribe(g_client.handle, g_session.cmd_topic(), mqtt::kQos);
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
  if (!g_session.Configure(s.topic_root, s.device_id)) {
    ESP_LOGE(kTag, "bad topic root '%s' or device id '%s'", s.topic_root, s.device_id);
    return false;
  }
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
  config.session.last_will.topic = g_session.status_topic();
  config.session.last_will.msg = g_session.will();
  config.session.last_will.msg_len = static_cast<int>(g_session.will_len());
  config.session.last_will.qos = mqtt::kQos;
  config.session.last_will.retain = 1;
  config.session.keepalive = 30;
  config.network.disable_auto_reconnect = true;  // the session reconnects with backoff
  g_client.handle = esp_mqtt_client_init(&config);
  if (g_client.handle == nullptr) {
    ESP_LOGE(kTag, "cannot create the MQTT client for %s", s.uri);
    return false;
  }
  esp_mqtt_client_register_event(g_client.handle, MQTT_EVENT_ANY, &OnEvent, nullptr);
  return esp_mqtt_client_start(g_client.handle) == ESP_OK;
}

bool MqttConnected() { return g_connected; }

void PumpMqtt(Outbox* outbox) {
  int msg_id = 0;
  while (xQueueReceive(g_acks, &msg_id, 0) == pdTRUE) g_session.OnAcked(msg_id, outbox);
  while (xQueueReceive(g_dropped, &msg_id, 0) == pdTRUE) g_session.OnExpired(msg_id, outbox);
  g_session.Pump(g_connected, NowMs(), outbox, &g_client);
}

bool PublishStatus(const char* payload, size_t len) {
  return g_session.PublishStatus(g_connected, payload, len, &g_client);
}

bool PublishSample(const char* payload, size_t len) {
  return g_session.PublishSample(g_connected, payload, len, &g_client);
}

bool TakeStatusRequest() { return g_status_requested.exchange(false); }

bool NextCommand(Command* command) { return xQueueReceive(g_commands, command, 0) == pdTRUE; }

uint32_t RejectedCommands() { return g_rejected; }

}  // namespace board
}  // namespace sortcam
