#include "sortcam/command.h"

#include <bitset>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cJSON.h"
#include "sortcam/mqtt_contract.h"

namespace sortcam {
namespace {

// cJSON (ESP-IDF's json component; Debian's libcjson on the host) builds the tree. It is
// more lenient than Python's json module and keeps no source text, so one pass over the
// bytes first refuses what json.loads refuses and cJSON would take (leading zeros, "1.",
// any byte below 0x20 as whitespace or inside a string, a bad \u escape that it decodes to
// NUL, nesting past kMaxDepth, which also bounds cJSON's recursion on a small task stack),
// and notes which numbers were written as integers ("interval_ms": 1.0 is refused).
bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class StrictJsonLexer {
 public:
  // Bytes may be handed to cJSON when this returns nullptr; otherwise it is the reason.
  const char* Check(const char* data, size_t len) {
    p_ = data;
    end_ = data + len;
    int depth = 0;
    while (p_ != end_) {
      const char c = *p_;
      if (IsJsonSpace(c) || c == ',' || c == ':') {
        ++p_;
      } else if (c == '{' || c == '[') {
        if (++depth > kMaxDepth) return "payload nests deeper than 32 levels";
        ++p_;
      } else if (c == '}' || c == ']') {
        --depth;
        ++p_;
      } else if (c == '"') {
        if (const char* why = String()) return why;
      } else if (c == '-' || IsDigit(c)) {
        if (const char* why = Number()) return why;
      } else if (c >= 'a' && c <= 'z') {
        if (!Literal()) return kNotJson;
      } else {
        return kNotJson;  // NaN, Infinity, a BOM, control bytes, ...
      }
    }
    return nullptr;
  }

  // Whether the index-th number of the payload (document order) was written as an integer.
  bool IsInteger(size_t index) const { return index < count_ && integer_[index]; }

 private:
  static constexpr const char* kNotJson = "payload is not JSON";
  // cJSON 1.7.15 (Debian 12) reads a number through a 64-byte buffer; 1.7.18 (IDF 5.5) has
  // no such limit. Refusing longer ones keeps the host and the chip alike.
  static constexpr size_t kMaxNumberChars = 63;
  static constexpr size_t kMaxNumbers = mqtt::kMaxPayload / 2 + 1;  // "[0,0,...]"

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  static bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  const char* String() {
    ++p_;
    while (p_ != end_) {
      const unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') return nullptr;
      if (c < 0x20) return kNotJson;  // json.loads(strict=True) refuses raw control characters
      if (c != '\\') continue;
      if (p_ == end_) return kNotJson;
      const char e = *p_++;
      if (e == 'u') {
        if (end_ - p_ < 4 || !IsHex(p_[0]) || !IsHex(p_[1]) || !IsHex(p_[2]) || !IsHex(p_[3])) return kNotJson;
        // cJSON's strings end at NUL; no command name or key holds one, so nothing valid is lost.
        if (std::memcmp(p_, "0000", 4) == 0) return "payload holds a \\u0000 escape";
        p_ += 4;
      } else if (!(e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't')) {
        return kNotJson;
      }
    }
    return kNotJson;
  }

  // Python's NUMBER_RE, -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?, followed by a delimiter.
  const char* Number() {
    const char* start = p_;
    bool integer = true;
    if (*p_ == '-') ++p_;
    if (p_ == end_ || !IsDigit(*p_)) return kNotJson;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (p_ != end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return kNotJson;
      while (p_ != end_ && IsDigit(*p_)) ++p_;
      integer = false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return kNotJson;
      while (p_ != end_ && IsDigit(*p_)) ++p_;
      integer = false;
    }
    const bool delimited = p_ == end_ || IsJsonSpace(*p_) || *p_ == ',' || *p_ == ']' || *p_ == '}';
    if (!delimited) return kNotJson;  // "05", "1.e5", "1-2", as json.loads
    if (static_cast<size_t>(p_ - start) > kMaxNumberChars) return "payload holds a number longer than 63 characters";
    if (count_ < kMaxNumbers) integer_[count_] = integer;
    ++count_;
    return nullptr;
  }

  bool Literal() {
    const char* start = p_;
    while (p_ != end_ && *p_ >= 'a' && *p_ <= 'z') ++p_;
    const size_t n = static_cast<size_t>(p_ - start);
    return (n == 4 && (std::memcmp(start, "true", 4) == 0 || std::memcmp(start, "null", 4) == 0)) ||
           (n == 5 && std::memcmp(start, "false", 5) == 0);
  }

  const char* p_ = nullptr;
  const char* end_ = nullptr;
  size_t count_ = 0;
  std::bitset<kMaxNumbers> integer_;
};

struct JsonTree {
  explicit JsonTree(cJSON* r) : root(r) {}
  ~JsonTree() { cJSON_Delete(root); }
  JsonTree(const JsonTree&) = delete;
  JsonTree& operator=(const JsonTree&) = delete;
  cJSON* root;
};

// Python's validators refuse an object holding a key twice (sortcam.strict_json); cJSON
// keeps both copies, and a reader could check the first and act on the second.
const cJSON* FindDuplicateKey(const cJSON* node) {
  for (const cJSON* child = node->child; child != nullptr; child = child->next) {
    if (cJSON_IsObject(node)) {
      for (const cJSON* later = child->next; later != nullptr; later = later->next) {
        if (std::strcmp(child->string, later->string) == 0) return child;
      }
    }
    if (const cJSON* dup = FindDuplicateKey(child)) return dup;
  }
  return nullptr;
}

size_t CountNumbers(const cJSON* node) {
  if (cJSON_IsNumber(node)) return 1;
  size_t n = 0;
  for (const cJSON* child = node->child; child != nullptr; child = child->next) n += CountNumbers(child);
  return n;
}

bool Reject(char* error, size_t error_size, const char* reason) {
  if (error != nullptr && error_size > 0) std::snprintf(error, error_size, "%s", reason);
  return false;
}

bool RejectDuplicate(char* error, size_t error_size, const char* key) {
  char shown[25];
  size_t n = 0;
  for (; key[n] != '\0' && n + 1 < sizeof shown; ++n) {
    const unsigned char c = static_cast<unsigned char>(key[n]);
    shown[n] = c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';  // the reason goes to the log
  }
  shown[n] = '\0';
  if (error != nullptr && error_size > 0) std::snprintf(error, error_size, "duplicate key '%s'", shown);
  return false;
}

// One of the keys a command may carry, and whether its number was written as an integer.
struct Field {
  const cJSON* value = nullptr;
  bool integer = false;
  bool present() const { return value != nullptr; }
  bool is_number() const { return cJSON_IsNumber(value) && std::isfinite(value->valuedouble); }
};

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
  StrictJsonLexer lexer;
  if (const char* why = lexer.Check(payload, len)) return Reject(error, error_size, why);
  const char* end = nullptr;
  const JsonTree tree(cJSON_ParseWithLengthOpts(payload, len, &end, 0));
  if (tree.root == nullptr) return Reject(error, error_size, "payload is not JSON");
  for (const char* p = end; p != payload + len; ++p) {
    if (!IsJsonSpace(*p)) return Reject(error, error_size, "payload is not JSON");
  }
  if (!cJSON_IsObject(tree.root)) return Reject(error, error_size, "payload is not a JSON object");
  if (const cJSON* dup = FindDuplicateKey(tree.root)) return RejectDuplicate(error, error_size, dup->string);

  Field v, cmd, threshold, trigger, interval, collect_every, collect_for;
  bool unknown_key = false;
  size_t number_index = 0;
  for (const cJSON* member = tree.root->child; member != nullptr; member = member->next) {
    Field* field = std::strcmp(member->string, "v") == 0                  ? &v
                   : std::strcmp(member->string, "cmd") == 0                ? &cmd
                   : std::strcmp(member->string, "threshold") == 0          ? &threshold
                   : std::strcmp(member->string, "trigger") == 0            ? &trigger
                   : std::strcmp(member->string, "interval_ms") == 0        ? &interval
                   : std::strcmp(member->string, "collect_every_ms") == 0   ? &collect_every
                   : std::strcmp(member->string, "collect_for_s") == 0      ? &collect_for
                                                                             : nullptr;
    if (field == nullptr) {
      unknown_key = true;
    } else {
      field->value = member;
      field->integer = cJSON_IsNumber(member) && lexer.IsInteger(number_index);
    }
    number_index += CountNumbers(member);
  }

  if (v.present() && !(v.integer && v.value->valuedouble == mqtt::kVersion)) {
    return Reject(error, error_size, "unsupported version");
  }
  if (!cmd.present()) return Reject(error, error_size, "missing 'cmd'");
  if (!cJSON_IsString(cmd.value)) return Reject(error, error_size, "'cmd' must be a string");
  Command result;
  const char* name = cmd.value->valuestring;
  if (std::strcmp(name, "capture") == 0) {
    result.kind = CommandKind::kCapture;
  } else if (std::strcmp(name, "set") == 0) {
    result.kind = CommandKind::kSet;
  } else if (std::strcmp(name, "reboot") == 0) {
    result.kind = CommandKind::kReboot;
  } else {
    return Reject(error, error_size, "unknown command");
  }
  const bool has_args = unknown_key || threshold.present() || trigger.present() || interval.present() ||
                        collect_every.present() || collect_for.present();
  if (result.kind != CommandKind::kSet) {
    if (has_args) return Reject(error, error_size, "command takes no arguments");
    *out = result;
    return true;
  }
  if (!has_args) {
    return Reject(error, error_size,
                  "'set' needs at least one of threshold, trigger, interval_ms, collect_every_ms, collect_for_s");
  }
  if (unknown_key) return Reject(error, error_size, "'set' got unknown keys");
  if (threshold.present()) {
    if (!threshold.is_number()) return Reject(error, error_size, "'threshold' must be a number");
    const double t = threshold.value->valuedouble;
    if (!(t >= 0.0 && t <= 1.0)) return Reject(error, error_size, "'threshold' outside 0..1");
    result.has_threshold = true;
    result.threshold = threshold.integer ? t + 0.0 : t;  // an integer -0 is Python's int 0, not -0.0
  }
  if (trigger.present()) {
    if (!cJSON_IsString(trigger.value) ||
        !TriggerFromName(trigger.value->valuestring, std::strlen(trigger.value->valuestring), &result.trigger)) {
      return Reject(error, error_size, "'trigger' must be one of continuous, gpio, command");
    }
    result.has_trigger = true;
  }
  if (interval.present()) {
    if (!interval.integer) return Reject(error, error_size, "'interval_ms' must be an integer");
    const double ms = interval.value->valuedouble;
    if (!(ms >= 0.0 && ms <= mqtt::kIntervalMaxMs)) return Reject(error, error_size, "'interval_ms' outside 0..60000");
    result.has_interval = true;
    result.interval_ms = static_cast<uint32_t>(ms);
  }
  // validate_cmd's order: collect_every_ms needs collect_for_s before its own range counts.
  if (collect_every.present()) {
    if (!collect_for.present()) {
      return Reject(error, error_size, "'collect_every_ms' needs 'collect_for_s' (how long to send frames)");
    }
    if (!collect_every.integer) return Reject(error, error_size, "'collect_every_ms' must be an integer");
    const double ms = collect_every.value->valuedouble;
    if (!(ms >= mqtt::kCollectEveryMinMs && ms <= mqtt::kCollectEveryMaxMs)) {
      return Reject(error, error_size, "'collect_every_ms' outside 2000..600000");
    }
  }
  if (collect_for.present()) {
    if (!collect_for.integer) return Reject(error, error_size, "'collect_for_s' must be an integer");
    const double s = collect_for.value->valuedouble;
    if (!(s >= 0.0 && s <= mqtt::kCollectForMaxS)) return Reject(error, error_size, "'collect_for_s' outside 0..3600");
    result.has_collect = true;
    result.collect_for_s = static_cast<uint32_t>(s);
    result.collect_every_ms = collect_every.present() ? static_cast<uint32_t>(collect_every.value->valuedouble)
                                                      : mqtt::kCollectEveryDefaultMs;
  }
  *out = result;
  return true;
}

}  // namespace sortcam
