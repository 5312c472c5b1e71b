#include "sortcam/camera_boards.h"

namespace sortcam {
namespace {

bool Exists(Chip chip, int gpio) {
  if (chip == Chip::kEsp32) return gpio >= 0 && gpio <= 39 && gpio != 20 && gpio != 24 && (gpio < 28 || gpio > 31);
  return gpio >= 0 && gpio <= 48 && (gpio < 22 || gpio > 25);
}

bool Reserved(Chip chip, int gpio) {
  if (chip == Chip::kEsp32) return (gpio >= 6 && gpio <= 11) || gpio == 16 || gpio == 17;  // flash, PSRAM
  return (gpio >= 26 && gpio <= 37) || gpio == 19 || gpio == 20;  // flash, octal PSRAM, USB
}

bool InputOnly(Chip chip, int gpio) { return chip == Chip::kEsp32 && gpio >= 34; }  // no output, no pull-up

}  // namespace

const char* CheckPins(const CameraPins& p) {
  const int outputs[] = {p.pwdn, p.reset, p.xclk, p.sccb_sda, p.sccb_scl};
  const int inputs[] = {p.d[0], p.d[1], p.d[2], p.d[3], p.d[4], p.d[5], p.d[6], p.d[7], p.vsync, p.href, p.pclk};
  int used[sizeof outputs / sizeof outputs[0] + sizeof inputs / sizeof inputs[0] + 1];
  int n = 0;
  for (int gpio : outputs) {
    if (gpio < 0) continue;
    if (InputOnly(p.chip, gpio)) return "an output on an input-only pin";
    used[n++] = gpio;
  }
  for (int gpio : inputs) {
    if (gpio < 0) return "a camera input is not connected";
    used[n++] = gpio;
  }
  const int camera_pins = n;
  if (p.trigger_gpio >= 0) {
    if (InputOnly(p.chip, p.trigger_gpio)) return "the beam-break input has no pull-up";
    used[n++] = p.trigger_gpio;
  }
  for (int i = 0; i < n; ++i) {
    if (!Exists(p.chip, used[i])) return "a pin the chip does not have";
    if (Reserved(p.chip, used[i])) return "a pin the flash, PSRAM or USB uses";
    for (int j = 0; j < i; ++j) {
      if (used[i] == used[j]) return i >= camera_pins ? "the beam-break input is a camera pin" : "a pin used twice";
    }
  }
  return nullptr;
}

}  // namespace sortcam
