// MQTT contract, version 1: the one C++ definition of topics, payload fields and limits.
//
// Python twin: sortcam/mqtt_contract.py. tests/firmware/test_contract_agreement.py parses
// this header and fails when a name or a limit differs from the Python module.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sortcam {
namespace mqtt {

constexpr int kVersion = 1;
constexpr const char* kDefaultRoot = "sortcam";
constexpr size_t kMaxPayload = 4096;  // bytes; larger payloads are rejected unparsed
constexpr size_t kDeviceIdMax = 32;
constexpr size_t kLabelMax = 64;
constexpr uint32_t kSeqMax = 4294967295u;
constexpr uint32_t kLatencyMaxMs = 600000;
constexpr int kTopMax = 5;
constexpr int kQos = 1;

// Last topic level: <root>/<device>/<kind> for classification, status, cmd, sample;
// <root>/line/<line>/<kind> for decision and host; <root>/model alone.
constexpr const char* kClassification = "classification";
constexpr const char* kStatus = "status";
constexpr const char* kCmd = "cmd";
constexpr const char* kDecision = "decision";
constexpr const char* kSample = "sample";
constexpr const char* kLineLevel = "line";  // <root>/line/<line>/...: one sorting line's topics
constexpr const char* kHost = "host";       // the line controller's retained status and Last Will
constexpr const char* kModel = "model";     // <root>/model: retained announcement of the line's model

constexpr const char* kStates[] = {"online", "offline"};
constexpr const char* kCommands[] = {"capture", "set", "reboot"};
constexpr const char* kTriggers[] = {"continuous", "gpio", "command"};

// In the order the device writes them.
constexpr const char* kClassificationFields[] = {
    "v", "device", "boot", "seq", "label", "class_id", "confidence", "top", "latency_ms", "model"};
constexpr const char* kStatusFields[] = {"v", "device", "state", "fw", "model", "uptime_s", "free_heap", "rssi", "fps"};
// Additive status fields this firmware also writes (after kStatusFields).
constexpr const char* kStatusExtraFields[] = {"arena_used", "invoke_ms", "dropped", "rejected_cmds", "trigger",
                                              "threshold"};
// Keys a "set" command may carry, with their limits.
constexpr const char* kSetKeys[] = {"threshold", "trigger", "interval_ms", "collect_every_ms", "collect_for_s"};
constexpr uint32_t kIntervalMaxMs = 60000;

// <root>/<device>/sample (docs/console.md "MQTT contract extension"): the JPEG frame of an
// item whose confidence is below the device's threshold, QoS 1, not retained.
constexpr const char* kSampleFields[] = {"v", "device", "boot", "seq", "label", "confidence", "width", "height",
                                         "jpeg"};
constexpr size_t kSampleMaxPayload = 98304;    // bytes of one sample message (kMaxPayload does not apply)
constexpr uint32_t kSampleMinIntervalMs = 2000;  // at most one sample per this many ms ...
constexpr uint32_t kSampleBurst = 1;             // ... after a burst of this many

// Dataset capture (sortcam collect, docs/DESIGN.md): {"cmd":"set","collect_every_ms":N,
// "collect_for_s":S} asks for the full camera frame every N ms for the next S seconds, as
// sample messages without "label" and "confidence", each taking the boot's next seq.
// collect_for_s 0 stops; collect_every_ms only comes with collect_for_s (default below).
constexpr uint32_t kCollectEveryMinMs = 2000;  // the sample topic's pace: kSampleMinIntervalMs
constexpr uint32_t kCollectEveryMaxMs = 600000;
constexpr uint32_t kCollectEveryDefaultMs = 2000;
constexpr uint32_t kCollectForMaxS = 3600;   // the longest lease one command grants
constexpr uint32_t kCollectMaxSide = 1600;   // pixels: width and height of a collected frame, at most
constexpr size_t kSampleJpegMax = 73344;     // bytes of JPEG that fit one sample message beside its fields
static_assert(kCollectEveryMinMs == kSampleMinIntervalMs, "collected frames keep the sample topic's pace");
static_assert(kSampleJpegMax == (kSampleMaxPayload - 512) * 3 / 4, "base64 takes 4/3, 512 bytes for the fields");

// True when the len bytes at text are all of [A-Za-z0-9_-] and 1 <= len <= kDeviceIdMax: the
// whole text, so a NUL, CR, LF, space or any byte >= 0x80 (UTF-8 look-alikes) anywhere fails
// (sortcam.mqtt_contract.ID_PATTERN with re.fullmatch).
bool IsValidId(const char* text, size_t len);

// True when the NUL-terminated device / boot id matches [A-Za-z0-9_-]{1,32}.
bool IsValidDeviceId(const char* device);
bool IsValidBootId(const char* boot);

// True when the len bytes at root make a topic root: no '+', '#' or control byte (NUL, CR,
// LF...), no leading or trailing '/' or space (sortcam.mqtt_contract.check_root).
bool IsValidRoot(const char* root, size_t len);

// Writes "<root>/<device>/<kind>" NUL-terminated into out; returns its length, 0 when it
// does not fit or root/device are invalid.
size_t BuildDeviceTopic(const char* root, const char* device, const char* kind, char* out, size_t out_size);

}  // namespace mqtt
}  // namespace sortcam
