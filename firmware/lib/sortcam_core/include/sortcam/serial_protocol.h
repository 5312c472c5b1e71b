// Serial contract, version 1 (host to sorter): the one C++ definition.
//
// Python twin: sortcam/serial_contract.py (checksum, encode, decode, parse). Lines are
// "<body>*<CS>\n" with CS the XOR of every body byte as two hex digits (written upper case).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sortcam {
namespace serial {

constexpr int kVersion = 1;
constexpr uint32_t kBaud = 115200;
constexpr size_t kMaxLine = 80;  // longest line either side may send, '\n' included
constexpr uint32_t kIdMin = 1;
constexpr uint32_t kIdMax = 4294967295u;
constexpr int kGateMax = 15;
constexpr uint32_t kDelayMaxMs = 600000;
constexpr const char* kNakReasons[] = {"checksum", "syntax", "gate", "delay", "busy", "jam", "full"};
constexpr const char* kEvents[] = {"JAM", "READY", "BIN_FULL", "CLEARED"};
constexpr const char* kHostVerbs[] = {"SORT", "PING"};
constexpr const char* kSorterVerbs[] = {"ACK", "NAK", "PONG", "EVT"};

enum class Verb : uint8_t { kSort, kPing, kAck, kNak, kPong, kEvt };

// XOR of every byte of body.
uint8_t Checksum(const char* body, size_t len);

// Writes "body*CS\n" (NUL-terminated) into out. Returns the line length without the NUL,
// or 0 when the body is empty, holds '*', CR, LF or a non-printable byte, or the line
// would exceed kMaxLine.
size_t Encode(const char* body, char* out, size_t out_size);

enum class DecodeResult : uint8_t { kOk, kBadChecksum, kMalformed };

// Checks one received line (trailing CR/LF allowed). On kOk and kBadChecksum, *body_len
// is the length of the body (the bytes before the last '*'). Lines longer than
// kMaxLine + 1 bytes are kMalformed (the Python decoder accepts any length; the sorter
// cannot buffer them).
DecodeResult Decode(const char* line, size_t len, size_t* body_len);

constexpr size_t kTextMax = kMaxLine;  // room for any text field of a line within kMaxLine

struct Message {
  Verb verb = Verb::kPing;
  uint32_t item_id = 0;
  int gate = 0;
  uint32_t delay_ms = 0;
  int bins = 0;
  // Text fields are NUL-terminated; the lengths count bytes (a received line may hold a NUL).
  char reason[kTextMax + 1] = {};
  size_t reason_len = 0;
  char fw[kTextMax + 1] = {};
  size_t fw_len = 0;
  char text[kTextMax + 1] = {};
  size_t text_len = 0;
};

// Parses a checked body; false for an unknown or malformed message (as sortcam.serial_contract.parse).
bool Parse(const char* body, size_t len, Message* out);

// Parses a decimal uint token as the Python _uint does (digits only, at most 10, in lo..hi).
bool ParseUint(const char* token, size_t len, uint32_t lo, uint32_t hi, uint32_t* out);

}  // namespace serial
}  // namespace sortcam
