// The TFLM edge: the generated model array and op resolver, esp-tflite-micro with
// ESP-NN kernels, the tensor arena in internal RAM when it fits, else PSRAM.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/camera_app.h"  // ModelInfo

namespace sortcam {
namespace board {

// Loads the model, checks its shapes against model_settings.h, allocates tensors and fills
// *info (tensor quantisation, arena, and model_settings.h's labels, id and preprocessing).
// False (with a log line saying why) when anything does not fit.
bool SetupInference(ModelInfo* info);

// The input tensor's int8 buffer (input_height * input_width * 3 bytes).
int8_t* InputBuffer();

// One inference; *invoke_us is its duration. Returns the int8 output (num_classes), or
// nullptr when Invoke failed.
const int8_t* RunInference(int64_t* invoke_us);

}  // namespace board
}  // namespace sortcam
