#include "sortcam/detector.h"

#include <cstring>

namespace sortcam {

const char* TriggerName(Trigger trigger) {
  switch (trigger) {
    case Trigger::kGpio:
      return "gpio";
    case Trigger::kCommand:
      return "command";
    default:
      return "continuous";
  }
}

bool TriggerFromName(const char* name, size_t len, Trigger* out) {
  static const struct {
    const char* name;
    Trigger trigger;
  } kNames[] = {{"continuous", Trigger::kContinuous}, {"gpio", Trigger::kGpio}, {"command", Trigger::kCommand}};
  for (const auto& entry : kNames) {
    if (std::strlen(entry.name) == len && std::memcmp(entry.name, name, len) == 0) {
      *out = entry.trigger;
      return true;
    }
  }
  return false;
}

bool IsValidConfig(const DecisionConfig& c) {
  return c.threshold >= 0.0f && c.threshold <= 1.0f && c.stable_frames >= 1 && c.stable_frames <= 255 &&
         c.max_frames >= 1 && c.max_frames <= 255 && c.change_threshold >= 0 && c.change_threshold <= 255;
}

bool SceneChanged(const uint8_t* image, const uint8_t* background, size_t n, int change_threshold) {
  uint64_t diff = 0;
  for (size_t i = 0; i < n; ++i) {
    diff += image[i] > background[i] ? image[i] - background[i] : background[i] - image[i];
  }
  return diff > static_cast<uint64_t>(change_threshold) * n;
}

float MeanProb(int32_t sum_centred, int n, float scale) {
  // float32 throughout, in the order sortcam.device_core.mean_prob uses.
  const float total = static_cast<float>(sum_centred) * scale;
  const float p = total / static_cast<float>(n);
  return p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
}

Item ItemFromSums(const int32_t* sums, int num_classes, int n, float scale, bool stable, int frames) {
  Item item;
  item.top_count = num_classes < kTopK ? num_classes : kTopK;
  bool taken[ItemDetector::kMaxClasses] = {};
  for (int k = 0; k < item.top_count; ++k) {
    int best = -1;
    for (int c = 0; c < num_classes; ++c) {
      if (!taken[c] && (best < 0 || sums[c] > sums[best])) best = c;  // strict: ties keep the lower index
    }
    taken[best] = true;
    item.top_class[k] = best;
    item.top_p[k] = MeanProb(sums[best], n, scale);
  }
  item.class_id = item.top_class[0];
  item.confidence = item.top_p[0];
  item.frames = frames;
  item.stable = stable;
  return item;
}

bool ItemDetector::Init(const DecisionConfig& config, int num_classes, int output_zero_point, float output_scale,
                        uint8_t* background, size_t image_bytes) {
  if (!IsValidConfig(config) || num_classes < 1 || num_classes > kMaxClasses || background == nullptr ||
      image_bytes == 0) {
    return false;
  }
  config_ = config;
  num_classes_ = num_classes;
  zero_point_ = output_zero_point;
  scale_ = output_scale;
  background_ = background;
  image_bytes_ = image_bytes;
  has_background_ = false;
  state_ = DetectorState::kIdle;
  triggered_ = false;
  ResetBurst();
  return true;
}

void ItemDetector::SetBackground(const uint8_t* image) {
  std::memcpy(background_, image, image_bytes_);
  has_background_ = true;
}

void ItemDetector::Trigger() {
  if (state_ != DetectorState::kArmed) Arm(true);
}

bool ItemDetector::SetThreshold(float threshold) {
  if (!(threshold >= 0.0f && threshold <= 1.0f)) return false;
  config_.threshold = threshold;
  return true;
}

void ItemDetector::SetTrigger(sortcam::Trigger trigger) {
  config_.trigger = trigger;
  state_ = DetectorState::kIdle;
  ResetBurst();
}

void ItemDetector::ResetBurst() {
  frames_ = 0;
  streak_len_ = 0;
  streak_class_ = -1;
  std::memset(burst_sum_, 0, sizeof burst_sum_);
  std::memset(streak_sum_, 0, sizeof streak_sum_);
}

void ItemDetector::Arm(bool triggered) {
  state_ = DetectorState::kArmed;
  triggered_ = triggered;
  ResetBurst();
}

bool ItemDetector::OnFrame(const uint8_t* image, const int8_t* scores, Item* item) {
  if (config_.trigger == sortcam::Trigger::kContinuous) {
    if (!has_background_) {
      SetBackground(image);
      return false;
    }
    const bool present = SceneChanged(image, background_, image_bytes_, config_.change_threshold);
    if (state_ == DetectorState::kWaitAbsent) {
      if (!present) state_ = DetectorState::kIdle;
      return false;
    }
    if (state_ == DetectorState::kIdle) {
      if (!present) return false;
      Arm(false);
    } else if (!present && !triggered_) {
      // The item left before a stable label: decide on what was seen; the belt is
      // already empty, so wait for the next item straight away.
      *item = Finish(false);
      state_ = DetectorState::kIdle;
      return true;
    }
  } else if (state_ != DetectorState::kArmed) {
    return false;
  }
  return Add(scores, item);
}

bool ItemDetector::Add(const int8_t* scores, Item* item) {
  int32_t centred[kMaxClasses];
  int best = 0;
  for (int c = 0; c < num_classes_; ++c) {
    centred[c] = static_cast<int32_t>(scores[c]) - zero_point_;
    burst_sum_[c] += centred[c];
    if (scores[c] > scores[best]) best = c;
  }
  ++frames_;
  const float p_best = static_cast<float>(centred[best]) * scale_;
  if (p_best >= config_.threshold) {
    if (streak_len_ > 0 && streak_class_ == best) {
      ++streak_len_;
      for (int c = 0; c < num_classes_; ++c) streak_sum_[c] += centred[c];
    } else {
      streak_len_ = 1;
      streak_class_ = best;
      std::memcpy(streak_sum_, centred, sizeof(int32_t) * num_classes_);
    }
  } else {
    streak_len_ = 0;
    streak_class_ = -1;
    std::memset(streak_sum_, 0, sizeof streak_sum_);
  }
  if (streak_len_ >= config_.stable_frames) {
    *item = Finish(true);
    return true;
  }
  if (frames_ >= config_.max_frames) {
    *item = Finish(false);
    return true;
  }
  return false;
}

Item ItemDetector::Finish(bool stable) {
  const Item item = stable ? ItemFromSums(streak_sum_, num_classes_, streak_len_, scale_, true, frames_)
                           : ItemFromSums(burst_sum_, num_classes_, frames_, scale_, false, frames_);
  // Continuous mode never re-arms on the item just decided (triggered or not).
  state_ = config_.trigger == sortcam::Trigger::kContinuous ? DetectorState::kWaitAbsent : DetectorState::kIdle;
  triggered_ = false;
  ResetBurst();
  return item;
}

}  // namespace sortcam
