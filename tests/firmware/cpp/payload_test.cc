// Payload bytes against sortcam.mqtt_contract / sortcam.device_core (golden vectors).
#include "sortcam/payload.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "golden.h"
#include "sortcam/mqtt_contract.h"

namespace {

TEST(Payload, ClassificationBytesMatchPython) {
  int checked = 0;
  for (const auto& c : golden::Cases("payloads.txt")) {
    if (c[0] != "C") continue;
    SCOPED_TRACE(c.back());
    const std::string device = golden::HexText(c[1]);
    const std::string boot = golden::HexText(c[2]);
    const std::string model = golden::HexText(c[5]);
    const int n_labels = golden::Int(c[6]);
    std::vector<std::string> labels;
    for (int i = 0; i < n_labels; ++i) labels.push_back(golden::HexText(c[7 + i]));
    std::vector<const char*> label_ptrs;
    for (const auto& l : labels) label_ptrs.push_back(l.c_str());
    size_t at = 7 + n_labels;
    sortcam::Item item;
    item.class_id = golden::Int(c[at++]);
    item.confidence = golden::F32(c[at++]);
    item.top_count = golden::Int(c[at++]);
    for (int k = 0; k < item.top_count; ++k) {
      item.top_class[k] = golden::Int(c[at++]);
      item.top_p[k] = golden::F32(c[at++]);
    }
    sortcam::ClassificationFields f;
    f.device = device.c_str();
    f.boot = boot.c_str();
    f.seq = golden::U32(c[3]);
    f.latency_ms = golden::U32(c[4]);
    f.model = model.c_str();
    f.labels = label_ptrs.data();
    char out[1024];
    const size_t n = sortcam::EncodeClassification(f, item, out, sizeof out);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(std::string(out, n), golden::HexText(c[at]));
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(Payload, StatusBytesMatchPython) {
  int checked = 0;
  for (const auto& c : golden::Cases("payloads.txt")) {
    if (c[0] == "O") {
      const std::string device = golden::HexText(c[1]);
      char out[256];
      const size_t n = sortcam::EncodeOfflineStatus(device.c_str(), out, sizeof out);
      EXPECT_EQ(std::string(out, n), golden::HexText(c[2]));
      ++checked;
      continue;
    }
    if (c[0] != "S") continue;
    const std::string device = golden::HexText(c[1]), fw = golden::HexText(c[2]), model = golden::HexText(c[3]);
    sortcam::StatusFields f;
    f.device = device.c_str();
    f.fw = fw.c_str();
    f.model = model.c_str();
    f.uptime_s = std::stoull(c[4]);
    f.free_heap = golden::U32(c[5]);
    f.rssi = golden::Int(c[6]);
    f.fps = golden::F32(c[7]);
    f.arena_used = golden::U32(c[8]);
    f.invoke_ms = golden::U32(c[9]);
    f.dropped = golden::U32(c[10]);
    f.rejected_cmds = golden::U32(c[11]);
    ASSERT_TRUE(sortcam::TriggerFromName(c[12].data(), c[12].size(), &f.trigger));
    f.threshold = golden::F32(c[13]);
    char out[1024];
    const size_t n = sortcam::EncodeStatus(f, out, sizeof out);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(std::string(out, n), golden::HexText(c[14]));
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

TEST(Payload, TooSmallBufferGivesZero) {
  const char* labels[] = {"a", "b"};
  sortcam::ClassificationFields f;
  f.labels = labels;
  sortcam::Item item;
  item.top_count = 2;
  item.top_class[1] = 1;
  char out[1024];
  const size_t full = sortcam::EncodeClassification(f, item, out, sizeof out);
  ASSERT_GT(full, 0u);
  EXPECT_EQ(sortcam::EncodeClassification(f, item, out, full), 0u);  // no room for the NUL
  EXPECT_EQ(sortcam::EncodeClassification(f, item, out, full + 1), full);
}

TEST(Payload, BootIdIsEightLowercaseHex) {
  char id[9];
  sortcam::FormatBootId(0xDEADBEEFu, id);
  EXPECT_STREQ(id, "deadbeef");
  sortcam::FormatBootId(1u, id);
  EXPECT_STREQ(id, "00000001");
}

TEST(Payload, DecimalsWithoutPrintf) {
  char text[sortcam::kDecimalBytes];
  EXPECT_EQ(sortcam::FormatUnsigned(0, text), 1u);
  EXPECT_STREQ(text, "0");
  EXPECT_EQ(sortcam::FormatUnsigned(4294967296ull, text), 10u);
  EXPECT_STREQ(text, "4294967296");
  EXPECT_EQ(sortcam::FormatUnsigned(UINT64_MAX, text), 20u);
  EXPECT_STREQ(text, "18446744073709551615");
  EXPECT_EQ(sortcam::FormatSigned(-1, text), 2u);
  EXPECT_STREQ(text, "-1");
  EXPECT_EQ(sortcam::FormatSigned(INT64_MIN, text), 20u);
  EXPECT_STREQ(text, "-9223372036854775808");
  EXPECT_EQ(sortcam::FormatSigned(INT64_MAX, text), 19u);
  EXPECT_STREQ(text, "9223372036854775807");
  for (uint64_t v : {9ull, 10ull, 99ull, 100ull, 1234567890123ull}) {
    sortcam::FormatUnsigned(v, text);
    EXPECT_EQ(std::strtoull(text, nullptr, 10), v);
  }
}

TEST(Topics, BuiltAndValidated) {
  char topic[128];
  ASSERT_GT(sortcam::mqtt::BuildDeviceTopic("sortcam", "cam1", sortcam::mqtt::kClassification, topic, sizeof topic), 0u);
  EXPECT_STREQ(topic, "sortcam/cam1/classification");
  EXPECT_EQ(sortcam::mqtt::BuildDeviceTopic("sortcam", "cam 1", "cmd", topic, sizeof topic), 0u);
  EXPECT_EQ(sortcam::mqtt::BuildDeviceTopic("a/#", "cam1", "cmd", topic, sizeof topic), 0u);
  EXPECT_EQ(sortcam::mqtt::BuildDeviceTopic("/a", "cam1", "cmd", topic, sizeof topic), 0u);
  EXPECT_EQ(sortcam::mqtt::BuildDeviceTopic("plant/line2", "cam1", "cmd", topic, 10), 0u);
  EXPECT_FALSE(sortcam::mqtt::IsValidDeviceId(""));
  EXPECT_FALSE(sortcam::mqtt::IsValidDeviceId("123456789012345678901234567890123"));
  EXPECT_TRUE(sortcam::mqtt::IsValidDeviceId("12345678901234567890123456789012"));
}

}  // namespace
