// Random bytes into every parser, under AddressSanitizer and UBSan: nothing may crash,
// read out of bounds or accept what it must not.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "sortcam/command.h"
#include "sortcam/serial_protocol.h"
#include "sortcam/sorter.h"

namespace {

struct Lcg {
  uint64_t state;
  uint32_t Next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
};

std::string RandomBytes(Lcg& rng, const std::string& alphabet, size_t max_len) {
  std::string s(rng.Next() % (max_len + 1), '\0');
  for (char& c : s) c = alphabet.empty() ? static_cast<char>(rng.Next() & 0xFF) : alphabet[rng.Next() % alphabet.size()];
  return s;
}

TEST(Fuzz, CommandParserSurvivesAnything) {
  Lcg rng{1};
  const std::string json_ish = "{}[]\":,.-+0123456789eE \\utrfnaslcpvNIy_\x01\xc3\xa9";
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string payload = RandomBytes(rng, i % 2 ? json_ish : std::string(), 64);
    sortcam::Command cmd;
    char error[64];
    accepted += sortcam::ParseCommand(payload.data(), payload.size(), &cmd, error, sizeof error) ? 1 : 0;
  }
  EXPECT_LT(accepted, 10);
}

TEST(Fuzz, SerialAndSorterSurviveAnything) {
  Lcg rng{2};
  const std::string line_ish = "SORTPINGACKEVT 0123456789*\r\nabcdef";
  sortcam::Sorter sorter{sortcam::SorterConfig{}};
  for (int i = 0; i < 20000; ++i) {
    const std::string line = RandomBytes(rng, i % 2 ? line_ish : std::string(), 100);
    size_t body_len = 0;
    if (sortcam::serial::Decode(line.data(), line.size(), &body_len) == sortcam::serial::DecodeResult::kOk) {
      sortcam::serial::Message m;
      sortcam::serial::Parse(line.data(), body_len, &m);
    }
    char out[96];
    const size_t n = sorter.OnLine(line.data(), line.size(), static_cast<uint32_t>(i), out, sizeof out);
    ASSERT_LE(n, sortcam::serial::kMaxLine);
    sortcam::GateAction actions[8];
    sorter.Poll(static_cast<uint32_t>(i) * 97u, actions, 8);
  }
}

}  // namespace
