#include "sortcam/mqtt_session.h"

#include <cstdio>
#include <cstring>

#include "sortcam/payload.h"

namespace sortcam {

bool MqttSession::Configure(const char* root, const char* device) {
  const bool ok =
      mqtt::BuildDeviceTopic(root, device, mqtt::kClassification, classification_topic_,
                             sizeof classification_topic_) > 0 &&
      mqtt::BuildDeviceTopic(root, device, mqtt::kStatus, status_topic_, sizeof status_topic_) > 0 &&
      mqtt::BuildDeviceTopic(root, device, mqtt::kCmd, cmd_topic_, sizeof cmd_topic_) > 0 &&
      mqtt::BuildDeviceTopic(root, device, mqtt::kSample, sample_topic_, sizeof sample_topic_) > 0;
  will_len_ = ok ? EncodeOfflineStatus(device, will_, sizeof will_) : 0;
  return ok && will_len_ > 0;
}

MqttSession::Received MqttSession::OnData(const char* topic, size_t topic_len, const char* data, size_t len,
                                          size_t offset, size_t total, Command* command, char* error,
                                          size_t error_size) const {
  if (topic == nullptr || topic_len != std::strlen(cmd_topic_) || std::memcmp(topic, cmd_topic_, topic_len) != 0) {
    return Received::kOtherTopic;
  }
  if (offset != 0 || len != total) {
    std::snprintf(error, error_size, "%u bytes arrive in pieces (limit is the client buffer)",
                  static_cast<unsigned>(total));
    return Received::kRejected;
  }
  return ParseCommand(data, len, command, error, error_size) ? Received::kCommand : Received::kRejected;
}

void MqttSession::OnAcked(int msg_id, Outbox* outbox) {
  if (outbox->Acked(msg_id) && in_flight_ > 0) --in_flight_;
}

void MqttSession::OnExpired(int msg_id, Outbox* outbox) {
  if (outbox->Requeue(msg_id) && in_flight_ > 0) --in_flight_;
}

void MqttSession::Pump(bool connected, uint32_t now_ms, Outbox* outbox, MqttClient* client) {
  if (!connected) {
    // The client keeps unacknowledged QoS 1 messages and resends them itself; ours wait in
    // the outbox until PUBACK either way, so nothing is lost and nothing doubles.
    in_flight_ = 0;
    if (attempt_due_ || static_cast<int32_t>(now_ms - next_attempt_ms_) >= 0) {
      client->Reconnect();
      next_attempt_ms_ = now_ms + backoff_.Next();
      attempt_due_ = false;
    }
    return;
  }
  backoff_.Reset();
  attempt_due_ = true;  // the first attempt after the next disconnect goes at once
  while (in_flight_ < kMaxInFlight) {
    const char* data = nullptr;
    size_t len = 0;
    const int slot = outbox->NextPending(&data, &len);
    if (slot < 0) break;
    const int id = client->Enqueue(classification_topic_, data, len, false);
    if (id < 0) break;  // the client's outbox is full: again next loop
    outbox->MarkInFlight(slot, id);
    ++in_flight_;
  }
}

bool MqttSession::PublishStatus(bool connected, const char* payload, size_t len, MqttClient* client) const {
  return connected && client->Enqueue(status_topic_, payload, len, true) >= 0;
}

bool MqttSession::PublishSample(bool connected, const char* payload, size_t len, MqttClient* client) const {
  if (!connected || client->OutboxBytes() + static_cast<int>(len) > kSampleOutboxBudget) return false;
  // Its PUBACK (or expiry) reaches OnAcked like any other; the outbox ignores unknown ids.
  return client->Enqueue(sample_topic_, payload, len, false) >= 0;
}

}  // namespace sortcam
