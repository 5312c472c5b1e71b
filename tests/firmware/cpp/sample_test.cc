// Sample frames: payload bytes against sortcam.mqtt_contract.encode_sample and rate-limiter
// decisions against SampleRateLimiter (golden vectors), plus the edges Python has no twin for.
#include "sortcam/sample.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "golden.h"
#include "sortcam/mqtt_contract.h"

namespace {

std::vector<uint8_t> PatternJpeg(size_t n) {  // tools/golden.py _pattern_jpeg
  std::vector<uint8_t> out = {0xFF, 0xD8};
  for (size_t i = 0; n >= 4 && i < n - 4; ++i) out.push_back(static_cast<uint8_t>((i * 31 + 7) & 0xFF));
  out.push_back(0xFF);
  out.push_back(0xD9);
  out.resize(n);
  return out;
}

std::vector<uint8_t> JpegSource(const std::string& source) {
  if (source.rfind("pattern:", 0) == 0) return PatternJpeg(std::stoul(source.substr(8)));
  if (source.rfind("hex:", 0) == 0) return golden::Hex(source.substr(4));
  return golden::ReadFile(source);
}

TEST(Sample, PayloadBytesMatchPython) {
  int ok = 0, refused = 0;
  std::vector<char> out(sortcam::mqtt::kSampleMaxPayload + 1);
  for (const auto& c : golden::Cases("samples.txt")) {
    if (c[0] != "P") continue;
    SCOPED_TRACE(c[1]);
    ASSERT_EQ(c.size(), 11u);
    const std::string device = golden::HexText(c[2]);
    const std::string boot = golden::HexText(c[3]);
    const std::string label = c[5] == "~" ? "" : golden::HexText(c[5]);
    sortcam::SampleFields f;
    f.device = device.c_str();
    f.boot = boot.c_str();
    f.seq = golden::U32(c[4]);
    f.label = c[5] == "~" ? nullptr : label.c_str();
    f.has_confidence = c[6] != "~";
    if (f.has_confidence) f.confidence = golden::F32(c[6]);
    f.width = golden::U32(c[7]);
    f.height = golden::U32(c[8]);
    const std::vector<uint8_t> jpeg = JpegSource(c[9]);
    size_t len = 0;
    sortcam::SampleWriter writer;
    const sortcam::SampleResult result = writer.Write(f, jpeg.data(), jpeg.size(), out.data(), out.size(), &len);
    if (c[10] == "refused") {
      EXPECT_NE(result, sortcam::SampleResult::kOk);
      EXPECT_EQ(len, 0u);
      EXPECT_EQ(writer.refused(), 1u);
      ++refused;
      continue;
    }
    ASSERT_EQ(result, sortcam::SampleResult::kOk) << sortcam::SampleResultName(result);
    const std::vector<uint8_t> expected = golden::ReadFile(c[10]);
    EXPECT_EQ(std::string(out.data(), len), std::string(expected.begin(), expected.end()));
    EXPECT_EQ(sortcam::SampleMessageLength(f, jpeg.size()), expected.size());
    EXPECT_EQ(writer.refused(), 0u);
    ++ok;
  }
  EXPECT_GE(ok, 6);
  EXPECT_GE(refused, 4);
}

TEST(Sample, RefusalReasons) {
  const std::vector<uint8_t> tiny = {0xFF, 0xD8, 0xFF, 0xD9};
  std::vector<char> out(256);
  size_t len = 0;
  sortcam::SampleFields f;
  f.device = "cam1";
  f.boot = "5f3a9c01";
  EXPECT_EQ(sortcam::EncodeSample(f, tiny.data(), tiny.size(), out.data(), out.size(), &len), sortcam::SampleResult::kOk);
  // The message fits exactly, with no byte left for a NUL: still written whole.
  EXPECT_EQ(sortcam::EncodeSample(f, tiny.data(), tiny.size(), out.data(), len, &len), sortcam::SampleResult::kOk);
  EXPECT_EQ(sortcam::EncodeSample(f, tiny.data(), tiny.size(), out.data(), len - 1, &len),
            sortcam::SampleResult::kNoRoom);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(sortcam::EncodeSample(f, nullptr, 0, out.data(), out.size(), &len), sortcam::SampleResult::kNotJpeg);
  f.has_confidence = true;
  for (const float bad : {-0.001f, 1.0001f, NAN, INFINITY}) {
    f.confidence = bad;
    EXPECT_EQ(sortcam::EncodeSample(f, tiny.data(), tiny.size(), out.data(), out.size(), &len),
              sortcam::SampleResult::kBadField);
  }
  f.confidence = 0.5f;
  f.width = 65536;
  EXPECT_EQ(sortcam::EncodeSample(f, tiny.data(), tiny.size(), out.data(), out.size(), &len),
            sortcam::SampleResult::kBadField);
  f.width = 0;
  f.device = "";
  EXPECT_EQ(sortcam::EncodeSample(f, tiny.data(), tiny.size(), out.data(), out.size(), &len),
            sortcam::SampleResult::kBadField);
  EXPECT_EQ(sortcam::SampleMessageLength(f, 4), 0u);
}

TEST(Sample, ConfidenceFormatMatchesPythonRound) {
  int checked = 0;
  for (const auto& c : golden::Cases("samples.txt")) {
    if (c[0] != "R") continue;
    char text[16];
    ASSERT_TRUE(sortcam::FormatRound4(golden::F32(c[1]), text, sizeof text)) << c[1];
    EXPECT_EQ(std::string(text), c[2]) << c[1];
    ++checked;
  }
  EXPECT_GE(checked, 200);
}

TEST(Sample, Base64MatchesRfc4648) {
  const struct {
    const char* in;
    const char* out;
  } cases[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
               {"foobar", "Zm9vYmFy"}, {"\xff\xfe\xfd", "//79"}};
  for (const auto& c : cases) {
    char out[16];
    const size_t n = std::strlen(c.in);
    const size_t len = sortcam::Base64Encode(reinterpret_cast<const uint8_t*>(c.in), n, out, sizeof out);
    EXPECT_EQ(len, sortcam::Base64Length(n));
    EXPECT_EQ(std::string(out, len), c.out);
  }
  char small[4];
  EXPECT_EQ(sortcam::Base64Encode(reinterpret_cast<const uint8_t*>("foob"), 4, small, sizeof small), 0u);
}

TEST(Sample, RateLimiterMatchesPython) {
  int sequences = 0;
  for (const auto& c : golden::Cases("rate_limits.txt")) {
    const uint32_t interval = golden::U32(c[0]);
    const uint32_t burst = golden::U32(c[1]);
    const size_t n = golden::U32(c[2]);
    ASSERT_EQ(c.size(), n + 5);
    const std::string& decisions = c[3 + n];
    sortcam::SampleRateLimiter limiter(interval, burst);
    std::string got;
    for (size_t i = 0; i < n; ++i) got += limiter.Allow(golden::U32(c[3 + i])) ? '1' : '0';
    EXPECT_EQ(got, decisions) << "interval " << interval << " burst " << burst;
    EXPECT_EQ(limiter.dropped(), golden::U32(c[4 + n]));
    ++sequences;
  }
  EXPECT_GE(sequences, 8);
}

TEST(Sample, RateLimiterAcrossClockWrap) {
  sortcam::SampleRateLimiter limiter(2000, 1);
  EXPECT_TRUE(limiter.Allow(0xFFFFFC18u));   // 1000 ms before the wrap
  EXPECT_FALSE(limiter.Allow(0xFFFFFFFFu));  // 999 ms later
  EXPECT_FALSE(limiter.Allow(999u));         // 1999 ms after the first
  EXPECT_TRUE(limiter.Allow(1000u));         // exactly 2000 ms after the first
  EXPECT_EQ(limiter.dropped(), 2u);
}

TEST(Sample, RateLimiterDefaultsAreTheContract) {
  sortcam::SampleRateLimiter limiter;
  EXPECT_EQ(limiter.min_interval_ms(), sortcam::mqtt::kSampleMinIntervalMs);
  EXPECT_TRUE(limiter.Allow(5));
  EXPECT_FALSE(limiter.Allow(5 + sortcam::mqtt::kSampleMinIntervalMs - 1));
  EXPECT_TRUE(limiter.Allow(5 + 2 * sortcam::mqtt::kSampleMinIntervalMs - 1));
  // A long idle time refills only burst tokens.
  EXPECT_TRUE(limiter.Allow(1000000));
  EXPECT_FALSE(limiter.Allow(1000000));
}

}  // namespace
