// Dataset capture's decisions (sortcam::FrameCollector, CheckCollectedFrame, the frame
// sizes) under the sanitizers, and the twin's pacing from tests/data/golden/collect_pacing.txt.
#include "sortcam/collect.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "golden.h"

namespace {

using sortcam::CollectCheck;
using sortcam::FrameCollector;

// The twin's frames, seqs and items for each sequence, at two clock offsets: as generated
// and just before the 32-bit millisecond clock wraps (the chip's wraps after 49.7 days).
TEST(FrameCollector, PacesAsTheTwin) {
  const auto cases = golden::Cases("collect_pacing.txt");
  ASSERT_GE(cases.size(), 500u);
  for (const uint32_t offset : {0u, 0xFFFFFFFFu - 20000u}) {
    std::map<std::string, FrameCollector> collectors;
    std::map<std::string, uint32_t> seqs;
    int sent = 0;
    for (const auto& c : cases) {
      SCOPED_TRACE(c[0] + " " + c[1] + " " + c[2] + " offset " + std::to_string(offset));
      FrameCollector& collector = collectors[c[0]];
      uint32_t& seq = seqs[c[0]];
      const uint32_t t = golden::U32(c[2]) + offset;
      if (c[1] == "c") {
        collector.Set(t, golden::U32(c[3]), golden::U32(c[4]));
      } else if (c[1] == "i") {
        EXPECT_EQ(seq++, golden::U32(c[3]));
      } else {
        ASSERT_EQ(c[1], "f");
        const bool due = collector.Due(t);
        ASSERT_EQ(due, c[3] == "1");
        if (due) {
          collector.OnCaptured(CollectCheck::kOk, 30000);
          EXPECT_EQ(seq++, golden::U32(c[4]));
          ++sent;
        }
      }
    }
    EXPECT_GE(sent, 50);
  }
}

TEST(FrameCollector, LeaseStartRenewStopAndExpiry) {
  FrameCollector c;
  EXPECT_FALSE(c.active());
  EXPECT_FALSE(c.Due(1000));  // nothing asked: nothing sent
  EXPECT_EQ(c.Set(1000, 2000, 60), FrameCollector::Change::kStarted);
  EXPECT_TRUE(c.Due(1000));  // the first frame at once
  EXPECT_FALSE(c.Due(2999));
  EXPECT_EQ(c.Set(2500, 2000, 60), FrameCollector::Change::kRenewed);
  EXPECT_FALSE(c.Due(2500));  // a renewal keeps the pace
  EXPECT_TRUE(c.Due(3000));
  EXPECT_EQ(c.Set(3500, 4000, 60), FrameCollector::Change::kRenewed);
  EXPECT_TRUE(c.Due(3500));  // a new pace starts at once
  EXPECT_EQ(c.every_ms(), 4000u);
  EXPECT_EQ(c.Set(4000, 2000, 0), FrameCollector::Change::kStopped);
  EXPECT_FALSE(c.active());
  EXPECT_FALSE(c.Due(100000));
  EXPECT_EQ(c.expired(), 0u);  // a stop is not an expiry

  EXPECT_EQ(c.Set(200000, 2000, 3), FrameCollector::Change::kStarted);
  EXPECT_TRUE(c.Due(200000));
  EXPECT_TRUE(c.Due(202000));
  EXPECT_FALSE(c.Due(203000));  // the lease's end: no frame, collection over
  EXPECT_FALSE(c.active());
  EXPECT_EQ(c.expired(), 1u);
  EXPECT_EQ(c.Set(203500, 2000, 3), FrameCollector::Change::kStarted);  // after expiry a renewal starts anew
  EXPECT_TRUE(c.Due(203500));
}

TEST(FrameCollector, ALeaseOverTheClockWrap) {
  FrameCollector c;
  const uint32_t start = 0xFFFFFFFFu - 999u;  // 1 s before the wrap
  c.Set(start, 2000, 3600);
  EXPECT_TRUE(c.Due(start));
  EXPECT_FALSE(c.Due(start + 1999u));
  EXPECT_TRUE(c.Due(start + 2000u));  // wrapped: 1000
  EXPECT_TRUE(c.Due(start + 3'599'000u));
  EXPECT_FALSE(c.Due(start + 3'600'000u));
  EXPECT_EQ(c.expired(), 1u);
}

TEST(FrameCollector, QualityFollowsTheFrameSize) {
  FrameCollector c;
  EXPECT_EQ(c.jpeg_quality(), FrameCollector::kStartQuality);
  c.OnCaptured(CollectCheck::kOk, 1000);  // small, already at the finest allowed
  EXPECT_EQ(c.jpeg_quality(), FrameCollector::kStartQuality);
  c.OnCaptured(CollectCheck::kTooLarge, 90000);
  EXPECT_EQ(c.jpeg_quality(), FrameCollector::kStartQuality + FrameCollector::kQualityStep);
  c.OnCaptured(CollectCheck::kOk, sortcam::mqtt::kSampleJpegMax / 2);  // half the room used: kept
  EXPECT_EQ(c.jpeg_quality(), FrameCollector::kStartQuality + FrameCollector::kQualityStep);
  c.OnCaptured(CollectCheck::kOk, sortcam::mqtt::kSampleJpegMax / 2 - 1);
  EXPECT_EQ(c.jpeg_quality(), FrameCollector::kStartQuality);
  for (int i = 0; i < 20; ++i) c.OnCaptured(CollectCheck::kTooLarge, 200000);
  EXPECT_EQ(c.jpeg_quality(), FrameCollector::kCoarsestQuality);
  c.OnCaptured(CollectCheck::kNotJpeg, 10);  // says nothing about the size
  EXPECT_EQ(c.jpeg_quality(), FrameCollector::kCoarsestQuality);
}

TEST(CheckCollectedFrame, TheSampleLimitsOfPython) {
  std::vector<uint8_t> jpeg(sortcam::mqtt::kSampleJpegMax + 1, 0x33);
  jpeg[0] = 0xFF;
  jpeg[1] = 0xD8;
  const size_t max = sortcam::mqtt::kSampleJpegMax;
  EXPECT_EQ(max, 73344u);
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), max, 1600, 1200), CollectCheck::kOk);
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), max + 1, 1600, 1200), CollectCheck::kTooLarge);
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), max, 1601, 1200), CollectCheck::kTooWide);
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), max, 1200, 1601), CollectCheck::kTooWide);
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), max, 0, 1200), CollectCheck::kTooWide);
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), 2, 1, 1), CollectCheck::kOk);
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), 1, 1, 1), CollectCheck::kNotJpeg);
  EXPECT_EQ(sortcam::CheckCollectedFrame(nullptr, 0, 800, 600), CollectCheck::kNotJpeg);
  jpeg[1] = 0xD9;
  EXPECT_EQ(sortcam::CheckCollectedFrame(jpeg.data(), 100, 800, 600), CollectCheck::kNotJpeg);
  for (const CollectCheck check : {CollectCheck::kOk, CollectCheck::kNotJpeg, CollectCheck::kTooWide,
                                   CollectCheck::kTooLarge}) {
    EXPECT_STRNE(sortcam::CollectCheckName(check), "?");
  }
}

TEST(CollectSize, EverySizeFitsTheContractAndHasOneName) {
  for (const auto& info : sortcam::kCollectSizes) {
    EXPECT_LE(info.width, sortcam::mqtt::kCollectMaxSide) << info.name;
    EXPECT_LE(info.height, sortcam::mqtt::kCollectMaxSide) << info.name;
    EXPECT_LT(std::strlen(info.name), 16u) << info.name;  // LoadDeviceConfig reads it into 16 bytes
    sortcam::CollectSize size{};
    ASSERT_TRUE(sortcam::CollectSizeFromName(info.name, std::strlen(info.name), &size)) << info.name;
    EXPECT_EQ(size, info.size);
    EXPECT_EQ(&sortcam::CollectSizeOf(info.size), &info);
  }
  sortcam::CollectSize size = sortcam::CollectSize::kQvga;
  EXPECT_FALSE(sortcam::CollectSizeFromName("svg", 3, &size));
  EXPECT_FALSE(sortcam::CollectSizeFromName("svgaa", 5, &size));
  EXPECT_TRUE(sortcam::CollectSizeFromName("svgaa", 4, &size));  // len counts, not the NUL
  EXPECT_EQ(size, sortcam::CollectSize::kSvga);
  EXPECT_EQ(sortcam::CollectSizeOf(sortcam::kDefaultCollectSize).width, 800u);
}

}  // namespace
