#include "sortcam/outbox.h"

#include <cstring>

namespace sortcam {

int Outbox::Oldest(State state) const {
  int best = -1;
  for (int i = 0; i < kSlots; ++i) {
    if (slots_[i].state == State::kFree || (state != State::kFree && slots_[i].state != state)) continue;
    // Orders wrap at 2^32; compare by difference.
    if (best < 0 || static_cast<int32_t>(slots_[i].order - slots_[best].order) < 0) best = i;
  }
  return best;
}

bool Outbox::Push(const char* data, size_t len) {
  if (len > kMaxPayload) {
    ++dropped_;
    return false;
  }
  bool kept_all = true;
  int slot = -1;
  for (int i = 0; i < kSlots && slot < 0; ++i) {
    if (slots_[i].state == State::kFree) slot = i;
  }
  if (slot < 0) {
    slot = Oldest(State::kFree);  // any state: the oldest entry goes
    ++dropped_;
    kept_all = false;
  }
  Slot& s = slots_[slot];
  s.state = State::kPending;
  s.order = next_order_++;
  s.msg_id = -1;
  s.len = len;
  std::memcpy(s.data, data, len);
  return kept_all;
}

int Outbox::NextPending(const char** data, size_t* len) const {
  const int slot = Oldest(State::kPending);
  if (slot >= 0) {
    *data = slots_[slot].data;
    *len = slots_[slot].len;
  }
  return slot;
}

void Outbox::MarkInFlight(int slot, int msg_id) {
  if (slot < 0 || slot >= kSlots || slots_[slot].state == State::kFree) return;
  slots_[slot].state = State::kInFlight;
  slots_[slot].msg_id = msg_id;
}

bool Outbox::Acked(int msg_id) {
  for (Slot& s : slots_) {
    if (s.state == State::kInFlight && s.msg_id == msg_id) {
      s.state = State::kFree;
      return true;
    }
  }
  return false;
}

bool Outbox::Requeue(int msg_id) {
  for (Slot& s : slots_) {
    if (s.state == State::kInFlight && s.msg_id == msg_id) {
      s.state = State::kPending;
      s.msg_id = -1;
      return true;
    }
  }
  return false;
}

void Outbox::RequeueInFlight() {
  for (Slot& s : slots_) {
    if (s.state == State::kInFlight) {
      s.state = State::kPending;
      s.msg_id = -1;
    }
  }
}

int Outbox::size() const {
  int n = 0;
  for (const Slot& s : slots_) n += s.state != State::kFree ? 1 : 0;
  return n;
}

int Outbox::pending() const {
  int n = 0;
  for (const Slot& s : slots_) n += s.state == State::kPending ? 1 : 0;
  return n;
}

}  // namespace sortcam
