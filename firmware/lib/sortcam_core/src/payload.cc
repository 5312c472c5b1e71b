#include "sortcam/payload.h"

#include <cstdio>
#include <cstring>

#include "sortcam/mqtt_contract.h"

namespace sortcam {
namespace {
constexpr char kHex[] = "0123456789abcdef";
}  // namespace

JsonWriter::JsonWriter(char* out, size_t size) : out_(out), size_(size) {
  if (size_ > 0) out_[0] = '\0';
}

void JsonWriter::Put(char c) {
  if (length_ + 1 >= size_) {
    ok_ = false;
    return;
  }
  out_[length_++] = c;
  out_[length_] = '\0';
}

JsonWriter& JsonWriter::Raw(const char* text) {
  for (const char* p = text; *p != '\0'; ++p) Put(*p);
  return *this;
}

JsonWriter& JsonWriter::String(const char* text) {
  Put('"');
  for (const char* p = text; *p != '\0'; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    switch (c) {
      case '"':
        Raw("\\\"");
        break;
      case '\\':
        Raw("\\\\");
        break;
      case '\b':
        Raw("\\b");
        break;
      case '\f':
        Raw("\\f");
        break;
      case '\n':
        Raw("\\n");
        break;
      case '\r':
        Raw("\\r");
        break;
      case '\t':
        Raw("\\t");
        break;
      default:
        if (c < 0x20) {
          Raw("\\u00");
          Put(kHex[c >> 4]);
          Put(kHex[c & 0xF]);
        } else {
          Put(static_cast<char>(c));
        }
    }
  }
  Put('"');
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t value) {
  char text[kDecimalBytes];
  FormatUnsigned(value, text);
  return Raw(text);
}

JsonWriter& JsonWriter::Int(int64_t value) {
  char text[kDecimalBytes];
  FormatSigned(value, text);
  return Raw(text);
}

JsonWriter& JsonWriter::Fixed(float value, int decimals) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", decimals, static_cast<double>(value));
  return Raw(text);
}

size_t EncodeClassification(const ClassificationFields& f, const Item& item, char* out, size_t out_size) {
  JsonWriter w(out, out_size);
  w.Raw("{\"v\":").Int(mqtt::kVersion);
  w.Raw(",\"device\":").String(f.device);
  w.Raw(",\"boot\":").String(f.boot);
  w.Raw(",\"seq\":").Uint(f.seq);
  w.Raw(",\"label\":").String(f.labels[item.class_id]);
  w.Raw(",\"class_id\":").Int(item.class_id);
  w.Raw(",\"confidence\":").Fixed(item.confidence, 4);
  w.Raw(",\"top\":[");
  for (int k = 0; k < item.top_count; ++k) {
    if (k > 0) w.Raw(",");
    w.Raw("[").String(f.labels[item.top_class[k]]).Raw(",").Fixed(item.top_p[k], 4).Raw("]");
  }
  w.Raw("],\"latency_ms\":").Uint(f.latency_ms);
  w.Raw(",\"model\":").String(f.model);
  w.Raw("}");
  return w.ok() ? w.length() : 0;
}

size_t EncodeStatus(const StatusFields& f, char* out, size_t out_size) {
  JsonWriter w(out, out_size);
  w.Raw("{\"v\":").Int(mqtt::kVersion);
  w.Raw(",\"device\":").String(f.device);
  w.Raw(",\"state\":\"online\"");
  w.Raw(",\"fw\":").String(f.fw);
  w.Raw(",\"model\":").String(f.model);
  w.Raw(",\"uptime_s\":").Uint(f.uptime_s);
  w.Raw(",\"free_heap\":").Uint(f.free_heap);
  w.Raw(",\"rssi\":").Int(f.rssi);
  w.Raw(",\"fps\":").Fixed(f.fps, 2);
  w.Raw(",\"arena_used\":").Uint(f.arena_used);
  w.Raw(",\"invoke_ms\":").Uint(f.invoke_ms);
  w.Raw(",\"dropped\":").Uint(f.dropped);
  w.Raw(",\"rejected_cmds\":").Uint(f.rejected_cmds);
  w.Raw(",\"trigger\":").String(TriggerName(f.trigger));
  w.Raw(",\"threshold\":").Fixed(f.threshold, 4);
  w.Raw("}");
  return w.ok() ? w.length() : 0;
}

size_t EncodeOfflineStatus(const char* device, char* out, size_t out_size) {
  JsonWriter w(out, out_size);
  w.Raw("{\"v\":").Int(mqtt::kVersion).Raw(",\"device\":").String(device).Raw(",\"state\":\"offline\"}");
  return w.ok() ? w.length() : 0;
}

void FormatBootId(uint32_t random_value, char out[9]) {
  for (int i = 7; i >= 0; --i) {
    out[i] = kHex[random_value & 0xF];
    random_value >>= 4;
  }
  out[8] = '\0';
}

size_t FormatUnsigned(uint64_t value, char* out) {
  char reversed[kDecimalBytes];
  size_t n = 0;
  do {
    reversed[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (size_t i = 0; i < n; ++i) out[i] = reversed[n - 1 - i];
  out[n] = '\0';
  return n;
}

size_t FormatSigned(int64_t value, char* out) {
  if (value >= 0) return FormatUnsigned(static_cast<uint64_t>(value), out);
  out[0] = '-';
  // 0 - (uint64_t)value is the magnitude even for INT64_MIN, whose negation overflows int64_t.
  return 1 + FormatUnsigned(0 - static_cast<uint64_t>(value), out + 1);
}

}  // namespace sortcam
