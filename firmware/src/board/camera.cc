#include "board/camera.h"

#include <cstdlib>

#include "board/camera_pins.h"
#include "driver/gpio.h"
#include "esp_camera.h"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "img_converters.h"

namespace sortcam {
namespace board {
namespace {

constexpr const char* kTag = "camera";

camera_fb_t* g_frame = nullptr;

camera_config_t Config() {
  camera_config_t c = {};
  const CameraPins& p = kCameraPins;
  c.pin_pwdn = p.pwdn;
  c.pin_reset = p.reset;
  c.pin_xclk = p.xclk;
  c.pin_sccb_sda = p.sccb_sda;
  c.pin_sccb_scl = p.sccb_scl;
  c.pin_d0 = p.d[0];
  c.pin_d1 = p.d[1];
  c.pin_d2 = p.d[2];
  c.pin_d3 = p.d[3];
  c.pin_d4 = p.d[4];
  c.pin_d5 = p.d[5];
  c.pin_d6 = p.d[6];
  c.pin_d7 = p.d[7];
  c.pin_vsync = p.vsync;
  c.pin_href = p.href;
  c.pin_pclk = p.pclk;
  c.xclk_freq_hz = 20000000;
  c.ledc_timer = LEDC_TIMER_0;
  c.ledc_channel = LEDC_CHANNEL_0;
  c.pixel_format = PIXFORMAT_RGB565;
  c.frame_size = FRAMESIZE_QQVGA;
  c.jpeg_quality = 12;  // unused for RGB565
  c.fb_count = 2;
  c.fb_location = CAMERA_FB_IN_PSRAM;
  c.grab_mode = CAMERA_GRAB_LATEST;
  c.sccb_i2c_port = -1;
  return c;
}

// Through PWDN where the board wires it; the S3 boards tie the sensor on, so there a retry
// only waits.
void PowerCycle() {
  if (kCameraPins.pwdn < 0) return;
  const auto pwdn = static_cast<gpio_num_t>(kCameraPins.pwdn);
  gpio_reset_pin(pwdn);
  gpio_set_direction(pwdn, GPIO_MODE_OUTPUT);
  gpio_set_level(pwdn, 1);  // power down
  vTaskDelay(pdMS_TO_TICKS(100));
  gpio_set_level(pwdn, 0);
  vTaskDelay(pdMS_TO_TICKS(100));
}

framesize_t FrameSizeOf(CollectSize size) {
  switch (size) {
    case CollectSize::kQvga: return FRAMESIZE_QVGA;
    case CollectSize::kVga: return FRAMESIZE_VGA;
    case CollectSize::kSvga: return FRAMESIZE_SVGA;
    case CollectSize::kXga: return FRAMESIZE_XGA;
    case CollectSize::kHd: return FRAMESIZE_HD;
    case CollectSize::kSxga: return FRAMESIZE_SXGA;
    case CollectSize::kUxga: return FRAMESIZE_UXGA;
  }
  return FRAMESIZE_SVGA;
}

}  // namespace

bool InitCamera(int attempts) {
  const camera_config_t config = Config();
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    const esp_err_t err = esp_camera_init(&config);
    if (err == ESP_OK) {
      ESP_LOGI(kTag, "OV2640 on the %s ready: QQVGA RGB565, 2 frame buffers in PSRAM, grab latest",
               kCameraPins.board);
      return true;
    }
    ESP_LOGE(kTag, "camera init failed (attempt %d of %d): %s (0x%x); check the ribbon cable and the 5 V supply",
             attempt, attempts, esp_err_to_name(err), static_cast<unsigned>(err));
    esp_camera_deinit();
    PowerCycle();
    vTaskDelay(pdMS_TO_TICKS(500 * attempt));
  }
  return false;
}

bool CaptureFrame(Frame* frame) {
  g_frame = esp_camera_fb_get();
  if (g_frame == nullptr) {
    ESP_LOGW(kTag, "frame capture failed");
    return false;
  }
  if (g_frame->format != PIXFORMAT_RGB565 || g_frame->len < g_frame->width * g_frame->height * 2) {
    ESP_LOGW(kTag, "unexpected frame: format %d, %u bytes", static_cast<int>(g_frame->format),
             static_cast<unsigned>(g_frame->len));
    ReleaseFrame();
    return false;
  }
  frame->data = g_frame->buf;
  frame->width = static_cast<int>(g_frame->width);
  frame->height = static_cast<int>(g_frame->height);
  frame->format = PixelFormat::kRgb565;
  return true;
}

void ReleaseFrame() {
  if (g_frame != nullptr) esp_camera_fb_return(g_frame);
  g_frame = nullptr;
}

bool RecoverCamera() {
  ESP_LOGW(kTag, "restarting the camera after repeated capture failures");
  ReleaseFrame();
  esp_camera_deinit();
  PowerCycle();
  return InitCamera(3);
}

bool EncodeJpeg(const uint8_t* rgb565, size_t len, int width, int height, int quality, uint8_t** jpeg,
                size_t* jpeg_len) {
  *jpeg = nullptr;
  *jpeg_len = 0;
  // fmt2jpg only reads src; its parameter is not const.
  if (!fmt2jpg(const_cast<uint8_t*>(rgb565), len, static_cast<uint16_t>(width), static_cast<uint16_t>(height),
               PIXFORMAT_RGB565, static_cast<uint8_t>(quality), jpeg, jpeg_len)) {
    ESP_LOGW(kTag, "JPEG encoding of a %dx%d frame failed", width, height);
    *jpeg = nullptr;
    return false;
  }
  return true;
}

void FreeJpeg(uint8_t* jpeg) { std::free(jpeg); }  // fmt2jpg allocates with heap_caps_malloc

bool CaptureJpeg(CollectSize size, int quality, JpegFrame* frame) {
  ReleaseFrame();
  esp_camera_deinit();
  camera_config_t config = Config();
  config.pixel_format = PIXFORMAT_JPEG;
  config.frame_size = FrameSizeOf(size);
  config.jpeg_quality = quality;
  config.fb_count = 1;
  config.grab_mode = CAMERA_GRAB_WHEN_EMPTY;
  const esp_err_t err = esp_camera_init(&config);
  if (err != ESP_OK) {
    ESP_LOGW(kTag, "camera restart in JPEG failed: %s", esp_err_to_name(err));
    return false;
  }
  for (int i = 0; i < kCollectSettleFrames; ++i) {
    if (camera_fb_t* settling = esp_camera_fb_get()) esp_camera_fb_return(settling);
  }
  g_frame = esp_camera_fb_get();
  if (g_frame == nullptr || g_frame->format != PIXFORMAT_JPEG) {
    ESP_LOGW(kTag, "JPEG frame capture failed");
    ReleaseFrame();
    return false;
  }
  frame->data = g_frame->buf;
  frame->len = g_frame->len;
  frame->width = static_cast<uint32_t>(g_frame->width);
  frame->height = static_cast<uint32_t>(g_frame->height);
  return true;
}

bool RestoreCamera() {
  ReleaseFrame();
  esp_camera_deinit();
  return InitCamera(3);
}

}  // namespace board
}  // namespace sortcam
