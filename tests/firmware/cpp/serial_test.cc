// Serial codec against sortcam.serial_contract (table + mutation cases).
#include "sortcam/serial_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "golden.h"

namespace {

using sortcam::serial::DecodeResult;
using sortcam::serial::Verb;

const char* VerbName(Verb verb) {
  switch (verb) {
    case Verb::kSort: return "SORT";
    case Verb::kPing: return "PING";
    case Verb::kAck: return "ACK";
    case Verb::kNak: return "NAK";
    case Verb::kPong: return "PONG";
    default: return "EVT";
  }
}

TEST(Serial, DecodeAndParseMatchPython) {
  const auto cases = golden::Cases("serial_cases.txt");
  ASSERT_GE(cases.size(), 1000u);
  int parsed = 0;
  for (const auto& c : cases) {
    const std::vector<uint8_t> raw = golden::Hex(c[0]);
    const char* line = reinterpret_cast<const char*>(raw.data());
    SCOPED_TRACE("line hex " + c[0]);
    size_t body_len = 0;
    const DecodeResult result = sortcam::serial::Decode(line, raw.size(), &body_len);
    const char* want = c[1] == "ok" ? "ok" : (c[1] == "checksum" ? "checksum" : "malformed");
    const char* got = result == DecodeResult::kOk ? "ok" : (result == DecodeResult::kBadChecksum ? "checksum" : "malformed");
    ASSERT_STREQ(got, want);
    if (result == DecodeResult::kMalformed) continue;
    ASSERT_EQ(body_len, golden::U32(c[2]));
    if (result != DecodeResult::kOk) continue;
    sortcam::serial::Message m;
    const bool ok = sortcam::serial::Parse(line, body_len, &m);
    ASSERT_EQ(ok, c[3] == "1");
    if (!ok) continue;
    ++parsed;
    EXPECT_STREQ(VerbName(m.verb), c[4].c_str());
    EXPECT_EQ(m.item_id, golden::U32(c[5]));
    EXPECT_EQ(m.gate, golden::Int(c[6]));
    EXPECT_EQ(m.delay_ms, golden::U32(c[7]));
    EXPECT_EQ(m.bins, golden::Int(c[8]));
    EXPECT_EQ(std::string(m.reason, m.reason_len), golden::HexText(c[9]));
    EXPECT_EQ(std::string(m.fw, m.fw_len), golden::HexText(c[10]));
    EXPECT_EQ(std::string(m.text, m.text_len), golden::HexText(c[11]));
  }
  EXPECT_GE(parsed, 100);
}

TEST(Serial, EncodeWritesUpperCaseChecksum) {
  char out[96];
  ASSERT_EQ(sortcam::serial::Encode("PING", out, sizeof out), 8u);
  EXPECT_STREQ(out, "PING*10\n");
  EXPECT_EQ(sortcam::serial::Encode("", out, sizeof out), 0u);
  EXPECT_EQ(sortcam::serial::Encode("A*B", out, sizeof out), 0u);
  EXPECT_EQ(sortcam::serial::Encode("A\nB", out, sizeof out), 0u);
  EXPECT_EQ(sortcam::serial::Encode("PING", out, 8), 0u);  // no room for the NUL
  const std::string longest(sortcam::serial::kMaxLine - 4, 'E');
  EXPECT_EQ(sortcam::serial::Encode(longest.c_str(), out, sizeof out), sortcam::serial::kMaxLine);
  const std::string too_long(sortcam::serial::kMaxLine - 3, 'E');
  EXPECT_EQ(sortcam::serial::Encode(too_long.c_str(), out, sizeof out), 0u);
}

TEST(Serial, ParseUintLimits) {
  uint32_t v = 0;
  EXPECT_TRUE(sortcam::serial::ParseUint("4294967295", 10, 1, 4294967295u, &v));
  EXPECT_EQ(v, 4294967295u);
  EXPECT_FALSE(sortcam::serial::ParseUint("4294967296", 10, 1, 4294967295u, &v));
  EXPECT_FALSE(sortcam::serial::ParseUint("99999999999", 11, 0, 4294967295u, &v));
  EXPECT_FALSE(sortcam::serial::ParseUint("", 0, 0, 10, &v));
  EXPECT_FALSE(sortcam::serial::ParseUint("-1", 2, 0, 10, &v));
}

}  // namespace
