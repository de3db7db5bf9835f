/*
 * A filter written in plain C99 against the ABI header only, loaded by the tests as a module
 * (.so) through the production loader. It exercises the asynchronous parts of the ABI:
 *   /async/...  pause the request, resume it from a worker timer 50 ms later
 *   /call/...   pause, make an HTTP call to cluster "up" (GET /healthz), resume with the status
 *   /deny/...   answer locally with 403 from the response of an HTTP call
 *   /stale/...  call, then (after a timer) a second call, cancelling the first one's finished
 *               id right after starting the second: the stale id must not cancel the new call
 * and it tags every request with stream metadata "test.seen" = "yes" and a response header.
 */
#include "sluice/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sluice_host_t* host;
static sluice_metric_id_t requests_metric = SLUICE_METRIC_INVALID;

typedef struct {
  sluice_stream_t* stream;
  sluice_worker_t* worker;
  int paused;
  sluice_call_id_t first_call;
} state_t;

static int has_prefix(sluice_str_t s, const char* p) {
  size_t n = strlen(p);
  return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static void* config_new(const sluice_host_t* h, sluice_config_ctx_t* cfg, sluice_str_t json) {
  host = h;
  {
    sluice_header_t label = {SLUICE_STR("filter"), h->sluice_host_config_name(cfg)};
    requests_metric = h->sluice_host_config_define_metric(
        cfg, SLUICE_METRIC_COUNTER, SLUICE_STR("sluice_test_async_requests_total"),
        SLUICE_STR("Requests seen by the test module"), &label, 1, NULL, 0);
  }
  if (json.len > 2 && memchr(json.ptr, 'x', json.len) != NULL) {
    h->sluice_host_config_error(cfg, SLUICE_STR("/x"), SLUICE_STR("x is not accepted"));
    return NULL;
  }
  return (void*)1;
}

static void* stream_new(void* config, void* worker_state, sluice_stream_t* s) {
  state_t* st = (state_t*)calloc(1, sizeof(state_t));
  (void)config;
  (void)worker_state;
  st->stream = s;
  st->worker = host->sluice_host_stream_worker(s);
  return st;
}

static void stream_destroy(void* f) {
  free(f);
}

static void on_timer(void* user) {
  state_t* st = (state_t*)user;
  host->sluice_host_header_set(st->stream, SLUICE_HEADERS_REQUEST, SLUICE_STR("x-async"),
                               SLUICE_STR("resumed"));
  host->sluice_host_resume(st->stream, SLUICE_DIRECTION_REQUEST);
}

static void on_call(void* user, const sluice_http_response_t* r);

/* /stale: the second call, started once the first one's object is free for reuse. */
static void on_stale_timer(void* user) {
  state_t* st = (state_t*)user;
  sluice_call_id_t second = host->sluice_host_http_call(
      st->worker, st->stream, SLUICE_STR("up"), SLUICE_STR("GET"), SLUICE_STR("/healthz"), NULL,
      0, SLUICE_STR(""), 2000, on_call, st);
  if (second == 0 || second == st->first_call) {
    host->sluice_host_send_local_reply(st->stream, 500, NULL, 0, SLUICE_STR("bad call id\n"),
                                       SLUICE_STR("test"));
    return;
  }
  host->sluice_host_http_call_cancel(st->worker, st->first_call); /* finished: a no-op */
}

static void on_first_call(void* user, const sluice_http_response_t* r) {
  state_t* st = (state_t*)user;
  (void)r;
  host->sluice_host_timer_start(st->worker, st->stream, 1, on_stale_timer, st);
}

static void on_call(void* user, const sluice_http_response_t* r) {
  state_t* st = (state_t*)user;
  char buf[16];
  sluice_str_t path;
  int n = snprintf(buf, sizeof buf, "%u", r->status);
  host->sluice_host_header_get(st->stream, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path);
  if (has_prefix(path, "/deny")) {
    host->sluice_host_send_local_reply(st->stream, 403, NULL, 0, SLUICE_STR("denied\n"),
                                       SLUICE_STR("denied_by_test"));
    return;
  }
  host->sluice_host_header_set(st->stream, SLUICE_HEADERS_REQUEST, SLUICE_STR("x-call-status"),
                               (sluice_str_t){buf, (size_t)n});
  host->sluice_host_metadata_set(st->stream, SLUICE_STR("test.call_body"), r->body);
  host->sluice_host_resume(st->stream, SLUICE_DIRECTION_REQUEST);
}

static sluice_status_t on_request_headers(void* f, sluice_stream_t* s, bool end_stream) {
  state_t* st = (state_t*)f;
  sluice_str_t path;
  (void)end_stream;
  host->sluice_host_metadata_set(s, SLUICE_STR("test.seen"), SLUICE_STR("yes"));
  host->sluice_host_metric_add(requests_metric, 1);
  if (!host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path)) {
    return SLUICE_STATUS_CONTINUE;
  }
  if (has_prefix(path, "/async")) {
    host->sluice_host_timer_start(st->worker, s, 50, on_timer, st);
    return SLUICE_STATUS_STOP;
  }
  if (has_prefix(path, "/upper")) {
    return SLUICE_STATUS_STOP_AND_BUFFER; /* the whole request body, then on_request_body */
  }
  if (has_prefix(path, "/inject")) {
    /* A broken filter: a reply header value that would forge a second header line. */
    sluice_header_t h = {SLUICE_STR("x-note"), SLUICE_STR("a\r\nx-injected: 1")};
    host->sluice_host_send_local_reply(s, 200, &h, 1, SLUICE_STR("injected\n"), SLUICE_STR("test"));
    return SLUICE_STATUS_STOP;
  }
  if (has_prefix(path, "/setinject")) {
    /* A broken filter: request header changes that would forge or split lines on the wire.
     * Each is refused (logged, counted); the sane one after them still applies. */
    host->sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, SLUICE_STR("x-note"),
                                 SLUICE_STR("a\r\nx-injected: 1"));
    host->sluice_host_header_add(s, SLUICE_HEADERS_REQUEST, SLUICE_STR("x-injected: 2\r\nx-a"),
                                 SLUICE_STR("b"));
    host->sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"),
                                 SLUICE_STR("/x HTTP/1.1\r\nx-injected: 3\r\n\r\nGET /y"));
    host->sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":method"),
                                 SLUICE_STR("GET /z"));
    host->sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":nonsense"),
                                 SLUICE_STR("1"));
    host->sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, SLUICE_STR("x-sane"),
                                 SLUICE_STR("kept"));
    return SLUICE_STATUS_CONTINUE;
  }
  if (has_prefix(path, "/stale")) {
    st->first_call = host->sluice_host_http_call(st->worker, s, SLUICE_STR("up"), SLUICE_STR("GET"),
                                                 SLUICE_STR("/healthz"), NULL, 0, SLUICE_STR(""),
                                                 2000, on_first_call, st);
    return SLUICE_STATUS_STOP;
  }
  if (has_prefix(path, "/call") || has_prefix(path, "/deny") || has_prefix(path, "/slowcall")) {
    /* /slowcall: the call's answer takes 300 ms, so a client can leave while it is in flight. */
    sluice_header_t h = {SLUICE_STR("x-from"), SLUICE_STR("async_filter")};
    sluice_str_t target = has_prefix(path, "/slowcall") ? SLUICE_STR("/delay?ms=300")
                                                        : SLUICE_STR("/healthz");
    if (host->sluice_host_http_call(st->worker, s, SLUICE_STR("up"), SLUICE_STR("GET"), target,
                                    &h, 1, SLUICE_STR(""), 2000, on_call, st) == 0) {
      host->sluice_host_send_local_reply(s, 500, NULL, 0, SLUICE_STR("call failed\n"),
                                         SLUICE_STR("test"));
    }
    return SLUICE_STATUS_STOP;
  }
  return SLUICE_STATUS_CONTINUE;
}

/* /upper: upper-case the buffered request body. */
static sluice_status_t on_request_body(void* f, sluice_stream_t* s, bool end_stream) {
  sluice_str_t path, body;
  char* copy;
  size_t i;
  (void)f;
  host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path);
  if (!has_prefix(path, "/upper")) {
    return SLUICE_STATUS_CONTINUE;
  }
  if (!end_stream) {
    return SLUICE_STATUS_STOP_AND_BUFFER;
  }
  body = host->sluice_host_body_get(s, SLUICE_DIRECTION_REQUEST);
  copy = (char*)malloc(body.len + 1);
  for (i = 0; i < body.len; i++) {
    char c = body.ptr[i];
    copy[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
  }
  host->sluice_host_body_replace(s, SLUICE_DIRECTION_REQUEST, (sluice_str_t){copy, body.len});
  free(copy);
  return SLUICE_STATUS_CONTINUE;
}

/* /reverse: buffer the whole response body and reverse it (Content-Length is fixed by the host). */
static sluice_status_t on_response_body(void* f, sluice_stream_t* s, bool end_stream) {
  sluice_str_t path, body;
  char* copy;
  size_t i;
  (void)f;
  host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path);
  if (!has_prefix(path, "/reverse")) {
    return SLUICE_STATUS_CONTINUE;
  }
  if (!end_stream) {
    return SLUICE_STATUS_STOP_AND_BUFFER;
  }
  body = host->sluice_host_body_get(s, SLUICE_DIRECTION_RESPONSE);
  copy = (char*)malloc(body.len + 1);
  for (i = 0; i < body.len; i++) {
    copy[i] = body.ptr[body.len - 1 - i];
  }
  host->sluice_host_body_replace(s, SLUICE_DIRECTION_RESPONSE, (sluice_str_t){copy, body.len});
  free(copy);
  return SLUICE_STATUS_CONTINUE;
}

static sluice_status_t on_response_headers(void* f, sluice_stream_t* s, bool end_stream) {
  sluice_str_t v, path;
  (void)f;
  (void)end_stream;
  host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path);
  if (has_prefix(path, "/setinject")) {
    host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("x-note"),
                                 SLUICE_STR("a\nx-injected: 4"));
    host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR(":status"),
                                 SLUICE_STR("2000"));
  }
  if (has_prefix(path, "/reverse")) {
    host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("x-reversed"),
                                 SLUICE_STR("1"));
    if (host->sluice_host_metadata_get(s, SLUICE_STR("test.seen"), &v)) {
      host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("x-test-seen"), v);
    }
    return SLUICE_STATUS_STOP_AND_BUFFER;
  }
  if (host->sluice_host_metadata_get(s, SLUICE_STR("test.seen"), &v)) {
    host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("x-test-seen"), v);
  }
  return SLUICE_STATUS_CONTINUE;
}

/* Trailers: a request trailer x-checksum is copied into metadata and answered with one more
 * trailer upstream; response trailers get one more on the way down. */
static sluice_status_t on_request_trailers(void* f, sluice_stream_t* s) {
  sluice_str_t v;
  (void)f;
  if (host->sluice_host_header_get(s, SLUICE_TRAILERS_REQUEST, SLUICE_STR("x-checksum"), 0, &v)) {
    host->sluice_host_metadata_set(s, SLUICE_STR("test.checksum"), v);
    host->sluice_host_header_set(s, SLUICE_TRAILERS_REQUEST, SLUICE_STR("x-trailer-seen"),
                                 SLUICE_STR("yes"));
  }
  return SLUICE_STATUS_CONTINUE;
}

static sluice_status_t on_response_trailers(void* f, sluice_stream_t* s) {
  (void)f;
  host->sluice_host_header_add(s, SLUICE_TRAILERS_RESPONSE, SLUICE_STR("x-filter-trailer"),
                               SLUICE_STR("yes"));
  return SLUICE_STATUS_CONTINUE;
}

static sluice_filter_descriptor_t descriptor;
static const sluice_filter_descriptor_t* descriptors[1];
static sluice_module_t module_desc;

SLUICE_EXPORT const sluice_module_t* sluice_module_init(const sluice_host_t* h, uint32_t major,
                                                        uint32_t minor) {
  (void)minor;
  if (major != SLUICE_ABI_VERSION_MAJOR) {
    return NULL;
  }
  host = h;
  descriptor.size = sizeof descriptor;
  descriptor.type = "test_async";
  descriptor.sluice_on_config_new = config_new;
  descriptor.sluice_on_stream_new = stream_new;
  descriptor.sluice_on_stream_destroy = stream_destroy;
  descriptor.sluice_on_request_headers = on_request_headers;
  descriptor.sluice_on_response_headers = on_response_headers;
  descriptor.sluice_on_request_body = on_request_body;
  descriptor.sluice_on_response_body = on_response_body;
  descriptor.sluice_on_request_trailers = on_request_trailers;
  descriptor.sluice_on_response_trailers = on_response_trailers;
  descriptors[0] = &descriptor;
  module_desc.size = sizeof module_desc;
  module_desc.abi_major = SLUICE_ABI_VERSION_MAJOR;
  module_desc.abi_minor = SLUICE_ABI_VERSION_MINOR;
  module_desc.name = "test_async";
  module_desc.filters = descriptors;
  module_desc.filter_count = 1;
  return &module_desc;
}
