// header_rewrite's C JSON reader (extensions/header_rewrite/header_rewrite.c): whole config
// documents through the module's sluice_on_config_new with a host table that records errors.
// The module source is compiled into this target with its entry renamed (see CMakeLists.txt).
// Every config is either built (and destroyed) or refused with at least one error.

#include "sluice/filter.h"

#include <cstdint>
#include <cstring>

extern "C" const sluice_module_t* sluice_fuzz_header_rewrite_init(const sluice_host_t* host,
                                                                  uint32_t host_major,
                                                                  uint32_t host_minor);

namespace {

size_t g_errors = 0;

void hostLog(sluice_config_ctx_t*, sluice_stream_t*, sluice_log_level_t, sluice_str_t) {}

void hostConfigError(sluice_config_ctx_t*, sluice_str_t pointer, sluice_str_t message) {
  // Read every byte, so a pointer or message past its buffer is an ASan finding.
  volatile size_t sum = 0;
  for (size_t i = 0; i < pointer.len; i++) {
    sum = sum + static_cast<unsigned char>(pointer.ptr[i]);
  }
  for (size_t i = 0; i < message.len; i++) {
    sum = sum + static_cast<unsigned char>(message.ptr[i]);
  }
  g_errors++;
}

const sluice_host_t* host() {
  static const sluice_host_t h = [] {
    sluice_host_t t;
    std::memset(&t, 0, sizeof t);
    t.size = sizeof t;
    t.abi_major = SLUICE_ABI_VERSION_MAJOR;
    t.abi_minor = SLUICE_ABI_VERSION_MINOR;
    t.sluice_host_log = &hostLog;
    t.sluice_host_config_error = &hostConfigError;
    return t;
  }();
  return &h;
}

const sluice_filter_descriptor_t* descriptor() {
  const sluice_module_t* module =
      sluice_fuzz_header_rewrite_init(host(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
  if (module == nullptr || module->filter_count != 1) {
    __builtin_trap();
  }
  return module->filters[0];
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const sluice_filter_descriptor_t* d = descriptor();
  g_errors = 0;
  // The bytes are not NUL-terminated: the reader must stop at len.
  sluice_str_t json{reinterpret_cast<const char*>(data), size};
  void* config = d->sluice_on_config_new(host(), nullptr, json);
  if (config == nullptr) {
    if (g_errors == 0) {
      __builtin_trap(); // a refusal always says why
    }
    return 0;
  }
  if (g_errors != 0) {
    __builtin_trap(); // errors reported but a config returned
  }
  d->sluice_on_config_destroy(config);
  return 0;
}
