// The beam-break edge: a falling edge on a GPIO (sensor output pulled low when the beam
// is interrupted) arms one burst in `gpio` trigger mode.
#pragma once

namespace sortcam {
namespace board {

// Configures the pin as input with pull-up and a falling-edge interrupt; false for a pin the
// chip does not have (-1: none configured).
bool InitTriggerInput(int gpio);
// True once per edge since the last call.
bool TakeTriggerEdge();

}  // namespace board
}  // namespace sortcam
