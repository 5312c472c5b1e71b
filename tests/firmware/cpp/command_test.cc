// MQTT cmd parsing against sortcam.mqtt_contract.validate_cmd (table + mutation cases).
#include "sortcam/command.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "golden.h"

namespace {

const char* KindName(sortcam::CommandKind kind) {
  switch (kind) {
    case sortcam::CommandKind::kSet:
      return "set";
    case sortcam::CommandKind::kReboot:
      return "reboot";
    default:
      return "capture";
  }
}

TEST(Command, VerdictsMatchPython) {
  const auto cases = golden::Cases("cmd_cases.txt");
  ASSERT_GE(cases.size(), 1000u);
  int accepted = 0;
  for (const auto& c : cases) {
    const std::vector<uint8_t> payload = golden::Hex(c[0]);
    SCOPED_TRACE("payload hex " + c[0]);
    sortcam::Command cmd;
    char error[96] = "";
    const bool ok = sortcam::ParseCommand(reinterpret_cast<const char*>(payload.data()), payload.size(), &cmd, error,
                                          sizeof error);
    ASSERT_EQ(ok, c[1] == "1") << "C++ says: " << error;
    if (!ok) {
      EXPECT_NE(error[0], '\0');
      continue;
    }
    ++accepted;
    EXPECT_STREQ(KindName(cmd.kind), c[2].c_str());
    EXPECT_EQ(cmd.has_threshold, c[3] != "-");
    if (cmd.has_threshold) {
      EXPECT_EQ(cmd.threshold, std::strtod(c[3].c_str(), nullptr));
    }
    EXPECT_EQ(cmd.has_trigger, c[4] != "-");
    if (cmd.has_trigger) {
      EXPECT_STREQ(sortcam::TriggerName(cmd.trigger), c[4].c_str());
    }
    EXPECT_EQ(cmd.has_interval, c[5] != "-");
    if (cmd.has_interval) {
      EXPECT_EQ(cmd.interval_ms, golden::U32(c[5]));
    }
  }
  EXPECT_GE(accepted, 20);
}

TEST(Command, DeepNestingIsRefused) {
  std::string deep = "{\"cmd\":\"set\",\"threshold\":";
  for (int i = 0; i < 40; ++i) deep += "[";
  for (int i = 0; i < 40; ++i) deep += "]";
  deep += ",\"threshold\":0.5}";
  sortcam::Command cmd;
  char error[64];
  EXPECT_FALSE(sortcam::ParseCommand(deep.data(), deep.size(), &cmd, error, sizeof error));
}

TEST(Command, ErrorBufferMayBeAbsent) {
  sortcam::Command cmd;
  EXPECT_FALSE(sortcam::ParseCommand("{", 1, &cmd, nullptr, 0));
}

TEST(Utf8, StrictLikePython) {
  struct Case {
    const char* bytes;
    bool valid;
  } cases[] = {
      {"plain", true},          {"caf\xc3\xa9", true},         {"\xe2\x82\xac", true},  {"\xf0\x9f\x98\x80", true},
      {"\xc3", false},          {"\xc0\xaf", false},           {"\xed\xa0\x80", false}, {"\xf4\x90\x80\x80", false},
      {"\xe0\x80\xaf", false},  {"\xf0\x80\x80\xaf", false},   {"\xff", false},         {"\xe2\x82", false},
      {"\x80", false},          {"\xef\xbf\xbf", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(sortcam::IsValidUtf8(c.bytes, std::strlen(c.bytes)), c.valid) << c.bytes;
  }
}

}  // namespace
