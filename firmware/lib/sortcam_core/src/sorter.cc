#include "sortcam/sorter.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "sortcam/version.h"

namespace sortcam {
namespace {

// a is at or after b on the wrapping millisecond clock.
bool Reached(uint32_t now, uint32_t due) { return static_cast<int32_t>(now - due) >= 0; }

size_t EncodeBody(char* out, size_t out_size, const char* format, ...) __attribute__((format(printf, 3, 4)));

size_t EncodeBody(char* out, size_t out_size, const char* format, ...) {
  char body[serial::kMaxLine + 1];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(body, sizeof body, format, args);
  va_end(args);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof body) return 0;
  return serial::Encode(body, out, out_size);
}

}  // namespace

Sorter::Sorter(const SorterConfig& config) : config_(config) {
  if (config_.gates < 1) config_.gates = 1;
  if (config_.gates > serial::kGateMax + 1) config_.gates = serial::kGateMax + 1;
  if (config_.fw == nullptr) config_.fw = kFirmwareVersion;
}

size_t Sorter::Ack(uint32_t item_id, char* out, size_t out_size) const {
  return EncodeBody(out, out_size, "ACK %lu", static_cast<unsigned long>(item_id));
}

size_t Sorter::Nak(uint32_t item_id, const char* reason, char* out, size_t out_size) const {
  return EncodeBody(out, out_size, "NAK %lu %s", static_cast<unsigned long>(item_id), reason);
}

size_t Sorter::Ready(char* out, size_t out_size) const { return EncodeBody(out, out_size, "EVT READY"); }

size_t Sorter::SetJammed(bool jammed, char* out, size_t out_size) {
  if (jammed == jammed_) return 0;
  jammed_ = jammed;
  return EncodeBody(out, out_size, "EVT %s", jammed ? "JAM" : "CLEARED");
}

size_t Sorter::SetBinFull(int gate, bool full, char* out, size_t out_size) {
  if (gate < 0 || gate >= config_.gates || bin_full_[gate] == full) return 0;
  bin_full_[gate] = full;
  return full ? EncodeBody(out, out_size, "EVT BIN_FULL %d", gate) : 0;
}

bool Sorter::SeenRecently(uint32_t item_id) const {
  for (uint32_t id : recent_) {
    if (id == item_id) return true;  // ids are >= 1, so the zeroed slots never match
  }
  return false;
}

void Sorter::Remember(uint32_t item_id) {
  recent_[recent_next_] = item_id;
  recent_next_ = (recent_next_ + 1) % kRecentIds;
}

size_t Sorter::HandleMalformed(const char* body, size_t len, char* out, size_t out_size) const {
  // Name the field that is wrong when the line is a SORT whose id can be read.
  const char* tokens[5] = {};
  size_t lengths[5] = {};
  int count = 0;
  size_t begin = 0;
  for (size_t i = 0; i <= len && count < 5; ++i) {
    if (i == len || body[i] == ' ') {
      tokens[count] = body + begin;
      lengths[count] = i - begin;
      ++count;
      begin = i + 1;
    }
  }
  uint32_t item_id = 0;
  const bool is_sort = count >= 2 && lengths[0] == 4 && std::memcmp(tokens[0], "SORT", 4) == 0;
  if (!is_sort || !serial::ParseUint(tokens[1], lengths[1], serial::kIdMin, serial::kIdMax, &item_id)) {
    return Nak(0, "syntax", out, out_size);
  }
  uint32_t value = 0;
  if (count == 4) {
    if (!serial::ParseUint(tokens[2], lengths[2], 0, serial::kGateMax, &value)) return Nak(item_id, "gate", out, out_size);
    if (!serial::ParseUint(tokens[3], lengths[3], 0, serial::kDelayMaxMs, &value)) {
      return Nak(item_id, "delay", out, out_size);
    }
  }
  return Nak(item_id, "syntax", out, out_size);
}

size_t Sorter::HandleSort(const serial::Message& m, uint32_t now_ms, char* out, size_t out_size) {
  if (SeenRecently(m.item_id)) {
    ++duplicates_;
    return Ack(m.item_id, out, out_size);
  }
  if (m.gate >= config_.gates) return Nak(m.item_id, "gate", out, out_size);
  if (jammed_) return Nak(m.item_id, "jam", out, out_size);
  if (bin_full_[m.gate]) return Nak(m.item_id, "full", out, out_size);
  if (pending_count_ == kMaxPending) return Nak(m.item_id, "busy", out, out_size);
  pending_[pending_count_++] = Pending{m.item_id, m.gate, now_ms + m.delay_ms};
  Remember(m.item_id);
  return Ack(m.item_id, out, out_size);
}

size_t Sorter::OnLine(const char* line, size_t len, uint32_t now_ms, char* out, size_t out_size) {
  size_t body_len = 0;
  const serial::DecodeResult result = serial::Decode(line, len, &body_len);
  if (result == serial::DecodeResult::kMalformed) {
    // Blank lines (a stray CR/LF) are not worth an answer.
    bool blank = true;
    for (size_t i = 0; i < len; ++i) blank = blank && (line[i] == '\r' || line[i] == '\n');
    return blank ? 0 : Nak(0, "syntax", out, out_size);
  }
  if (result == serial::DecodeResult::kBadChecksum) {
    uint32_t item_id = 0;
    if (body_len > 5 && std::memcmp(line, "SORT ", 5) == 0) {
      size_t end = 5;
      while (end < body_len && line[end] != ' ') ++end;
      if (!serial::ParseUint(line + 5, end - 5, serial::kIdMin, serial::kIdMax, &item_id)) item_id = 0;
    }
    return Nak(item_id, "checksum", out, out_size);
  }
  serial::Message m;
  if (!serial::Parse(line, body_len, &m)) return HandleMalformed(line, body_len, out, out_size);
  switch (m.verb) {
    case serial::Verb::kSort:
      return HandleSort(m, now_ms, out, out_size);
    case serial::Verb::kPing:
      return EncodeBody(out, out_size, "PONG %s %d", config_.fw, config_.gates);
    default:
      return Nak(0, "syntax", out, out_size);  // sorter-side verbs make no sense here
  }
}

int Sorter::Poll(uint32_t now_ms, GateAction* actions, int max_actions) {
  int written = 0;
  for (int gate = 0; gate < config_.gates && written < max_actions; ++gate) {
    if (gate_open_[gate] && Reached(now_ms, gate_close_ms_[gate])) {
      gate_open_[gate] = false;
      actions[written++] = GateAction{gate, false};
    }
  }
  int i = 0;
  while (i < pending_count_ && written < max_actions) {
    const Pending p = pending_[i];
    if (!Reached(now_ms, p.due_ms)) {
      ++i;
      continue;
    }
    // Two items for one gate in quick succession keep it open; no second "open" action.
    if (!gate_open_[p.gate]) actions[written++] = GateAction{p.gate, true};
    gate_open_[p.gate] = true;
    gate_close_ms_[p.gate] = now_ms + config_.pulse_ms;
    ++fired_;
    pending_[i] = pending_[--pending_count_];
  }
  return written;
}

}  // namespace sortcam
