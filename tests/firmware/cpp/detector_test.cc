// The decision state machine against sortcam.device_core.ItemDetector (golden sequences).
#include "sortcam/detector.h"

#include <gtest/gtest.h>

#include <vector>

#include "golden.h"

namespace {

using sortcam::DetectorState;
using sortcam::Trigger;

TEST(Detector, MatchesPythonOverFrameSequences) {
  const auto cases = golden::Cases("decisions.txt");
  sortcam::ItemDetector det;
  std::vector<uint8_t> frames;
  std::vector<uint8_t> background;
  size_t frame_index = 0;
  int sequences = 0;
  int items = 0;
  constexpr size_t kImageBytes = 16 * 16 * 3;
  for (size_t line = 0; line < cases.size(); ++line) {
    const auto& c = cases[line];
    SCOPED_TRACE("decisions.txt case " + std::to_string(line));
    if (c[0] == "S") {
      ++sequences;
      frames = golden::ReadFile(c[2]);
      frame_index = 0;
      background.assign(kImageBytes, 0);
      sortcam::DecisionConfig config;
      config.threshold = golden::F32(c[6]);
      config.stable_frames = golden::Int(c[7]);
      config.max_frames = golden::Int(c[8]);
      config.change_threshold = golden::Int(c[9]);
      ASSERT_TRUE(sortcam::TriggerFromName(c[10].data(), c[10].size(), &config.trigger));
      ASSERT_TRUE(det.Init(config, golden::Int(c[3]), golden::Int(c[4]), golden::F32(c[5]), background.data(),
                           kImageBytes));
      continue;
    }
    ASSERT_EQ(c[0], "E");
    const std::string& kind = c[1];
    if (kind == "trigger") {
      det.Trigger();
    } else {
      ASSERT_LE((frame_index + 1) * kImageBytes, frames.size());
      const uint8_t* image = frames.data() + frame_index * kImageBytes;
      ++frame_index;
      if (kind == "background") {
        det.SetBackground(image);
      } else {
        const std::vector<uint8_t> raw = golden::Hex(c[2]);
        sortcam::Item item;
        const bool emitted = det.OnFrame(image, reinterpret_cast<const int8_t*>(raw.data()), &item);
        ASSERT_EQ(emitted, c.size() > 4);
        if (emitted) {
          ++items;
          EXPECT_EQ(item.class_id, golden::Int(c[4]));
          EXPECT_EQ(item.confidence, golden::F32(c[5]));  // bit-exact float32
          EXPECT_EQ(item.frames, golden::Int(c[6]));
          EXPECT_EQ(item.stable, c[7] == "1");
          ASSERT_EQ(item.top_count, golden::Int(c[8]));
          for (int k = 0; k < item.top_count; ++k) {
            EXPECT_EQ(item.top_class[k], golden::Int(c[9 + 2 * k]));
            EXPECT_EQ(item.top_p[k], golden::F32(c[10 + 2 * k]));
          }
        }
      }
    }
    ASSERT_EQ(static_cast<int>(det.state()), golden::Int(c[3]));
  }
  EXPECT_EQ(sequences, 5);
  EXPECT_GE(items, 8);
}

TEST(Detector, TopThreeTiesGoToLowerIndex) {
  const int32_t sums[6] = {0, 128, 0, 0, 128, 0};
  const sortcam::Item item = sortcam::ItemFromSums(sums, 6, 1, 1.0f / 256.0f, true, 1);
  EXPECT_EQ(item.top_class[0], 1);
  EXPECT_EQ(item.top_class[1], 4);
  EXPECT_EQ(item.top_class[2], 0);
  EXPECT_EQ(item.confidence, 0.5f);
}

TEST(Detector, FewerClassesThanTopK) {
  const int32_t sums[2] = {10, 200};
  const sortcam::Item item = sortcam::ItemFromSums(sums, 2, 1, 1.0f / 256.0f, false, 4);
  EXPECT_EQ(item.top_count, 2);
  EXPECT_EQ(item.class_id, 1);
}

TEST(Detector, MeanProbClampsToUnitRange) {
  EXPECT_EQ(sortcam::MeanProb(-5, 1, 0.5f), 0.0f);
  EXPECT_EQ(sortcam::MeanProb(1000, 2, 0.5f), 1.0f);
}

TEST(Detector, RejectsBadConfig) {
  sortcam::ItemDetector det;
  uint8_t bg[3];
  sortcam::DecisionConfig config;
  EXPECT_TRUE(det.Init(config, 6, -128, 1.0f / 256, bg, 3));
  config.stable_frames = 0;
  EXPECT_FALSE(det.Init(config, 6, -128, 1.0f / 256, bg, 3));
  config = sortcam::DecisionConfig{};
  config.threshold = 1.5f;
  EXPECT_FALSE(det.Init(config, 6, -128, 1.0f / 256, bg, 3));
  config = sortcam::DecisionConfig{};
  EXPECT_FALSE(det.Init(config, 33, -128, 1.0f / 256, bg, 3));
  EXPECT_FALSE(det.Init(config, 6, -128, 1.0f / 256, nullptr, 3));
  ASSERT_TRUE(det.Init(config, 6, -128, 1.0f / 256, bg, 3));
  EXPECT_FALSE(det.SetThreshold(-0.1f));
  EXPECT_TRUE(det.SetThreshold(0.9f));
  EXPECT_EQ(det.config().threshold, 0.9f);
}

TEST(Detector, SwitchingTriggerDropsTheBurst) {
  sortcam::ItemDetector det;
  uint8_t bg[3];
  sortcam::DecisionConfig config;
  config.trigger = Trigger::kCommand;
  ASSERT_TRUE(det.Init(config, 2, 0, 0.5f, bg, 3));
  det.Trigger();
  EXPECT_EQ(det.state(), DetectorState::kArmed);
  det.SetTrigger(Trigger::kGpio);
  EXPECT_EQ(det.state(), DetectorState::kIdle);
  const uint8_t image[3] = {0, 0, 0};
  const int8_t scores[2] = {2, 0};
  sortcam::Item item;
  EXPECT_FALSE(det.OnFrame(image, scores, &item));
}

}  // namespace
