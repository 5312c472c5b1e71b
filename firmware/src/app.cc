// The camera firmware's setup and loop: wires the board edges (board/) to the portable
// core (lib/sortcam_core). No logic lives here that the host tests could not cover.
#include "app.h"

#include <cstring>

#include "board/camera.h"
#include "board/config.h"
#include "board/inference.h"
#include "board/mqtt_link.h"
#include "board/system.h"
#include "board/trigger_input.h"
#include "board/wifi.h"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "model_settings.h"
#include "sortcam/command.h"
#include "sortcam/detector.h"
#include "sortcam/outbox.h"
#include "sortcam/payload.h"
#include "sortcam/preprocess.h"
#include "sortcam/sample.h"
#include "sortcam/version.h"

namespace sortcam {
namespace app {
namespace {

constexpr const char* kTag = "app";
constexpr uint32_t kWatchdogMs = 15000;      // an Invoke takes ~1 s on the ESP32 with ESP-NN
constexpr uint32_t kStatusPeriodMs = 30000;  // retained status refresh
constexpr int kCaptureFailuresBeforeReset = 5;
constexpr int kSampleJpegQuality = 80;        // fmt2jpg quality; a QQVGA frame is a few KB
constexpr size_t kSampleFrameBytes = 160 * 120 * 2;  // QQVGA RGB565, the capture format

board::DeviceConfig g_config;
board::ModelInfo g_model;
Preprocessor g_preprocessor;
ItemDetector g_detector;
Outbox g_outbox;
uint8_t* g_image = nullptr;       // model-sized RGB (detector input and quantiser input)
uint8_t* g_background = nullptr;  // detector's empty-belt image
char g_boot[9];
uint32_t g_seq = 0;
uint32_t g_last_status_ms = 0;
uint32_t g_last_frame_ms = 0;
uint32_t g_invoke_ms = 0;
float g_fps = 0.0f;
int g_capture_failures = 0;

// Sample frames (docs/console.md): the RGB565 frame each decision may need is copied before
// the camera gets its buffer back; a low-confidence item's frame is published after the
// classification has been handed to the MQTT client.
uint8_t* g_sample_frame = nullptr;  // PSRAM; nullptr: samples disabled
int g_sample_w = 0;
int g_sample_h = 0;
bool g_sample_frame_valid = false;
bool g_sample_pending = false;
Item g_sample_item;
uint32_t g_sample_seq = 0;
SampleRateLimiter g_sample_limiter;
SampleWriter g_sample_writer;
uint32_t g_sample_failed = 0;  // JPEG encoder, memory or MQTT client refused

void PublishStatusNow() {
  StatusFields f;
  f.device = g_config.device_id;
  f.fw = kFirmwareVersion;
  f.model = model::kModelId;
  f.uptime_s = board::UptimeSeconds();
  f.free_heap = board::FreeHeapBytes();
  f.rssi = board::WifiRssi();
  f.fps = g_fps;
  f.arena_used = static_cast<uint32_t>(g_model.arena_used_bytes);
  f.invoke_ms = g_invoke_ms;
  f.dropped = g_outbox.dropped();
  f.rejected_cmds = board::RejectedCommands();
  f.trigger = g_detector.config().trigger;
  f.threshold = g_detector.config().threshold;
  char payload[512];
  const size_t len = EncodeStatus(f, payload, sizeof payload);
  if (len > 0 && board::PublishStatus(payload, len)) g_last_status_ms = board::NowMs();
}

void ApplyCommand(const Command& command) {
  switch (command.kind) {
    case CommandKind::kCapture:
      ESP_LOGI(kTag, "capture command");
      g_detector.Trigger();
      break;
    case CommandKind::kReboot:
      board::Restart("reboot command");
    case CommandKind::kSet:
      if (command.has_threshold) {
        g_detector.SetThreshold(static_cast<float>(command.threshold));
        g_config.decision.threshold = g_detector.config().threshold;
      }
      if (command.has_trigger) {
        g_detector.SetTrigger(command.trigger);
        g_config.decision.trigger = command.trigger;
      }
      if (command.has_interval) g_config.interval_ms = command.interval_ms;
      board::SaveDecisionSettings(g_config);
      ESP_LOGI(kTag, "settings: threshold %.2f, trigger %s, interval %lu ms",
               static_cast<double>(g_config.decision.threshold), TriggerName(g_config.decision.trigger),
               static_cast<unsigned long>(g_config.interval_ms));
      PublishStatusNow();
      break;
  }
}

void Publish(const Item& item, uint32_t capture_ms) {
  ClassificationFields f;
  f.device = g_config.device_id;
  f.boot = g_boot;
  f.seq = g_seq;
  f.labels = model::kClassLabels;
  f.latency_ms = board::NowMs() - capture_ms;
  f.model = model::kModelId;
  char payload[Outbox::kMaxPayload + 1];
  const size_t len = EncodeClassification(f, item, payload, sizeof payload);
  if (len == 0 || !g_outbox.Push(payload, len)) {
    ESP_LOGW(kTag, "outbox full: oldest classification dropped (%lu so far)",
             static_cast<unsigned long>(g_outbox.dropped()));
  }
  ESP_LOGI(kTag, "item seq %lu: %s %.3f after %d frames%s", static_cast<unsigned long>(g_seq),
           model::kClassLabels[item.class_id], static_cast<double>(item.confidence), item.frames,
           item.stable ? "" : " (fallback)");
  if (g_sample_frame_valid && item.confidence < g_detector.config().threshold) {
    if (g_sample_limiter.Allow(board::NowMs())) {
      g_sample_pending = true;  // sent by PublishPendingSample, after PumpMqtt
      g_sample_item = item;
      g_sample_seq = g_seq;
    } else {
      ESP_LOGD(kTag, "sample of seq %lu skipped by the rate limit (%lu so far)", static_cast<unsigned long>(g_seq),
               static_cast<unsigned long>(g_sample_limiter.dropped()));
    }
  }
  ++g_seq;
}

// The pending low-confidence frame as JPEG on <root>/<device>/sample. Every failure is
// logged and counted and costs only the sample.
void PublishPendingSample() {
  if (!g_sample_pending) return;
  g_sample_pending = false;
  board::FeedWatchdog();
  uint8_t* jpeg = nullptr;
  size_t jpeg_len = 0;
  if (!board::EncodeJpeg(g_sample_frame, kSampleFrameBytes, g_sample_w, g_sample_h, kSampleJpegQuality, &jpeg,
                         &jpeg_len)) {
    ++g_sample_failed;
    return;
  }
  SampleFields f;
  f.device = g_config.device_id;
  f.boot = g_boot;
  f.seq = g_sample_seq;
  f.label = model::kClassLabels[g_sample_item.class_id];
  f.has_confidence = true;
  f.confidence = g_sample_item.confidence;
  f.width = static_cast<uint32_t>(g_sample_w);
  f.height = static_cast<uint32_t>(g_sample_h);
  size_t needed = SampleMessageLength(f, jpeg_len);
  if (needed == 0 || needed > mqtt::kSampleMaxPayload) needed = 0;  // Write refuses and counts it below
  char* payload = static_cast<char*>(heap_caps_malloc(needed + 1, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
  if (payload == nullptr) {
    ++g_sample_failed;
    ESP_LOGW(kTag, "no memory for the sample of seq %lu (%u bytes)", static_cast<unsigned long>(g_sample_seq),
             static_cast<unsigned>(needed + 1));
    board::FreeJpeg(jpeg);
    return;
  }
  size_t len = 0;
  const SampleResult result = g_sample_writer.Write(f, jpeg, jpeg_len, payload, needed + 1, &len);
  board::FreeJpeg(jpeg);
  if (result != SampleResult::kOk) {
    ESP_LOGW(kTag, "sample of seq %lu refused: %s (%u bytes of JPEG; %lu refused so far)",
             static_cast<unsigned long>(g_sample_seq), SampleResultName(result), static_cast<unsigned>(jpeg_len),
             static_cast<unsigned long>(g_sample_writer.refused()));
  } else if (!board::PublishSample(payload, len)) {
    ++g_sample_failed;
    ESP_LOGW(kTag, "sample of seq %lu not queued: offline or MQTT outbox busy (%lu failed so far)",
             static_cast<unsigned long>(g_sample_seq), static_cast<unsigned long>(g_sample_failed));
  } else {
    ESP_LOGI(kTag, "sample of seq %lu: %u bytes of JPEG", static_cast<unsigned long>(g_sample_seq),
             static_cast<unsigned>(jpeg_len));
  }
  heap_caps_free(payload);
}

}  // namespace

void Setup() {
  board::LogResetReason();
  ESP_LOGI(kTag, "sortcam firmware %s, model %s", kFirmwareVersion, model::kModelId);
  board::LoadConfig(&g_config);
  FormatBootId(board::RandomU32(), g_boot);
  ESP_LOGI(kTag, "boot id %s", g_boot);

  if (!board::SetupInference(&g_model)) board::Restart("the model cannot run");
  if (!g_preprocessor.Configure(g_model.input_height, g_model.input_width, model::kFitCrop ? Fit::kCrop : Fit::kStretch,
                                g_model.input_scale, g_model.input_zero_point, model::kRangeLo, model::kRangeHi)) {
    board::Restart("preprocessing does not fit the model input");
  }
  g_image = static_cast<uint8_t*>(heap_caps_malloc(g_preprocessor.image_bytes(), MALLOC_CAP_8BIT));
  g_background = static_cast<uint8_t*>(heap_caps_malloc(g_preprocessor.image_bytes(), MALLOC_CAP_8BIT));
  if (g_image == nullptr || g_background == nullptr ||
      !g_detector.Init(g_config.decision, g_model.num_classes, g_model.output_zero_point, g_model.output_scale,
                       g_background, g_preprocessor.image_bytes())) {
    board::Restart("no memory for the decision buffers");
  }
  if (!board::InitCamera(5)) board::Restart("the camera does not answer");
  g_sample_frame = static_cast<uint8_t*>(heap_caps_malloc(kSampleFrameBytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
  if (g_sample_frame == nullptr) ESP_LOGW(kTag, "no PSRAM for the sample frame: low-confidence samples disabled");
  if (!board::InitTriggerInput(g_config.trigger_gpio)) ESP_LOGW(kTag, "no beam-break input: gpio trigger unusable");

  board::StartWifi(g_config.wifi_ssid, g_config.wifi_password);
  const board::MqttSettings mqtt_settings{g_config.mqtt_uri, g_config.mqtt_username, g_config.mqtt_password,
                                          g_config.device_id, g_config.topic_root};
  if (!board::StartMqtt(mqtt_settings)) board::Restart("bad MQTT settings");

  // A first inference measures the invoke time reported at boot and in status.
  int64_t invoke_us = 0;
  std::memset(board::InputBuffer(), 0, g_preprocessor.image_bytes());
  board::StartWatchdog(kWatchdogMs);
  board::RunInference(&invoke_us);
  g_invoke_ms = static_cast<uint32_t>(invoke_us / 1000);
  ESP_LOGI(kTag, "ready: invoke %lu ms, arena %u bytes used, free heap %lu", static_cast<unsigned long>(g_invoke_ms),
           static_cast<unsigned>(g_model.arena_used_bytes), static_cast<unsigned long>(board::FreeHeapBytes()));
}

void Loop() {
  board::FeedWatchdog();
  Command command;
  while (board::NextCommand(&command)) ApplyCommand(command);
  if (board::TakeTriggerEdge() && g_detector.config().trigger == Trigger::kGpio) g_detector.Trigger();

  const uint32_t start_ms = board::NowMs();
  const bool idle_triggered_mode =
      g_detector.config().trigger != Trigger::kContinuous && g_detector.state() != DetectorState::kArmed;
  if (!idle_triggered_mode) {  // in gpio/command mode, nothing to look at until armed
    Frame frame;
    if (board::CaptureFrame(&frame)) {
      g_capture_failures = 0;
      const bool ok = g_preprocessor.FitResize(frame, g_image);
      // Keep the frame for a possible sample (not while waiting for the belt to clear:
      // no item can be decided then). A few ms of PSRAM copy against a ~1 s invoke.
      const size_t frame_bytes = static_cast<size_t>(frame.width) * static_cast<size_t>(frame.height) * 2;
      g_sample_frame_valid = g_sample_frame != nullptr && frame_bytes == kSampleFrameBytes &&
                             g_detector.state() != DetectorState::kWaitAbsent;
      if (g_sample_frame_valid) {
        std::memcpy(g_sample_frame, frame.data, kSampleFrameBytes);
        g_sample_w = frame.width;
        g_sample_h = frame.height;
      }
      board::ReleaseFrame();  // the driver refills it while we run the network
      if (ok) {
        g_preprocessor.Quantize(g_image, board::InputBuffer(), g_preprocessor.image_bytes());
        board::FeedWatchdog();
        int64_t invoke_us = 0;
        const int8_t* scores = board::RunInference(&invoke_us);
        board::FeedWatchdog();
        g_invoke_ms = static_cast<uint32_t>(invoke_us / 1000);
        Item item;
        if (scores != nullptr && g_detector.OnFrame(g_image, scores, &item)) Publish(item, start_ms);
        const uint32_t frame_ms = board::NowMs() - g_last_frame_ms;
        g_last_frame_ms = board::NowMs();
        if (frame_ms > 0) g_fps = 0.9f * g_fps + 0.1f * (1000.0f / static_cast<float>(frame_ms));
      }
    } else if (++g_capture_failures >= kCaptureFailuresBeforeReset) {
      g_capture_failures = 0;
      if (!board::RecoverCamera()) board::Restart("the camera stopped answering");
    }
  }

  board::PumpMqtt(&g_outbox);  // the classification goes to the client first ...
  PublishPendingSample();       // ... then its sample, if any
  if (board::TakeStatusRequest() || board::NowMs() - g_last_status_ms >= kStatusPeriodMs) PublishStatusNow();

  const uint32_t spent_ms = board::NowMs() - start_ms;
  const uint32_t wait_ms = g_config.interval_ms > spent_ms ? g_config.interval_ms - spent_ms : 0;
  board::SleepMs(idle_triggered_mode ? (wait_ms > 10 ? wait_ms : 10) : wait_ms);  // lets the idle task run
}

}  // namespace app
}  // namespace sortcam
