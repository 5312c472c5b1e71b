// Near-miss ids and roots: every validator of mqtt_contract.h judges the whole text.
//
// The Python twins (sortcam.mqtt_contract) once matched with "^...$", which also takes a
// final "\n": "b00t0004\n" passed for a new boot id and an item was sorted twice. These
// cases put every byte outside the id alphabet, and a set of UTF-8 look-alikes, before,
// inside and after valid ids (tests/core/test_validators.py feeds the Python validators
// the same kinds of strings with hypothesis).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "sortcam/mqtt_contract.h"
#include "sortcam/sample.h"

namespace {

using sortcam::mqtt::IsValidBootId;
using sortcam::mqtt::IsValidDeviceId;
using sortcam::mqtt::IsValidId;
using sortcam::mqtt::IsValidRoot;

bool InAlphabet(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// UTF-8 strings that look like (or hide beside) id characters.
const std::vector<std::string> kLookAlikes = {
    "\xd0\xb0",      // Cyrillic a
    "\xce\xbf",      // Greek omicron
    "\xef\xbd\x83",  // fullwidth c
    "\xef\xbc\x97",  // fullwidth 7
    "\xd9\xa3",      // Arabic-Indic three
    "\xc2\xb2",      // superscript two
    "\xc2\xa0",      // no-break space
    "\xe2\x80\x8b",  // zero-width space
    "\xe2\x80\xa8",  // line separator
    "\xef\xbb\xbf",  // byte-order mark
    "\xe2\x80\x90",  // hyphen (not '-')
    "\xef\xbc\xbf",  // fullwidth low line
};

std::vector<std::string> NearMisses(const std::string& valid) {
  std::vector<std::string> out;
  std::vector<std::string> intruders = kLookAlikes;
  for (int c = 0; c < 256; ++c) {
    if (!InAlphabet(c)) intruders.emplace_back(1, static_cast<char>(c));
  }
  intruders.push_back("\r\n");
  for (const std::string& bad : intruders) {
    out.push_back(bad + valid);
    out.push_back(valid + bad);
    out.push_back(valid.substr(0, valid.size() / 2) + bad + valid.substr(valid.size() / 2));
  }
  return out;
}

TEST(IdValidators, EveryAlphabetByteIsAnId) {
  for (int c = 0; c < 256; ++c) {
    const char text[2] = {static_cast<char>(c), '\0'};
    EXPECT_EQ(IsValidId(text, 1), InAlphabet(c)) << "byte " << c;
  }
  EXPECT_TRUE(IsValidDeviceId("belt-A_07"));
  EXPECT_TRUE(IsValidBootId("b00t0004"));
}

TEST(IdValidators, NearMissesAreRefused) {
  for (const std::string& valid : {std::string("b00t0004"), std::string("cam1"), std::string("x")}) {
    for (const std::string& text : NearMisses(valid)) {
      const bool fits = text.size() <= sortcam::mqtt::kDeviceIdMax;
      EXPECT_FALSE(IsValidId(text.data(), text.size())) << valid << " + " << testing::PrintToString(text);
      // The NUL-terminated forms see the text up to its first NUL: a NUL at the front empties it,
      // a NUL later leaves a valid prefix, which is all a C string can say (IsValidId takes the length).
      if (text.find('\0') == std::string::npos && fits) {
        EXPECT_FALSE(IsValidDeviceId(text.c_str())) << testing::PrintToString(text);
        EXPECT_FALSE(IsValidBootId(text.c_str())) << testing::PrintToString(text);
      }
    }
  }
}

TEST(IdValidators, LengthLimits) {
  const std::string longest(sortcam::mqtt::kDeviceIdMax, 'a');
  EXPECT_TRUE(IsValidBootId(longest.c_str()));
  EXPECT_FALSE(IsValidBootId((longest + "a").c_str()));
  EXPECT_FALSE(IsValidBootId(""));
  EXPECT_FALSE(IsValidBootId(nullptr));
  EXPECT_FALSE(IsValidDeviceId(nullptr));
  EXPECT_FALSE(IsValidId(nullptr, 0));
}

TEST(RootValidator, NearMissesAreRefused) {
  EXPECT_TRUE(IsValidRoot("sortcam", 7));
  EXPECT_TRUE(IsValidRoot("plant 2/line", 12));
  for (const char* bad : {"", "/sortcam", "sortcam/", " sortcam", "sortcam ", "sort+cam", "sort#cam"}) {
    EXPECT_FALSE(IsValidRoot(bad, std::strlen(bad))) << testing::PrintToString(bad);
  }
  for (int c = 0; c < 0x20; ++c) {
    const std::string text = std::string("sort") + static_cast<char>(c) + "cam";
    EXPECT_FALSE(IsValidRoot(text.data(), text.size())) << "byte " << c;
  }
  const std::string del = "sortcam\x7f";
  EXPECT_FALSE(IsValidRoot(del.data(), del.size()));
  char topic[64];
  EXPECT_EQ(sortcam::mqtt::BuildDeviceTopic("sortcam\n", "cam1", "status", topic, sizeof topic), 0u);
  EXPECT_EQ(sortcam::mqtt::BuildDeviceTopic("sortcam", "cam1\n", "status", topic, sizeof topic), 0u);
}

TEST(SampleWriter, RefusesABootWithATrailingNewline) {
  const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xd9};
  std::vector<char> out(1024);
  size_t len = 0;
  sortcam::SampleFields f;
  f.device = "cam1";
  f.boot = "b00t0004";
  ASSERT_EQ(sortcam::EncodeSample(f, jpeg, sizeof jpeg, out.data(), out.size(), &len), sortcam::SampleResult::kOk);
  f.boot = "b00t0004\n";
  EXPECT_EQ(sortcam::EncodeSample(f, jpeg, sizeof jpeg, out.data(), out.size(), &len),
            sortcam::SampleResult::kBadField);
  f.boot = "";
  EXPECT_EQ(sortcam::EncodeSample(f, jpeg, sizeof jpeg, out.data(), out.size(), &len),
            sortcam::SampleResult::kBadField);
}

}  // namespace
