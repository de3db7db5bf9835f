/* Modules the loader must refuse, one per BAD_KIND:
 *   1: built for another major version      2: built for a newer minor version
 *   3: a filter without the required sluice_on_stream_new hook
 *   4: no entry symbol at all
 *   5: loads, but its request-headers hook returns an invalid status on /invalid, sends a local
 *      reply with status 42 on /badreply and one with 103 on /reply-1xx, and crashes
 *      (a NULL write) on /crash, or in a stream timer's callback on /crash-later; on
 *      /off-thread it calls sluice_host_resume from a thread of its own (which the host must
 *      refuse), then resumes properly from a stream timer */
#include "sluice/filter.h"

#include <pthread.h>
#include <stddef.h>

static void* config_new(const sluice_host_t* h, sluice_config_ctx_t* cfg, sluice_str_t json) {
  (void)h;
  (void)cfg;
  (void)json;
  return (void*)1;
}

static void* stream_new(void* config, void* worker_state, sluice_stream_t* s) {
  (void)config;
  (void)worker_state;
  (void)s;
  return NULL;
}

static const sluice_host_t* g_host;

static bool path_is(sluice_stream_t* s, const char* want) {
  sluice_str_t p;
  size_t n = 0;
  if (!g_host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &p)) {
    return false;
  }
  while (want[n] != '\0') {
    n++;
  }
  return p.len == n && __builtin_memcmp(p.ptr, want, n) == 0;
}

static void crash(void* unused) {
  (void)unused;
  volatile int* p = NULL;
  *p = 1;
}

static void* resume_from_thread(void* s) {
  g_host->sluice_host_resume((sluice_stream_t*)s, SLUICE_DIRECTION_REQUEST);
  return NULL;
}

static void resume_later(void* s) {
  g_host->sluice_host_resume((sluice_stream_t*)s, SLUICE_DIRECTION_REQUEST);
}

static sluice_status_t request_headers(void* filter, sluice_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  if (path_is(s, "/invalid")) {
    return (sluice_status_t)7;
  }
  if (path_is(s, "/badreply")) {
    g_host->sluice_host_send_local_reply(s, 42, NULL, 0, SLUICE_STR(""), SLUICE_STR(""));
    return SLUICE_STATUS_STOP;
  }
  if (path_is(s, "/reply-1xx")) {
    g_host->sluice_host_send_local_reply(s, 103, NULL, 0, SLUICE_STR(""), SLUICE_STR("hints"));
    return SLUICE_STATUS_STOP;
  }
  if (path_is(s, "/crash")) {
    /* A line logged just before the crash must not be lost in the host's log queue. */
    g_host->sluice_host_log(NULL, s, SLUICE_LOG_WARN, SLUICE_STR("about to crash"));
    crash(NULL);
  }
  if (path_is(s, "/off-thread")) {
    pthread_t t;
    if (pthread_create(&t, NULL, resume_from_thread, s) == 0) {
      pthread_join(t, NULL);
    }
    g_host->sluice_host_timer_start(g_host->sluice_host_stream_worker(s), s, 50, resume_later, s);
    return SLUICE_STATUS_STOP;
  }
  if (path_is(s, "/crash-later")) {
    g_host->sluice_host_timer_start(g_host->sluice_host_stream_worker(s), s, 1, crash, NULL);
    return SLUICE_STATUS_STOP;
  }
  return SLUICE_STATUS_CONTINUE;
}

static int stream_object;

static void* stream_new_5(void* config, void* worker_state, sluice_stream_t* s) {
  (void)config;
  (void)worker_state;
  (void)s;
  return &stream_object;
}

static const sluice_filter_descriptor_t* descriptors[1];
static sluice_filter_descriptor_t descriptor;
static sluice_module_t module;

#if BAD_KIND == 4
SLUICE_EXPORT const sluice_module_t* not_the_entry_symbol(void) {
#else
SLUICE_EXPORT const sluice_module_t* sluice_module_init(const sluice_host_t* host, uint32_t major,
                                                        uint32_t minor) {
  g_host = host;
  (void)major;
  (void)minor;
#endif
  descriptor.size = sizeof(descriptor);
  descriptor.type = "bad";
  descriptor.sluice_on_config_new = config_new;
  descriptor.sluice_on_stream_new = BAD_KIND == 3   ? NULL
                                    : BAD_KIND == 5 ? stream_new_5
                                                    : stream_new;
  descriptor.sluice_on_request_headers = request_headers;
  descriptors[0] = &descriptor;
  module.size = sizeof(module);
  module.abi_major = (uint16_t)(SLUICE_ABI_VERSION_MAJOR + (BAD_KIND == 1 ? 1 : 0));
  module.abi_minor = (uint16_t)(SLUICE_ABI_VERSION_MINOR + (BAD_KIND == 2 ? 1 : 0));
  module.name = "bad";
  module.filters = descriptors;
  module.filter_count = 1;
  return &module;
}
