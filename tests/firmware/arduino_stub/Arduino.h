// A stand-in for the Arduino core, just enough to build and drive the reference sorter's
// board glue (firmware/src/sorter) on the host: a scripted Serial, a settable clock and
// recorded pin levels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

constexpr int LOW = 0;
constexpr int HIGH = 1;
constexpr int OUTPUT = 1;
constexpr int INPUT_PULLUP = 2;

class FakeSerial {
 public:
  void begin(unsigned long baud) { baud_ = baud; }
  int available() { return static_cast<int>(input_.size() - read_at_); }
  int read() { return read_at_ < input_.size() ? static_cast<unsigned char>(input_[read_at_++]) : -1; }
  size_t write(const uint8_t* data, size_t len) {
    output_.append(reinterpret_cast<const char*>(data), len);
    return len;
  }
  // Test side.
  void Feed(const std::string& bytes) { input_ += bytes; }
  std::string TakeOutput() {
    std::string out;
    out.swap(output_);
    return out;
  }
  unsigned long baud() const { return baud_; }

 private:
  std::string input_;
  size_t read_at_ = 0;
  std::string output_;
  unsigned long baud_ = 0;
};

extern FakeSerial Serial;
extern uint32_t g_fake_millis;
extern std::map<int, int> g_fake_pins;        // level written per pin
extern std::map<int, int> g_fake_pin_inputs;  // level read per pin (default HIGH)

inline uint32_t millis() { return g_fake_millis; }
inline void pinMode(int, int) {}
inline void digitalWrite(int pin, int level) { g_fake_pins[pin] = level; }
inline int digitalRead(int pin) {
  auto it = g_fake_pin_inputs.find(pin);
  return it == g_fake_pin_inputs.end() ? HIGH : it->second;
}
