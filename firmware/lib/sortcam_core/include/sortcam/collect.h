// Dataset capture (sortcam collect): when a full camera frame goes to a collector, and
// whether a captured one may go.
//
// A collector sends {"cmd":"set","collect_every_ms":N,"collect_for_s":S} and renews it
// (a 60 s lease every 20 s, tools/collect.py); the device publishes its full frame as JPEG
// every N ms until the lease runs out or a collect_for_s 0 stops it, as sample messages
// without "label" and "confidence", each taking the boot's next seq (CameraApp). The
// lease lives in RAM only: a reboot forgets it and the collector's next renewal starts it
// again. Python twin: sim/twin.py (_set_collect, _collect_frame); the golden vectors in
// tests/data/golden/collect.txt (tests/firmware/collect_golden.py) hold both to the same
// frames for the same commands and clock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sortcam/mqtt_contract.h"

namespace sortcam {

// The JPEG sizes a collected frame may be captured at (the OV2640's, none over
// mqtt::kCollectMaxSide a side); board/camera maps each to esp32-camera's framesize_t.
enum class CollectSize : uint8_t { kQvga, kVga, kSvga, kXga, kHd, kSxga, kUxga };

struct CollectSizeInfo {
  CollectSize size;
  const char* name;  // the NVS setting "collect_size"
  uint16_t width;
  uint16_t height;
};

inline constexpr CollectSizeInfo kCollectSizes[] = {
    {CollectSize::kQvga, "qvga", 320, 240},   {CollectSize::kVga, "vga", 640, 480},
    {CollectSize::kSvga, "svga", 800, 600},   {CollectSize::kXga, "xga", 1024, 768},
    {CollectSize::kHd, "hd", 1280, 720},      {CollectSize::kSxga, "sxga", 1280, 1024},
    {CollectSize::kUxga, "uxga", 1600, 1200},
};
// SVGA: at esp32-camera's quality 12 an OV2640 frame is typically well under the
// 73,344 bytes of JPEG one sample message holds (not measured on this board).
constexpr CollectSize kDefaultCollectSize = CollectSize::kSvga;

const CollectSizeInfo& CollectSizeOf(CollectSize size);
// The whole text must be one of the names above.
bool CollectSizeFromName(const char* name, size_t len, CollectSize* out);

// A captured JPEG, valid until CameraBoard::RestoreCamera.
struct JpegFrame {
  const uint8_t* data = nullptr;
  size_t len = 0;
  uint32_t width = 0;
  uint32_t height = 0;
};

// Why a captured frame is not sent.
enum class CollectCheck : uint8_t {
  kOk = 0,
  kNotJpeg,   // no FF D8 start
  kTooWide,   // width or height over mqtt::kCollectMaxSide, or 0
  kTooLarge,  // more than mqtt::kSampleJpegMax bytes of JPEG
};
const char* CollectCheckName(CollectCheck check);
CollectCheck CheckCollectedFrame(const uint8_t* jpeg, size_t jpeg_len, uint32_t width, uint32_t height);

// The lease, the pace and the JPEG quality of collected frames. now_ms is a monotonic
// millisecond clock that may wrap at 2^32.
class FrameCollector {
 public:
  // esp32-camera's jpeg_quality: 0..63, lower is finer. A frame too large for a sample
  // message makes the next one coarser by kQualityStep; one that used under half the room
  // makes it finer again, never finer than the configured start.
  static constexpr int kStartQuality = 12;
  static constexpr int kCoarsestQuality = 63;
  static constexpr int kQualityStep = 6;

  enum class Change : uint8_t { kStarted, kRenewed, kStopped };

  // A valid set command's collect_every_ms and collect_for_s (sortcam.mqtt_contract
  // ranges, checked by ParseCommand). for_s 0 stops. Otherwise frames go until now_ms +
  // for_s s; a new collection, or a new pace, sends its first frame at once, a renewal at
  // the same pace keeps the pace (the twin's _set_collect).
  Change Set(uint32_t now_ms, uint32_t every_ms, uint32_t for_s);

  // Called once per loop pass: true when a frame is due now. The attempt takes the slot,
  // whatever becomes of it, so the next one is every_ms later (a failing camera is not
  // retried at once). A lease that ran out ends here (counted in expired()).
  bool Due(uint32_t now_ms);

  // What became of a due frame's capture, for the quality of the next one.
  void OnCaptured(CollectCheck check, size_t jpeg_len);

  bool active() const { return active_; }
  uint32_t every_ms() const { return every_ms_; }
  int jpeg_quality() const { return quality_; }
  uint32_t expired() const { return expired_; }

 private:
  bool active_ = false;
  uint32_t every_ms_ = mqtt::kCollectEveryDefaultMs;
  uint32_t until_ms_ = 0;
  uint32_t next_ms_ = 0;
  int quality_ = kStartQuality;
  uint32_t expired_ = 0;
};

}  // namespace sortcam
