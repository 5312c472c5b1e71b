#include "board/inference.h"

#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "model_data.h"
#include "model_ops.h"
#include "model_settings.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace sortcam {
namespace board {
namespace {

constexpr const char* kTag = "inference";
// The card's arena figure comes from the reference kernels; ESP-NN kernels need scratch
// buffers of their own, so leave headroom.
constexpr size_t kArenaMargin = 32 * 1024;

tflite::MicroInterpreter* g_interpreter = nullptr;
TfLiteTensor* g_input = nullptr;
TfLiteTensor* g_output = nullptr;

uint8_t* AllocateArena(size_t bytes, bool* in_psram) {
  // Internal RAM is several times faster than PSRAM for the activations ESP-NN touches.
  void* arena = heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
  *in_psram = false;
  if (arena == nullptr) {
    arena = heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
    *in_psram = true;
  }
  return static_cast<uint8_t*>(arena);
}

}  // namespace

bool SetupInference(ModelInfo* info) {
  tflite::InitializeTarget();
  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    ESP_LOGE(kTag, "model schema %lu, runtime supports %d: re-export with sortcam export",
             static_cast<unsigned long>(model->version()), TFLITE_SCHEMA_VERSION);
    return false;
  }
  static model::ModelOpResolver resolver;
  if (model::RegisterModelOps(resolver) != kTfLiteOk) {
    ESP_LOGE(kTag, "registering the model's ops failed");
    return false;
  }
  info->arena_bytes = model::kArenaBytes + kArenaMargin;
  uint8_t* arena = AllocateArena(info->arena_bytes, &info->arena_in_psram);
  if (arena == nullptr) {
    ESP_LOGE(kTag, "no room for a %u-byte tensor arena (internal free %u, PSRAM free %u)",
             static_cast<unsigned>(info->arena_bytes),
             static_cast<unsigned>(heap_caps_get_free_size(MALLOC_CAP_INTERNAL)),
             static_cast<unsigned>(heap_caps_get_free_size(MALLOC_CAP_SPIRAM)));
    return false;
  }
  static tflite::MicroInterpreter interpreter(model, resolver, arena, info->arena_bytes);
  g_interpreter = &interpreter;
  if (g_interpreter->AllocateTensors() != kTfLiteOk) {
    ESP_LOGE(kTag, "AllocateTensors failed with a %u-byte arena", static_cast<unsigned>(info->arena_bytes));
    return false;
  }
  g_input = g_interpreter->input(0);
  g_output = g_interpreter->output(0);
  const TfLiteIntArray* in = g_input->dims;
  const TfLiteIntArray* out = g_output->dims;
  if (g_input->type != kTfLiteInt8 || g_output->type != kTfLiteInt8 || in->size != 4 ||
      in->data[1] != model::kInputHeight || in->data[2] != model::kInputWidth ||
      in->data[3] != model::kInputChannels || out->data[out->size - 1] != model::kNumClasses) {
    ESP_LOGE(kTag, "model tensors do not match model_settings.h: re-run sortcam export");
    return false;
  }
  info->model_id = model::kModelId;
  info->labels = model::kClassLabels;
  info->fit = model::kFitCrop ? Fit::kCrop : Fit::kStretch;
  info->range_lo = model::kRangeLo;
  info->range_hi = model::kRangeHi;
  info->input_height = model::kInputHeight;
  info->input_width = model::kInputWidth;
  info->input_scale = g_input->params.scale;
  info->input_zero_point = g_input->params.zero_point;
  info->output_scale = g_output->params.scale;
  info->output_zero_point = g_output->params.zero_point;
  info->num_classes = model::kNumClasses;
  info->arena_used_bytes = g_interpreter->arena_used_bytes();
  ESP_LOGI(kTag, "model %s: %dx%d int8 in (scale %g, zp %d), %d classes; arena %u of %u bytes used, in %s",
           model::kModelId, info->input_width, info->input_height, static_cast<double>(info->input_scale),
           info->input_zero_point, info->num_classes, static_cast<unsigned>(info->arena_used_bytes),
           static_cast<unsigned>(info->arena_bytes), info->arena_in_psram ? "PSRAM" : "internal RAM");
  return true;
}

int8_t* InputBuffer() { return g_input->data.int8; }

const int8_t* RunInference(int64_t* invoke_us) {
  const int64_t start = esp_timer_get_time();
  const TfLiteStatus status = g_interpreter->Invoke();
  *invoke_us = esp_timer_get_time() - start;
  if (status != kTfLiteOk) {
    ESP_LOGE(kTag, "Invoke failed");
    return nullptr;
  }
  return g_output->data.int8;
}

}  // namespace board
}  // namespace sortcam
