// The chip edge: reset reason, heap, uptime, watchdog, random boot id, restart.
#pragma once

#include <cstdint>

namespace sortcam {
namespace board {

// Logs why the chip restarted; a brownout gets advice about the supply.
void LogResetReason();
// Subscribes the calling task to the task watchdog with timeout_ms (panics and restarts
// when the loop stops feeding it, e.g. a hung camera or a stuck Invoke).
void StartWatchdog(uint32_t timeout_ms);
void FeedWatchdog();
uint32_t FreeHeapBytes();
uint64_t UptimeSeconds();
uint32_t NowMs();
uint32_t RandomU32();
void SleepMs(uint32_t ms);
[[noreturn]] void Restart(const char* why);

}  // namespace board
}  // namespace sortcam
