// The camera's loop (sortcam::CameraApp) on a fake board: what app.cc used to decide
// untested (commands, triggers, capture failures, the classification before its sample,
// sample refusals, status, FPS, sleep) under the sanitizers.
#include "sortcam/camera_app.h"

#include <gtest/gtest.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

using sortcam::CameraApp;
using sortcam::Command;
using sortcam::CommandKind;
using sortcam::Frame;
using sortcam::LogLevel;
using sortcam::Trigger;

constexpr int kW = 160, kH = 120;  // QQVGA, the capture format
constexpr int kModelSide = 8;
const char* const kLabels[] = {"cardboard", "glass", "metal"};

std::vector<uint8_t> Rgb565(uint8_t level) { return std::vector<uint8_t>(kW * kH * 2, level); }

struct FakeFrame {
  std::vector<uint8_t> data;  // empty: the capture fails
  int width = kW;
  int height = kH;
};

class FakeBoard : public sortcam::CameraBoard {
 public:
  // What happened, in order: "classification <payload>", "sample <bytes>", "status <payload>", ...
  std::vector<std::string> events;
  std::vector<std::string> logs;
  std::deque<FakeFrame> frames;
  std::deque<std::vector<int8_t>> scores;
  std::deque<Command> commands;
  bool trigger_edge = false;
  bool status_request = false;
  bool connected = true;
  bool encoder_works = true;
  size_t jpeg_bytes = 3000;
  bool memory = true;
  bool client_takes_samples = true;
  bool camera_recovers = true;
  int recoveries = 0;
  int saves = 0;
  sortcam::DeviceConfig saved;
  std::vector<std::string> restarts;
  std::vector<uint32_t> sleeps;
  uint32_t now = 100000;
  uint32_t invoke_cost_ms = 900;
  int8_t input[kModelSide * kModelSide * 3] = {};
  int outstanding = 0;  // JPEG and sample buffers not yet freed
  // Dataset capture: every CaptureJpeg call (size, quality), and what it gives.
  std::vector<std::pair<sortcam::CollectSize, int>> jpeg_captures;
  bool jpeg_mode = false;
  bool jpeg_works = true;
  size_t collected_jpeg_bytes = 40000;
  uint32_t collected_width = 0;  // 0: the size's own
  uint32_t jpeg_capture_ms = 300;
  int restores = 0;

  uint32_t NowMs() override { return now; }
  void SleepMs(uint32_t ms) override {
    sleeps.push_back(ms);
    now += ms;
  }
  void FeedWatchdog() override {}
  void Restart(const char* why) override { restarts.emplace_back(why); }
  void Log(LogLevel, const char* format, ...) override {
    char text[256];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    logs.emplace_back(text);
  }
  uint64_t UptimeSeconds() override { return now / 1000; }
  uint32_t FreeHeapBytes() override { return 123456; }
  int WifiRssi() override { return -61; }
  bool CaptureFrame(Frame* frame) override {
    if (frames.empty() || frames.front().data.empty()) {
      if (!frames.empty()) frames.pop_front();
      return false;
    }
    current_ = frames.front();
    frames.pop_front();
    frame->data = current_.data.data();
    frame->width = current_.width;
    frame->height = current_.height;
    frame->format = sortcam::PixelFormat::kRgb565;
    return true;
  }
  void ReleaseFrame() override { current_.data.assign(current_.data.size(), 0xEE); }  // the driver reuses it
  bool RecoverCamera() override {
    ++recoveries;
    return camera_recovers;
  }
  bool EncodeJpeg(const uint8_t* rgb565, size_t len, int width, int height, int, uint8_t** jpeg,
                  size_t* jpeg_len) override {
    EXPECT_EQ(len, static_cast<size_t>(width) * static_cast<size_t>(height) * 2);
    EXPECT_NE(rgb565[0], 0xEE) << "the sample must be the copy taken before ReleaseFrame";
    if (!encoder_works) return false;
    *jpeg = static_cast<uint8_t*>(std::malloc(jpeg_bytes));
    std::memset(*jpeg, 0x11, jpeg_bytes);
    (*jpeg)[0] = 0xFF;
    (*jpeg)[1] = 0xD8;
    *jpeg_len = jpeg_bytes;
    ++outstanding;
    return true;
  }
  void FreeJpeg(uint8_t* jpeg) override {
    std::free(jpeg);
    --outstanding;
  }
  bool CaptureJpeg(sortcam::CollectSize size, int quality, sortcam::JpegFrame* frame) override {
    EXPECT_FALSE(jpeg_mode) << "RestoreCamera must follow every CaptureJpeg";
    jpeg_mode = true;
    jpeg_captures.push_back({size, quality});
    now += jpeg_capture_ms;
    if (!jpeg_works) return false;
    const sortcam::CollectSizeInfo& info = sortcam::CollectSizeOf(size);
    jpeg_frame_.assign(collected_jpeg_bytes, 0x22);
    jpeg_frame_[0] = 0xFF;
    jpeg_frame_[1] = 0xD8;
    frame->data = jpeg_frame_.data();
    frame->len = jpeg_frame_.size();
    frame->width = collected_width != 0 ? collected_width : info.width;
    frame->height = info.height;
    return true;
  }
  bool RestoreCamera() override {
    EXPECT_TRUE(jpeg_mode);
    jpeg_mode = false;
    jpeg_frame_.assign(jpeg_frame_.size(), 0xEE);  // the driver's buffer is gone
    ++restores;
    return true;
  }
  int8_t* InputBuffer() override { return input; }
  const int8_t* RunInference(int64_t* invoke_us) override {
    *invoke_us = static_cast<int64_t>(invoke_cost_ms) * 1000;
    now += invoke_cost_ms;
    if (scores.empty()) return nullptr;
    last_scores_ = scores.front();
    scores.pop_front();
    return last_scores_.data();
  }
  bool TakeTriggerEdge() override {
    const bool edge = trigger_edge;
    trigger_edge = false;
    return edge;
  }
  bool NextCommand(Command* command) override {
    if (commands.empty()) return false;
    *command = commands.front();
    commands.pop_front();
    return true;
  }
  void PumpMqtt(sortcam::Outbox* outbox) override {
    const char* data = nullptr;
    size_t len = 0;
    int slot = 0;
    while (connected && (slot = outbox->NextPending(&data, &len)) >= 0) {
      events.push_back("classification " + std::string(data, len));
      outbox->MarkInFlight(slot, ++msg_id_);
      outbox->Acked(msg_id_);
    }
  }
  bool PublishStatus(const char* payload, size_t len) override {
    if (!connected) return false;
    events.push_back("status " + std::string(payload, len));
    return true;
  }
  bool PublishSample(const char* payload, size_t len) override {
    if (!connected || !client_takes_samples) return false;
    events.push_back("sample " + std::string(payload, len));
    return true;
  }
  bool TakeStatusRequest() override {
    const bool r = status_request;
    status_request = false;
    return r;
  }
  uint32_t RejectedCommands() override { return 7; }
  bool SaveDecisionSettings(const sortcam::DeviceConfig& config) override {
    ++saves;
    saved = config;
    return true;
  }
  char* AllocateSample(size_t bytes) override {
    if (!memory) return nullptr;
    ++outstanding;
    return static_cast<char*>(std::malloc(bytes));
  }
  void FreeSample(char* buffer) override {
    std::free(buffer);
    --outstanding;
  }

  int Count(const std::string& prefix) const {
    int n = 0;
    for (const auto& e : events) n += e.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  bool Logged(const std::string& text) const {
    for (const auto& l : logs) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  FakeFrame current_;
  std::vector<uint8_t> jpeg_frame_;
  std::vector<int8_t> last_scores_;
  int msg_id_ = 0;
};

sortcam::ModelInfo Model() {
  sortcam::ModelInfo m;
  m.model_id = "d4d76af4b292";
  m.labels = kLabels;
  m.num_classes = 3;
  m.input_height = kModelSide;
  m.input_width = kModelSide;
  m.input_scale = 1.0f / 127.5f;
  m.input_zero_point = -1;
  m.output_scale = 1.0f / 256.0f;
  m.output_zero_point = -128;
  m.arena_used_bytes = 4242;
  return m;
}

sortcam::DeviceConfig Config(Trigger trigger = Trigger::kContinuous) {
  sortcam::DeviceConfig c;
  std::snprintf(c.device_id, sizeof c.device_id, "cam1");
  std::snprintf(c.topic_root, sizeof c.topic_root, "sortcam");
  c.decision.trigger = trigger;
  return c;
}

// Probability (q + 128) / 256: 127 is 0.996 (votes), -28 is 0.39 (below 0.6: no vote).
std::vector<int8_t> Scores(int8_t a, int8_t b, int8_t c) { return {a, b, c}; }

class CameraAppTest : public ::testing::Test {
 protected:
  void Start(Trigger trigger = Trigger::kContinuous, bool with_sample_frame = true) {
    const size_t n = CameraApp::ImageBytes(Model());
    image_.assign(n, 0);
    background_.assign(n, 0);
    sample_.assign(CameraApp::kSampleFrameBytes, 0);
    ASSERT_EQ(app_.Start(Config(trigger), Model(), 0xDEADBEEFu, image_.data(), background_.data(),
                         with_sample_frame ? sample_.data() : nullptr),
              nullptr);
  }
  // The empty belt, then an item for frames frames with these scores, then the belt again.
  void Item(int frames, std::vector<int8_t> scores, uint8_t level = 0xFF) {
    for (int i = 0; i < frames; ++i) {
      board_.frames.push_back({Rgb565(level)});
      board_.scores.push_back(scores);
    }
  }
  void Belt(int frames = 1) {
    for (int i = 0; i < frames; ++i) {
      board_.frames.push_back({Rgb565(0)});
      board_.scores.push_back(Scores(0, 0, 0));
    }
  }
  void Run(int loops) {
    for (int i = 0; i < loops; ++i) app_.Loop();
  }

  FakeBoard board_;
  CameraApp app_{&board_};
  std::vector<uint8_t> image_, background_, sample_;
};

TEST_F(CameraAppTest, ConfidentItemIsPublishedWithoutSample) {
  Start();
  Belt();
  Item(3, Scores(-128, 127, -128));
  Belt();
  Run(5);
  ASSERT_EQ(board_.Count("classification "), 1);
  ASSERT_EQ(board_.events[0].rfind("status ", 0), 0u);  // the first pass refreshes the retained status
  const std::string& c = board_.events[1];
  EXPECT_NE(c.find("\"device\":\"cam1\",\"boot\":\"deadbeef\",\"seq\":0,\"label\":\"glass\""), std::string::npos) << c;
  EXPECT_EQ(board_.Count("sample "), 0);
  EXPECT_EQ(app_.seq(), 1u);
  EXPECT_TRUE(board_.Logged("item seq 0: glass 0.996 after 3 frames"));
}

TEST_F(CameraAppTest, LowConfidenceItemSendsItsFrameAfterTheClassification) {
  Start();
  Belt();
  Item(10, Scores(-28, -40, -50));  // nothing reaches 0.6: the fallback decides after max_frames
  Run(11);
  ASSERT_EQ(board_.Count("classification "), 1);
  ASSERT_EQ(board_.Count("sample "), 1);
  size_t classification = 0, sample = 0;
  for (size_t i = 0; i < board_.events.size(); ++i) {
    if (board_.events[i].rfind("classification ", 0) == 0) classification = i;
    if (board_.events[i].rfind("sample ", 0) == 0) sample = i;
  }
  EXPECT_LT(classification, sample);
  const std::string& s = board_.events[sample];
  EXPECT_EQ(s.rfind("sample {\"v\":1,\"device\":\"cam1\",\"boot\":\"deadbeef\",\"seq\":0,", 0), 0u) << s.substr(0, 80);
  EXPECT_NE(s.find("\"label\":\"cardboard\",\"confidence\":0.3906"), std::string::npos);
  EXPECT_NE(s.find("\"width\":160,\"height\":120"), std::string::npos);
  EXPECT_EQ(app_.samples_published(), 1u);
  EXPECT_EQ(board_.outstanding, 0);  // the JPEG and the message buffer are freed
}

TEST_F(CameraAppTest, SamplesAreRateLimited) {
  Start();
  Belt();
  Item(10, Scores(-28, -40, -50));
  Belt();
  Item(10, Scores(-28, -40, -50));  // about 10 s after the first (0.9 s per invoke): both pass
  Run(22);
  EXPECT_EQ(board_.Count("classification "), 2);
  EXPECT_EQ(board_.Count("sample "), 2);

  FakeBoard fast;
  fast.invoke_cost_ms = 50;  // two low-confidence items within 2 s: one sample
  CameraApp app(&fast);
  const size_t n = CameraApp::ImageBytes(Model());
  std::vector<uint8_t> image(n), background(n), frame(CameraApp::kSampleFrameBytes);
  ASSERT_EQ(app.Start(Config(), Model(), 1, image.data(), background.data(), frame.data()), nullptr);
  for (int item = 0; item < 2; ++item) {
    fast.frames.push_back({Rgb565(0)});
    fast.scores.push_back(Scores(0, 0, 0));
    for (int i = 0; i < 10; ++i) {
      fast.frames.push_back({Rgb565(0xFF)});
      fast.scores.push_back(Scores(-28, -40, -50));
    }
  }
  for (int i = 0; i < 22; ++i) app.Loop();
  EXPECT_EQ(fast.Count("classification "), 2);
  EXPECT_EQ(fast.Count("sample "), 1);
  EXPECT_EQ(app.samples_skipped(), 1u);
}

TEST_F(CameraAppTest, EverySampleFailureCostsOnlyTheSample) {
  struct Case {
    const char* name;
    void (*setup)(FakeBoard*);
    uint32_t failed, refused;
  } cases[] = {
      {"encoder", [](FakeBoard* b) { b->encoder_works = false; }, 1, 0},
      {"memory", [](FakeBoard* b) { b->memory = false; }, 1, 0},
      {"client busy", [](FakeBoard* b) { b->client_takes_samples = false; }, 1, 0},
      {"too large", [](FakeBoard* b) { b->jpeg_bytes = 80000; }, 0, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeBoard board;
    c.setup(&board);
    CameraApp app(&board);
    const size_t n = CameraApp::ImageBytes(Model());
    std::vector<uint8_t> image(n), background(n), frame(CameraApp::kSampleFrameBytes);
    ASSERT_EQ(app.Start(Config(), Model(), 1, image.data(), background.data(), frame.data()), nullptr);
    board.frames.push_back({Rgb565(0)});
    board.scores.push_back(Scores(0, 0, 0));
    for (int i = 0; i < 10; ++i) {
      board.frames.push_back({Rgb565(0xFF)});
      board.scores.push_back(Scores(-28, -40, -50));
    }
    for (int i = 0; i < 11; ++i) app.Loop();
    EXPECT_EQ(board.Count("classification "), 1);
    EXPECT_EQ(board.Count("sample "), 0);
    EXPECT_EQ(app.samples_failed(), c.failed);
    EXPECT_EQ(app.samples_refused(), c.refused);
    EXPECT_EQ(board.outstanding, 0);
  }
}

TEST_F(CameraAppTest, NoSampleWithoutPsramOrForOtherFrameSizes) {
  Start(Trigger::kContinuous, /*with_sample_frame=*/false);
  EXPECT_TRUE(board_.Logged("no PSRAM for the sample frame"));
  Belt();
  Item(10, Scores(-28, -40, -50));
  Run(11);
  EXPECT_EQ(board_.Count("classification "), 1);
  EXPECT_EQ(board_.Count("sample "), 0);

  FakeBoard board;
  CameraApp app(&board);
  const size_t n = CameraApp::ImageBytes(Model());
  std::vector<uint8_t> image(n), background(n), frame(CameraApp::kSampleFrameBytes);
  ASSERT_EQ(app.Start(Config(), Model(), 1, image.data(), background.data(), frame.data()), nullptr);
  for (int i = 0; i < 11; ++i) {
    board.frames.push_back({std::vector<uint8_t>(96 * 96 * 2, i == 0 ? 0 : 0xFF), 96, 96});
    board.scores.push_back(Scores(-28, -40, -50));
  }
  for (int i = 0; i < 11; ++i) app.Loop();
  EXPECT_EQ(board.Count("classification "), 1);
  EXPECT_EQ(board.Count("sample "), 0);
}

TEST_F(CameraAppTest, SetCommandChangesPersistsAndReports) {
  Start();
  Command set;
  set.kind = CommandKind::kSet;
  set.has_threshold = true;
  set.threshold = 0.8;
  set.has_trigger = true;
  set.trigger = Trigger::kCommand;
  set.has_interval = true;
  set.interval_ms = 500;
  board_.commands.push_back(set);
  Run(1);
  EXPECT_EQ(board_.saves, 1);
  EXPECT_FLOAT_EQ(board_.saved.decision.threshold, 0.8f);
  EXPECT_EQ(board_.saved.decision.trigger, Trigger::kCommand);
  EXPECT_EQ(board_.saved.interval_ms, 500u);
  EXPECT_EQ(app_.detector().config().trigger, Trigger::kCommand);
  ASSERT_EQ(board_.Count("status "), 1);
  EXPECT_NE(board_.events[0].find("\"trigger\":\"command\",\"threshold\":0.8000"), std::string::npos);
  EXPECT_TRUE(board_.Logged("settings: threshold 0.80, trigger command, interval 500 ms"));
  EXPECT_TRUE(board_.frames.empty() && board_.sleeps.back() == 500u);  // waiting for a capture command
}

Command Collect(uint32_t every_ms, uint32_t for_s) {
  Command c;
  c.kind = CommandKind::kSet;
  c.has_collect = true;
  c.collect_every_ms = every_ms;
  c.collect_for_s = for_s;
  return c;
}

// The "seq" of a classification or sample event, -1 when there is none.
long SeqOf(const std::string& event) {
  const size_t at = event.find("\"seq\":");
  return at == std::string::npos ? -1 : std::strtol(event.c_str() + at + 6, nullptr, 10);
}

TEST_F(CameraAppTest, CollectorGetsLabelLessFramesAtItsPaceUntilTheLeaseRunsOut) {
  Start(Trigger::kCommand);  // nothing on the belt to look at: only the collector's frames
  board_.commands.push_back(Collect(2000, 10));
  Run(2000);  // 10 ms passes and a 300 ms JPEG capture per frame: well past the lease
  ASSERT_EQ(board_.Count("sample "), 5);  // at 0, 2, 4, 6 and 8 s; the lease ends at 10 s
  long seq = 0;
  for (const auto& e : board_.events) {
    if (e.rfind("sample ", 0) != 0) continue;
    EXPECT_EQ(e.rfind("sample {\"v\":1,\"device\":\"cam1\",\"boot\":\"deadbeef\",\"seq\":", 0), 0u);
    EXPECT_EQ(SeqOf(e), seq++);
    EXPECT_EQ(e.find("\"label\""), std::string::npos);
    EXPECT_EQ(e.find("\"confidence\""), std::string::npos);
    EXPECT_NE(e.find("\"seq\":" + std::to_string(seq - 1) + ",\"width\":800,\"height\":600,\"jpeg\":\"/9gi"),
              std::string::npos);
  }
  EXPECT_EQ(app_.seq(), 5u);
  EXPECT_EQ(app_.frames_collected(), 5u);
  EXPECT_EQ(board_.jpeg_captures.size(), 5u);
  EXPECT_EQ(board_.restores, 5);
  for (const auto& capture : board_.jpeg_captures) {
    EXPECT_EQ(capture.first, sortcam::CollectSize::kSvga);
    EXPECT_EQ(capture.second, sortcam::FrameCollector::kStartQuality);
  }
  EXPECT_FALSE(app_.collector().active());
  EXPECT_EQ(app_.collector().expired(), 1u);
  EXPECT_TRUE(board_.Logged("collection started: a 800x600 frame every 2000 ms for 10 s"));
  EXPECT_TRUE(board_.Logged("collection lease ran out (5 frames sent this boot)"));
  EXPECT_EQ(board_.saves, 0);  // a collection is never written to NVS: a reboot forgets it
  EXPECT_EQ(board_.outstanding, 0);
  EXPECT_FALSE(board_.jpeg_mode);
}

TEST_F(CameraAppTest, FramesAndItemsShareTheBootsSeq) {
  Start();
  board_.commands.push_back(Collect(2000, 60));
  Belt();
  Item(3, Scores(-128, 127, -128));
  Belt(2);
  Item(3, Scores(127, -128, -128));
  Belt();
  Run(10);
  ASSERT_EQ(board_.Count("classification "), 2);
  ASSERT_GE(board_.Count("sample "), 3);
  std::vector<long> seqs;
  for (const auto& e : board_.events) {
    if (e.rfind("classification ", 0) == 0 || e.rfind("sample ", 0) == 0) seqs.push_back(SeqOf(e));
  }
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<long>(i));  // one number, one thing
  EXPECT_EQ(app_.seq(), seqs.size());
}

TEST_F(CameraAppTest, CollectionStopsRenewsAndKeepsItsPace) {
  Start(Trigger::kCommand);
  board_.commands.push_back(Collect(5000, 60));
  Run(1);
  EXPECT_EQ(board_.Count("sample "), 1);
  Run(100);  // about 1.3 s
  board_.commands.push_back(Collect(5000, 60));  // the collector's renewal
  Run(1);
  EXPECT_EQ(board_.Count("sample "), 1);  // a renewal sends nothing early
  EXPECT_TRUE(board_.Logged("collection renewed: a 800x600 frame every 5000 ms for 60 s"));
  board_.commands.push_back(Collect(2000, 0));
  Run(1000);
  EXPECT_EQ(board_.Count("sample "), 1);
  EXPECT_TRUE(board_.Logged("collection stopped (1 frames sent this boot)"));
  EXPECT_EQ(app_.collector().expired(), 0u);
  EXPECT_EQ(board_.Count("status "), 3);  // each set command reports the status, as the twin does

  sortcam::DeviceConfig config = Config(Trigger::kCommand);
  config.collect_size = sortcam::CollectSize::kUxga;
  FakeBoard board;
  CameraApp app(&board);  // a reboot: a new app, no collection until the collector renews
  const size_t n = CameraApp::ImageBytes(Model());
  std::vector<uint8_t> image(n), background(n);
  ASSERT_EQ(app.Start(config, Model(), 2, image.data(), background.data(), nullptr), nullptr);
  EXPECT_FALSE(app.collector().active());
  for (int i = 0; i < 300; ++i) app.Loop();
  EXPECT_EQ(board.Count("sample "), 0);
  board.commands.push_back(Collect(2000, 60));
  app.Loop();
  ASSERT_EQ(board.Count("sample "), 1);  // without PSRAM for low-confidence samples, still collects
  EXPECT_NE(board.events.back().find("\"width\":1600,\"height\":1200"), std::string::npos);
}

TEST_F(CameraAppTest, EveryCollectedFrameFailureCostsOnlyThatFrame) {
  struct Case {
    const char* name;
    void (*setup)(FakeBoard*);
    uint32_t failed, refused, seq;
    const char* log;
  } cases[] = {
      {"camera", [](FakeBoard* b) { b->jpeg_works = false; }, 1, 0, 0, "collected frame not captured (1 failed so far)"},
      {"too large", [](FakeBoard* b) { b->collected_jpeg_bytes = 73345; }, 0, 1, 0,
       "collected 800x600 frame of 73345 bytes refused: JPEG over 73344 bytes (next at quality 18)"},
      {"too wide", [](FakeBoard* b) { b->collected_width = 1601; }, 0, 1, 0,
       "refused: frame size outside 1..1600 px a side"},
      {"memory", [](FakeBoard* b) { b->memory = false; }, 1, 0, 0, "no memory for a collected frame"},
      {"client busy", [](FakeBoard* b) { b->client_takes_samples = false; }, 1, 0, 1,
       "collected frame seq 0 not queued: offline or MQTT outbox busy"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeBoard board;
    c.setup(&board);
    CameraApp app(&board);
    const size_t n = CameraApp::ImageBytes(Model());
    std::vector<uint8_t> image(n), background(n);
    ASSERT_EQ(app.Start(Config(Trigger::kCommand), Model(), 3, image.data(), background.data(), nullptr), nullptr);
    board.commands.push_back(Collect(2000, 60));
    app.Loop();
    EXPECT_EQ(board.Count("sample "), 0);
    EXPECT_EQ(app.collect_failed(), c.failed);
    EXPECT_EQ(app.collect_refused(), c.refused);
    EXPECT_EQ(app.seq(), c.seq);  // a frame takes its seq once its message is written, as the twin's
    EXPECT_TRUE(board.Logged(c.log)) << board.logs.back();
    EXPECT_EQ(board.restores, 1);  // the camera is put back whatever happened
    EXPECT_FALSE(board.jpeg_mode);
    EXPECT_EQ(board.outstanding, 0);
    for (int i = 0; i < 20; ++i) app.Loop();  // 200 ms later: the slot was taken, no retry
    EXPECT_EQ(board.jpeg_captures.size(), 1u);
  }
  FakeBoard board;
  board.collected_jpeg_bytes = 73345;
  CameraApp app(&board);
  const size_t n = CameraApp::ImageBytes(Model());
  std::vector<uint8_t> image(n), background(n);
  ASSERT_EQ(app.Start(Config(Trigger::kCommand), Model(), 3, image.data(), background.data(), nullptr), nullptr);
  board.commands.push_back(Collect(2000, 60));
  for (int i = 0; i < 200; ++i) app.Loop();  // about 2.3 s: a second frame, one step coarser
  ASSERT_EQ(board.jpeg_captures.size(), 2u);
  EXPECT_EQ(board.jpeg_captures[1].second, sortcam::FrameCollector::kStartQuality + sortcam::FrameCollector::kQualityStep);
  board.collected_jpeg_bytes = 73344;
  for (int i = 0; i < 200; ++i) app.Loop();
  EXPECT_EQ(board.Count("sample "), 1);  // exactly the limit: sent
  EXPECT_LE(board.events.back().size() - 7, sortcam::mqtt::kSampleMaxPayload);
}

TEST_F(CameraAppTest, TriggeredModesLookOnlyWhenArmed) {
  Start(Trigger::kGpio);
  Belt(3);
  Run(2);
  EXPECT_EQ(board_.frames.size(), 3u);  // nothing captured while waiting for the beam
  EXPECT_EQ(board_.sleeps.back(), sortcam::kIdleSleepMs);
  board_.trigger_edge = true;
  Run(1);
  EXPECT_EQ(board_.frames.size(), 2u);

  FakeBoard board;  // a capture command arms command mode; an edge does not
  CameraApp app(&board);
  const size_t n = CameraApp::ImageBytes(Model());
  std::vector<uint8_t> image(n), background(n);
  ASSERT_EQ(app.Start(Config(Trigger::kCommand), Model(), 1, image.data(), background.data(), nullptr), nullptr);
  for (int i = 0; i < 3; ++i) {
    board.frames.push_back({Rgb565(0xFF)});
    board.scores.push_back(Scores(-128, -128, 127));
  }
  board.trigger_edge = true;
  app.Loop();
  EXPECT_EQ(board.frames.size(), 3u);
  Command capture;
  capture.kind = CommandKind::kCapture;
  board.commands.push_back(capture);
  for (int i = 0; i < 4; ++i) app.Loop();
  ASSERT_EQ(board.Count("classification "), 1);
  EXPECT_NE(board.events[1].find("\"label\":\"metal\""), std::string::npos) << board.events[1];  // after a status
}

TEST_F(CameraAppTest, RebootCommandRestarts) {
  Start();
  Command reboot;
  reboot.kind = CommandKind::kReboot;
  board_.commands.push_back(reboot);
  Run(1);
  ASSERT_EQ(board_.restarts.size(), 1u);
  EXPECT_EQ(board_.restarts[0], "reboot command");
}

TEST_F(CameraAppTest, RepeatedCaptureFailuresRecoverTheCameraThenRestart) {
  Start();
  for (int i = 0; i < 4; ++i) board_.frames.push_back({});
  Belt();  // a good frame resets the count
  for (int i = 0; i < 5; ++i) board_.frames.push_back({});
  Run(10);
  EXPECT_EQ(board_.recoveries, 1);
  EXPECT_TRUE(board_.restarts.empty());
  board_.camera_recovers = false;
  Run(5);  // the queue is empty now: every capture fails
  EXPECT_EQ(board_.recoveries, 2);
  ASSERT_EQ(board_.restarts.size(), 1u);
  EXPECT_EQ(board_.restarts[0], "the camera stopped answering");
}

TEST_F(CameraAppTest, StatusOnRequestAndEveryThirtySeconds) {
  Start();
  board_.invoke_cost_ms = 0;
  board_.status_request = true;
  Run(1);
  ASSERT_EQ(board_.Count("status "), 1);
  const std::string& s = board_.events[0];
  for (const char* field : {"\"device\":\"cam1\"", "\"model\":\"d4d76af4b292\"", "\"free_heap\":123456",
                            "\"rssi\":-61", "\"arena_used\":4242", "\"rejected_cmds\":7", "\"trigger\":\"continuous\""}) {
    EXPECT_NE(s.find(field), std::string::npos) << field << " in " << s;
  }
  board_.now += CameraApp::kStatusPeriodMs - 1;
  Run(1);
  EXPECT_EQ(board_.Count("status "), 1);
  board_.now += 1;
  Run(1);
  EXPECT_EQ(board_.Count("status "), 2);
  board_.connected = false;  // a status the client refused is tried again next pass
  board_.now += CameraApp::kStatusPeriodMs;
  Run(1);
  board_.connected = true;
  Run(1);
  EXPECT_EQ(board_.Count("status "), 3);
}

TEST_F(CameraAppTest, OutboxKeepsClassificationsWhileOfflineAndCountsOverflow) {
  Start();
  board_.connected = false;
  board_.invoke_cost_ms = 10;
  for (int item = 0; item < 18; ++item) {
    Belt();
    Item(3, Scores(127, -128, -128));
  }
  Run(18 * 4);
  EXPECT_EQ(app_.seq(), 18u);
  EXPECT_EQ(app_.outbox().dropped(), 2u);
  EXPECT_TRUE(board_.Logged("outbox full: oldest classification dropped (1 so far)"));
  board_.connected = true;
  Run(1);
  EXPECT_EQ(board_.Count("classification "), 16);
  EXPECT_NE(board_.events[0].find("\"seq\":2,"), std::string::npos);  // the two oldest were dropped
}

TEST_F(CameraAppTest, WarmUpTimesABlankInference) {
  Start();
  board_.input[5] = 9;
  board_.scores.push_back(Scores(0, 0, 0));
  app_.WarmUp();
  EXPECT_EQ(board_.input[5], 0);
  EXPECT_EQ(app_.invoke_ms(), 900u);
  EXPECT_TRUE(board_.Logged("ready: invoke 900 ms, arena 4242 bytes used, free heap 123456"));
}

TEST_F(CameraAppTest, StartRefusesWhatCannotRun) {
  const size_t n = CameraApp::ImageBytes(Model());
  std::vector<uint8_t> image(n), background(n);
  sortcam::ModelInfo bad = Model();
  bad.input_height = 0;
  EXPECT_EQ(CameraApp::ImageBytes(bad), 0u);
  EXPECT_STREQ(app_.Start(Config(), bad, 1, image.data(), background.data(), nullptr),
               "preprocessing does not fit the model input");
  EXPECT_STREQ(app_.Start(Config(), Model(), 1, image.data(), nullptr, nullptr), "no memory for the decision buffers");
  sortcam::DeviceConfig config = Config();
  config.decision.stable_frames = 0;
  EXPECT_STREQ(app_.Start(config, Model(), 1, image.data(), background.data(), nullptr),
               "no memory for the decision buffers");
}

TEST(FrameRate, SmoothsFromTheSecondFrame) {
  sortcam::FrameRate rate;
  rate.OnFrame(5000);
  EXPECT_EQ(rate.fps(), 0.0f);  // the first frame has no interval
  rate.OnFrame(6000);
  EXPECT_FLOAT_EQ(rate.fps(), 0.1f);
  rate.OnFrame(6000);  // no time passed: no update
  EXPECT_FLOAT_EQ(rate.fps(), 0.1f);
  rate.OnFrame(6500);
  EXPECT_FLOAT_EQ(rate.fps(), 0.9f * 0.1f + 0.1f * 2.0f);
  sortcam::FrameRate wrap;
  wrap.OnFrame(0xFFFFFF00u);
  wrap.OnFrame(0x000000F4u);  // 500 ms across the 32-bit wrap
  EXPECT_FLOAT_EQ(wrap.fps(), 0.2f);
}

TEST(LoopSleep, RestOfTheIntervalAndIdleFloor) {
  EXPECT_EQ(sortcam::LoopSleepMs(0, 900, false), 0u);
  EXPECT_EQ(sortcam::LoopSleepMs(1000, 900, false), 100u);
  EXPECT_EQ(sortcam::LoopSleepMs(1000, 1200, false), 0u);
  EXPECT_EQ(sortcam::LoopSleepMs(0, 0, true), sortcam::kIdleSleepMs);
  EXPECT_EQ(sortcam::LoopSleepMs(1000, 995, true), sortcam::kIdleSleepMs);
  EXPECT_EQ(sortcam::LoopSleepMs(1000, 100, true), 900u);
}

}  // namespace
