#pragma once

// Private to core/tls: BoringSSL's error queue as text.

#include <string>

#include <openssl/err.h>

namespace sluice::tls::internal {

// The oldest queued error (the queue is cleared), or `fallback` when there is none.
inline std::string takeError(const char* fallback) {
  uint32_t e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) {
    return fallback;
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

} // namespace sluice::tls::internal
