/* A filter that does nothing on every hook: `sluice bench-filter --filter noop --module
 * libsluice_test_noop_filter.so` measures what crossing the C ABI costs per request. */
/* It uses nothing newer than ABI 1.0, so it says so: it loads into every 1.x host. */
#define SLUICE_MODULE_REQUIRES_MINOR 0
#include "sluice/filter.h"

static int stream_object; /* every stream shares it: no allocation per request */

static void* config_new(const sluice_host_t* host, sluice_config_ctx_t* cfg, sluice_str_t json) {
  (void)host;
  (void)cfg;
  (void)json;
  return &stream_object;
}

static void config_destroy(void* config) {
  (void)config;
}

static void* stream_new(void* config, void* worker_state, sluice_stream_t* s) {
  (void)config;
  (void)worker_state;
  (void)s;
  return &stream_object;
}

static void stream_destroy(void* filter) {
  (void)filter;
}

static sluice_status_t headers(void* filter, sluice_stream_t* s, bool end_stream) {
  (void)filter;
  (void)s;
  (void)end_stream;
  return SLUICE_STATUS_CONTINUE;
}

static void complete(void* filter, sluice_stream_t* s) {
  (void)filter;
  (void)s;
}

static sluice_filter_descriptor_t descriptor;
static const sluice_filter_descriptor_t* descriptors[1];
static sluice_module_t module;

SLUICE_EXPORT const sluice_module_t*
sluice_module_init(const sluice_host_t* host, uint32_t host_abi_major, uint32_t host_abi_minor) {
  (void)host;
  (void)host_abi_major;
  (void)host_abi_minor;
  descriptor.size = sizeof(descriptor);
  descriptor.type = "noop";
  descriptor.sluice_on_config_new = config_new;
  descriptor.sluice_on_config_destroy = config_destroy;
  descriptor.sluice_on_stream_new = stream_new;
  descriptor.sluice_on_stream_destroy = stream_destroy;
  descriptor.sluice_on_request_headers = headers;
  descriptor.sluice_on_response_headers = headers;
  descriptor.sluice_on_stream_complete = complete;
  descriptors[0] = &descriptor;
  module.size = sizeof(module);
  module.abi_major = SLUICE_ABI_VERSION_MAJOR;
  module.abi_minor = SLUICE_MODULE_ABI_MINOR;
  module.name = "noop";
  module.filters = descriptors;
  module.filter_count = 1;
  return &module;
}
