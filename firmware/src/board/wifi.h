// The Wi-Fi edge: station mode, reconnect with exponential backoff (1 s doubling to 60 s).
#pragma once

namespace sortcam {
namespace board {

// Starts the station; returns at once (connection happens in the background).
void StartWifi(const char* ssid, const char* password);
bool WifiConnected();
// Signal strength of the access point in dBm, 0 when not connected.
int WifiRssi();

}  // namespace board
}  // namespace sortcam
