// The reference sorter's Arduino glue (firmware/src/sorter) built against a stub Arduino
// core: bytes in on Serial, gate levels out, jam switch debounced into events.
#include <gtest/gtest.h>

#include <string>

#include "Arduino.h"
#include "sortcam/serial_protocol.h"

FakeSerial Serial;
uint32_t g_fake_millis = 0;
std::map<int, int> g_fake_pins;
std::map<int, int> g_fake_pin_inputs;

void setup();
void loop();

namespace {

std::string Line(const std::string& body) {
  char out[96];
  return std::string(out, sortcam::serial::Encode(body.c_str(), out, sizeof out));
}

TEST(SorterGlue, DrivesGatesFromSerialAndReportsJams) {
  setup();
  EXPECT_EQ(Serial.baud(), 115200u);
  EXPECT_EQ(Serial.TakeOutput(), Line("EVT READY"));
  Serial.Feed(Line("PING") + Line("SORT 11 1 100"));
  loop();
  EXPECT_EQ(Serial.TakeOutput(), Line("PONG 0.1.0 4") + Line("ACK 11"));
  EXPECT_EQ(g_fake_pins[26], 0);  // gate 1 = second default pin, still closed
  g_fake_millis = 100;
  loop();
  EXPECT_EQ(g_fake_pins[26], 1);
  g_fake_millis = 350;
  loop();
  EXPECT_EQ(g_fake_pins[26], 0);

  Serial.Feed(std::string(200, 'X') + "\n");  // over-long line: refused as a whole
  loop();
  EXPECT_EQ(Serial.TakeOutput(), Line("NAK 0 syntax"));

  g_fake_pin_inputs[33] = 0;  // jam switch closes
  loop();
  g_fake_millis = 420;
  loop();
  EXPECT_EQ(Serial.TakeOutput(), Line("EVT JAM"));
  Serial.Feed(Line("SORT 12 0 0"));
  loop();
  EXPECT_EQ(Serial.TakeOutput(), Line("NAK 12 jam"));
}

}  // namespace
