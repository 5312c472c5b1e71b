// Device settings: NVS first, compiled defaults (from the git-ignored secrets.ini, via
// platformio.ini build flags) for anything NVS does not hold yet. `set` commands persist.
#pragma once

#include "sortcam/device_config.h"

namespace sortcam {
namespace board {

// Initialises NVS (erasing it when its layout is from another IDF version) and reads the
// settings. Logs where each came from; never logs passwords.
void LoadConfig(DeviceConfig* config);

// Persists the tunables a `set` command may change. False when NVS refuses.
bool SaveDecisionSettings(const DeviceConfig& config);

}  // namespace board
}  // namespace sortcam
