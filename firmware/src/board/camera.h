// The camera edge: an OV2640 through esp32-camera, on the board camera_pins.h selects.
//
// Capture format: QQVGA (160x120) RGB565, chosen for the preprocessing cost: the model
// input (96..160 px) needs no more pixels than this, RGB565 needs no JPEG decode, and
// the frame (38 KB) is cheap to move. Two frame buffers in PSRAM with
// CAMERA_GRAB_LATEST, so the loop always classifies the newest frame. A collector's full
// frame (CaptureJpeg) needs the driver restarted in JPEG: esp32-camera sizes its buffers and
// DMA for one format at init, so it cannot switch RGB565 QQVGA to JPEG UXGA in place.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/collect.h"
#include "sortcam/preprocess.h"

namespace sortcam {
namespace board {

// Initialises the camera, retrying (with a power cycle through PWDN) and logging each
// failure. False when every attempt failed.
bool InitCamera(int attempts);

// The latest frame as a sortcam::Frame (RGB565, high byte first). Must be followed by
// ReleaseFrame() before the next capture. False on a capture failure.
bool CaptureFrame(Frame* frame);
void ReleaseFrame();

// Deinitialises and initialises again after repeated capture failures.
bool RecoverCamera();

// A copied RGB565 frame (high byte first, as CaptureFrame gives it) as JPEG, through
// esp32-camera's fmt2jpg (quality 1..100). *jpeg is allocated by the converter (PSRAM);
// release it with FreeJpeg. False (and nothing to free) when the encoder fails.
bool EncodeJpeg(const uint8_t* rgb565, size_t len, int width, int height, int quality, uint8_t** jpeg,
                size_t* jpeg_len);
void FreeJpeg(uint8_t* jpeg);

// Dataset capture (sortcam collect): the driver restarts in JPEG at size with jpeg_quality
// quality (0..63, lower is finer), one frame buffer in PSRAM, and lets the sensor's
// exposure settle for kCollectSettleFrames frames before *frame is taken; the frame is the
// driver's, valid until RestoreCamera, which returns it and restarts the driver in the
// classification format. RestoreCamera follows every CaptureJpeg.
constexpr int kCollectSettleFrames = 2;
bool CaptureJpeg(CollectSize size, int quality, JpegFrame* frame);
bool RestoreCamera();

}  // namespace board
}  // namespace sortcam
