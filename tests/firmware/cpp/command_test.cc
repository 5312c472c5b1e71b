// MQTT cmd parsing against sortcam.mqtt_contract.validate_cmd (table + mutation cases).
#include "sortcam/command.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "golden.h"
#include "sortcam/mqtt_contract.h"

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
  int duplicates = 0;
  for (const auto& c : cases) {
    const std::vector<uint8_t> payload = golden::Hex(c[0]);
    SCOPED_TRACE("payload hex " + c[0]);
    sortcam::Command cmd;
    char error[96] = "";
    const bool ok = sortcam::ParseCommand(reinterpret_cast<const char*>(payload.data()), payload.size(), &cmd, error,
                                          sizeof error);
    if (!ok && c[1] == "1" && std::strncmp(error, "duplicate key", 13) == 0) {
      // Generated while validate_cmd still let the last copy win; sortcam.strict_json
      // refuses these, and the cases turn to 0 when the golden files are regenerated.
      ++duplicates;
      continue;
    }
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
  EXPECT_LE(duplicates, 10);
}

// The collect_every_ms / collect_for_s cases (tests/firmware/collect_golden.py): same
// verdicts and values as validate_cmd, every other key checked too.
TEST(Command, CollectVerdictsMatchPython) {
  const auto cases = golden::Cases("collect_cmds.txt");
  ASSERT_GE(cases.size(), 500u);
  int accepted = 0, stops = 0;
  for (const auto& c : cases) {
    const std::vector<uint8_t> payload = golden::Hex(c[0]);
    SCOPED_TRACE("payload hex " + c[0]);
    sortcam::Command cmd;
    char error[112] = "";
    const bool ok = sortcam::ParseCommand(reinterpret_cast<const char*>(payload.data()), payload.size(), &cmd, error,
                                          sizeof error);
    ASSERT_EQ(ok, c[1] == "1") << "C++ says: " << error;
    if (!ok) {
      EXPECT_NE(error[0], '\0');
      continue;
    }
    ASSERT_EQ(c.size(), 8u);
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
    EXPECT_EQ(cmd.has_collect, c[7] != "-");
    if (cmd.has_collect) {
      EXPECT_EQ(cmd.collect_for_s, golden::U32(c[7]));
      // Left out, the pace is the default, as the twin reads it (COLLECT_EVERY_DEFAULT_MS).
      EXPECT_EQ(cmd.collect_every_ms, c[6] == "-" ? sortcam::mqtt::kCollectEveryDefaultMs : golden::U32(c[6]));
      stops += cmd.collect_for_s == 0 ? 1 : 0;
    } else {
      EXPECT_EQ(c[6], "-");
    }
  }
  EXPECT_GE(accepted, 10);
  EXPECT_GE(stops, 2);
}

std::string Verdict(const std::string& payload, sortcam::Command* cmd = nullptr) {
  sortcam::Command scratch;
  char error[96] = "";
  if (sortcam::ParseCommand(payload.data(), payload.size(), cmd != nullptr ? cmd : &scratch, error, sizeof error)) {
    return "ok";
  }
  EXPECT_NE(error[0], '\0') << payload;
  return error;
}

TEST(Command, DuplicateKeysAreRejectedWithAReason) {
  EXPECT_EQ(Verdict(R"({"cmd":"capture","cmd":"reboot"})"), "duplicate key 'cmd'");
  EXPECT_EQ(Verdict(R"({"cmd":"set","threshold":0.5,"threshold":0.6})"), "duplicate key 'threshold'");
  EXPECT_EQ(Verdict(R"({"cmd":"capture","\u0063md":"capture"})"), "duplicate key 'cmd'");  // equal once decoded
  EXPECT_EQ(Verdict(R"({"cmd":"set","x":{"a":1,"a":2}})"), "duplicate key 'a'");            // nested, as strict_json
  EXPECT_EQ(Verdict(R"({"a\nb":1,"a\nb":2})"), "duplicate key 'a?b'");                      // no control bytes in logs
  EXPECT_EQ(Verdict(R"({"cmd":"set","threshold":0.5,"trigger":"gpio"})"), "ok");
}

// Payloads cJSON alone would take (it is lenient) but Python's json module refuses.
TEST(Command, StrictWhereCJsonIsLenient) {
  for (const char* payload : {
           R"({"cmd":"set","threshold":05})", R"({"cmd":"set","threshold":0.})", R"({"cmd":"set","threshold":1.e-1})",
           R"({"cmd":"set","threshold":-})", R"({"cmd":"set","threshold":1-2})", R"({"cmd":"set","threshold":+1})",
           "\x0b{\"cmd\":\"capture\"}", "{\"cmd\":\"capture\"}\x01", "{\"cmd\":\"capt\x01ure\"}",
           R"({"cmd":"capt\u00zzure"})", R"({"cmd":"capture","v":1.0})", R"({"cmd":"set","interval_ms":1.0})",
           R"({"cmd":"set","interval_ms":1e2})", R"({"cmd":"set","trigger":"gpio"} x)", "\xef\xbb\xbf{\"cmd\":\"capture\"}",
           R"({"cmd":"capture","v":nul})", R"({"cmd":"set","threshold":NaN})", R"({"cmd":"capture",})",
       }) {
    EXPECT_NE(Verdict(payload), "ok") << payload;
  }
  const std::string with_nul("{\"cmd\":\"capture\"}\0", 18);
  EXPECT_NE(Verdict(with_nul), "ok");
  EXPECT_EQ(Verdict(R"({"cmd":"capture\u0000"})"), "payload holds a \\u0000 escape");
}

TEST(Command, IntegersAsPythonReadsThem) {
  sortcam::Command cmd;
  ASSERT_EQ(Verdict(R"({"v":1,"cmd":"set","interval_ms":-0,"threshold":-0})", &cmd), "ok");
  EXPECT_EQ(cmd.interval_ms, 0u);
  EXPECT_FALSE(std::signbit(cmd.threshold));  // Python's int -0 is 0
  ASSERT_EQ(Verdict(R"({"cmd":"set","threshold":-0.0})", &cmd), "ok");
  EXPECT_TRUE(std::signbit(cmd.threshold));  // a float keeps its sign
  ASSERT_EQ(Verdict(R"({"cmd":"set","interval_ms":60000,"threshold":1E-3})", &cmd), "ok");
  EXPECT_EQ(cmd.interval_ms, 60000u);
  EXPECT_EQ(cmd.threshold, 0.001);
  EXPECT_EQ(Verdict(R"({"cmd":"set","interval_ms":60001})"), "'interval_ms' outside 0..60000");
  EXPECT_EQ(Verdict(R"({"cmd":"set","interval_ms":99999999999999999999999999})"), "'interval_ms' outside 0..60000");
  EXPECT_EQ(Verdict(R"({"cmd":"set","threshold":1e999})"), "'threshold' must be a number");
  // Numbers nested before "v" count too: v is still known as the integer it was written as.
  EXPECT_EQ(Verdict(R"({"x":[1.5,{"y":2.0}],"v":1,"cmd":"capture"})"), "command takes no arguments");
  EXPECT_EQ(Verdict(R"({"x":[1,2],"v":1.0,"cmd":"capture"})"), "unsupported version");
  const std::string long_number = "{\"cmd\":\"set\",\"threshold\":0." + std::string(62, '5') + "}";
  EXPECT_EQ(Verdict(long_number), "payload holds a number longer than 63 characters");
  const std::string longest = "{\"cmd\":\"set\",\"threshold\":0." + std::string(61, '5') + "}";
  EXPECT_EQ(Verdict(longest), "ok");
}

TEST(Command, CollectKeysAndTheirRules) {
  sortcam::Command cmd;
  ASSERT_EQ(Verdict(R"({"cmd":"set","collect_every_ms":2000,"collect_for_s":60})", &cmd), "ok");
  EXPECT_TRUE(cmd.has_collect && !cmd.has_threshold && !cmd.has_trigger && !cmd.has_interval);
  EXPECT_EQ(cmd.collect_every_ms, 2000u);
  EXPECT_EQ(cmd.collect_for_s, 60u);
  ASSERT_EQ(Verdict(R"({"cmd":"set","collect_for_s":0})", &cmd), "ok");  // the collector's stop
  EXPECT_TRUE(cmd.has_collect);
  EXPECT_EQ(cmd.collect_for_s, 0u);
  EXPECT_EQ(cmd.collect_every_ms, sortcam::mqtt::kCollectEveryDefaultMs);
  ASSERT_EQ(Verdict(R"({"cmd":"set","collect_every_ms":600000,"collect_for_s":3600})", &cmd), "ok");
  EXPECT_EQ(cmd.collect_every_ms, 600000u);
  EXPECT_EQ(cmd.collect_for_s, 3600u);
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_every_ms":2000})"),
            "'collect_every_ms' needs 'collect_for_s' (how long to send frames)");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_every_ms":1999,"collect_for_s":60})"),
            "'collect_every_ms' outside 2000..600000");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_every_ms":600001,"collect_for_s":60})"),
            "'collect_every_ms' outside 2000..600000");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_for_s":3601})"), "'collect_for_s' outside 0..3600");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_for_s":-1})"), "'collect_for_s' outside 0..3600");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_for_s":60.0})"), "'collect_for_s' must be an integer");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_for_s":true})"), "'collect_for_s' must be an integer");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_every_ms":2e3,"collect_for_s":60})"),
            "'collect_every_ms' must be an integer");
  EXPECT_EQ(Verdict(R"({"cmd":"capture","collect_for_s":60})"), "command takes no arguments");
  EXPECT_EQ(Verdict(R"({"cmd":"set","collect_for_s":60,"collect_for_s":0})"), "duplicate key 'collect_for_s'");
  // A decision setting and a collection in one command: both taken.
  ASSERT_EQ(Verdict(R"({"cmd":"set","threshold":0.5,"collect_for_s":5})", &cmd), "ok");
  EXPECT_TRUE(cmd.has_threshold && cmd.has_collect);
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
