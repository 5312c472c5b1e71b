#include "sortcam/collect.h"

#include <cstring>

namespace sortcam {
namespace {

// now_ms at or after at_ms, on a clock that wraps at 2^32 (every span here is under 2^31 ms).
bool Reached(uint32_t now_ms, uint32_t at_ms) { return static_cast<int32_t>(now_ms - at_ms) >= 0; }

}  // namespace

const CollectSizeInfo& CollectSizeOf(CollectSize size) {
  for (const CollectSizeInfo& info : kCollectSizes) {
    if (info.size == size) return info;
  }
  return kCollectSizes[0];
}

bool CollectSizeFromName(const char* name, size_t len, CollectSize* out) {
  for (const CollectSizeInfo& info : kCollectSizes) {
    if (std::strlen(info.name) == len && std::memcmp(info.name, name, len) == 0) {
      *out = info.size;
      return true;
    }
  }
  return false;
}

const char* CollectCheckName(CollectCheck check) {
  switch (check) {
    case CollectCheck::kOk:
      return "ok";
    case CollectCheck::kNotJpeg:
      return "not a JPEG";
    case CollectCheck::kTooWide:
      return "frame size outside 1..1600 px a side";
    case CollectCheck::kTooLarge:
      return "JPEG over 73344 bytes";
  }
  return "?";
}

CollectCheck CheckCollectedFrame(const uint8_t* jpeg, size_t jpeg_len, uint32_t width, uint32_t height) {
  if (jpeg == nullptr || jpeg_len < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) return CollectCheck::kNotJpeg;
  if (width == 0 || height == 0 || width > mqtt::kCollectMaxSide || height > mqtt::kCollectMaxSide) {
    return CollectCheck::kTooWide;
  }
  if (jpeg_len > mqtt::kSampleJpegMax) return CollectCheck::kTooLarge;
  return CollectCheck::kOk;
}

FrameCollector::Change FrameCollector::Set(uint32_t now_ms, uint32_t every_ms, uint32_t for_s) {
  const bool running = active_ && !Reached(now_ms, until_ms_);
  if (!running || every_ms != every_ms_) next_ms_ = now_ms;  // a new collection's first frame goes at once
  every_ms_ = every_ms;
  if (for_s == 0) {
    active_ = false;
    return Change::kStopped;
  }
  active_ = true;
  until_ms_ = now_ms + for_s * 1000u;
  return running ? Change::kRenewed : Change::kStarted;
}

bool FrameCollector::Due(uint32_t now_ms) {
  if (!active_) return false;
  if (Reached(now_ms, until_ms_)) {
    active_ = false;
    ++expired_;
    return false;
  }
  if (!Reached(now_ms, next_ms_)) return false;
  next_ms_ = now_ms + every_ms_;
  return true;
}

void FrameCollector::OnCaptured(CollectCheck check, size_t jpeg_len) {
  if (check == CollectCheck::kTooLarge) {
    quality_ = quality_ + kQualityStep < kCoarsestQuality ? quality_ + kQualityStep : kCoarsestQuality;
  } else if (check == CollectCheck::kOk && jpeg_len < mqtt::kSampleJpegMax / 2 && quality_ > kStartQuality) {
    quality_ = quality_ - kQualityStep > kStartQuality ? quality_ - kQualityStep : kStartQuality;
  }
}

}  // namespace sortcam
