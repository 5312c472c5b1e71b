// The MQTT edge (ESP-IDF's esp-mqtt client), per the contract in DESIGN.md:
// classifications QoS 1 from the outbox, retained status with the Last Will registered at
// connect, the cmd topic subscribed at every connect, reconnect with backoff. What to send
// when is sortcam::MqttSession's (host-tested); this edge makes the esp-mqtt calls.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/command.h"
#include "sortcam/outbox.h"

namespace sortcam {
namespace board {

struct MqttSettings {
  const char* uri;
  const char* username;
  const char* password;
  const char* device_id;
  const char* topic_root;
};

// Builds the topics and starts the client (it connects in the background).
bool StartMqtt(const MqttSettings& settings);
bool MqttConnected();

// Publishes what waits in the outbox (only while connected; in-flight entries are released
// by their PUBACK and sent again if the client drops them). Also drives the reconnect backoff.
void PumpMqtt(Outbox* outbox);

// Retained status (the payload comes from sortcam::EncodeStatus).
bool PublishStatus(const char* payload, size_t len);

// A sample frame (sortcam::EncodeSample) on <root>/<device>/sample, QoS 1, not retained,
// handed to the client's own outbox (which copies it; a message larger than the client
// buffer goes out in fragments). False, and nothing queued, when not connected or when
// the client's outbox already holds MqttSession::kSampleOutboxBudget bytes: samples never crowd out
// classifications.
bool PublishSample(const char* payload, size_t len);
// True once after each (re)connect: time to publish a fresh status.
bool TakeStatusRequest();

// A valid command received on <root>/<device>/cmd, if any. Invalid ones are logged and
// counted (RejectedCommands) and never reach the caller.
bool NextCommand(Command* command);
uint32_t RejectedCommands();

}  // namespace board
}  // namespace sortcam
