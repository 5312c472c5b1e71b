// Every supported camera board's pin map against its chip's rules (sortcam::CheckPins).
#include "sortcam/camera_boards.h"

#include <gtest/gtest.h>

namespace {

TEST(CameraBoards, EveryMapSuitsItsChip) {
  for (const sortcam::CameraPins* board : sortcam::kCameraBoards) {
    const char* problem = sortcam::CheckPins(*board);
    EXPECT_EQ(problem, nullptr) << board->board << ": " << problem;
  }
}

TEST(CameraBoards, BadMapsAreCaught) {
  struct Case {
    const char* why;
    void (*edit)(sortcam::CameraPins*);
  } cases[] = {
      {"a pin used twice", [](sortcam::CameraPins* p) { p->href = p->vsync; }},
      {"the beam-break input is a camera pin", [](sortcam::CameraPins* p) { p->trigger_gpio = p->pclk; }},
      {"a pin the flash, PSRAM or USB uses", [](sortcam::CameraPins* p) { p->d[0] = 35; }},      // S3 octal PSRAM
      {"a pin the chip does not have", [](sortcam::CameraPins* p) { p->trigger_gpio = 23; }},  // S3 has no 22-25
      {"a camera input is not connected", [](sortcam::CameraPins* p) { p->pclk = -1; }},
  };
  for (const auto& c : cases) {
    sortcam::CameraPins pins = sortcam::kXiaoEsp32S3Sense;
    c.edit(&pins);
    EXPECT_STREQ(sortcam::CheckPins(pins), c.why);
  }
  sortcam::CameraPins esp32 = sortcam::kAiThinkerEsp32Cam;
  esp32.pwdn = 35;
  EXPECT_STREQ(sortcam::CheckPins(esp32), "an output on an input-only pin");
  esp32 = sortcam::kAiThinkerEsp32Cam;
  esp32.trigger_gpio = 39;
  EXPECT_STREQ(sortcam::CheckPins(esp32), "the beam-break input has no pull-up");
  esp32.trigger_gpio = 16;  // the AI-Thinker's PSRAM chip select
  EXPECT_STREQ(sortcam::CheckPins(esp32), "a pin the flash, PSRAM or USB uses");
}

}  // namespace
