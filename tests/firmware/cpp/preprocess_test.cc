// Preprocessing against sortcam.preprocess on real photos (golden vectors).
#include "sortcam/preprocess.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "golden.h"

namespace {

using sortcam::Fit;
using sortcam::PixelFormat;

TEST(Preprocess, MatchesPythonOnRealPhotos) {
  const auto cases = golden::Cases("preprocess.txt");
  ASSERT_GE(cases.size(), 12u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c[0]);
    const std::vector<uint8_t> frame_bytes = golden::ReadFile(c[1]);
    sortcam::Frame frame;
    frame.data = frame_bytes.data();
    frame.format = c[2] == "rgb565" ? PixelFormat::kRgb565 : PixelFormat::kRgb888;
    frame.width = golden::Int(c[3]);
    frame.height = golden::Int(c[4]);
    const Fit fit = c[5] == "crop" ? Fit::kCrop : Fit::kStretch;
    const int out_h = golden::Int(c[6]);
    const int out_w = golden::Int(c[7]);
    sortcam::Preprocessor pre;
    ASSERT_TRUE(pre.Configure(out_h, out_w, fit, golden::F32(c[8]), golden::Int(c[9]), std::stof(c[10]),
                              std::stof(c[11])));
    std::vector<uint8_t> rgb(pre.image_bytes());
    ASSERT_TRUE(pre.FitResize(frame, rgb.data()));
    const std::vector<uint8_t> want_rgb = golden::ReadFile(c[12]);
    ASSERT_EQ(rgb, want_rgb);
    if (c[13] != "-") {
      std::vector<int8_t> q(rgb.size());
      pre.Quantize(rgb.data(), q.data(), q.size());
      const std::vector<uint8_t> want_q = golden::ReadFile(c[13]);
      ASSERT_EQ(0, std::memcmp(q.data(), want_q.data(), q.size()));
      ASSERT_EQ(q.size(), want_q.size());
    }
  }
}

TEST(Preprocess, LutsMatchPython) {
  const auto cases = golden::Cases("luts.txt");
  ASSERT_GE(cases.size(), 5u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c[0] + " zp " + c[1]);
    int8_t lut[256];
    ASSERT_TRUE(sortcam::BuildInt8Lut(golden::F32(c[0]), golden::Int(c[1]), std::stof(c[2]), std::stof(c[3]), lut));
    const std::vector<uint8_t> want = golden::Hex(c[4]);
    ASSERT_EQ(0, std::memcmp(lut, want.data(), 256));
  }
}

TEST(Preprocess, CropBoxKeepsTheCentre) {
  const sortcam::Box wide = sortcam::CropBox(120, 160, 96, 96, Fit::kCrop);
  EXPECT_EQ(wide.y, 0);
  EXPECT_EQ(wide.x, 20);
  EXPECT_EQ(wide.h, 120);
  EXPECT_EQ(wide.w, 120);
  const sortcam::Box tall = sortcam::CropBox(61, 97, 64, 40, Fit::kCrop);
  EXPECT_EQ(tall.w, 38);
  EXPECT_EQ(tall.x, 29);
  const sortcam::Box all = sortcam::CropBox(61, 97, 64, 40, Fit::kStretch);
  EXPECT_EQ(all.h, 61);
  EXPECT_EQ(all.w, 97);
}

TEST(Preprocess, RefusesBadInput) {
  sortcam::Preprocessor pre;
  EXPECT_FALSE(pre.Configure(0, 96, Fit::kCrop, 0.5f, 0, -1.0f, 1.0f));
  EXPECT_FALSE(pre.Configure(96, 96, Fit::kCrop, 0.0f, 0, -1.0f, 1.0f));
  EXPECT_FALSE(pre.Configure(96, 96, Fit::kCrop, -1.0f, 0, -1.0f, 1.0f));
  ASSERT_TRUE(pre.Configure(8, 8, Fit::kCrop, 0.5f, 0, -1.0f, 1.0f));
  std::vector<uint8_t> out(pre.image_bytes());
  sortcam::Frame empty;
  EXPECT_FALSE(pre.FitResize(empty, out.data()));
  const uint8_t pixel[3] = {1, 2, 3};
  sortcam::Frame one{pixel, 1, 1, PixelFormat::kRgb888};
  EXPECT_TRUE(pre.FitResize(one, out.data()));  // a single pixel upsamples to a flat image
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[out.size() - 1], 3);
  EXPECT_FALSE(pre.FitResize(one, nullptr));
}

TEST(Preprocess, Rgb565WidensLikePython) {
  // White, black and pure red, high byte first.
  const uint8_t px[6] = {0xFF, 0xFF, 0x00, 0x00, 0xF8, 0x00};
  sortcam::Preprocessor pre;
  ASSERT_TRUE(pre.Configure(1, 3, Fit::kStretch, 0.5f, 0, -1.0f, 1.0f));
  uint8_t out[9];
  ASSERT_TRUE(pre.FitResize(sortcam::Frame{px, 3, 1, PixelFormat::kRgb565}, out));
  const uint8_t want[9] = {255, 255, 255, 0, 0, 0, 255, 0, 0};
  EXPECT_EQ(0, std::memcmp(out, want, 9));
}

}  // namespace
