// Parsing and validation of payloads on <root>/<device>/cmd.
//
// Accepts what sortcam.mqtt_contract.validate_cmd accepts (strict UTF-8, the JSON grammar
// of Python's json module, "v" optional but 1 when present, no booleans for numbers) and
// refuses an object holding a key twice, as sortcam.strict_json does; table-driven and
// mutation cases in tests/data/golden/cmd_cases.txt hold the two to the same verdicts.
// The JSON tree comes from cJSON (ESP-IDF's json component; Debian's libcjson-dev on the
// host), behind a strict pass over the bytes (command.cc says what cJSON would let
// through). Deliberate limits, where a valid command is never near them: values nested
// deeper than kMaxDepth (Python's limit is its recursion depth), numbers longer than 63
// characters and the \u0000 escape are refused.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/detector.h"

namespace sortcam {

enum class CommandKind : uint8_t { kCapture, kSet, kReboot };

struct Command {
  CommandKind kind = CommandKind::kCapture;
  bool has_threshold = false;
  double threshold = 0.0;  // 0..1
  bool has_trigger = false;
  Trigger trigger = Trigger::kContinuous;
  bool has_interval = false;
  uint32_t interval_ms = 0;  // 0..kIntervalMaxMs: minimum time between frames
  // Dataset capture: collect_for_s present. 0 stops; collect_every_ms is
  // kCollectEveryMinMs..kCollectEveryMaxMs, kCollectEveryDefaultMs when left out.
  bool has_collect = false;
  uint32_t collect_every_ms = 0;
  uint32_t collect_for_s = 0;  // 0..kCollectForMaxS
};

constexpr int kMaxDepth = 32;

// Returns true and fills *out for a valid command. Otherwise writes a one-line reason
// (NUL-terminated, truncated to error_size) and returns false.
bool ParseCommand(const char* payload, size_t len, Command* out, char* error, size_t error_size);

// True when data[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool IsValidUtf8(const char* data, size_t len);

}  // namespace sortcam
