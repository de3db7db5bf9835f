// header_rewrite's C JSON reader (extensions/header_rewrite/header_rewrite.c): whole config
// documents through the module's sluice_on_config_new with a host table that records errors and
// reads the config through the host's own config view (core/filter/config_view.h, ABI 1.3).
// The module source is compiled into this target with its entry renamed (see CMakeLists.txt).
// Every config is either built (and destroyed) or refused with at least one error.

#include "core/filter/config_view.h"
#include "sluice/filter.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

extern "C" const sluice_module_t* sluice_fuzz_header_rewrite_init(const sluice_host_t* host,
                                                                  uint32_t host_major,
                                                                  uint32_t host_minor);

namespace {

size_t g_errors = 0;
// The view of the current input; freed after the config-new call, as the host frees it.
std::unique_ptr<sluice::filter::ConfigView> g_view;
// A stand-in context: the module only hands it back to the host.
char g_ctx_storage = 0;
sluice_config_ctx_t* const kCtx = reinterpret_cast<sluice_config_ctx_t*>(&g_ctx_storage);

sluice_config_view_t* hostConfigView(sluice_config_ctx_t*, sluice_str_t json,
                                     sluice_config_problem_t* problem) {
  std::string error;
  g_view = sluice::filter::ConfigView::parse(std::string_view(json.ptr, json.len), error);
  if (!g_view) {
    g_view = sluice::filter::ConfigView::parse("null", error);
    g_view->setProblem(problem, "", "invalid JSON: " + error);
    return nullptr;
  }
  return g_view->handle();
}

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
    t.sluice_host_config_view = &hostConfigView;
    sluice::filter::ConfigView::fillHostTable(t);
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
  void* config = d->sluice_on_config_new(host(), kCtx, json);
  g_view.reset();
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
