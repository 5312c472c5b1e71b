// The gate edge of the reference sorter: N outputs that divert an item into a bin.
// Solenoid/relay gates are a GPIO held high for the pulse; servo gates swing to an open
// angle and back (50 Hz PWM on the ESP32's LEDC, arduino-esp32 2.x API).
#pragma once

#include <stdint.h>

namespace sorter {

void InitGates(const int* pins, int count);
void SetGate(int gate, bool open);

}  // namespace sorter
