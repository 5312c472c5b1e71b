// Sample frames on <root>/<device>/sample: the payload writer and the device's rate limiter.
//
// Python twins: sortcam.mqtt_contract.encode_sample and SampleRateLimiter (docs/console.md,
// "MQTT contract extension"). Golden vectors (tests/data/golden/samples.txt,
// rate_limits.txt) hold both sides to the same bytes and the same decisions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/mqtt_contract.h"

namespace sortcam {

struct SampleFields {
  const char* device = "";
  const char* boot = "";
  uint32_t seq = 0;
  const char* label = nullptr;  // nullptr: no "label" key
  bool has_confidence = false;  // false: no "confidence" key
  float confidence = 0.0f;      // 0..1, written as Python writes round(confidence, 4)
  uint32_t width = 0;           // pixels of the frame, 0 = unknown
  uint32_t height = 0;
};

enum class SampleResult : uint8_t {
  kOk = 0,
  kTooLarge,  // the message would exceed mqtt::kSampleMaxPayload
  kNotJpeg,   // the bytes do not start with FF D8
  kBadField,  // invalid device or boot id, confidence not a number in 0..1, width/height over 65535
  kNoRoom,    // the caller's buffer is smaller than the message
};

const char* SampleResultName(SampleResult result);

// Characters of the base64 text of n bytes (with padding).
constexpr size_t Base64Length(size_t n) { return (n + 2) / 3 * 4; }

// Standard base64 (RFC 4648 alphabet, '=' padding, no line breaks), as Python's
// base64.b64encode. Writes Base64Length(n) characters and a NUL when room is left;
// returns the length, 0 when out_size is too small (and n > 0).
size_t Base64Encode(const uint8_t* data, size_t n, char* out, size_t out_size);

// The float as Python's json.dumps(round(float(value), 4)) writes it for 0 <= value <= 1:
// "%.4f" with trailing zeros removed, keeping one digit after the point ("0.5", "1.0").
// out needs 8 bytes. False for a value out of range or not a number.
bool FormatRound4(float value, char* out, size_t out_size);

// Bytes of the sample message for these fields and a jpeg_len-byte JPEG (no NUL), whether
// or not it exceeds the limit; 0 when a field is invalid.
size_t SampleMessageLength(const SampleFields& fields, size_t jpeg_len);

// Writes {"v":1,"device":..,"boot":..,"seq":..,["label":..,]["confidence":..,]"width":..,
// "height":..,"jpeg":"<base64>"}, byte for byte sortcam.mqtt_contract.encode_sample.
// *out_len gets the length (a NUL follows when room is left). Nothing but kOk has a
// usable payload.
SampleResult EncodeSample(const SampleFields& fields, const uint8_t* jpeg, size_t jpeg_len, char* out,
                          size_t out_size, size_t* out_len);

// EncodeSample plus a count of the samples it refused (each refusal is one frame the
// console never sees: the device logs it and the count is kept for its status).
class SampleWriter {
 public:
  SampleResult Write(const SampleFields& fields, const uint8_t* jpeg, size_t jpeg_len, char* out, size_t out_size,
                     size_t* out_len);
  uint32_t refused() const { return refused_; }

 private:
  uint32_t refused_ = 0;
};

// Token bucket: burst samples at once, then one per min_interval_ms; the twin of
// sortcam.mqtt_contract.SampleRateLimiter with the time in integer milliseconds (the
// bucket holds "credit" in ms, one sample costs min_interval_ms). now_ms is a monotonic
// millisecond clock that may wrap at 2^32 (elapsed time is computed modulo 2^32).
// min_interval_ms 0 allows every sample.
class SampleRateLimiter {
 public:
  explicit SampleRateLimiter(uint32_t min_interval_ms = mqtt::kSampleMinIntervalMs,
                             uint32_t burst = mqtt::kSampleBurst);

  // True: publish this sample now. False: skip it (counted in dropped()).
  bool Allow(uint32_t now_ms);
  uint32_t dropped() const { return dropped_; }
  uint32_t min_interval_ms() const { return interval_ms_; }

 private:
  uint32_t interval_ms_;
  uint64_t capacity_ms_;
  uint64_t credit_ms_;
  uint32_t last_ms_ = 0;
  bool has_last_ = false;
  uint32_t dropped_ = 0;
};

}  // namespace sortcam
