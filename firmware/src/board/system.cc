#include "board/system.h"

#include "esp_err.h"
#include "esp_log.h"
#include "esp_random.h"
#include "esp_system.h"
#include "esp_task_wdt.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

namespace sortcam {
namespace board {
namespace {
constexpr const char* kTag = "system";
#if CONFIG_ESP_TASK_WDT_INIT
constexpr bool kWatchdogStartedByIdf = true;
#else
constexpr bool kWatchdogStartedByIdf = false;
#endif
}  // namespace

void LogResetReason() {
  const esp_reset_reason_t reason = esp_reset_reason();
  switch (reason) {
    case ESP_RST_BROWNOUT:
      ESP_LOGE(kTag, "restarted after a BROWNOUT: the supply sagged (camera + Wi-Fi peaks). Power the board "
                     "from a 5 V supply rated 2 A through the 5V pin, with short thick wires");
      break;
    case ESP_RST_TASK_WDT:
    case ESP_RST_INT_WDT:
    case ESP_RST_WDT:
      ESP_LOGE(kTag, "restarted by a watchdog (reason %d): the loop hung", static_cast<int>(reason));
      break;
    case ESP_RST_PANIC:
      ESP_LOGE(kTag, "restarted after a panic");
      break;
    default:
      ESP_LOGI(kTag, "reset reason %d", static_cast<int>(reason));
  }
}

void StartWatchdog(uint32_t timeout_ms) {
  esp_task_wdt_config_t config = {};
  config.timeout_ms = timeout_ms;
  config.idle_core_mask = 0;  // the loop task is what matters; inference may starve idle legitimately
  config.trigger_panic = true;
  // With CONFIG_ESP_TASK_WDT_INIT the IDF starts the watchdog before app_main; calling
  // esp_task_wdt_init then fails with ESP_ERR_INVALID_STATE and logs an ERROR line on
  // every boot, so the running one is reconfigured instead.
  const esp_err_t err = kWatchdogStartedByIdf ? esp_task_wdt_reconfigure(&config) : esp_task_wdt_init(&config);
  if (err != ESP_OK) ESP_LOGE(kTag, "task watchdog not configured: %s", esp_err_to_name(err));
  if (esp_task_wdt_add(nullptr) != ESP_OK) ESP_LOGE(kTag, "loop task not subscribed to the task watchdog");
}

void FeedWatchdog() { esp_task_wdt_reset(); }

uint32_t FreeHeapBytes() { return esp_get_free_heap_size(); }

uint64_t UptimeSeconds() { return static_cast<uint64_t>(esp_timer_get_time() / 1000000); }

uint32_t NowMs() { return static_cast<uint32_t>(esp_timer_get_time() / 1000); }

uint32_t RandomU32() { return esp_random(); }

void SleepMs(uint32_t ms) { vTaskDelay(pdMS_TO_TICKS(ms) > 0 ? pdMS_TO_TICKS(ms) : 1); }

void Restart(const char* why) {
  ESP_LOGE(kTag, "restarting in 10 s: %s", why);
  vTaskDelay(pdMS_TO_TICKS(10000));
  esp_restart();
}

}  // namespace board
}  // namespace sortcam
