#include "filters/common/host_check.h"

#include <cstdio>

namespace sluice::filters::common {

bool hostCompatible(const sluice_host_t* host, uint32_t host_major, uint32_t host_minor,
                    size_t size_needed, const char* filter) {
  if (host == nullptr) {
    return false;
  }
  if (host_major == SLUICE_ABI_VERSION_MAJOR && host->size >= size_needed) {
    return true;
  }
  if (host->size >= SLUICE_HOST_SIZE_THROUGH(sluice_host_log) && host->sluice_host_log != nullptr) {
    char message[256];
    int n = std::snprintf(message, sizeof(message),
                          "%s: built for C ABI %d.%d, host is %u.%u (host table of %u bytes, "
                          "this filter needs %zu)",
                          filter, SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR, host_major,
                          host_minor, host->size, size_needed);
    if (n > 0) {
      size_t len =
          static_cast<size_t>(n) < sizeof(message) ? static_cast<size_t>(n) : sizeof(message) - 1;
      host->sluice_host_log(nullptr, nullptr, SLUICE_LOG_ERROR, sluice_str_t{message, len});
    }
  }
  return false;
}

sluice_status_t streamFailed(const sluice_host_t* host, sluice_stream_t* stream, const char* filter,
                             const char* hook, const char* what) noexcept {
  char message[512];
  int n = std::snprintf(message, sizeof(message), "%s: exception in the %s hook: %s", filter, hook,
                        what);
  if (n > 0) {
    size_t len =
        static_cast<size_t>(n) < sizeof(message) ? static_cast<size_t>(n) : sizeof(message) - 1;
    host->sluice_host_log(nullptr, stream, SLUICE_LOG_ERROR, sluice_str_t{message, len});
  }
  static constexpr char kBody[] = "filter error\n";
  static constexpr char kDetails[] = "filter_exception";
  host->sluice_host_send_local_reply(stream, 500, nullptr, 0,
                                     sluice_str_t{kBody, sizeof(kBody) - 1},
                                     sluice_str_t{kDetails, sizeof(kDetails) - 1});
  return SLUICE_STATUS_STOP;
}

} // namespace sluice::filters::common
