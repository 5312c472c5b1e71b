#include "sortcam/command.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sortcam/mqtt_contract.h"

namespace sortcam {
namespace {

// The last value seen for one of the keys a command may carry.
struct Value {
  enum Type : uint8_t { kAbsent, kInt, kFloat, kString, kOther } type = kAbsent;
  bool int_huge = false;  // an integer beyond +-10^18 (out of every range we accept)
  int64_t int_value = 0;
  double float_value = 0.0;
  std::string text;
};

enum Key : uint8_t { kKeyV, kKeyCmd, kKeyThreshold, kKeyTrigger, kKeyInterval, kKeyCount };

class Scanner {
 public:
  Scanner(const char* data, size_t len) : p_(data), end_(data + len) {}

  bool ParseTopLevel(Value values[kKeyCount], bool* unknown_key, const char** why) {
    SkipWs();
    if (p_ == end_ || *p_ != '{') {
      // Valid JSON that is not an object gets its own reason, as in mqtt_contract._obj.
      const bool json = SkipValue(0) && (SkipWs(), p_ == end_);
      *why = json ? "payload is not a JSON object" : "payload is not JSON";
      return false;
    }
    ++p_;
    SkipWs();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return Finish(why);
    }
    while (true) {
      SkipWs();
      std::string key;
      if (!ParseString(&key)) return Fail(why);
      SkipWs();
      if (p_ == end_ || *p_ != ':') return Fail(why);
      ++p_;
      SkipWs();
      int index = KeyIndex(key);
      if (index < 0) {
        *unknown_key = true;
        if (!SkipValue(1)) return Fail(why);
      } else {
        Value v;
        if (!ParseValue(&v)) return Fail(why);
        values[index] = v;  // duplicate keys: the last one wins, as in a Python dict
      }
      SkipWs();
      if (p_ == end_) return Fail(why);
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return Finish(why);
      }
      return Fail(why);
    }
  }

 private:
  static int KeyIndex(const std::string& key) {
    static const char* const kNames[kKeyCount] = {"v", "cmd", "threshold", "trigger", "interval_ms"};
    for (int i = 0; i < kKeyCount; ++i) {
      if (key == kNames[i]) return i;
    }
    return -1;
  }

  bool Fail(const char** why) {
    *why = "payload is not JSON";
    return false;
  }

  bool Finish(const char** why) {
    SkipWs();
    if (p_ != end_) return Fail(why);
    return true;
  }

  void SkipWs() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  bool Hex4(uint32_t* out) {
    if (end_ - p_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = Hex(p_[i]);
      if (h < 0) return false;
      v = v * 16 + static_cast<uint32_t>(h);
    }
    p_ += 4;
    *out = v;
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    // Lone surrogates are kept as 3-byte sequences: they can never equal a known name.
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // A string at p_ (opening quote included); decoded text into *out when non-null.
  bool ParseString(std::string* out) {
    if (p_ == end_ || *p_ != '"') return false;
    ++p_;
    while (p_ != end_) {
      const unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') return true;
      if (c < 0x20) return false;  // json.loads(strict=True) refuses raw control characters
      if (c != '\\') {
        if (out != nullptr) out->push_back(static_cast<char>(c));
        continue;
      }
      if (p_ == end_) return false;
      const char e = *p_++;
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            const char* save = p_;
            p_ += 2;
            uint32_t low = 0;
            if (Hex4(&low) && low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else {
              p_ = save;  // not a pair: the next escape is read on its own
            }
          }
          if (out != nullptr) AppendUtf8(cp, out);
          continue;
        }
        default:
          return false;
      }
      if (out != nullptr) out->push_back(plain);
    }
    return false;
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }

  // Python's NUMBER_RE: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?, longest match.
  bool ParseNumber(Value* v) {
    const char* start = p_;
    const char* q = p_;
    if (q != end_ && *q == '-') ++q;
    if (q == end_ || !IsDigit(*q)) return false;
    if (*q == '0') {
      ++q;
    } else {
      while (q != end_ && IsDigit(*q)) ++q;
    }
    const char* int_end = q;
    bool is_float = false;
    if (q != end_ && *q == '.' && q + 1 != end_ && IsDigit(q[1])) {
      q += 2;
      while (q != end_ && IsDigit(*q)) ++q;
      is_float = true;
    }
    if (q != end_ && (*q == 'e' || *q == 'E')) {
      const char* e = q + 1;
      if (e != end_ && (*e == '+' || *e == '-')) ++e;
      if (e != end_ && IsDigit(*e)) {
        while (e != end_ && IsDigit(*e)) ++e;
        q = e;
        is_float = true;
      }
    }
    p_ = q;
    if (is_float) {
      const std::string token(start, q);
      v->type = Value::kFloat;
      v->float_value = std::strtod(token.c_str(), nullptr);
      return true;
    }
    v->type = Value::kInt;
    const bool negative = *start == '-';
    const char* digits = negative ? start + 1 : start;
    if (int_end - digits > 18) {
      v->int_huge = true;
      return true;
    }
    int64_t value = 0;
    for (const char* d = digits; d != int_end; ++d) value = value * 10 + (*d - '0');
    v->int_value = negative ? -value : value;
    return true;
  }

  bool Literal(const char* word) {
    const size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  bool ParseValue(Value* v) {
    if (p_ == end_) return false;
    const char c = *p_;
    if (c == '"') {
      v->type = Value::kString;
      return ParseString(&v->text);
    }
    if (c == '-' || IsDigit(c)) return ParseNumber(v);
    v->type = Value::kOther;
    // NaN, Infinity and -Infinity are refused (mqtt_contract._reject_constant).
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    if (c == '{' || c == '[') return SkipValue(1);
    return false;
  }

  // Any JSON value at p_, discarded.
  bool SkipValue(int depth) {
    if (p_ == end_) return false;
    const char c = *p_;
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) return false;
      const char close = c == '{' ? '}' : ']';
      ++p_;
      SkipWs();
      if (p_ != end_ && *p_ == close) {
        ++p_;
        return true;
      }
      while (true) {
        SkipWs();
        if (c == '{') {
          if (!ParseString(nullptr)) return false;
          SkipWs();
          if (p_ == end_ || *p_ != ':') return false;
          ++p_;
          SkipWs();
        }
        if (!SkipValue(depth + 1)) return false;
        SkipWs();
        if (p_ == end_) return false;
        if (*p_ == ',') {
          ++p_;
          continue;
        }
        if (*p_ == close) {
          ++p_;
          return true;
        }
        return false;
      }
    }
    Value scratch;
    return ParseValue(&scratch);
  }

  const char* p_;
  const char* end_;
};

bool Reject(char* error, size_t error_size, const char* reason) {
  if (error != nullptr && error_size > 0) std::snprintf(error, error_size, "%s", reason);
  return false;
}

bool IsNumber(const Value& v) { return v.type == Value::kInt || (v.type == Value::kFloat && std::isfinite(v.float_value)); }

double NumberOf(const Value& v) {
  return v.type == Value::kInt ? static_cast<double>(v.int_value) : v.float_value;
}

}  // namespace

bool IsValidUtf8(const char* data, size_t len) {
  const unsigned char* s = reinterpret_cast<const unsigned char*>(data);
  size_t i = 0;
  while (i < len) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
    } else {
      return false;
    }
    if (i + n >= len) return false;  // truncated sequence
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k <= n; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
    }
    i += n + 1;
  }
  return true;
}

bool ParseCommand(const char* payload, size_t len, Command* out, char* error, size_t error_size) {
  if (len > mqtt::kMaxPayload) return Reject(error, error_size, "payload too large");
  if (!IsValidUtf8(payload, len)) return Reject(error, error_size, "payload is not UTF-8");
  Value values[kKeyCount];
  bool unknown_key = false;
  const char* why = "payload is not JSON";
  Scanner scanner(payload, len);
  if (!scanner.ParseTopLevel(values, &unknown_key, &why)) return Reject(error, error_size, why);

  const Value& v = values[kKeyV];
  if (v.type != Value::kAbsent && !(v.type == Value::kInt && !v.int_huge && v.int_value == mqtt::kVersion)) {
    return Reject(error, error_size, "unsupported version");
  }
  const Value& cmd = values[kKeyCmd];
  if (cmd.type == Value::kAbsent) return Reject(error, error_size, "missing 'cmd'");
  if (cmd.type != Value::kString) return Reject(error, error_size, "'cmd' must be a string");
  Command result;
  if (cmd.text == "capture") {
    result.kind = CommandKind::kCapture;
  } else if (cmd.text == "set") {
    result.kind = CommandKind::kSet;
  } else if (cmd.text == "reboot") {
    result.kind = CommandKind::kReboot;
  } else {
    return Reject(error, error_size, "unknown command");
  }
  const bool has_args = unknown_key || values[kKeyThreshold].type != Value::kAbsent ||
                        values[kKeyTrigger].type != Value::kAbsent || values[kKeyInterval].type != Value::kAbsent;
  if (result.kind != CommandKind::kSet) {
    if (has_args) return Reject(error, error_size, "command takes no arguments");
    *out = result;
    return true;
  }
  if (!has_args) return Reject(error, error_size, "'set' needs at least one of threshold, trigger, interval_ms");
  if (unknown_key) return Reject(error, error_size, "'set' got unknown keys");
  const Value& threshold = values[kKeyThreshold];
  if (threshold.type != Value::kAbsent) {
    if (!IsNumber(threshold) || threshold.int_huge) return Reject(error, error_size, "'threshold' must be a number");
    const double t = NumberOf(threshold);
    if (!(t >= 0.0 && t <= 1.0)) return Reject(error, error_size, "'threshold' outside 0..1");
    result.has_threshold = true;
    result.threshold = t;
  }
  const Value& trigger = values[kKeyTrigger];
  if (trigger.type != Value::kAbsent) {
    if (trigger.type != Value::kString || !TriggerFromName(trigger.text.data(), trigger.text.size(), &result.trigger)) {
      return Reject(error, error_size, "'trigger' must be one of continuous, gpio, command");
    }
    result.has_trigger = true;
  }
  const Value& interval = values[kKeyInterval];
  if (interval.type != Value::kAbsent) {
    if (interval.type != Value::kInt) return Reject(error, error_size, "'interval_ms' must be an integer");
    if (interval.int_huge || interval.int_value < 0 || interval.int_value > mqtt::kIntervalMaxMs) {
      return Reject(error, error_size, "'interval_ms' outside 0..60000");
    }
    result.has_interval = true;
    result.interval_ms = static_cast<uint32_t>(interval.int_value);
  }
  *out = result;
  return true;
}

}  // namespace sortcam
