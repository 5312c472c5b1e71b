// Setup and one pass of the main loop, as in tflite-micro's person_detection main_functions.
#pragma once

namespace sortcam {
namespace app {

// Boot: reset reason, NVS config, Wi-Fi, model, camera, MQTT, trigger input, watchdog.
// Fails fast (logs and restarts) when the model or the camera cannot be brought up.
void Setup();

// Capture the latest frame, preprocess, invoke, decide, publish; handle commands.
void Loop();

}  // namespace app
}  // namespace sortcam
