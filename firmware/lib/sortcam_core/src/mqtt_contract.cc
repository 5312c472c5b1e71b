#include "sortcam/mqtt_contract.h"

#include <cstdio>
#include <cstring>

namespace sortcam {
namespace mqtt {

bool IsValidDeviceId(const char* device) {
  const size_t len = std::strlen(device);
  if (len < 1 || len > kDeviceIdMax) return false;
  for (size_t i = 0; i < len; ++i) {
    const char c = device[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

size_t BuildDeviceTopic(const char* root, const char* device, const char* kind, char* out, size_t out_size) {
  const size_t root_len = std::strlen(root);
  if (root_len == 0 || root[0] == '/' || root[root_len - 1] == '/' || std::strpbrk(root, "+#") != nullptr) return 0;
  if (!IsValidDeviceId(device)) return 0;
  const int n = std::snprintf(out, out_size, "%s/%s/%s", root, device, kind);
  if (n < 0 || static_cast<size_t>(n) >= out_size) return 0;
  return static_cast<size_t>(n);
}

}  // namespace mqtt
}  // namespace sortcam
