#include "sortcam/mqtt_contract.h"

#include <cstdio>
#include <cstring>

namespace sortcam {
namespace mqtt {

bool IsValidId(const char* text, size_t len) {
  if (text == nullptr || len < 1 || len > kDeviceIdMax) return false;
  for (size_t i = 0; i < len; ++i) {
    const char c = text[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidDeviceId(const char* device) { return device != nullptr && IsValidId(device, std::strlen(device)); }

bool IsValidBootId(const char* boot) { return boot != nullptr && IsValidId(boot, std::strlen(boot)); }

bool IsValidRoot(const char* root, size_t len) {
  if (root == nullptr || len == 0) return false;
  if (root[0] == '/' || root[0] == ' ' || root[len - 1] == '/' || root[len - 1] == ' ') return false;
  for (size_t i = 0; i < len; ++i) {
    const unsigned char c = static_cast<unsigned char>(root[i]);
    if (c < 0x20 || c == 0x7f || c == '+' || c == '#') return false;
  }
  return true;
}

size_t BuildDeviceTopic(const char* root, const char* device, const char* kind, char* out, size_t out_size) {
  if (root == nullptr || device == nullptr || kind == nullptr) return 0;
  const size_t root_len = std::strlen(root);
  if (!IsValidRoot(root, root_len)) return 0;
  if (!IsValidDeviceId(device)) return 0;
  const int n = std::snprintf(out, out_size, "%s/%s/%s", root, device, kind);
  if (n < 0 || static_cast<size_t>(n) >= out_size) return 0;
  return static_cast<size_t>(n);
}

}  // namespace mqtt
}  // namespace sortcam
