// The camera's MQTT session, all of it but the esp-mqtt calls (board/mqtt_link makes those):
// the topics and Last Will, which received messages are commands, which classifications go
// to the client when (from the outbox, at most kMaxInFlight unacknowledged, only while
// connected), when a sample may take room in the client's outbox, and reconnect backoff.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/backoff.h"
#include "sortcam/command.h"
#include "sortcam/mqtt_contract.h"
#include "sortcam/outbox.h"

namespace sortcam {

// The client calls the session makes (esp-mqtt on the chip, a fake in the tests).
class MqttClient {
 public:
  virtual ~MqttClient() = default;
  // Queues a QoS 1 message; returns its message id, or < 0 when the client refuses it.
  virtual int Enqueue(const char* topic, const char* data, size_t len, bool retain) = 0;
  virtual int OutboxBytes() = 0;  // what the client's own outbox holds
  virtual void Reconnect() = 0;
};

class MqttSession {
 public:
  static constexpr int kMaxInFlight = 4;
  // Samples are refused while the client's outbox holds two maximum-size samples, so they
  // never crowd out classifications (bytes, in PSRAM).
  static constexpr int kSampleOutboxBudget = 2 * static_cast<int>(mqtt::kSampleMaxPayload);

  enum class Received : uint8_t { kOtherTopic, kCommand, kRejected };

  // Builds <root>/<device>/{classification,status,cmd,sample} and the Last Will. False for
  // a bad root or device id.
  bool Configure(const char* root, const char* device);

  // A message from the broker (any task: reads only what Configure wrote). kCommand fills
  // *command; kRejected writes the reason (the caller counts it). A command that arrives in
  // pieces (larger than the client's buffer) is refused.
  Received OnData(const char* topic, size_t topic_len, const char* data, size_t len, size_t offset, size_t total,
                  Command* command, char* error, size_t error_size) const;

  // From the loop: PUBACK for msg_id, or the client gave up on it (its outbox expired it).
  void OnAcked(int msg_id, Outbox* outbox);
  void OnExpired(int msg_id, Outbox* outbox);
  // Hands pending classifications to the client while connected; otherwise asks it to
  // reconnect when the backoff delay has passed.
  void Pump(bool connected, uint32_t now_ms, Outbox* outbox, MqttClient* client);
  bool PublishStatus(bool connected, const char* payload, size_t len, MqttClient* client) const;
  bool PublishSample(bool connected, const char* payload, size_t len, MqttClient* client) const;

  const char* classification_topic() const { return classification_topic_; }
  const char* status_topic() const { return status_topic_; }
  const char* cmd_topic() const { return cmd_topic_; }
  const char* sample_topic() const { return sample_topic_; }
  const char* will() const { return will_; }
  size_t will_len() const { return will_len_; }
  int in_flight() const { return in_flight_; }

 private:
  char classification_topic_[128] = "";
  char status_topic_[128] = "";
  char cmd_topic_[128] = "";
  char sample_topic_[128] = "";
  char will_[160] = "";
  size_t will_len_ = 0;
  int in_flight_ = 0;
  Backoff backoff_;
  bool attempt_due_ = true;
  uint32_t next_attempt_ms_ = 0;
};

}  // namespace sortcam
