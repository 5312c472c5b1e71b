// The camera firmware's setup and loop: every decision of it, behind one interface to the
// hardware (CameraBoard).
//
// As in tflite-micro's person_detection, each hardware edge is a small function behind a
// header (firmware/src/board/) and the loop only wires them; here the wiring itself is
// portable too, so the host tests drive the whole loop with a fake board
// (tests/firmware/cpp/camera_app_test.cc): commands, triggers, capture failures and camera
// recovery, the classification before its sample, sample refusals, status, FPS, sleep,
// and the full frames a collector asks for (sortcam collect).
// firmware/src/app.cc implements CameraBoard by forwarding to board/ and holds no logic.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/collect.h"
#include "sortcam/command.h"
#include "sortcam/detector.h"
#include "sortcam/device_config.h"
#include "sortcam/outbox.h"
#include "sortcam/preprocess.h"
#include "sortcam/sample.h"

namespace sortcam {

// The model as the app needs it: quantisation read from the tensors at run time and the
// arena figures (board/inference), the rest from the generated model_settings.h.
struct ModelInfo {
  const char* model_id = "";
  const char* const* labels = nullptr;  // num_classes names in output order
  int num_classes = 0;
  int input_height = 0;
  int input_width = 0;
  float input_scale = 0.0f;
  int input_zero_point = 0;
  float output_scale = 0.0f;
  int output_zero_point = 0;
  Fit fit = Fit::kStretch;
  float range_lo = -1.0f;
  float range_hi = 1.0f;
  size_t arena_bytes = 0;       // allocated (model card's arena_bytes plus margin)
  size_t arena_used_bytes = 0;  // what AllocateTensors actually took
  bool arena_in_psram = false;
};

enum class LogLevel : uint8_t { kError, kWarn, kInfo, kDebug };

// What the app needs from the chip. Every call comes from the loop task.
class CameraBoard {
 public:
  virtual ~CameraBoard() = default;

  virtual uint32_t NowMs() = 0;
  virtual void SleepMs(uint32_t ms) = 0;
  virtual void FeedWatchdog() = 0;
  virtual void Restart(const char* why) = 0;  // logs why and restarts: never returns on the chip
  virtual void Log(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4))) = 0;
  virtual uint64_t UptimeSeconds() = 0;
  virtual uint32_t FreeHeapBytes() = 0;
  virtual int WifiRssi() = 0;  // dBm, 0 when not connected

  // The latest RGB565 frame, valid until ReleaseFrame; RecoverCamera restarts the driver.
  virtual bool CaptureFrame(Frame* frame) = 0;
  virtual void ReleaseFrame() = 0;
  virtual bool RecoverCamera() = 0;
  // *jpeg is the encoder's allocation, released with FreeJpeg.
  virtual bool EncodeJpeg(const uint8_t* rgb565, size_t len, int width, int height, int quality, uint8_t** jpeg,
                          size_t* jpeg_len) = 0;
  virtual void FreeJpeg(uint8_t* jpeg) = 0;
  // Dataset capture: the sensor's frame as JPEG at size and quality (esp32-camera's 0..63,
  // lower is finer), valid until RestoreCamera. RestoreCamera follows every CaptureJpeg,
  // whatever it returned, and brings back the classification format; false when the
  // camera did not come back (the next CaptureFrame fails and the recovery takes over).
  virtual bool CaptureJpeg(CollectSize size, int quality, JpegFrame* frame) = 0;
  virtual bool RestoreCamera() = 0;

  virtual int8_t* InputBuffer() = 0;                            // the model's int8 input tensor
  virtual const int8_t* RunInference(int64_t* invoke_us) = 0;  // nullptr when Invoke failed

  virtual bool TakeTriggerEdge() = 0;  // a beam-break edge since the last call

  virtual bool NextCommand(Command* command) = 0;  // a valid command from the cmd topic
  virtual void PumpMqtt(Outbox* outbox) = 0;       // hands pending classifications to the client
  virtual bool PublishStatus(const char* payload, size_t len) = 0;
  virtual bool PublishSample(const char* payload, size_t len) = 0;  // false: offline or client busy
  virtual bool TakeStatusRequest() = 0;                             // once after each (re)connect
  virtual uint32_t RejectedCommands() = 0;

  virtual bool SaveDecisionSettings(const DeviceConfig& config) = 0;  // NVS

  virtual char* AllocateSample(size_t bytes) = 0;  // one sample message (PSRAM); nullptr: no room
  virtual void FreeSample(char* buffer) = 0;
};

// Frames per second as status reports it: 0.9 of the last value plus 0.1 of the newest
// frame's rate, from the second frame on.
class FrameRate {
 public:
  void OnFrame(uint32_t now_ms);
  float fps() const { return fps_; }

 private:
  float fps_ = 0.0f;
  uint32_t last_ms_ = 0;
  bool has_last_ = false;
};

// What the loop sleeps after a pass that took spent_ms: the rest of interval_ms, and at
// least kIdleSleepMs while a gpio or command trigger is awaited (the idle task must run).
constexpr uint32_t kIdleSleepMs = 10;
uint32_t LoopSleepMs(uint32_t interval_ms, uint32_t spent_ms, bool waiting_for_trigger);

class CameraApp {
 public:
  static constexpr uint32_t kStatusPeriodMs = 30000;           // retained status refresh
  static constexpr int kCaptureFailuresBeforeRecovery = 5;     // then the camera is restarted
  static constexpr int kSampleJpegQuality = 80;                // fmt2jpg quality: a few KB per QQVGA frame
  static constexpr size_t kSampleFrameBytes = 160 * 120 * 2;  // QQVGA RGB565, the capture format

  explicit CameraApp(CameraBoard* board) : board_(*board) {}

  // Bytes of each of the two image buffers Start needs (model-sized RGB).
  static size_t ImageBytes(const ModelInfo& model);

  // After the board loaded config and model: preprocessing and the detector. image and
  // background hold ImageBytes(model); sample_frame kSampleFrameBytes, or nullptr to go
  // without samples. nullptr when ready, else why not (the board restarts).
  const char* Start(const DeviceConfig& config, const ModelInfo& model, uint32_t random, uint8_t* image,
                    uint8_t* background, uint8_t* sample_frame);

  // A first inference on a blank input measures the invoke time reported at boot.
  void WarmUp();

  // One pass: commands, trigger, capture, preprocess, invoke, decide, publish, status, sleep.
  void Loop();

  const char* boot_id() const { return boot_; }
  const DeviceConfig& config() const { return config_; }
  const ItemDetector& detector() const { return detector_; }
  const Outbox& outbox() const { return outbox_; }
  uint32_t seq() const { return seq_; }
  uint32_t invoke_ms() const { return invoke_ms_; }
  float fps() const { return frame_rate_.fps(); }
  uint32_t samples_published() const { return samples_published_; }
  uint32_t samples_failed() const { return sample_failed_; }  // encoder, memory or MQTT client refused
  uint32_t samples_refused() const { return sample_writer_.refused(); }
  uint32_t samples_skipped() const { return sample_limiter_.dropped(); }
  const FrameCollector& collector() const { return collector_; }
  uint32_t frames_collected() const { return frames_collected_; }
  uint32_t collect_failed() const { return collect_failed_; }    // capture, memory or MQTT client failed
  uint32_t collect_refused() const { return collect_refused_; }  // CheckCollectedFrame said no

 private:
  bool WaitingForTrigger() const;
  void Look(uint32_t start_ms);
  void Apply(const Command& command);
  void Publish(const Item& item, uint32_t capture_ms);
  void PublishPendingSample();
  void CollectFrame();
  void PublishStatus();

  CameraBoard& board_;
  DeviceConfig config_;
  ModelInfo model_;
  Preprocessor preprocessor_;
  ItemDetector detector_;
  Outbox outbox_;
  FrameRate frame_rate_;
  uint8_t* image_ = nullptr;
  char boot_[9] = "";
  uint32_t seq_ = 0;
  uint32_t last_status_ms_ = 0;
  uint32_t invoke_ms_ = 0;
  int capture_failures_ = 0;

  // The RGB565 frame an item may need as its sample is copied before the camera gets its
  // buffer back; a low-confidence item's frame is published after its classification.
  uint8_t* sample_frame_ = nullptr;
  int sample_width_ = 0;
  int sample_height_ = 0;
  bool sample_frame_valid_ = false;
  bool sample_pending_ = false;
  Item sample_item_;
  uint32_t sample_seq_ = 0;
  SampleRateLimiter sample_limiter_;
  SampleWriter sample_writer_;
  uint32_t sample_failed_ = 0;
  uint32_t samples_published_ = 0;

  // Dataset capture: full frames for a collector while its lease runs, each taking the
  // boot's next seq_ (so (device, boot, seq) names one item or one frame, never both).
  FrameCollector collector_;
  uint32_t frames_collected_ = 0;
  uint32_t collect_failed_ = 0;
  uint32_t collect_refused_ = 0;
};

}  // namespace sortcam
