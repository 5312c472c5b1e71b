// MQTT payload writers: byte for byte what sortcam.mqtt_contract.encode_classification
// and sortcam.device_core.encode_status produce (golden vectors in tests/data/golden).
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/detector.h"

namespace sortcam {

// Appends text as a JSON string literal the way Python's json.dumps(ensure_ascii=False)
// writes it ("\"", "\\", \b \f \n \r \t, other control bytes as \u00xx, the rest verbatim).
// Returns false when out runs out of room.
class JsonWriter {
 public:
  JsonWriter(char* out, size_t size);
  JsonWriter& Raw(const char* text);
  JsonWriter& String(const char* text);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Fixed(float value, int decimals);  // printf("%.Nf", (double)value)
  bool ok() const { return ok_; }
  size_t length() const { return length_; }

 private:
  void Put(char c);
  char* out_;
  size_t size_;
  size_t length_ = 0;
  bool ok_ = true;
};

struct ClassificationFields {
  const char* device = "";
  const char* boot = "";
  uint32_t seq = 0;
  const char* const* labels = nullptr;  // class names in output order
  uint32_t latency_ms = 0;
  const char* model = "";  // first 12 hex digits of the model's sha256
};

// Writes the classification payload (no NUL counted; one is written when room is left).
// Returns its length, 0 when it does not fit.
size_t EncodeClassification(const ClassificationFields& fields, const Item& item, char* out, size_t out_size);

struct StatusFields {
  const char* device = "";
  const char* fw = "";
  const char* model = "";
  uint64_t uptime_s = 0;
  uint32_t free_heap = 0;
  int rssi = 0;
  float fps = 0.0f;
  uint32_t arena_used = 0;
  uint32_t invoke_ms = 0;
  uint32_t dropped = 0;
  uint32_t rejected_cmds = 0;
  Trigger trigger = Trigger::kContinuous;
  float threshold = 0.6f;
};

size_t EncodeStatus(const StatusFields& fields, char* out, size_t out_size);

// The Last Will: {"v":1,"device":"<id>","state":"offline"}.
size_t EncodeOfflineStatus(const char* device, char* out, size_t out_size);

// 8 lowercase hex characters of a 32-bit random value (the per-boot id).
void FormatBootId(uint32_t random_value, char out[9]);

// Decimal digits of value, NUL-terminated, into out (kDecimalBytes or more); returns the
// length. Written by hand rather than with printf: newlib-nano's printf has no 64-bit
// conversions, and some newlib builds (Debian's) leave PRIu64/PRId64 undefined.
constexpr size_t kDecimalBytes = 21;  // "-9223372036854775808" or "18446744073709551615", NUL
size_t FormatUnsigned(uint64_t value, char* out);
size_t FormatSigned(int64_t value, char* out);

}  // namespace sortcam
