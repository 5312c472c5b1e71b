#include "sortcam/camera_app.h"

#include <cstring>

#include "sortcam/mqtt_contract.h"
#include "sortcam/payload.h"
#include "sortcam/version.h"

namespace sortcam {

void FrameRate::OnFrame(uint32_t now_ms) {
  const uint32_t frame_ms = now_ms - last_ms_;
  if (has_last_ && frame_ms > 0) fps_ = 0.9f * fps_ + 0.1f * (1000.0f / static_cast<float>(frame_ms));
  last_ms_ = now_ms;
  has_last_ = true;
}

uint32_t LoopSleepMs(uint32_t interval_ms, uint32_t spent_ms, bool waiting_for_trigger) {
  const uint32_t rest = interval_ms > spent_ms ? interval_ms - spent_ms : 0;
  return waiting_for_trigger && rest < kIdleSleepMs ? kIdleSleepMs : rest;
}

size_t CameraApp::ImageBytes(const ModelInfo& model) {
  if (model.input_height <= 0 || model.input_width <= 0) return 0;
  return static_cast<size_t>(model.input_height) * static_cast<size_t>(model.input_width) * 3;
}

const char* CameraApp::Start(const DeviceConfig& config, const ModelInfo& model, uint32_t random, uint8_t* image,
                             uint8_t* background, uint8_t* sample_frame) {
  config_ = config;
  model_ = model;
  FormatBootId(random, boot_);
  board_.Log(LogLevel::kInfo, "boot id %s", boot_);
  if (!preprocessor_.Configure(model.input_height, model.input_width, model.fit, model.input_scale,
                               model.input_zero_point, model.range_lo, model.range_hi) ||
      preprocessor_.image_bytes() != ImageBytes(model)) {
    return "preprocessing does not fit the model input";
  }
  if (image == nullptr || background == nullptr ||
      !detector_.Init(config.decision, model.num_classes, model.output_zero_point, model.output_scale, background,
                      preprocessor_.image_bytes())) {
    return "no memory for the decision buffers";
  }
  image_ = image;
  sample_frame_ = sample_frame;
  if (sample_frame_ == nullptr) board_.Log(LogLevel::kWarn, "no PSRAM for the sample frame: low-confidence samples disabled");
  return nullptr;
}

void CameraApp::WarmUp() {
  std::memset(board_.InputBuffer(), 0, preprocessor_.image_bytes());
  int64_t invoke_us = 0;
  board_.RunInference(&invoke_us);
  invoke_ms_ = static_cast<uint32_t>(invoke_us / 1000);
  board_.Log(LogLevel::kInfo, "ready: invoke %lu ms, arena %u bytes used, free heap %lu",
             static_cast<unsigned long>(invoke_ms_), static_cast<unsigned>(model_.arena_used_bytes),
             static_cast<unsigned long>(board_.FreeHeapBytes()));
}

bool CameraApp::WaitingForTrigger() const {
  // In gpio and command mode there is nothing to look at until a trigger arms the detector.
  return detector_.config().trigger != Trigger::kContinuous && detector_.state() != DetectorState::kArmed;
}

void CameraApp::Loop() {
  board_.FeedWatchdog();
  Command command;
  while (board_.NextCommand(&command)) Apply(command);
  if (board_.TakeTriggerEdge() && detector_.config().trigger == Trigger::kGpio) detector_.Trigger();

  const uint32_t start_ms = board_.NowMs();
  const bool waiting = WaitingForTrigger();
  if (!waiting) Look(start_ms);

  board_.PumpMqtt(&outbox_);  // the classification goes to the client first ...
  PublishPendingSample();      // ... then its sample, if any
  CollectFrame();              // a collector's frame, in any trigger mode
  if (board_.TakeStatusRequest() || board_.NowMs() - last_status_ms_ >= kStatusPeriodMs) PublishStatus();
  board_.SleepMs(LoopSleepMs(config_.interval_ms, board_.NowMs() - start_ms, waiting));
}

void CameraApp::Look(uint32_t start_ms) {
  Frame frame;
  if (!board_.CaptureFrame(&frame)) {
    if (++capture_failures_ >= kCaptureFailuresBeforeRecovery) {
      capture_failures_ = 0;
      if (!board_.RecoverCamera()) board_.Restart("the camera stopped answering");
    }
    return;
  }
  capture_failures_ = 0;
  const bool ok = preprocessor_.FitResize(frame, image_);
  // Keep the frame for a possible sample, except while waiting for the belt to clear (no
  // item can be decided then): a few ms of PSRAM copy against a ~1 s invoke.
  const size_t frame_bytes = static_cast<size_t>(frame.width) * static_cast<size_t>(frame.height) * 2;
  sample_frame_valid_ = sample_frame_ != nullptr && frame.format == PixelFormat::kRgb565 &&
                        frame_bytes == kSampleFrameBytes && detector_.state() != DetectorState::kWaitAbsent;
  if (sample_frame_valid_) {
    std::memcpy(sample_frame_, frame.data, kSampleFrameBytes);
    sample_width_ = frame.width;
    sample_height_ = frame.height;
  }
  board_.ReleaseFrame();  // the driver refills it while the network runs
  if (!ok) return;
  preprocessor_.Quantize(image_, board_.InputBuffer(), preprocessor_.image_bytes());
  board_.FeedWatchdog();
  int64_t invoke_us = 0;
  const int8_t* scores = board_.RunInference(&invoke_us);
  board_.FeedWatchdog();
  invoke_ms_ = static_cast<uint32_t>(invoke_us / 1000);
  Item item;
  if (scores != nullptr && detector_.OnFrame(image_, scores, &item)) Publish(item, start_ms);
  frame_rate_.OnFrame(board_.NowMs());
}

void CameraApp::Apply(const Command& command) {
  switch (command.kind) {
    case CommandKind::kCapture:
      board_.Log(LogLevel::kInfo, "capture command");
      detector_.Trigger();
      return;
    case CommandKind::kReboot:
      board_.Restart("reboot command");
      return;
    case CommandKind::kSet:
      if (command.has_threshold) {
        detector_.SetThreshold(static_cast<float>(command.threshold));
        config_.decision.threshold = detector_.config().threshold;
      }
      if (command.has_trigger) {
        detector_.SetTrigger(command.trigger);
        config_.decision.trigger = command.trigger;
      }
      if (command.has_interval) config_.interval_ms = command.interval_ms;
      if (command.has_threshold || command.has_trigger || command.has_interval) {
        // Only these persist; a collector's renewal every 20 s writes nothing to flash.
        board_.SaveDecisionSettings(config_);
        board_.Log(LogLevel::kInfo, "settings: threshold %.2f, trigger %s, interval %lu ms",
                   static_cast<double>(config_.decision.threshold), TriggerName(config_.decision.trigger),
                   static_cast<unsigned long>(config_.interval_ms));
      }
      if (command.has_collect) {
        const FrameCollector::Change change =
            collector_.Set(board_.NowMs(), command.collect_every_ms, command.collect_for_s);
        const CollectSizeInfo& size = CollectSizeOf(config_.collect_size);
        if (change == FrameCollector::Change::kStopped) {
          board_.Log(LogLevel::kInfo, "collection stopped (%lu frames sent this boot)",
                     static_cast<unsigned long>(frames_collected_));
        } else {
          board_.Log(change == FrameCollector::Change::kStarted ? LogLevel::kInfo : LogLevel::kDebug,
                     "collection %s: a %ux%u frame every %lu ms for %lu s",
                     change == FrameCollector::Change::kStarted ? "started" : "renewed",
                     static_cast<unsigned>(size.width), static_cast<unsigned>(size.height),
                     static_cast<unsigned long>(command.collect_every_ms),
                     static_cast<unsigned long>(command.collect_for_s));
        }
      }
      PublishStatus();
      return;
  }
}

void CameraApp::Publish(const Item& item, uint32_t capture_ms) {
  ClassificationFields f;
  f.device = config_.device_id;
  f.boot = boot_;
  f.seq = seq_;
  f.labels = model_.labels;
  f.latency_ms = board_.NowMs() - capture_ms;
  f.model = model_.model_id;
  char payload[Outbox::kMaxPayload + 1];
  const size_t len = EncodeClassification(f, item, payload, sizeof payload);
  if (len == 0 || !outbox_.Push(payload, len)) {
    board_.Log(LogLevel::kWarn, "outbox full: oldest classification dropped (%lu so far)",
               static_cast<unsigned long>(outbox_.dropped()));
  }
  board_.Log(LogLevel::kInfo, "item seq %lu: %s %.3f after %d frames%s", static_cast<unsigned long>(seq_),
             model_.labels[item.class_id], static_cast<double>(item.confidence), item.frames,
             item.stable ? "" : " (fallback)");
  if (sample_frame_valid_ && item.confidence < detector_.config().threshold) {
    if (sample_limiter_.Allow(board_.NowMs())) {
      sample_pending_ = true;  // sent by PublishPendingSample, after PumpMqtt
      sample_item_ = item;
      sample_seq_ = seq_;
    } else {
      board_.Log(LogLevel::kDebug, "sample of seq %lu skipped by the rate limit (%lu so far)",
                 static_cast<unsigned long>(seq_), static_cast<unsigned long>(sample_limiter_.dropped()));
    }
  }
  ++seq_;
}

// The pending low-confidence frame as JPEG on <root>/<device>/sample. Every failure is
// logged and counted and costs only the sample.
void CameraApp::PublishPendingSample() {
  if (!sample_pending_) return;
  sample_pending_ = false;
  board_.FeedWatchdog();
  uint8_t* jpeg = nullptr;
  size_t jpeg_len = 0;
  if (!board_.EncodeJpeg(sample_frame_, kSampleFrameBytes, sample_width_, sample_height_, kSampleJpegQuality, &jpeg,
                         &jpeg_len)) {
    ++sample_failed_;
    return;
  }
  SampleFields f;
  f.device = config_.device_id;
  f.boot = boot_;
  f.seq = sample_seq_;
  f.label = model_.labels[sample_item_.class_id];
  f.has_confidence = true;
  f.confidence = sample_item_.confidence;
  f.width = static_cast<uint32_t>(sample_width_);
  f.height = static_cast<uint32_t>(sample_height_);
  size_t needed = SampleMessageLength(f, jpeg_len);
  if (needed == 0 || needed > mqtt::kSampleMaxPayload) needed = 0;  // Write refuses and counts it below
  char* payload = board_.AllocateSample(needed + 1);
  if (payload == nullptr) {
    ++sample_failed_;
    board_.Log(LogLevel::kWarn, "no memory for the sample of seq %lu (%u bytes)",
               static_cast<unsigned long>(sample_seq_), static_cast<unsigned>(needed + 1));
    board_.FreeJpeg(jpeg);
    return;
  }
  size_t len = 0;
  const SampleResult result = sample_writer_.Write(f, jpeg, jpeg_len, payload, needed + 1, &len);
  board_.FreeJpeg(jpeg);
  if (result != SampleResult::kOk) {
    board_.Log(LogLevel::kWarn, "sample of seq %lu refused: %s (%u bytes of JPEG; %lu refused so far)",
               static_cast<unsigned long>(sample_seq_), SampleResultName(result), static_cast<unsigned>(jpeg_len),
               static_cast<unsigned long>(sample_writer_.refused()));
  } else if (!board_.PublishSample(payload, len)) {
    ++sample_failed_;
    board_.Log(LogLevel::kWarn, "sample of seq %lu not queued: offline or MQTT outbox busy (%lu failed so far)",
               static_cast<unsigned long>(sample_seq_), static_cast<unsigned long>(sample_failed_));
  } else {
    ++samples_published_;
    board_.Log(LogLevel::kInfo, "sample of seq %lu: %u bytes of JPEG", static_cast<unsigned long>(sample_seq_),
               static_cast<unsigned>(jpeg_len));
  }
  board_.FreeSample(payload);
}

// A collector's frame when one is due: captured as JPEG by the camera itself, checked,
// written through the sample writer without label and confidence, then published. Every
// failure is logged and counted and costs only that frame; the frame's slot is taken
// either way (FrameCollector::Due), so nothing is retried before the next one.
void CameraApp::CollectFrame() {
  const uint32_t expired = collector_.expired();
  if (!collector_.Due(board_.NowMs())) {
    if (collector_.expired() != expired) {
      board_.Log(LogLevel::kInfo, "collection lease ran out (%lu frames sent this boot)",
                 static_cast<unsigned long>(frames_collected_));
    }
    return;
  }
  board_.FeedWatchdog();
  JpegFrame frame;
  char* payload = nullptr;
  size_t len = 0;
  uint32_t seq = seq_;
  if (!board_.CaptureJpeg(config_.collect_size, collector_.jpeg_quality(), &frame)) {
    ++collect_failed_;
    board_.Log(LogLevel::kWarn, "collected frame not captured (%lu failed so far)",
               static_cast<unsigned long>(collect_failed_));
  } else {
    const CollectCheck check = CheckCollectedFrame(frame.data, frame.len, frame.width, frame.height);
    collector_.OnCaptured(check, frame.len);
    SampleFields f;
    f.device = config_.device_id;
    f.boot = boot_;
    f.seq = seq;
    f.width = frame.width;
    f.height = frame.height;
    const size_t needed = check == CollectCheck::kOk ? SampleMessageLength(f, frame.len) : 0;
    if (check != CollectCheck::kOk) {
      ++collect_refused_;
      board_.Log(LogLevel::kWarn, "collected %lux%lu frame of %u bytes refused: %s (next at quality %d)",
                 static_cast<unsigned long>(frame.width), static_cast<unsigned long>(frame.height),
                 static_cast<unsigned>(frame.len), CollectCheckName(check), collector_.jpeg_quality());
    } else if (needed == 0 || (payload = board_.AllocateSample(needed + 1)) == nullptr) {
      ++collect_failed_;
      board_.Log(LogLevel::kWarn, "no memory for a collected frame (%u bytes)", static_cast<unsigned>(needed + 1));
    } else if (const SampleResult result = sample_writer_.Write(f, frame.data, frame.len, payload, needed + 1, &len);
               result != SampleResult::kOk) {
      ++collect_refused_;
      board_.Log(LogLevel::kWarn, "collected frame refused by the sample writer: %s", SampleResultName(result));
      board_.FreeSample(payload);
      payload = nullptr;
    } else {
      ++seq_;  // the frame has its seq from here on, as the twin's sequencer.next()
    }
  }
  if (!board_.RestoreCamera()) board_.Log(LogLevel::kError, "the camera did not come back after a collected frame");
  if (payload == nullptr) return;
  if (board_.PublishSample(payload, len)) {
    ++frames_collected_;
    board_.Log(LogLevel::kInfo, "collected frame seq %lu: %lux%lu, %u bytes of JPEG", static_cast<unsigned long>(seq),
               static_cast<unsigned long>(frame.width), static_cast<unsigned long>(frame.height),
               static_cast<unsigned>(frame.len));
  } else {
    ++collect_failed_;
    board_.Log(LogLevel::kWarn, "collected frame seq %lu not queued: offline or MQTT outbox busy",
               static_cast<unsigned long>(seq));
  }
  board_.FreeSample(payload);
}

void CameraApp::PublishStatus() {
  StatusFields f;
  f.device = config_.device_id;
  f.fw = kFirmwareVersion;
  f.model = model_.model_id;
  f.uptime_s = board_.UptimeSeconds();
  f.free_heap = board_.FreeHeapBytes();
  f.rssi = board_.WifiRssi();
  f.fps = frame_rate_.fps();
  f.arena_used = static_cast<uint32_t>(model_.arena_used_bytes);
  f.invoke_ms = invoke_ms_;
  f.dropped = outbox_.dropped();
  f.rejected_cmds = board_.RejectedCommands();
  f.trigger = detector_.config().trigger;
  f.threshold = detector_.config().threshold;
  char payload[512];
  const size_t len = EncodeStatus(f, payload, sizeof payload);
  if (len > 0 && board_.PublishStatus(payload, len)) last_status_ms_ = board_.NowMs();
}

}  // namespace sortcam
