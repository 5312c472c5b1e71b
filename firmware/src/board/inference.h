// The TFLM edge: the generated model array and op resolver, esp-tflite-micro with
// ESP-NN kernels, the tensor arena in internal RAM when it fits, else PSRAM.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sortcam {
namespace board {

struct ModelInfo {
  int input_height = 0;
  int input_width = 0;
  float input_scale = 0.0f;  // read from the input tensor at run time
  int input_zero_point = 0;
  float output_scale = 0.0f;  // read from the output tensor at run time
  int output_zero_point = 0;
  int num_classes = 0;
  size_t arena_bytes = 0;       // allocated (model card's arena_bytes plus margin)
  size_t arena_used_bytes = 0;  // what AllocateTensors actually took
  bool arena_in_psram = false;
};

// Loads the model, checks its shapes against model_settings.h, allocates tensors.
// False (with a log line saying why) when anything does not fit.
bool SetupInference(ModelInfo* info);

// The input tensor's int8 buffer (input_height * input_width * 3 bytes).
int8_t* InputBuffer();

// One inference; *invoke_us is its duration. Returns the int8 output (num_classes), or
// nullptr when Invoke failed.
const int8_t* RunInference(int64_t* invoke_us);

}  // namespace board
}  // namespace sortcam
