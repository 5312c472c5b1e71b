// ESP-IDF entry point of the camera firmware: a straight boot sequence, then the loop.
// Everything it wires lives behind the headers in board/ (hardware edges) and in
// lib/sortcam_core (the portable, host-tested logic).
#include "app.h"

extern "C" void app_main(void) {
  sortcam::app::Setup();
  while (true) sortcam::app::Loop();
}
