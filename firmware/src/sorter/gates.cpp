#include "gates.h"

#include <Arduino.h>

#ifndef SORTER_SERVO_GATES
#define SORTER_SERVO_GATES 0
#endif
#ifndef SORTER_SERVO_CLOSED_US
#define SORTER_SERVO_CLOSED_US 1000
#endif
#ifndef SORTER_SERVO_OPEN_US
#define SORTER_SERVO_OPEN_US 2000
#endif

namespace sorter {
namespace {

const int* g_pins = nullptr;
int g_count = 0;

#if SORTER_SERVO_GATES
constexpr int kServoHz = 50;
constexpr int kServoBits = 16;
// Pulse widths (microseconds) for the closed and open positions.
constexpr uint32_t kClosedUs = SORTER_SERVO_CLOSED_US;
constexpr uint32_t kOpenUs = SORTER_SERVO_OPEN_US;

uint32_t Duty(uint32_t pulse_us) { return pulse_us * ((1u << kServoBits) - 1) / (1000000u / kServoHz); }
#endif

}  // namespace

void InitGates(const int* pins, int count) {
  g_pins = pins;
  g_count = count;
  for (int i = 0; i < count; ++i) {
#if SORTER_SERVO_GATES
    ledcSetup(i, kServoHz, kServoBits);
    ledcAttachPin(pins[i], i);
    ledcWrite(i, Duty(kClosedUs));
#else
    pinMode(pins[i], OUTPUT);
    digitalWrite(pins[i], LOW);
#endif
  }
}

void SetGate(int gate, bool open) {
  if (gate < 0 || gate >= g_count) return;
#if SORTER_SERVO_GATES
  ledcWrite(gate, Duty(open ? kOpenUs : kClosedUs));
#else
  digitalWrite(g_pins[gate], open ? HIGH : LOW);
#endif
}

}  // namespace sorter
