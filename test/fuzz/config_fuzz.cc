// The config loader (core/config/loader.cc) on whole JSON documents: parseConfig, the parse and
// validate step `sluice validate` runs, then the redacted dump /config_dump serves.
//
// The loader touches the file system in two ways: access() on cert/key/CA/module paths and
// reading secret files ({"file": PATH}). Relative paths resolve under a base folder that does not
// exist, so they always fail; documents that name an absolute path under one of those keys are
// skipped, so the fuzzer never reads /dev/zero or a FIFO. No sockets are opened by the loader.

#include "core/config/config.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace {

bool namesAbsolutePath(const nlohmann::json& v, int depth) {
  if (depth > 64) {
    return true; // not worth the stack: skip
  }
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& k = it.key();
      if ((k == "file" || k == "cert_file" || k == "key_file" || k == "ca_file" || k == "module") &&
          it.value().is_string() && !it.value().get_ref<const std::string&>().empty() &&
          it.value().get_ref<const std::string&>()[0] == '/') {
        return true;
      }
      if (namesAbsolutePath(it.value(), depth + 1)) {
        return true;
      }
    }
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (namesAbsolutePath(e, depth + 1)) {
        return true;
      }
    }
  }
  return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The same parser the loader uses: a document it cannot parse never reaches a path.
  nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!doc.is_discarded() && namesAbsolutePath(doc, 0)) {
    return 0;
  }
  sluice::config::LoadResult r =
      sluice::config::parseConfig(text, "/nonexistent-sluice-fuzz-base-dir");
  size_t acc = 0;
  for (const auto& e : r.errors) {
    acc += e.toString().size();
  }
  if (r.config != nullptr) {
    if (!r.errors.empty()) {
      __builtin_trap(); // a config is returned only without errors
    }
    acc += sluice::config::redactedDump(*r.config).size();
  }
  volatile size_t sink = acc;
  (void)sink;
  return 0;
}
