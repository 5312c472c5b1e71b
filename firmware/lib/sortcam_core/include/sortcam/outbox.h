// A bounded store of classification payloads not yet acknowledged by the broker.
//
// Survives short broker or Wi-Fi outages: payloads wait here while the link is down,
// are handed to the MQTT client when it is up (in-flight until their PUBACK), and go
// back to waiting when the client gives up on them (the host deduplicates by
// (device, boot, seq), so a resend never moves the sorter twice). When full, the
// oldest entry is dropped and counted: the count is reported in status.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sortcam {

class Outbox {
 public:
  static constexpr int kSlots = 16;
  static constexpr size_t kMaxPayload = 768;

  // Stores a copy. A payload longer than kMaxPayload is refused and counted as dropped.
  // Returns false when anything was dropped (the refused payload or the oldest entry).
  bool Push(const char* data, size_t len);

  // Oldest entry waiting to be published; -1 when none. data/len point into the outbox
  // and stay valid until that slot is released.
  int NextPending(const char** data, size_t* len) const;
  void MarkInFlight(int slot, int msg_id);
  // PUBACK for msg_id: releases its slot. False for an unknown id.
  bool Acked(int msg_id);
  // The MQTT client gave up on msg_id (its own outbox expired it): send it again.
  bool Requeue(int msg_id);
  // Everything in flight waits to be sent again (for a client that forgets on disconnect).
  void RequeueInFlight();

  int size() const;
  int pending() const;
  uint32_t dropped() const { return dropped_; }

 private:
  enum class State : uint8_t { kFree, kPending, kInFlight };
  struct Slot {
    State state = State::kFree;
    uint32_t order = 0;
    int msg_id = -1;
    size_t len = 0;
    char data[kMaxPayload];
  };
  int Oldest(State state) const;
  Slot slots_[kSlots] = {};
  uint32_t next_order_ = 0;
  uint32_t dropped_ = 0;
};

}  // namespace sortcam
