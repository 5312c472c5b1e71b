// Reconnect delays: kMin at first, doubling after each failed attempt up to kMax, back to
// kMin once connected (Wi-Fi and MQTT: 1 s doubling to 60 s).
#pragma once

#include <cstdint>

namespace sortcam {

class Backoff {
 public:
  static constexpr uint32_t kMinMs = 1000;
  static constexpr uint32_t kMaxMs = 60000;

  // The delay before the next attempt; the one after it is twice as long (at most kMaxMs).
  uint32_t Next();
  void Reset() { delay_ms_ = kMinMs; }

 private:
  uint32_t delay_ms_ = kMinMs;
};

}  // namespace sortcam
