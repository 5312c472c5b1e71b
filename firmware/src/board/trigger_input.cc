#include "board/trigger_input.h"

#include <atomic>

#include "driver/gpio.h"
#include "esp_attr.h"
#include "esp_log.h"

namespace sortcam {
namespace board {
namespace {

std::atomic<bool> g_edge{false};

void IRAM_ATTR OnEdge(void*) { g_edge.store(true); }

}  // namespace

bool InitTriggerInput(int gpio) {
  if (!GPIO_IS_VALID_GPIO(gpio)) return false;  // -1: the board has no beam-break pin
  gpio_config_t io = {};
  io.pin_bit_mask = 1ULL << gpio;
  io.mode = GPIO_MODE_INPUT;
  io.pull_up_en = GPIO_PULLUP_ENABLE;
  io.pull_down_en = GPIO_PULLDOWN_DISABLE;
  io.intr_type = GPIO_INTR_NEGEDGE;
  if (gpio_config(&io) != ESP_OK) return false;
  const esp_err_t err = gpio_install_isr_service(0);
  if (err != ESP_OK && err != ESP_ERR_INVALID_STATE) return false;  // already installed is fine
  if (gpio_isr_handler_add(static_cast<gpio_num_t>(gpio), &OnEdge, nullptr) != ESP_OK) return false;
  ESP_LOGI("trigger", "beam-break input on GPIO%d (falling edge)", gpio);
  return true;
}

bool TakeTriggerEdge() { return g_edge.exchange(false); }

}  // namespace board
}  // namespace sortcam
