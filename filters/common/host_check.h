#pragma once

// The check every built-in filter's entry function makes before returning its module: the host
// speaks this header's major version and its function table reaches every function the filter
// calls.

#include "sluice/filter.h"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

namespace sluice::filters::common {

// Bytes of a host table that reaches `member` (use with offsetof / sizeof of that member).
#define SLUICE_HOST_SIZE_THROUGH(member)                                                           \
  (offsetof(sluice_host_t, member) + sizeof(sluice_host_t::member))

// True if `host` can run the filter; otherwise false, after logging why through the host when
// its table reaches sluice_host_log (naming the filter, both versions and both table sizes).
bool hostCompatible(const sluice_host_t* host, uint32_t host_major, uint32_t host_minor,
                    size_t size_needed, const char* filter);

// Defines the entry function of a built-in filter with one filter type, sluice_builtin_NAME_init:
// it checks the host with hostCompatible (HOST_SIZE_NEEDED bytes of its table), runs the optional
// statements that follow (with `host` in scope), and returns a module holding DESCRIPTOR.
#define SLUICE_BUILTIN_MODULE(NAME, DESCRIPTOR, HOST_SIZE_NEEDED, ...)                             \
  extern "C" const sluice_module_t* sluice_builtin_##NAME##_init(                                  \
      const sluice_host_t* host, uint32_t host_major, uint32_t host_minor) {                       \
    static const sluice_filter_descriptor_t* const descriptors[] = {&(DESCRIPTOR)};                \
    static const sluice_module_t module = {sizeof(sluice_module_t),                                \
                                           SLUICE_ABI_VERSION_MAJOR,                               \
                                           SLUICE_ABI_VERSION_MINOR,                               \
                                           #NAME,                                                  \
                                           descriptors,                                            \
                                           1};                                                     \
    if (!::sluice::filters::common::hostCompatible(host, host_major, host_minor,                   \
                                                   (HOST_SIZE_NEEDED), #NAME)) {                   \
      return nullptr;                                                                              \
    }                                                                                              \
    __VA_ARGS__;                                                                                   \
    return &module;                                                                                \
  }

// sluice_on_config_new / sluice_on_config_destroy for a filter whose config class T has
// `static std::unique_ptr<T> create(const sluice_host_t*, sluice_config_ctx_t*, sluice_str_t)`:
// an exception (config time only, e.g. an allocation failure) becomes a config error, never
// crosses into C.
template <class T>
void* newConfig(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json,
                const char* filter) noexcept {
  try {
    return T::create(host, ctx, json).release();
  } catch (const std::exception& e) {
    const std::string message =
        std::string("cannot create the ") + filter + " filter config: " + e.what();
    host->sluice_host_config_error(ctx, sluice_str_t{"", 0},
                                   sluice_str_t{message.data(), message.size()});
    return nullptr;
  }
}
template <class T> void deleteConfig(void* config) noexcept {
  delete static_cast<T*>(config);
}

// An exception escaped a stream hook of `filter` (caught at the ABI boundary): logs it at ERROR
// with the request id and ends the stream with a local 500 "filter error" (details
// "filter_exception"; once the response started the host closes the connection instead).
// Returns SLUICE_STATUS_STOP, what the hook returns next. Never throws.
sluice_status_t streamFailed(const sluice_host_t* host, sluice_stream_t* stream, const char* filter,
                             const char* hook, const char* what) noexcept;

// Runs `body` (returning sluice_status_t) for a stream hook and turns any exception into
// streamFailed: the body of every noexcept hook trampoline of a built-in filter.
template <typename Body>
sluice_status_t guardStreamHook(const sluice_host_t* host, sluice_stream_t* stream,
                                const char* filter, const char* hook, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    return streamFailed(host, stream, filter, hook, e.what());
  } catch (...) {
    return streamFailed(host, stream, filter, hook, "unknown exception");
  }
}

// True if the host has readiness holds (ABI 1.2); filters then hold /ready during start-up work.
inline bool hostHasReadiness(const sluice_host_t& h) {
  return h.size >= SLUICE_HOST_SIZE_THROUGH(sluice_host_ready_release) &&
         h.sluice_host_ready_hold != nullptr && h.sluice_host_ready_release != nullptr;
}

} // namespace sluice::filters::common
