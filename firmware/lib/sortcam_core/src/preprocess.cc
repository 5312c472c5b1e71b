#include "sortcam/preprocess.h"

#include <cmath>

namespace sortcam {
namespace {

constexpr int kFracBits = 8;
constexpr uint32_t kOne = 1u << kFracBits;

// Source coordinate of output i is (i + 0.5) * in_n / out_n - 0.5, as the exact fraction
// ((2i + 1) * in_n - out_n) / (2 * out_n); see sortcam.preprocess._axis_taps.
void AxisTaps(int in_n, int out_n, PreprocessTap* taps) {
  const int64_t den = 2 * static_cast<int64_t>(out_n);
  for (int i = 0; i < out_n; ++i) {
    int64_t num = (2 * static_cast<int64_t>(i) + 1) * in_n - out_n;
    if (num < 0) num = 0;
    const int64_t i0 = num / den;
    const int64_t frac = ((num % den) * kOne) / den;
    const int64_t i1 = i0 + 1 < in_n ? i0 + 1 : in_n - 1;
    taps[i] = PreprocessTap{static_cast<uint16_t>(i0), static_cast<uint16_t>(i1), static_cast<uint16_t>(frac)};
  }
}

inline void Pixel565(const uint8_t* p, uint32_t rgb[3]) {
  const uint32_t v = (static_cast<uint32_t>(p[0]) << 8) | p[1];
  const uint32_t r = (v >> 11) & 0x1F;
  const uint32_t g = (v >> 5) & 0x3F;
  const uint32_t b = v & 0x1F;
  rgb[0] = (r << 3) | (r >> 2);
  rgb[1] = (g << 2) | (g >> 4);
  rgb[2] = (b << 3) | (b >> 2);
}

template <PixelFormat kFormat>
void Resize(const Frame& frame, const Box& box, const PreprocessTap* ytaps, const PreprocessTap* xtaps, int out_h, int out_w,
            uint8_t* out) {
  constexpr int kBytes = kFormat == PixelFormat::kRgb565 ? 2 : 3;
  const size_t stride = static_cast<size_t>(frame.width) * kBytes;
  auto at = [&](int y, int x, uint32_t rgb[3]) {
    const uint8_t* p = frame.data + static_cast<size_t>(box.y + y) * stride + static_cast<size_t>(box.x + x) * kBytes;
    if (kFormat == PixelFormat::kRgb565) {
      Pixel565(p, rgb);
    } else {
      rgb[0] = p[0];
      rgb[1] = p[1];
      rgb[2] = p[2];
    }
  };
  for (int oy = 0; oy < out_h; ++oy) {
    const PreprocessTap ty = ytaps[oy];
    for (int ox = 0; ox < out_w; ++ox) {
      const PreprocessTap tx = xtaps[ox];
      uint32_t p00[3], p01[3], p10[3], p11[3];
      at(ty.i0, tx.i0, p00);
      at(ty.i0, tx.i1, p01);
      at(ty.i1, tx.i0, p10);
      at(ty.i1, tx.i1, p11);
      for (int c = 0; c < 3; ++c) {
        const uint32_t top = p00[c] * (kOne - tx.frac) + p01[c] * tx.frac;
        const uint32_t bottom = p10[c] * (kOne - tx.frac) + p11[c] * tx.frac;
        const uint32_t acc = top * (kOne - ty.frac) + bottom * ty.frac;
        *out++ = static_cast<uint8_t>((acc + (1u << (2 * kFracBits - 1))) >> (2 * kFracBits));
      }
    }
  }
}

}  // namespace

Box CropBox(int in_h, int in_w, int out_h, int out_w, Fit fit) {
  if (fit == Fit::kStretch) return Box{0, 0, in_h, in_w};
  const int64_t wide = static_cast<int64_t>(in_w) * out_h;
  const int64_t tall = static_cast<int64_t>(in_h) * out_w;
  if (wide > tall) {  // input wider than the model: trim the sides
    const int crop_w = static_cast<int>(static_cast<int64_t>(in_h) * out_w / out_h);
    return Box{0, (in_w - crop_w) / 2, in_h, crop_w};
  }
  const int crop_h = static_cast<int>(static_cast<int64_t>(in_w) * out_h / out_w);
  return Box{(in_h - crop_h) / 2, 0, crop_h, in_w};
}

bool BuildInt8Lut(float scale, int zero_point, float range_lo, float range_hi, int8_t lut[256]) {
  if (!(scale > 0.0f)) return false;
  const double lo = range_lo;
  const double hi = range_hi;
  const double s = scale;
  for (int u = 0; u < 256; ++u) {
    const double f = lo + (hi - lo) * u / 255.0;
    const double x = f / s;
    // Half away from zero, written as sortcam.preprocess.int8_lut writes it.
    double q = std::copysign(std::floor(std::fabs(x) + 0.5), x) + zero_point;
    if (q < -128.0) q = -128.0;
    if (q > 127.0) q = 127.0;
    lut[u] = static_cast<int8_t>(q);
  }
  return true;
}

bool Preprocessor::Configure(int out_h, int out_w, Fit fit, float input_scale, int input_zero_point, float range_lo,
                             float range_hi) {
  if (out_h < 1 || out_w < 1 || out_h > kMaxSide || out_w > kMaxSide) return false;
  if (!BuildInt8Lut(input_scale, input_zero_point, range_lo, range_hi, lut_)) return false;
  out_h_ = out_h;
  out_w_ = out_w;
  fit_ = fit;
  tap_in_h_ = tap_in_w_ = 0;
  return true;
}

bool Preprocessor::FitResize(const Frame& frame, uint8_t* out_rgb) {
  if (frame.data == nullptr || out_rgb == nullptr || out_h_ < 1 || frame.width < 1 || frame.height < 1) return false;
  if (frame.width > 65535 || frame.height > 65535) return false;
  const Box box = CropBox(frame.height, frame.width, out_h_, out_w_, fit_);
  if (box.h < 1 || box.w < 1) return false;
  if (box.h != tap_in_h_ || box.w != tap_in_w_) {  // the camera size rarely changes: cache the taps
    AxisTaps(box.h, out_h_, ytaps_);
    AxisTaps(box.w, out_w_, xtaps_);
    tap_in_h_ = box.h;
    tap_in_w_ = box.w;
  }
  if (frame.format == PixelFormat::kRgb565) {
    Resize<PixelFormat::kRgb565>(frame, box, ytaps_, xtaps_, out_h_, out_w_, out_rgb);
  } else {
    Resize<PixelFormat::kRgb888>(frame, box, ytaps_, xtaps_, out_h_, out_w_, out_rgb);
  }
  return true;
}

void Preprocessor::Quantize(const uint8_t* rgb, int8_t* out, size_t n) const {
  for (size_t i = 0; i < n; ++i) out[i] = lut_[rgb[i]];
}

}  // namespace sortcam
