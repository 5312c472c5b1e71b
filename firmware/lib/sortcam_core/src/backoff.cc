#include "sortcam/backoff.h"

namespace sortcam {

uint32_t Backoff::Next() {
  const uint32_t delay = delay_ms_;
  delay_ms_ = delay_ms_ >= kMaxMs / 2 ? kMaxMs : delay_ms_ * 2;
  return delay;
}

}  // namespace sortcam
