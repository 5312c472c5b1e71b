// The one preprocessing, in C++: a camera frame to the model's int8 input.
//
// Mirrors sortcam/preprocess.py step for step (fit, fixed-point bilinear resize with
// half-pixel centres, range map, int8 quantisation with round-half-away-from-zero), so
// the chip feeds the network exactly the bytes the Python tools do; golden vectors in
// tests/data/golden prove it. The int8 table is built from the input tensor's own scale
// and zero point, read at run time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sortcam {

enum class Fit : uint8_t { kCrop, kStretch };

// kRgb565: 2 bytes a pixel, high byte first (what esp32-camera delivers); channels widen
// by repeating their top bits (r << 3 | r >> 2), as sortcam.device_core.rgb565_to_rgb888.
enum class PixelFormat : uint8_t { kRgb888, kRgb565 };

struct Frame {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  PixelFormat format = PixelFormat::kRgb888;
};

struct Box {
  int y = 0;
  int x = 0;
  int h = 0;
  int w = 0;
};

// Region of an in_h x in_w frame that fit keeps (sortcam.preprocess.crop_box).
Box CropBox(int in_h, int in_w, int out_h, int out_w, Fit fit);

// 256-entry table: pixel value to int8 input. False when scale is not > 0.
bool BuildInt8Lut(float scale, int zero_point, float range_lo, float range_hi, int8_t lut[256]);

// One output coordinate of the bilinear resize: the two source indices and the 8-bit
// weight of the second.
struct PreprocessTap {
  uint16_t i0;
  uint16_t i1;
  uint16_t frac;
};

class Preprocessor {
 public:
  static constexpr int kMaxSide = 320;  // largest model input side

  // False for sizes outside 1..kMaxSide or a bad scale.
  bool Configure(int out_h, int out_w, Fit fit, float input_scale, int input_zero_point, float range_lo,
                 float range_hi);

  // Steps 1 and 2: out_rgb receives out_h * out_w * 3 bytes. False for an empty frame,
  // a null buffer or a frame too small to crop.
  bool FitResize(const Frame& frame, uint8_t* out_rgb);

  // Steps 3 and 4 on n bytes.
  void Quantize(const uint8_t* rgb, int8_t* out, size_t n) const;

  int out_height() const { return out_h_; }
  int out_width() const { return out_w_; }
  size_t image_bytes() const { return static_cast<size_t>(out_h_) * out_w_ * 3; }
  const int8_t* lut() const { return lut_; }

 private:
  int out_h_ = 0;
  int out_w_ = 0;
  Fit fit_ = Fit::kCrop;
  int8_t lut_[256] = {};
  int tap_in_h_ = 0;  // frame region the cached taps were computed for
  int tap_in_w_ = 0;
  PreprocessTap ytaps_[kMaxSide] = {};
  PreprocessTap xtaps_[kMaxSide] = {};
};

}  // namespace sortcam
