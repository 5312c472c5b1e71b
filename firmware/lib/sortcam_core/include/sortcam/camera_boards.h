// Camera pin maps of the supported boards (OV2640, PSRAM), and the pin rules of their chips.
// firmware/src/board/camera_pins.h picks one per env (platformio.ini's custom_camera_board);
// CheckPins holds every map to its chip's rules in the host tests. DVP data lines d[0]..d[7]
// are the sensor's D2..D9 (Y2..Y9 in Espressif's and Arduino's camera_pins.h); -1: none.
#pragma once

namespace sortcam {

enum class Chip { kEsp32, kEsp32S3 };

struct CameraPins {
  const char* board;
  Chip chip;
  int pwdn;
  int reset;
  int xclk;
  int sccb_sda;
  int sccb_scl;
  int d[8];
  int vsync;
  int href;
  int pclk;
  int trigger_gpio;  // default beam-break input (NVS trigger_gpio overrides); -1: none free
};

// AI-Thinker ESP32-CAM. Source: the AI-Thinker ESP32-CAM schematic and the CAMERA_MODEL_AI_THINKER
// map in arduino-esp32's CameraWebServer example (camera_pins.h). GPIO13 is free without the SD card.
constexpr CameraPins kAiThinkerEsp32Cam = {
    "AI-Thinker ESP32-CAM", Chip::kEsp32, 32, -1, 0, 26, 27, {5, 18, 19, 21, 36, 39, 34, 35}, 25, 23, 22, 13};

// Espressif ESP32-S3-EYE (v2.2). Source: Espressif's ESP32-S3-EYE schematic (ESP32-S3-EYE-MB) and
// the CAMERA_MODEL_ESP32S3_EYE map in arduino-esp32's CameraWebServer camera_pins.h. The board has
// no free header pin for a beam-break sensor: set trigger_gpio in NVS after wiring one.
constexpr CameraPins kEsp32S3Eye = {
    "ESP32-S3-EYE", Chip::kEsp32S3, -1, -1, 15, 4, 5, {11, 9, 8, 10, 12, 18, 17, 16}, 6, 7, 13, -1};

// Seeed Studio XIAO ESP32S3 Sense. Source: Seeed's XIAO ESP32S3 Sense schematic and wiki, and the
// CAMERA_MODEL_XIAO_ESP32S3 map in arduino-esp32's camera_pins.h. Beam-break on pad D0 (GPIO1).
constexpr CameraPins kXiaoEsp32S3Sense = {
    "XIAO ESP32S3 Sense", Chip::kEsp32S3, -1, -1, 10, 40, 39, {15, 17, 18, 16, 14, 12, 11, 48}, 38, 47, 13, 1};

// Freenove ESP32-S3-WROOM CAM. Source: Freenove's ESP32-S3 WROOM board tutorial, which wires the
// camera as the ESP32-S3-EYE (its sketches select CAMERA_MODEL_ESP32S3_EYE). Beam-break on GPIO14,
// free on the header (not camera, SD card or octal PSRAM).
constexpr CameraPins kFreenoveEsp32S3Cam = {
    "Freenove ESP32-S3-WROOM CAM", Chip::kEsp32S3, -1, -1, 15, 4, 5, {11, 9, 8, 10, 12, 18, 17, 16}, 6, 7, 13, 14};

constexpr const CameraPins* kCameraBoards[] = {&kAiThinkerEsp32Cam, &kEsp32S3Eye, &kXiaoEsp32S3Sense,
                                               &kFreenoveEsp32S3Cam};

// nullptr when the map suits its chip, else the first problem: a pin the chip lacks or
// that its flash, PSRAM (the ESP32's on GPIO16/17, the S3's octal on 33-37) or USB uses; an
// output on the ESP32's input-only 34-39; the beam-break input without a pull-up or on a
// camera pin; a pin used twice.
const char* CheckPins(const CameraPins& pins);

}  // namespace sortcam
