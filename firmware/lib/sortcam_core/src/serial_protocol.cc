// Serial contract codec; mirrors sortcam/serial_contract.py byte for byte (golden vectors
// in tests/data/golden/serial_cases.jsonl).
#include "sortcam/serial_protocol.h"

#include <cstring>

namespace sortcam {
namespace serial {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly two hex digits, either case (sortcam/serial_contract.py decode).
bool ParseChecksumDigits(char a, char b, int* value) {
  const int ha = HexValue(a);
  const int hb = HexValue(b);
  if (ha < 0 || hb < 0) return false;
  *value = ha * 16 + hb;
  return true;
}

void CopyText(const char* src, size_t len, char* dst, size_t* dst_len) {
  const size_t n = len < kTextMax ? len : kTextMax;
  std::memcpy(dst, src, n);
  dst[n] = '\0';
  *dst_len = n;
}

}  // namespace

uint8_t Checksum(const char* body, size_t len) {
  uint8_t cs = 0;
  for (size_t i = 0; i < len; ++i) cs ^= static_cast<uint8_t>(body[i]);
  return cs;
}

size_t Encode(const char* body, char* out, size_t out_size) {
  const size_t len = std::strlen(body);
  if (len == 0) return 0;
  for (size_t i = 0; i < len; ++i) {
    const unsigned char c = static_cast<unsigned char>(body[i]);
    if (c < 0x20 || c > 0x7e || c == '*') return 0;
  }
  const size_t line_len = len + 4;  // "*CS\n"
  if (line_len > kMaxLine || line_len + 1 > out_size) return 0;
  static const char kHex[] = "0123456789ABCDEF";
  const uint8_t cs = Checksum(body, len);
  std::memcpy(out, body, len);
  out[len] = '*';
  out[len + 1] = kHex[cs >> 4];
  out[len + 2] = kHex[cs & 0xF];
  out[len + 3] = '\n';
  out[len + 4] = '\0';
  return line_len;
}

DecodeResult Decode(const char* line, size_t len, size_t* body_len) {
  if (len > kMaxLine + 1) return DecodeResult::kMalformed;
  for (size_t i = 0; i < len; ++i) {
    if (static_cast<unsigned char>(line[i]) > 0x7f) return DecodeResult::kMalformed;
  }
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) --len;
  size_t star = len;
  for (size_t i = len; i > 0; --i) {
    if (line[i - 1] == '*') {
      star = i - 1;
      break;
    }
  }
  if (star == len || star == 0 || len - star != 3) return DecodeResult::kMalformed;
  int cs = 0;
  if (!ParseChecksumDigits(line[star + 1], line[star + 2], &cs)) return DecodeResult::kMalformed;
  *body_len = star;
  return Checksum(line, star) == cs ? DecodeResult::kOk : DecodeResult::kBadChecksum;
}

bool ParseUint(const char* token, size_t len, uint32_t lo, uint32_t hi, uint32_t* out) {
  if (len == 0 || len > 10) return false;
  uint64_t value = 0;
  for (size_t i = 0; i < len; ++i) {
    if (token[i] < '0' || token[i] > '9') return false;
    value = value * 10 + static_cast<uint64_t>(token[i] - '0');
  }
  if (value < lo || value > hi) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

bool Parse(const char* body, size_t len, Message* out) {
  // body.split(" "): tokens may be empty; at most kMaxLine of them fit in a line.
  constexpr size_t kMaxTokens = kMaxLine + 1;
  const char* start[kMaxTokens];
  size_t length[kMaxTokens];
  size_t count = 0;
  size_t begin = 0;
  for (size_t i = 0; i <= len; ++i) {
    if (i == len || body[i] == ' ') {
      if (count == kMaxTokens) return false;
      start[count] = body + begin;
      length[count] = i - begin;
      ++count;
      begin = i + 1;
    }
  }
  const size_t args = count - 1;
  auto verb_is = [&](const char* verb) {
    return length[0] == std::strlen(verb) && std::memcmp(start[0], verb, length[0]) == 0;
  };
  Message m;
  uint32_t value = 0;
  if (verb_is("SORT") && args == 3) {
    m.verb = Verb::kSort;
    if (!ParseUint(start[1], length[1], kIdMin, kIdMax, &m.item_id)) return false;
    if (!ParseUint(start[2], length[2], 0, kGateMax, &value)) return false;
    m.gate = static_cast<int>(value);
    if (!ParseUint(start[3], length[3], 0, kDelayMaxMs, &m.delay_ms)) return false;
  } else if (verb_is("PING") && args == 0) {
    m.verb = Verb::kPing;
  } else if (verb_is("ACK") && args == 1) {
    m.verb = Verb::kAck;
    if (!ParseUint(start[1], length[1], kIdMin, kIdMax, &m.item_id)) return false;
  } else if (verb_is("NAK") && args == 2) {
    // A NAK for a line whose id could not be read carries id 0.
    m.verb = Verb::kNak;
    if (!ParseUint(start[1], length[1], 0, kIdMax, &m.item_id)) return false;
    CopyText(start[2], length[2], m.reason, &m.reason_len);
  } else if (verb_is("PONG") && args == 2) {
    m.verb = Verb::kPong;
    CopyText(start[1], length[1], m.fw, &m.fw_len);
    if (!ParseUint(start[2], length[2], 1, kGateMax + 1, &value)) return false;
    m.bins = static_cast<int>(value);
  } else if (verb_is("EVT") && args >= 1) {
    m.verb = Verb::kEvt;
    CopyText(start[1], static_cast<size_t>(body + len - start[1]), m.text, &m.text_len);
  } else {
    return false;
  }
  *out = m;
  return true;
}

}  // namespace serial
}  // namespace sortcam
