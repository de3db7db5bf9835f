/*
 * sluice filter C ABI, version 1 (1.1 appended the file-descriptor watches, sluice_host_io_*;
 * 1.2 appended readiness holds, sluice_host_ready_*, and sluice_host_cluster_pick; 1.3 appended
 * the typed config view, sluice_host_config_view and sluice_host_config_get_*, the descriptor hook
 * sluice_on_config_start, sluice_stream_info_t.response_details and SLUICE_MODULE_REQUIRES_MINOR;
 * 1.4 appended nothing: it documents the host's refusal of header changes and local-reply headers
 * that could forge a line on the wire, so a module needs no more than 1.3 for what it calls).
 *
 * This is the only header a filter includes. It is C99 and uses only <stdint.h>, <stddef.h> and
 * <stdbool.h>. Built-in filters (router, access_log, ...) are written against it exactly as a
 * third-party module is.
 *
 * STABILITY RULES
 *  - Every struct that crosses the boundary starts with a `size` field holding sizeof() as the
 *    writer compiled it. Fields are only ever appended. A reader checks `size` before touching a
 *    field that a newer minor added.
 *  - Enumerators are only appended; values never change.
 *  - A minor version never changes a signature. New host functions are appended to sluice_host_t.
 *
 * NAMING
 *  - sluice_<noun>_t: types. sluice_on_<event>: hooks a filter implements (descriptor fields).
 *    sluice_host_<verb>: functions the host provides (fields of sluice_host_t).
 *
 * THREADING
 *  - MAIN thread: sluice_on_module_init, sluice_on_config_new, sluice_on_config_start,
 *    sluice_on_config_destroy. The sluice_host_config_* functions may only be called from inside
 *    sluice_on_config_new.
 *    "MAIN" means the control side, never a worker, one call at a time: the first config is
 *    built on a start-up thread beside the main loop (so the admin port answers while a large
 *    config compiles), reloads and replaced configs on the main thread itself. Do not rely on
 *    thread identity (thread_local) between these calls.
 *  - WORKER threads: sluice_on_worker_new/destroy run once per worker per filter config, on that
 *    worker. Every stream hook runs on the worker that owns the stream; per-stream state is
 *    single-threaded and needs no locking. Stream host functions (those taking a
 *    sluice_stream_t*) may only be called on that worker, during a hook or a callback that the
 *    host delivered for that stream (timer, posted work, HTTP call completion).
 *  - A filter config (the pointer returned by sluice_on_config_new) is shared read-only by all
 *    workers. Mutable shared state inside it is the filter's responsibility (atomics, sharding).
 *  - sluice_host_log and sluice_host_metric_* may be called from any thread.
 *  - The host refuses (logs and ignores) sluice_host_send_local_reply, sluice_host_resume and the
 *    worker-loop functions (timers, post with a stream, HTTP calls, fd watches) called from a
 *    thread that is not the worker's; other stream functions are not checked (cost per call).
 *  - sluice_host_io_* (ABI 1.1) are worker-thread functions like the timers.
 *  - sluice_host_ready_* (ABI 1.2) may be called from any thread; sluice_host_cluster_pick (1.2)
 *    on a worker thread only.
 *
 * LIFETIME
 *  - CHECK, THEN START (ABI 1.3). sluice_on_config_new only checks: it parses, validates and
 *    prepares, and must have no side effect outside the process's memory (no file created or
 *    truncated, no thread started, no socket opened). `sluice validate` and a config load that
 *    fails anywhere stop there and destroy the config. Once the whole config has been checked
 *    and is about to go live, the host calls sluice_on_config_start (if the descriptor has it):
 *    open files, start threads there. It may still refuse (returns false after
 *    sluice_host_log): the load then fails as a config error and the host destroys every config
 *    of that load, started or not, so sluice_on_config_destroy must handle both.
 *  - A filter config lives from sluice_on_config_new until sluice_on_config_destroy, which runs
 *    after every stream and worker state created from it has been destroyed (configs survive a
 *    reload for as long as in-flight streams use them).
 *  - A per-stream filter object lives from sluice_on_stream_new until sluice_on_stream_destroy.
 *    sluice_on_stream_complete (the log hook) runs once before destroy for every stream that had
 *    its filter object created, whichever filter ended the stream.
 *  - sluice_str_t values returned by the host point into host memory: valid until the current
 *    hook or callback returns, or until the same header map / body is next modified, whichever
 *    is first. Copy what you keep.
 *  - sluice_str_t values passed to the host are copied by the host before the call returns unless
 *    the function says otherwise.
 */
#ifndef SLUICE_FILTER_H
#define SLUICE_FILTER_H

#include "sluice/version.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SLUICE_EXPORT __declspec(dllexport)
#else
#define SLUICE_EXPORT __attribute__((visibility("default")))
#endif

/* A borrowed byte string: not NUL-terminated unless stated. */
typedef struct sluice_str {
  const char* ptr;
  size_t len;
} sluice_str_t;

/* Opaque handles. */
typedef struct sluice_stream sluice_stream_t;         /* one HTTP request/response exchange */
typedef struct sluice_config_ctx sluice_config_ctx_t; /* valid only inside sluice_on_config_new */
typedef struct sluice_worker sluice_worker_t;         /* one worker thread and its event loop */

/* What a stream hook tells the filter manager. */
typedef enum sluice_status {
  /* Run the next filter (request: next in chain order; response: next in reverse order). */
  SLUICE_STATUS_CONTINUE = 0,
  /* Pause iteration at this filter. Nothing further runs for this direction until the filter
   * calls sluice_host_resume. Body data that arrives meanwhile is buffered by the host (subject
   * to the listener's body limit) and delivered to this filter's body hook after resume. */
  SLUICE_STATUS_STOP = 1,
  /* Pause iteration and buffer the whole body of this direction. The host calls the body hook
   * again with end_stream=true once the body is complete; the filter may then read the whole
   * body with sluice_host_body_get and replace it with sluice_host_body_replace, and return
   * CONTINUE. Returning CONTINUE earlier releases what was buffered. */
  SLUICE_STATUS_STOP_AND_BUFFER = 2
} sluice_status_t;

/* Which header map a header function addresses. Pseudo-headers are reachable by name:
 * ":method", ":path", ":authority", ":scheme" in REQUEST; ":status" in RESPONSE. Setting ":path"
 * rewrites the request target; setting ":status" changes the response status. */
typedef enum sluice_header_map {
  SLUICE_HEADERS_REQUEST = 0,
  SLUICE_HEADERS_RESPONSE = 1,
  SLUICE_TRAILERS_REQUEST = 2,
  SLUICE_TRAILERS_RESPONSE = 3
} sluice_header_map_t;

typedef enum sluice_direction {
  SLUICE_DIRECTION_REQUEST = 0,
  SLUICE_DIRECTION_RESPONSE = 1
} sluice_direction_t;

typedef enum sluice_log_level {
  SLUICE_LOG_TRACE = 0,
  SLUICE_LOG_DEBUG = 1,
  SLUICE_LOG_INFO = 2,
  SLUICE_LOG_WARN = 3,
  SLUICE_LOG_ERROR = 4
} sluice_log_level_t;

/* Response flags (bit mask), as printed by access_log. */
#define SLUICE_FLAG_UPSTREAM_TIMEOUT (1u << 0)         /* UT */
#define SLUICE_FLAG_UPSTREAM_CONNECT_FAILURE (1u << 1) /* UF */
#define SLUICE_FLAG_UPSTREAM_OVERFLOW (1u << 2)        /* UO */
#define SLUICE_FLAG_UPSTREAM_RESET (1u << 3)           /* UR */
#define SLUICE_FLAG_NO_ROUTE (1u << 4)                 /* NR */
#define SLUICE_FLAG_RATE_LIMITED (1u << 5)             /* RL */
#define SLUICE_FLAG_DOWNSTREAM_DISCONNECT (1u << 6)    /* DC */
#define SLUICE_FLAG_LOCAL_REPLY (1u << 7)              /* LR */
#define SLUICE_FLAG_NO_HEALTHY_UPSTREAM (1u << 8)      /* UH */

/* Retry conditions (bit mask) for sluice_route_t.retry_on. */
#define SLUICE_RETRY_CONNECT_FAILURE (1u << 0)
#define SLUICE_RETRY_RESET (1u << 1)
#define SLUICE_RETRY_5XX (1u << 2)
#define SLUICE_RETRY_TIMEOUT (1u << 3)

/* A header to send with a local reply or an HTTP call. */
typedef struct sluice_header {
  sluice_str_t name;
  sluice_str_t value;
} sluice_header_t;

/* Where the router sends a request. Filled by the filter, copied by the host. */
typedef struct sluice_route {
  uint32_t size;               /* sizeof(sluice_route_t) */
  sluice_str_t cluster;        /* cluster name; must exist in the live config */
  sluice_str_t path;           /* new request path (ptr NULL: keep the current :path) */
  sluice_str_t route_name;     /* for logs and stream info; may be empty */
  uint32_t timeout_ms;         /* whole-request upstream timeout, 0 = none (504 + UT on expiry) */
  uint32_t retry_attempts;     /* retries after the first try */
  uint32_t retry_on;           /* SLUICE_RETRY_* bits */
  uint32_t per_try_timeout_ms; /* 0 = none */
  sluice_str_t hash_key;       /* for hashing LB policies; ptr NULL: the host derives it */
} sluice_route_t;

/* What the host knows about a stream. Filled by sluice_host_stream_info; strings are valid as
 * described in LIFETIME. */
typedef struct sluice_stream_info {
  uint32_t size;               /* set by the caller to sizeof(sluice_stream_info_t) */
  sluice_str_t client_address; /* "ip:port" of the downstream peer */
  sluice_str_t client_ip;      /* "ip" only */
  sluice_str_t request_id;
  sluice_str_t listener;   /* listener name */
  sluice_str_t protocol;   /* "HTTP/1.1" or "HTTP/1.0" */
  sluice_str_t route_name; /* empty until routed */
  sluice_str_t upstream_cluster;
  sluice_str_t upstream_endpoint; /* "host:port" of the last endpoint tried, empty if none */
  bool tls;
  uint32_t response_flags;       /* SLUICE_FLAG_* */
  uint32_t response_status;      /* 0 until a response started */
  uint64_t start_unix_us;        /* wall clock at the first request byte */
  uint64_t duration_us;          /* from the first request byte to now (or to completion) */
  uint64_t upstream_duration_us; /* time to the upstream's response headers, 0 if none */
  uint64_t bytes_in;             /* request body bytes received */
  uint64_t bytes_out;            /* response body bytes sent */
  /* ABI 1.3: the `details` a filter passed to sluice_host_send_local_reply for the reply that
   * answered the stream (empty if none). Check info.size before reading it. */
  sluice_str_t response_details;
} sluice_stream_info_t;

/* Completion of sluice_host_http_call. On failure status is 0 and error names the reason
 * ("timeout", "connect_failure", "reset", "no_healthy_upstream", "unknown_cluster"). The body
 * and header strings are valid until the callback returns. */
typedef struct sluice_http_response {
  uint32_t size;
  uint32_t status;
  const sluice_header_t* headers;
  size_t header_count;
  sluice_str_t body;
  sluice_str_t error;
} sluice_http_response_t;

typedef void (*sluice_http_callback_t)(void* user_data, const sluice_http_response_t* response);
typedef void (*sluice_task_callback_t)(void* user_data);

typedef enum sluice_metric_type {
  SLUICE_METRIC_COUNTER = 0,
  SLUICE_METRIC_GAUGE = 1,
  SLUICE_METRIC_HISTOGRAM = 2
} sluice_metric_type_t;

typedef uint32_t sluice_metric_id_t;
#define SLUICE_METRIC_INVALID ((sluice_metric_id_t)0xffffffffu)

typedef uint64_t sluice_timer_id_t; /* 0 is never a valid timer */
typedef uint64_t sluice_call_id_t;  /* 0 is never a valid call */

/* File-descriptor watches (ABI 1.1): readiness bits for sluice_host_io_watch / _io_update and for
 * the callback. SLUICE_IO_ERROR is only ever passed to a callback (with READABLE and WRITABLE
 * set too, so the filter's next read or write reports the error); the watch is then paused
 * until sluice_host_io_update re-arms it. */
typedef uint64_t sluice_io_id_t; /* 0 is never a valid watch */
#define SLUICE_IO_READABLE (1u << 0)
#define SLUICE_IO_WRITABLE (1u << 1)
#define SLUICE_IO_ERROR (1u << 2)
typedef void (*sluice_io_callback_t)(void* user_data, uint32_t events);

/* A readiness hold (ABI 1.2): start-up work the process must finish before it reports ready. */
typedef uint64_t sluice_ready_id_t; /* 0 is never a valid hold */

/* Typed config view (ABI 1.3): a JSON document parsed by the host, read by JSON pointer (RFC 6901:
 * "" is the whole document, "/rules/0/name" a member of an element; "~0" stands for "~" and "~1"
 * for "/" inside a member name). OWNERSHIP: the host owns the view and every string it returns;
 * all are valid until sluice_on_config_new returns (copy what the config keeps). */
typedef struct sluice_config_view sluice_config_view_t;

/* The JSON type at a pointer. */
typedef enum sluice_json_type {
  SLUICE_JSON_MISSING = 0, /* nothing at that pointer */
  SLUICE_JSON_NULL = 1,
  SLUICE_JSON_BOOL = 2,
  SLUICE_JSON_NUMBER = 3,
  SLUICE_JSON_STRING = 4,
  SLUICE_JSON_ARRAY = 5,
  SLUICE_JSON_OBJECT = 6
} sluice_json_type_t;

/* What a sluice_host_config_get_* call found. Anything but OK leaves *out untouched and fills
 * the problem (when one is passed) with a pointer and a message ready for
 * sluice_host_config_error. */
typedef enum sluice_config_get {
  SLUICE_CONFIG_OK = 0,      /* *out holds the value */
  SLUICE_CONFIG_MISSING = 1, /* nothing there ("is required"): an optional key keeps its default */
  SLUICE_CONFIG_WRONG_TYPE = 2,  /* a value of another type, or a number out of the type's range */
  SLUICE_CONFIG_BAD_POINTER = 3, /* the pointer is not a JSON pointer, or the view is NULL */
  SLUICE_CONFIG_UNKNOWN_KEY = 4  /* sluice_host_config_check_keys found a key it was not given */
} sluice_config_get_t;

/* Where and what is wrong. Strings are host memory, valid until sluice_on_config_new returns.
 * `pointer` is relative to the viewed document and may be more precise than the one asked for
 * ("/rules" when "/rules/0/name" was asked and "/rules" is a string). */
typedef struct sluice_config_problem {
  uint32_t size;        /* set by the caller to sizeof(sluice_config_problem_t) */
  sluice_str_t pointer; /* e.g. "/rules/0/name" */
  sluice_str_t message; /* e.g. "expected a string, got 42" */
} sluice_config_problem_t;

/*
 * The host function table. Passed to sluice_on_module_init and to every config; a module must
 * not assume fields beyond `size` exist.
 */
typedef struct sluice_host {
  uint32_t size;      /* sizeof(sluice_host_t) as the host compiled it */
  uint16_t abi_major; /* SLUICE_ABI_VERSION_MAJOR of the host */
  uint16_t abi_minor; /* SLUICE_ABI_VERSION_MINOR of the host */

  /* --- any thread ------------------------------------------------------------------------ */
  /* Log a message prefixed with the filter's name (stream: optional, adds the request id). */
  void (*sluice_host_log)(sluice_config_ctx_t* cfg, sluice_stream_t* stream,
                          sluice_log_level_t level, sluice_str_t message);

  /* --- config time (inside sluice_on_config_new, main thread) ----------------------------- */
  /* Report a config error. `pointer` is a JSON pointer relative to the filter's "config"
   * object ("" for the object itself, "/rules/0/key"). Any error fails the whole config. */
  void (*sluice_host_config_error)(sluice_config_ctx_t* cfg, sluice_str_t pointer,
                                   sluice_str_t message);
  /* True if a cluster of that name exists in the config being loaded. */
  bool (*sluice_host_config_cluster_exists)(sluice_config_ctx_t* cfg, sluice_str_t name);
  /* The filter's instance name ("name" in the config, default its type). NUL-terminated; valid
   * for the life of the filter config. */
  sluice_str_t (*sluice_host_config_name)(sluice_config_ctx_t* cfg);
  /* Resolve a path from the config against the config file's folder. Writes a NUL-terminated
   * path into out (capacity out_len) and returns its length, or 0 if it does not fit. */
  size_t (*sluice_host_config_resolve_path)(sluice_config_ctx_t* cfg, sluice_str_t path, char* out,
                                            size_t out_len);
  /* Define a metric instance: family `name`, `help`, and fixed labels given as
   * label_count name/value pairs. Same family name + same labels returns the same id. Returns
   * SLUICE_METRIC_INVALID (and fails the config) on a bad name or a type clash. For
   * histograms, `bounds` holds bucket upper bounds (ascending, bound_count of them); NULL uses
   * latency buckets in seconds. */
  sluice_metric_id_t (*sluice_host_config_define_metric)(
      sluice_config_ctx_t* cfg, sluice_metric_type_t type, sluice_str_t name, sluice_str_t help,
      const sluice_header_t* labels, size_t label_count, const double* bounds, size_t bound_count);

  /* --- metrics (any thread; lock-free on workers) ----------------------------------------- */
  void (*sluice_host_metric_add)(sluice_metric_id_t id, double delta);     /* counter, gauge */
  void (*sluice_host_metric_set)(sluice_metric_id_t id, double value);     /* gauge */
  void (*sluice_host_metric_observe)(sluice_metric_id_t id, double value); /* histogram */

  /* --- headers (stream's worker) ---------------------------------------------------------- */
  /* The index-th value (0-based) of header `name` (case-insensitive). False if absent. */
  bool (*sluice_host_header_get)(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
                                 size_t index, sluice_str_t* value);
  /* Number of entries in the map (pseudo-headers not counted). */
  size_t (*sluice_host_header_count)(sluice_stream_t* s, sluice_header_map_t map);
  /* The i-th entry in wire order. False when i is out of range. */
  bool (*sluice_host_header_at)(sluice_stream_t* s, sluice_header_map_t map, size_t i,
                                sluice_str_t* name, sluice_str_t* value);
  /* Replace every value of `name` with one value (adds it if absent).
   * WHAT THE HOST REFUSES (ABI 1.4 documents it): a change that could forge or split a line on
   * the wire is ignored, logged at ERROR with the filter's name and counted in
   * sluice_filter_errors_total{filter}; the stream goes on unchanged. Refused: a name with a
   * control byte, a space, ':' or a byte >= 0x7f; a value with CR, LF or NUL; ":path" or
   * ":authority" (request) empty or with a space or control byte; ":method" that is not an
   * RFC 9110 token; ":status" (response) outside 100..599; any other pseudo-header. The same
   * rules hold for sluice_host_header_add. */
  void (*sluice_host_header_set)(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
                                 sluice_str_t value);
  /* Append one more value of `name` (refused like sluice_host_header_set). */
  void (*sluice_host_header_add)(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
                                 sluice_str_t value);
  /* Remove every value of `name`; returns how many were removed. */
  size_t (*sluice_host_header_remove)(sluice_stream_t* s, sluice_header_map_t map,
                                      sluice_str_t name);

  /* --- body (stream's worker, inside a body hook or after STOP_AND_BUFFER) ---------------- */
  /* The body bytes of `dir` that the host holds for this filter: inside a body hook the
   * current chunk plus anything buffered before it. Zero-copy view. */
  sluice_str_t (*sluice_host_body_get)(sluice_stream_t* s, sluice_direction_t dir);
  /* Replace those bytes (copied). Content-Length is fixed up by the host when the body is
   * complete; otherwise the message is sent chunked. */
  void (*sluice_host_body_replace)(sluice_stream_t* s, sluice_direction_t dir, sluice_str_t data);

  /* --- stream control --------------------------------------------------------------------- */
  /* Answer the request locally and end the stream: no further request hooks run; response
   * hooks of the filters before this one run on the local reply. `status` must be a final
   * status, 200..599: anything else (1xx, <100, >599) is refused, logged at ERROR with the
   * filter's name, counted in sluice_filter_errors_total{filter} and answered with 500 instead.
   * `details` (may be empty; copied) says why, for operators: it is logged at DEBUG with the
   * request id and reaches the access log (JSON field "response_details", template token
   * %RESPONSE_DETAILS%) and sluice_stream_info_t.response_details (ABI 1.3). A second call is
   * ignored; a call after the response started ends the stream (the connection is closed).
   * WHAT THE HOOK RETURNS AFTERWARDS: return SLUICE_STATUS_STOP. Whichever status it returns,
   * the filter manager runs no further hook of that direction once the hook returns. From a
   * callback (timer, HTTP call completion) the filter does not call sluice_host_resume. From a
   * response hook, before the response head was sent, the reply replaces the upstream's response.
   * HEADERS (ABI 1.4 documents it): each name must be an RFC 9110 token and no value may hold
   * CR, LF or NUL; otherwise the reply is refused like a bad status (logged, counted, 500). A
   * reply with a body gets "content-type: text/plain" unless `headers` has a content-type; a
   * content-type entry with an empty value sends none.
   */
  void (*sluice_host_send_local_reply)(sluice_stream_t* s, uint32_t status,
                                       const sluice_header_t* headers, size_t header_count,
                                       sluice_str_t body, sluice_str_t details);
  /* Resume a stream paused with STOP / STOP_AND_BUFFER, after the filter that paused it. */
  void (*sluice_host_resume)(sluice_stream_t* s, sluice_direction_t dir);
  /* Send the request to a cluster when the request hooks finish. The last call wins. Returns
   * false if the cluster is unknown. */
  bool (*sluice_host_route)(sluice_stream_t* s, const sluice_route_t* route);
  /* Add response flags (SLUICE_FLAG_*). */
  void (*sluice_host_set_response_flags)(sluice_stream_t* s, uint32_t flags);

  /* --- stream metadata (string key/value shared by every filter of a stream) -------------- */
  bool (*sluice_host_metadata_get)(sluice_stream_t* s, sluice_str_t key, sluice_str_t* value);
  void (*sluice_host_metadata_set)(sluice_stream_t* s, sluice_str_t key, sluice_str_t value);
  /* Iterate: the i-th key/value pair in insertion order; false past the end. */
  bool (*sluice_host_metadata_at)(sluice_stream_t* s, size_t i, sluice_str_t* key,
                                  sluice_str_t* value);

  /* --- stream info ------------------------------------------------------------------------ */
  /* Fills `info` up to info->size bytes. */
  void (*sluice_host_stream_info)(sluice_stream_t* s, sluice_stream_info_t* info);
  /* The worker that owns the stream. */
  sluice_worker_t* (*sluice_host_stream_worker)(sluice_stream_t* s);

  /* --- timers and work on a worker loop (that worker's thread only) ----------------------- */
  /* Run cb(user_data) after timeout_ms on the worker's loop. Timers created with a stream are
   * cancelled automatically when the stream is destroyed; pass stream NULL for a worker-level
   * timer (cancel it yourself before sluice_on_worker_destroy returns). */
  sluice_timer_id_t (*sluice_host_timer_start)(sluice_worker_t* w, sluice_stream_t* s,
                                               uint64_t timeout_ms, sluice_task_callback_t cb,
                                               void* user_data);
  void (*sluice_host_timer_cancel)(sluice_worker_t* w, sluice_timer_id_t id);
  /* Run cb(user_data) on the next loop iteration of worker w. With stream NULL it is
   * thread-safe: any thread may hand work to w this way. With a stream it must be called on
   * that stream's worker, and the task is dropped if the stream ends first. */
  void (*sluice_host_post)(sluice_worker_t* w, sluice_stream_t* s, sluice_task_callback_t cb,
                           void* user_data);

  /* --- HTTP call to a cluster (worker thread) --------------------------------------------- */
  /* Send a request to `cluster` through its load balancer and pool. cb runs exactly once on
   * the same worker, unless the call is cancelled first; with a stream, the call is cancelled
   * when the stream is destroyed. Returns 0 if the call could not be started (cb not run). */
  sluice_call_id_t (*sluice_host_http_call)(sluice_worker_t* w, sluice_stream_t* s,
                                            sluice_str_t cluster, sluice_str_t method,
                                            sluice_str_t path, const sluice_header_t* headers,
                                            size_t header_count, sluice_str_t body,
                                            uint32_t timeout_ms, sluice_http_callback_t cb,
                                            void* user_data);
  void (*sluice_host_http_call_cancel)(sluice_worker_t* w, sluice_call_id_t id);

  /* --- worker identity -------------------------------------------------------------------- */
  uint32_t (*sluice_host_worker_index)(sluice_worker_t* w);
  /* Monotonic time of the worker loop in milliseconds (cached per loop iteration). */
  uint64_t (*sluice_host_worker_now_ms)(sluice_worker_t* w);

  /* --- file-descriptor watches (ABI 1.1; worker w's thread only) --------------------------- */
  /* Check host->size (or abi_minor >= 1) before using these: a 1.0 host does not have them.
   * Watch `fd` (a socket or pipe the filter opened, e.g. a client library's connection) on
   * worker w's loop: cb(user_data, events) runs on w's thread, outside any stream hook, when the
   * fd is ready for any of `events` (SLUICE_IO_READABLE / SLUICE_IO_WRITABLE; 0 registers it
   * without watching). OWNERSHIP: the filter owns the fd; the host never reads, writes or
   * closes it. Inside cb the filter may call stream functions for the live streams of w that
   * it paused (as from a worker timer), e.g. to resume one whose answer just arrived. Such a
   * call may run the rest of that stream and end it; when it was the last stream of a replaced
   * config, sluice_on_worker_destroy of that config runs before the call returns, so touch the
   * worker state after it only if the filter guards against that. LIFETIME: close the watch with
   * sluice_host_io_close before closing the fd and before sluice_on_worker_destroy returns. Returns
   * 0 if the fd cannot be watched (invalid, or already watched on this worker). */
  sluice_io_id_t (*sluice_host_io_watch)(sluice_worker_t* w, int fd, uint32_t events,
                                         sluice_io_callback_t cb, void* user_data);
  /* Replace the watched events (0 pauses the watch). Unknown ids are ignored. */
  void (*sluice_host_io_update)(sluice_worker_t* w, sluice_io_id_t id, uint32_t events);
  /* Stop watching and forget the id; cb is never called again. Safe from inside cb (of this
   * watch or another). Unknown ids are ignored. */
  void (*sluice_host_io_close)(sluice_worker_t* w, sluice_io_id_t id);

  /* --- readiness (ABI 1.2; any thread) ---------------------------------------------------- */
  /* Check host->size (or abi_minor >= 2) before using these. Hold the process's readiness while
   * start-up work that requests depend on is unfinished (e.g. the first fetch of a remote key
   * set): GET /ready answers 503 naming `what`, and sluice_server_ready stays 0, until every
   * hold is released. Only the first start-up waits for holds: once the process has reported
   * ready, holds taken later (a reload's new worker state) are tracked and shown by /ready's
   * body but no longer turn it to 503 (an instance must not flap out of its load balancer on a
   * reload). Take the hold in sluice_on_worker_new and release it when the work has finished,
   * succeeded or not, so a failing dependency cannot keep the process unready forever; bound
   * the work with a timeout. Release every hold before sluice_on_worker_destroy returns.
   * `w` names the worker in messages (may be NULL). Returns 0 if no hold could be taken. */
  sluice_ready_id_t (*sluice_host_ready_hold)(sluice_worker_t* w, sluice_str_t what);
  /* Release a hold. Unknown ids (and 0) are ignored. */
  void (*sluice_host_ready_release)(sluice_ready_id_t id);

  /* --- endpoints for clients of other protocols (ABI 1.2; worker w's thread) --------------- */
  /* Pick an endpoint of `cluster` with its load balancer, skipping unhealthy, ejected, draining
   * and unresolved ones, and write its resolved address into out as NUL-terminated text
   * ("192.0.2.7:6379", "[2001:db8::7]:6379"). For a filter that speaks another protocol to a
   * cluster (Redis, memcached): the cluster manager resolves hostnames (asynchronously, again
   * every dns_refresh_ms) and drains endpoints; pick again on every (re)connect. Returns the
   * length written, or 0 if the cluster is unknown, has no available endpoint, or out_len is too
   * small (64 bytes always suffice). */
  size_t (*sluice_host_cluster_pick)(sluice_worker_t* w, sluice_str_t cluster, char* out,
                                     size_t out_len);

  /* --- typed config view (ABI 1.3; inside sluice_on_config_new, main thread) --------------- */
  /* Check host->size (or abi_minor >= 3) before using these. Parse `json` (normally the text
   * sluice_on_config_new received) into a view. Returns NULL if it is not JSON, with the
   * problem filled (pointer "", "invalid JSON: ..."). The view is freed when
   * sluice_on_config_new returns. A typical read:
   *   sluice_config_problem_t p = {sizeof p};
   *   sluice_str_t v;
   *   switch (host->sluice_host_config_get_string(view, SLUICE_STR("/header"), &v, &p)) {
   *   case SLUICE_CONFIG_OK: ...use v...; break;
   *   case SLUICE_CONFIG_MISSING: ...keep the default...; break;
   *   default: host->sluice_host_config_error(cfg, p.pointer, p.message);
   *   } */
  sluice_config_view_t* (*sluice_host_config_view)(sluice_config_ctx_t* cfg, sluice_str_t json,
                                                   sluice_config_problem_t* problem);
  /* The JSON type at `pointer` (SLUICE_JSON_MISSING for nothing there or a bad pointer). */
  sluice_json_type_t (*sluice_host_config_type)(sluice_config_view_t* view, sluice_str_t pointer);
  /* A string (not NUL-terminated; may contain NUL if the JSON escaped one). */
  sluice_config_get_t (*sluice_host_config_get_string)(sluice_config_view_t* view,
                                                       sluice_str_t pointer, sluice_str_t* out,
                                                       sluice_config_problem_t* problem);
  /* An integer (a JSON number without fraction or exponent, within int64_t). */
  sluice_config_get_t (*sluice_host_config_get_int)(sluice_config_view_t* view,
                                                    sluice_str_t pointer, int64_t* out,
                                                    sluice_config_problem_t* problem);
  sluice_config_get_t (*sluice_host_config_get_bool)(sluice_config_view_t* view,
                                                     sluice_str_t pointer, bool* out,
                                                     sluice_config_problem_t* problem);
  /* Any JSON number. */
  sluice_config_get_t (*sluice_host_config_get_double)(sluice_config_view_t* view,
                                                       sluice_str_t pointer, double* out,
                                                       sluice_config_problem_t* problem);
  /* The number of elements of an array or members of an object (WRONG_TYPE for anything else). */
  sluice_config_get_t (*sluice_host_config_get_length)(sluice_config_view_t* view,
                                                       sluice_str_t pointer, size_t* out,
                                                       sluice_config_problem_t* problem);
  /* The index-th member (in document order) of the object at `pointer`: its name in *key and
   * the JSON pointer of its value in *member_pointer (`pointer` + "/" + the escaped name, ready
   * for the other get functions; either out may be NULL). MISSING past the last member. */
  sluice_config_get_t (*sluice_host_config_get_member)(sluice_config_view_t* view,
                                                       sluice_str_t pointer, size_t index,
                                                       sluice_str_t* key,
                                                       sluice_str_t* member_pointer,
                                                       sluice_config_problem_t* problem);
  /* Unknown keys are errors: OK if the object at `pointer` has only members named in
   * allowed[0..allowed_count) (NUL-terminated names), UNKNOWN_KEY naming the first other one
   * ("unknown key (expected a, b or c)"), WRONG_TYPE if it is not an object, MISSING if absent. */
  sluice_config_get_t (*sluice_host_config_check_keys)(sluice_config_view_t* view,
                                                       sluice_str_t pointer,
                                                       const char* const* allowed,
                                                       size_t allowed_count,
                                                       sluice_config_problem_t* problem);
} sluice_host_t;

/*
 * A filter type. Only `size`, `type`, `sluice_on_config_new` and `sluice_on_stream_new` are
 * required; every other hook may be NULL (NULL means CONTINUE / nothing to do).
 */
typedef struct sluice_filter_descriptor {
  uint32_t size;    /* sizeof(sluice_filter_descriptor_t) */
  const char* type; /* NUL-terminated type name used in configs, e.g. "header_rewrite" */

  /* MAIN thread. Parse and validate `json` (the filter's "config", as JSON text). Return the
   * filter config, or NULL after reporting errors with sluice_host_config_error. */
  void* (*sluice_on_config_new)(const sluice_host_t* host, sluice_config_ctx_t* cfg,
                                sluice_str_t json);
  /* MAIN thread. Destroy a config once nothing uses it. */
  void (*sluice_on_config_destroy)(void* config);

  /* WORKER thread. Per-worker state for this config (caches, scratch space, connections);
   * returns NULL if none is needed. */
  void* (*sluice_on_worker_new)(void* config, sluice_worker_t* worker);
  void (*sluice_on_worker_destroy)(void* config, void* worker_state);

  /* WORKER thread. Per-stream filter object. Returning NULL skips this filter for the stream. */
  void* (*sluice_on_stream_new)(void* config, void* worker_state, sluice_stream_t* stream);
  void (*sluice_on_stream_destroy)(void* filter);

  /* Request hooks run in chain order, response hooks in reverse order. end_stream is true
   * when no body (or no more body) follows. */
  sluice_status_t (*sluice_on_request_headers)(void* filter, sluice_stream_t* s, bool end_stream);
  sluice_status_t (*sluice_on_request_body)(void* filter, sluice_stream_t* s, bool end_stream);
  sluice_status_t (*sluice_on_request_trailers)(void* filter, sluice_stream_t* s);
  sluice_status_t (*sluice_on_response_headers)(void* filter, sluice_stream_t* s, bool end_stream);
  sluice_status_t (*sluice_on_response_body)(void* filter, sluice_stream_t* s, bool end_stream);
  sluice_status_t (*sluice_on_response_trailers)(void* filter, sluice_stream_t* s);
  /* The stream ended (completed, reset or answered locally): log here. */
  void (*sluice_on_stream_complete)(void* filter, sluice_stream_t* s);

  /* MAIN thread. The operator asked to reopen log files (SIGUSR1, log rotation). */
  void (*sluice_on_log_reopen)(void* config);

  /* MAIN thread (ABI 1.3; optional). The config passed every check of its load and is about to
   * go live: start what has side effects (open files, start threads). Never called by
   * `sluice validate` nor for a load that failed. Return false to fail the load (log why with
   * sluice_host_log first); sluice_on_config_destroy runs either way. See CHECK, THEN START. */
  bool (*sluice_on_config_start)(void* config);
} sluice_filter_descriptor_t;

/* The ABI minor a module reports in sluice_module_t.abi_minor: the OLDEST minor whose host it
 * works with, not the minor of the header it was compiled with. A host refuses a module whose
 * abi_minor is newer than its own ("needs C ABI 1.3, this sluice has 1.2"). A module that uses
 * nothing newer than 1.0 declares 0 and loads into every 1.x host; one that calls
 * sluice_host_config_view declares 3:
 *     #define SLUICE_MODULE_REQUIRES_MINOR 3      (before including sluice/filter.h)
 *     ... module.abi_minor = SLUICE_MODULE_ABI_MINOR;
 * Without SLUICE_MODULE_REQUIRES_MINOR, SLUICE_MODULE_ABI_MINOR is the header's minor (the safe
 * default: such a module may use anything the header declares). A module that declares an older
 * minor must check host->size before calling a function that minor lacks. */
#ifdef SLUICE_MODULE_REQUIRES_MINOR
#if SLUICE_MODULE_REQUIRES_MINOR > SLUICE_ABI_VERSION_MINOR
#error "SLUICE_MODULE_REQUIRES_MINOR is newer than this sluice/filter.h"
#endif
#define SLUICE_MODULE_ABI_MINOR SLUICE_MODULE_REQUIRES_MINOR
#else
#define SLUICE_MODULE_ABI_MINOR SLUICE_ABI_VERSION_MINOR
#endif

/* What a module returns from its entry symbol. */
typedef struct sluice_module {
  uint32_t size;      /* sizeof(sluice_module_t) */
  uint16_t abi_major; /* SLUICE_ABI_VERSION_MAJOR the module was built with */
  uint16_t abi_minor; /* the oldest host minor it needs: SLUICE_MODULE_ABI_MINOR */
  const char* name;   /* module name for messages */
  const sluice_filter_descriptor_t* const* filters; /* filter_count descriptors */
  size_t filter_count;
} sluice_module_t;

/*
 * The entry symbol every module exports (built-in filters export the same function under a
 * per-filter name). Called once per loaded file on the MAIN thread. The host table stays valid
 * for the life of the process. Return NULL to refuse loading (log why with host->sluice_host_log
 * first).
 */
#define SLUICE_MODULE_ENTRY_SYMBOL "sluice_module_init"
typedef const sluice_module_t* (*sluice_module_init_fn)(const sluice_host_t* host,
                                                        uint32_t host_abi_major,
                                                        uint32_t host_abi_minor);

/* Helper for a string literal. */
#ifdef __cplusplus
#define SLUICE_STR(lit) (sluice_str_t{(lit), sizeof(lit) - 1})
#else
#define SLUICE_STR(lit) ((sluice_str_t){(lit), sizeof(lit) - 1})
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLUICE_FILTER_H */
