// Path normalisation (core/http/path.*) on arbitrary request targets. Besides memory errors it
// checks the function's contract: a normalised path starts with '/', has no "." or ".."
// segment and no "//", and normalising it again changes nothing.

#include "core/http/path.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sluice::http::PathStatus;
  std::string_view target(reinterpret_cast<const char*>(data), size);
  std::string out;
  bool changed = false;
  PathStatus st = sluice::http::normalizePath(target, out, &changed);
  if (st != PathStatus::Ok) {
    return 0;
  }
  std::string_view result = changed ? std::string_view(out) : target;
  if (result == "*") {
    return 0;
  }
  std::string_view path = result.substr(0, result.find('?'));
  if (path.empty() || path[0] != '/' || path.find("//") != std::string_view::npos ||
      path.find("/./") != std::string_view::npos || path.find("/../") != std::string_view::npos ||
      path.ends_with("/.") || path.ends_with("/..")) {
    std::abort();
  }
  std::string again;
  bool changed_again = false;
  if (sluice::http::normalizePath(result, again, &changed_again) != PathStatus::Ok ||
      (changed_again && again != result)) {
    std::abort(); // not idempotent
  }
  return 0;
}
