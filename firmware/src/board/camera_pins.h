// The camera pin map of this build: platformio.ini's custom_camera_board sets
// SORTCAM_CAMERA_BOARD_<name>; the maps and their sources are in sortcam/camera_boards.h.
#pragma once

#include "sdkconfig.h"
#include "sortcam/camera_boards.h"

namespace sortcam {
namespace board {

#if defined(SORTCAM_CAMERA_BOARD_ai_thinker)
constexpr const CameraPins& kCameraPins = kAiThinkerEsp32Cam;
#elif defined(SORTCAM_CAMERA_BOARD_esp32s3_eye)
constexpr const CameraPins& kCameraPins = kEsp32S3Eye;
#elif defined(SORTCAM_CAMERA_BOARD_xiao_esp32s3_sense)
constexpr const CameraPins& kCameraPins = kXiaoEsp32S3Sense;
#elif defined(SORTCAM_CAMERA_BOARD_freenove_esp32s3_cam)
constexpr const CameraPins& kCameraPins = kFreenoveEsp32S3Cam;
#else
#error "no camera board: set custom_camera_board in platformio.ini (sortcam/camera_boards.h lists the boards)"
#endif

#if CONFIG_IDF_TARGET_ESP32S3
constexpr Chip kBuildChip = Chip::kEsp32S3;
#else
constexpr Chip kBuildChip = Chip::kEsp32;
#endif
static_assert(kCameraPins.chip == kBuildChip, "custom_camera_board names a board of another chip than this env's");

}  // namespace board
}  // namespace sortcam
