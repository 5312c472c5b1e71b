#include "sortcam/sample.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "sortcam/payload.h"

namespace sortcam {
namespace {

constexpr uint32_t kDimensionMax = 65535;  // validate_sample's limit on width and height

// Characters of text as a JSON string literal written by JsonWriter::String.
size_t JsonStringLength(const char* text) {
  size_t n = 2;
  for (const char* p = text; *p != '\0'; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      n += 2;
    } else if (c < 0x20) {
      n += 6;
    } else {
      n += 1;
    }
  }
  return n;
}

size_t DecimalLength(uint64_t value) {
  char text[kDecimalBytes];
  return FormatUnsigned(value, text);
}

bool FieldsValid(const SampleFields& f) {
  if (!mqtt::IsValidDeviceId(f.device) || !mqtt::IsValidBootId(f.boot)) return false;
  if (f.width > kDimensionMax || f.height > kDimensionMax) return false;
  if (f.has_confidence) {
    char text[16];
    if (!FormatRound4(f.confidence, text, sizeof text)) return false;
  }
  return true;
}

}  // namespace

const char* SampleResultName(SampleResult result) {
  switch (result) {
    case SampleResult::kOk:
      return "ok";
    case SampleResult::kTooLarge:
      return "too large";
    case SampleResult::kNotJpeg:
      return "not a JPEG";
    case SampleResult::kBadField:
      return "bad field";
    case SampleResult::kNoRoom:
      return "no room";
  }
  return "?";
}

size_t Base64Encode(const uint8_t* data, size_t n, char* out, size_t out_size) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const size_t len = Base64Length(n);
  if (len > out_size) return 0;
  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out[o++] = kAlphabet[(v >> 18) & 0x3F];
    out[o++] = kAlphabet[(v >> 12) & 0x3F];
    out[o++] = kAlphabet[(v >> 6) & 0x3F];
    out[o++] = kAlphabet[v & 0x3F];
  }
  if (i < n) {
    const bool two = i + 1 < n;
    const uint32_t v = (uint32_t{data[i]} << 16) | (two ? uint32_t{data[i + 1]} << 8 : 0u);
    out[o++] = kAlphabet[(v >> 18) & 0x3F];
    out[o++] = kAlphabet[(v >> 12) & 0x3F];
    out[o++] = two ? kAlphabet[(v >> 6) & 0x3F] : '=';
    out[o++] = '=';
  }
  if (o < out_size) out[o] = '\0';
  return o;
}

bool FormatRound4(float value, char* out, size_t out_size) {
  if (out_size < 8 || !std::isfinite(value) || value < 0.0f || value > 1.0f) return false;
  // printf rounds the exact binary value to 4 decimals, as Python's round(x, 4) does; the
  // shortest repr of that double is those 4 decimals without trailing zeros.
  const int n = std::snprintf(out, out_size, "%.4f", static_cast<double>(value));
  if (n <= 0 || static_cast<size_t>(n) >= out_size) return false;
  size_t end = static_cast<size_t>(n);
  while (end > 0 && out[end - 1] == '0' && out[end - 2] != '.') --end;
  out[end] = '\0';
  return true;
}

size_t SampleMessageLength(const SampleFields& f, size_t jpeg_len) {
  if (!FieldsValid(f)) return 0;
  size_t n = std::strlen("{\"v\":") + DecimalLength(mqtt::kVersion);
  n += std::strlen(",\"device\":") + JsonStringLength(f.device);
  n += std::strlen(",\"boot\":") + JsonStringLength(f.boot);
  n += std::strlen(",\"seq\":") + DecimalLength(f.seq);
  if (f.label != nullptr) n += std::strlen(",\"label\":") + JsonStringLength(f.label);
  if (f.has_confidence) {
    char text[16];
    FormatRound4(f.confidence, text, sizeof text);
    n += std::strlen(",\"confidence\":") + std::strlen(text);
  }
  n += std::strlen(",\"width\":") + DecimalLength(f.width);
  n += std::strlen(",\"height\":") + DecimalLength(f.height);
  n += std::strlen(",\"jpeg\":\"") + Base64Length(jpeg_len) + std::strlen("\"}");
  return n;
}

SampleResult EncodeSample(const SampleFields& f, const uint8_t* jpeg, size_t jpeg_len, char* out, size_t out_size,
                          size_t* out_len) {
  *out_len = 0;
  if (!FieldsValid(f)) return SampleResult::kBadField;
  if (jpeg == nullptr || jpeg_len < 2 || jpeg[0] != 0xFF || jpeg[1] != 0xD8) return SampleResult::kNotJpeg;
  const size_t total = SampleMessageLength(f, jpeg_len);
  if (total > mqtt::kSampleMaxPayload) return SampleResult::kTooLarge;
  if (total > out_size) return SampleResult::kNoRoom;

  JsonWriter w(out, out_size);
  w.Raw("{\"v\":").Int(mqtt::kVersion);
  w.Raw(",\"device\":").String(f.device);
  w.Raw(",\"boot\":").String(f.boot);
  w.Raw(",\"seq\":").Uint(f.seq);
  if (f.label != nullptr) w.Raw(",\"label\":").String(f.label);
  if (f.has_confidence) {
    char text[16];
    FormatRound4(f.confidence, text, sizeof text);
    w.Raw(",\"confidence\":").Raw(text);
  }
  w.Raw(",\"width\":").Uint(f.width);
  w.Raw(",\"height\":").Uint(f.height);
  w.Raw(",\"jpeg\":\"");
  // JsonWriter keeps one byte for its NUL, so a message of exactly out_size bytes is
  // written by hand from here on.
  size_t at = w.length();
  if (!w.ok() || at + Base64Length(jpeg_len) + 2 > out_size) return SampleResult::kNoRoom;
  at += Base64Encode(jpeg, jpeg_len, out + at, out_size - at);
  out[at++] = '"';
  out[at++] = '}';
  if (at < out_size) out[at] = '\0';
  if (at != total) return SampleResult::kNoRoom;  // cannot happen: SampleMessageLength disagrees
  *out_len = at;
  return SampleResult::kOk;
}

SampleResult SampleWriter::Write(const SampleFields& fields, const uint8_t* jpeg, size_t jpeg_len, char* out,
                                 size_t out_size, size_t* out_len) {
  const SampleResult result = EncodeSample(fields, jpeg, jpeg_len, out, out_size, out_len);
  if (result != SampleResult::kOk) ++refused_;
  return result;
}

SampleRateLimiter::SampleRateLimiter(uint32_t min_interval_ms, uint32_t burst)
    : interval_ms_(min_interval_ms),
      capacity_ms_(uint64_t{burst > 0 ? burst : 1u} * min_interval_ms),
      credit_ms_(capacity_ms_) {}

bool SampleRateLimiter::Allow(uint32_t now_ms) {
  if (interval_ms_ == 0) return true;
  if (has_last_) {
    const uint64_t elapsed = static_cast<uint32_t>(now_ms - last_ms_);
    credit_ms_ = credit_ms_ + elapsed < capacity_ms_ ? credit_ms_ + elapsed : capacity_ms_;
  }
  last_ms_ = now_ms;
  has_last_ = true;
  if (credit_ms_ >= interval_ms_) {
    credit_ms_ -= interval_ms_;
    return true;
  }
  ++dropped_;
  return false;
}

}  // namespace sortcam
