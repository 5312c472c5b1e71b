// The camera firmware's setup and loop: brings up the board edges (board/) and hands them to
// sortcam::CameraApp (lib/sortcam_core), which decides everything and is tested on the host.
#include "app.h"

#include <cstdarg>
#include <cstdio>

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
#include "sortcam/camera_app.h"
#include "sortcam/version.h"

namespace sortcam {
namespace app {
namespace {

constexpr const char* kTag = "app";
constexpr uint32_t kWatchdogMs = 15000;  // an Invoke takes ~1 s on the ESP32 with ESP-NN

// CameraBoard on ESP-IDF: each call is the board/ function of the same name.
class IdfBoard : public CameraBoard {
 public:
  uint32_t NowMs() override { return board::NowMs(); }
  void SleepMs(uint32_t ms) override { board::SleepMs(ms); }
  void FeedWatchdog() override { board::FeedWatchdog(); }
  void Restart(const char* why) override { board::Restart(why); }
  void Log(LogLevel level, const char* format, ...) override {
    char text[192];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    switch (level) {
      case LogLevel::kError: ESP_LOGE(kTag, "%s", text); break;
      case LogLevel::kWarn: ESP_LOGW(kTag, "%s", text); break;
      case LogLevel::kInfo: ESP_LOGI(kTag, "%s", text); break;
      case LogLevel::kDebug: ESP_LOGD(kTag, "%s", text); break;
    }
  }
  uint64_t UptimeSeconds() override { return board::UptimeSeconds(); }
  uint32_t FreeHeapBytes() override { return board::FreeHeapBytes(); }
  int WifiRssi() override { return board::WifiRssi(); }
  bool CaptureFrame(Frame* frame) override { return board::CaptureFrame(frame); }
  void ReleaseFrame() override { board::ReleaseFrame(); }
  bool RecoverCamera() override { return board::RecoverCamera(); }
  bool EncodeJpeg(const uint8_t* rgb565, size_t len, int width, int height, int quality, uint8_t** jpeg,
                  size_t* jpeg_len) override {
    return board::EncodeJpeg(rgb565, len, width, height, quality, jpeg, jpeg_len);
  }
  void FreeJpeg(uint8_t* jpeg) override { board::FreeJpeg(jpeg); }
  bool CaptureJpeg(CollectSize size, int quality, JpegFrame* frame) override {
    return board::CaptureJpeg(size, quality, frame);
  }
  bool RestoreCamera() override { return board::RestoreCamera(); }
  int8_t* InputBuffer() override { return board::InputBuffer(); }
  const int8_t* RunInference(int64_t* invoke_us) override { return board::RunInference(invoke_us); }
  bool TakeTriggerEdge() override { return board::TakeTriggerEdge(); }
  bool NextCommand(Command* command) override { return board::NextCommand(command); }
  void PumpMqtt(Outbox* outbox) override { board::PumpMqtt(outbox); }
  bool PublishStatus(const char* payload, size_t len) override { return board::PublishStatus(payload, len); }
  bool PublishSample(const char* payload, size_t len) override { return board::PublishSample(payload, len); }
  bool TakeStatusRequest() override { return board::TakeStatusRequest(); }
  uint32_t RejectedCommands() override { return board::RejectedCommands(); }
  bool SaveDecisionSettings(const DeviceConfig& config) override { return board::SaveDecisionSettings(config); }
  char* AllocateSample(size_t bytes) override {
    return static_cast<char*>(heap_caps_malloc(bytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
  }
  void FreeSample(char* buffer) override { heap_caps_free(buffer); }
};

IdfBoard g_board;
CameraApp g_app(&g_board);

uint8_t* Allocate(size_t bytes, uint32_t caps) { return static_cast<uint8_t*>(heap_caps_malloc(bytes, caps)); }

}  // namespace

void Setup() {
  board::LogResetReason();
  ESP_LOGI(kTag, "sortcam firmware %s, model %s", kFirmwareVersion, model::kModelId);
  DeviceConfig config;
  board::LoadConfig(&config);
  ModelInfo model;
  if (!board::SetupInference(&model)) board::Restart("the model cannot run");
  const size_t image_bytes = CameraApp::ImageBytes(model);
  uint8_t* sample_frame = Allocate(CameraApp::kSampleFrameBytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
  if (const char* why = g_app.Start(config, model, board::RandomU32(), Allocate(image_bytes, MALLOC_CAP_8BIT),
                                    Allocate(image_bytes, MALLOC_CAP_8BIT), sample_frame)) {
    board::Restart(why);
  }
  if (!board::InitCamera(5)) board::Restart("the camera does not answer");
  if (!board::InitTriggerInput(config.trigger_gpio)) ESP_LOGW(kTag, "no beam-break input: gpio trigger unusable");
  board::StartWifi(config.wifi_ssid, config.wifi_password);
  const board::MqttSettings mqtt{config.mqtt_uri, config.mqtt_username, config.mqtt_password, config.device_id,
                                 config.topic_root};
  if (!board::StartMqtt(mqtt)) board::Restart("bad MQTT settings");
  board::StartWatchdog(kWatchdogMs);
  g_app.WarmUp();
}

void Loop() { g_app.Loop(); }

}  // namespace app
}  // namespace sortcam
