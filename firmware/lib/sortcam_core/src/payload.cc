#include "sortcam/payload.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "sortcam/mqtt_contract.h"

namespace sortcam {

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
  static const char kHex[] = "0123456789abcdef";
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
  char text[24];
  std::snprintf(text, sizeof text, "%" PRIu64, value);
  return Raw(text);
}

JsonWriter& JsonWriter::Int(int64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "%" PRId64, value);
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
  std::snprintf(out, 9, "%08" PRIx32, random_value);
}

}  // namespace sortcam
