// Reference sorter firmware ([env:sorter], Arduino on an ESP32): speaks the serial
// contract with the host over USB serial and drives N gates. All protocol and timing
// logic is sortcam::Sorter from the portable core (host-tested); this file only moves
// bytes, reads the jam switch and switches outputs.
#include <Arduino.h>

#include "gates.h"
#include "sortcam/serial_protocol.h"
#include "sortcam/sorter.h"

#ifndef SORTER_GATE_PINS
#define SORTER_GATE_PINS 25, 26, 27, 14
#endif
#ifndef SORTER_JAM_PIN
#define SORTER_JAM_PIN 33  // jam switch to GND; -1 for none
#endif
#ifndef SORTER_PULSE_MS
#define SORTER_PULSE_MS 250
#endif

namespace {

const int kGatePins[] = {SORTER_GATE_PINS};
constexpr int kGates = sizeof(kGatePins) / sizeof(kGatePins[0]);
static_assert(kGates >= 1 && kGates <= sortcam::serial::kGateMax + 1, "1..16 gates");
constexpr uint32_t kJamDebounceMs = 50;

sortcam::Sorter* g_sorter = nullptr;
char g_line[sortcam::serial::kMaxLine + 2];
size_t g_line_len = 0;
bool g_overflow = false;
bool g_jam_reading = false;
uint32_t g_jam_since = 0;

void Send(const char* line, size_t len) {
  if (len > 0) Serial.write(reinterpret_cast<const uint8_t*>(line), len);
}

void ReadSerial(uint32_t now) {
  char out[sortcam::serial::kMaxLine + 1];
  while (Serial.available() > 0) {
    const char c = static_cast<char>(Serial.read());
    if (c == '\n') {
      // An over-long line cannot be checked: refuse it as a whole.
      const size_t n = g_overflow ? g_sorter->OnLine("?", 1, now, out, sizeof out)
                                  : g_sorter->OnLine(g_line, g_line_len, now, out, sizeof out);
      Send(out, n);
      g_line_len = 0;
      g_overflow = false;
    } else if (g_line_len < sizeof g_line) {
      g_line[g_line_len++] = c;
    } else {
      g_overflow = true;
    }
  }
}

void WatchJam(uint32_t now) {
  if (SORTER_JAM_PIN < 0) return;
  const bool jammed = digitalRead(SORTER_JAM_PIN) == LOW;
  if (jammed != g_jam_reading) {
    g_jam_reading = jammed;
    g_jam_since = now;
  } else if (now - g_jam_since >= kJamDebounceMs) {
    char out[sortcam::serial::kMaxLine + 1];
    Send(out, g_sorter->SetJammed(jammed, out, sizeof out));
  }
}

}  // namespace

void setup() {
  Serial.begin(sortcam::serial::kBaud);
  static sortcam::Sorter sorter(sortcam::SorterConfig{kGates, SORTER_PULSE_MS, nullptr});
  g_sorter = &sorter;
  sorter::InitGates(kGatePins, kGates);
  if (SORTER_JAM_PIN >= 0) pinMode(SORTER_JAM_PIN, INPUT_PULLUP);
  char out[sortcam::serial::kMaxLine + 1];
  Send(out, sorter.Ready(out, sizeof out));
}

void loop() {
  const uint32_t now = millis();
  ReadSerial(now);
  WatchJam(now);
  sortcam::GateAction actions[sortcam::serial::kGateMax + 1];
  const int n = g_sorter->Poll(now, actions, sortcam::serial::kGateMax + 1);
  for (int i = 0; i < n; ++i) sorter::SetGate(actions[i].gate, actions[i].open);
}
