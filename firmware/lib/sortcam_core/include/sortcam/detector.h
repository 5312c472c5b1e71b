// The decision state machine: frames in, one Item per object on the belt out.
//
// Line-for-line twin of sortcam.device_core.ItemDetector (read its module doc for the
// rules); golden vectors over real image sequences prove the two agree bit for bit.
// Integer arithmetic, plus float32 for probabilities in the same order of operations.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sortcam {

enum class Trigger : uint8_t { kContinuous, kGpio, kCommand };

// Name as in the MQTT contract ("continuous", "gpio", "command").
const char* TriggerName(Trigger trigger);
// False for an unknown name.
bool TriggerFromName(const char* name, size_t len, Trigger* out);

struct DecisionConfig {
  float threshold = 0.6f;     // minimum top-1 probability for a frame to vote, 0..1
  int stable_frames = 3;      // consecutive votes that decide, 1..255
  int max_frames = 10;        // frames before the summed-score fallback, 1..255
  int change_threshold = 12;  // mean abs pixel difference from background, 0..255
  Trigger trigger = Trigger::kContinuous;
};

bool IsValidConfig(const DecisionConfig& config);

constexpr int kTopK = 3;

struct Item {
  int class_id = 0;
  float confidence = 0.0f;
  int top_count = 0;  // kTopK, or fewer for a model with fewer classes
  int top_class[kTopK] = {};
  float top_p[kTopK] = {};
  int frames = 0;
  bool stable = true;  // false: the summed-score fallback decided
};

enum class DetectorState : uint8_t { kIdle = 0, kArmed = 1, kWaitAbsent = 2 };

// True when the mean absolute difference over n bytes is strictly above change_threshold.
bool SceneChanged(const uint8_t* image, const uint8_t* background, size_t n, int change_threshold);

// Mean probability of an n-frame sum of (q - zero_point), clamped to 0..1.
float MeanProb(int32_t sum_centred, int n, float scale);

// Top-3 of n-frame sums (ties to the lower index) and their mean probabilities.
Item ItemFromSums(const int32_t* sums, int num_classes, int n, float scale, bool stable, int frames);

class ItemDetector {
 public:
  static constexpr int kMaxClasses = 32;

  // background: caller-owned buffer of image_bytes (the model-sized RGB image), kept for
  // the detector's lifetime. False for a bad config or class count.
  bool Init(const DecisionConfig& config, int num_classes, int output_zero_point, float output_scale,
            uint8_t* background, size_t image_bytes);

  void SetBackground(const uint8_t* image);
  // A beam-break edge or a capture command: starts a burst unless one is running.
  void Trigger();
  // False (and nothing changes) for a value out of range.
  bool SetThreshold(float threshold);
  // Changes mode; a running burst is dropped.
  void SetTrigger(sortcam::Trigger trigger);

  // One frame: image is the model-sized RGB (image_bytes), scores the int8 output.
  // Returns true and fills *item when an item is decided.
  bool OnFrame(const uint8_t* image, const int8_t* scores, Item* item);

  DetectorState state() const { return state_; }
  const DecisionConfig& config() const { return config_; }
  int frames() const { return frames_; }

 private:
  void ResetBurst();
  void Arm(bool triggered);
  bool Add(const int8_t* scores, Item* item);
  Item Finish(bool stable);

  DecisionConfig config_;
  int num_classes_ = 0;
  int zero_point_ = 0;
  float scale_ = 0.0f;
  uint8_t* background_ = nullptr;
  size_t image_bytes_ = 0;
  bool has_background_ = false;
  DetectorState state_ = DetectorState::kIdle;
  bool triggered_ = false;
  int frames_ = 0;
  int32_t burst_sum_[kMaxClasses] = {};
  int streak_len_ = 0;
  int streak_class_ = -1;
  int32_t streak_sum_[kMaxClasses] = {};
};

}  // namespace sortcam
