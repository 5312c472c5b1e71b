// The reference sorter's logic: answers host lines and schedules gate pulses.
//
// Portable (no Arduino/ESP-IDF): the board code feeds it received lines and the time,
// writes back what it returns, and drives gates from Poll(). Behaviour, per
// docs/firmware.md "Sorter":
//   SORT <id> <bin> <delay_ms>  -> ACK <id>, gate <bin> opens delay_ms later for pulse_ms;
//                                  a repeated <id> is ACKed again and not scheduled twice;
//                                  NAK <id> gate|delay|busy|jam|full|syntax when refused.
//   PING                        -> PONG <fw> <bins>
//   bad checksum                -> NAK <id> checksum (id 0 when unreadable)
// Times are uint32 milliseconds that may wrap (differences are taken modulo 2^32).
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/serial_protocol.h"

namespace sortcam {

struct SorterConfig {
  int gates = 4;             // 1..kGateMax + 1
  uint32_t pulse_ms = 250;   // how long a gate stays open per item
  const char* fw = nullptr;  // PONG firmware string; nullptr = kFirmwareVersion
};

struct GateAction {
  int gate = 0;
  bool open = false;  // true: energise the gate; false: release it
};

class Sorter {
 public:
  static constexpr int kMaxPending = 32;   // scheduled items not yet fired
  static constexpr int kRecentIds = 64;    // ids remembered for idempotency

  explicit Sorter(const SorterConfig& config);

  // One received line (with or without its line ending). Writes the answer line,
  // NUL-terminated, into out and returns its length (0: nothing to send).
  size_t OnLine(const char* line, size_t len, uint32_t now_ms, char* out, size_t out_size);

  // Gate changes due at now_ms, at most max_actions; returns how many were written.
  int Poll(uint32_t now_ms, GateAction* actions, int max_actions);

  // Events: each writes an "EVT ..." line into out and returns its length.
  size_t Ready(char* out, size_t out_size) const;
  size_t SetJammed(bool jammed, char* out, size_t out_size);
  size_t SetBinFull(int gate, bool full, char* out, size_t out_size);

  bool jammed() const { return jammed_; }
  int pending() const { return pending_count_; }
  uint32_t duplicates() const { return duplicates_; }
  uint32_t fired() const { return fired_; }

 private:
  struct Pending {
    uint32_t item_id;
    int gate;
    uint32_t due_ms;
  };

  size_t Nak(uint32_t item_id, const char* reason, char* out, size_t out_size) const;
  size_t Ack(uint32_t item_id, char* out, size_t out_size) const;
  size_t HandleSort(const serial::Message& m, uint32_t now_ms, char* out, size_t out_size);
  size_t HandleMalformed(const char* body, size_t len, char* out, size_t out_size) const;
  bool SeenRecently(uint32_t item_id) const;
  void Remember(uint32_t item_id);

  SorterConfig config_;
  Pending pending_[kMaxPending] = {};
  int pending_count_ = 0;
  uint32_t recent_[kRecentIds] = {};
  int recent_next_ = 0;
  bool gate_open_[serial::kGateMax + 1] = {};
  uint32_t gate_close_ms_[serial::kGateMax + 1] = {};
  bool bin_full_[serial::kGateMax + 1] = {};
  bool jammed_ = false;
  uint32_t duplicates_ = 0;
  uint32_t fired_ = 0;
};

}  // namespace sortcam
