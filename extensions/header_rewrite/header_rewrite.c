/*
 * header_rewrite: set, add and remove request and response headers, with values built from
 * templates such as "${request_id}" or "${request_header:user-agent}". Plain C99 against
 * sluice/filter.h only; see README.md for the config.
 *
 * The config is read through the host's typed config view (sluice_host_config_view and
 * sluice_host_config_get_*, C ABI 1.3): no JSON parsing here; every problem comes back with its
 * JSON pointer. Templates are compiled once into segments; the data path expands them into a stack
 * buffer (heap only for a value over 2 KiB) and keeps no per-stream state.
 */
/* The config view (sluice_host_config_*) arrived in C ABI 1.3: hosts before it refuse this module
 * with a clear message instead of it calling a function they lack. */
#define SLUICE_MODULE_REQUIRES_MINOR 3
#include "sluice/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SLUICE_MODULE_ENTRY_NAME
#define SLUICE_MODULE_ENTRY_NAME sluice_module_init
#endif

static const sluice_host_t* host;

/* ---- templates ---------------------------------------------------------------------------- */

typedef enum {
  SEG_LITERAL,
  SEG_REQUEST_ID,
  SEG_CLIENT_IP,
  SEG_CLIENT_ADDRESS,
  SEG_METHOD,
  SEG_PATH,
  SEG_AUTHORITY,
  SEG_LISTENER,
  SEG_PROTOCOL,
  SEG_SCHEME,
  SEG_ROUTE_NAME,
  SEG_UPSTREAM_CLUSTER,
  SEG_UPSTREAM_ENDPOINT,
  SEG_STATUS,
  SEG_REQUEST_HEADER,  /* arg: header name */
  SEG_RESPONSE_HEADER, /* arg: header name */
  SEG_METADATA         /* arg: metadata key */
} seg_kind_t;

static const struct {
  const char* name;
  seg_kind_t kind;
} kVariables[] = {{"request_id", SEG_REQUEST_ID},
                  {"client_ip", SEG_CLIENT_IP},
                  {"client_address", SEG_CLIENT_ADDRESS},
                  {"method", SEG_METHOD},
                  {"path", SEG_PATH},
                  {"authority", SEG_AUTHORITY},
                  {"listener", SEG_LISTENER},
                  {"protocol", SEG_PROTOCOL},
                  {"scheme", SEG_SCHEME},
                  {"route_name", SEG_ROUTE_NAME},
                  {"upstream_cluster", SEG_UPSTREAM_CLUSTER},
                  {"upstream_endpoint", SEG_UPSTREAM_ENDPOINT},
                  {"status", SEG_STATUS}};

typedef struct {
  seg_kind_t kind;
  char* text; /* literal text or the variable's argument */
  size_t len;
} segment_t;

typedef struct {
  char* name;
  size_t name_len;
  segment_t* segs;
  size_t seg_count;
  int needs_info; /* any variable read from stream info */
} header_op_t;

typedef struct {
  header_op_t* set;
  size_t set_count;
  header_op_t* add;
  size_t add_count;
  char** remove;
  size_t* remove_len;
  size_t remove_count;
} direction_ops_t;

typedef struct {
  direction_ops_t dir[2]; /* SLUICE_DIRECTION_REQUEST, SLUICE_DIRECTION_RESPONSE */
} config_t;

/* ---- config parsing ----------------------------------------------------------------------- */
/* The host parses the JSON (sluice_host_config_view, ABI 1.3); this module only reads typed
 * values by JSON pointer. The first problem is reported and reading stops there. */

typedef struct {
  sluice_config_ctx_t* cfg;
  sluice_config_view_t* view;
  int failed;
} reader_t;

static void report_str(reader_t* r, sluice_str_t pointer, sluice_str_t message) {
  if (r->failed) {
    return; /* the first error is the useful one: parsing stops there */
  }
  r->failed = 1;
  host->sluice_host_config_error(r->cfg, pointer, message);
}

static void report(reader_t* r, const char* pointer, const char* message) {
  report_str(r, (sluice_str_t){pointer, strlen(pointer)}, (sluice_str_t){message, strlen(message)});
}

/* OK: go on; MISSING: the caller keeps its default; anything else is reported. */
static int check(reader_t* r, sluice_config_get_t got, const sluice_config_problem_t* p) {
  if (got == SLUICE_CONFIG_OK || got == SLUICE_CONFIG_MISSING) {
    return 1;
  }
  report_str(r, p->pointer, p->message);
  return 0;
}

static sluice_str_t cstr(const char* s) {
  sluice_str_t v;
  v.ptr = s;
  v.len = strlen(s);
  return v;
}

/* A NUL-terminated heap copy of a host string. */
static char* copy_str(sluice_str_t v) {
  char* out = (char*)malloc(v.len + 1);
  if (out != NULL) {
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
  }
  return out;
}

static int is_token(const char* s, size_t n) {
  size_t i;
  if (n == 0) {
    return 0;
  }
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL))) {
      return 0;
    }
  }
  return 1;
}

static int push_segment(header_op_t* op, seg_kind_t kind, const char* text, size_t len) {
  segment_t* segs = (segment_t*)realloc(op->segs, (op->seg_count + 1) * sizeof(segment_t));
  if (segs == NULL) {
    return 0;
  }
  op->segs = segs;
  segs[op->seg_count].kind = kind;
  segs[op->seg_count].text = (char*)malloc(len + 1);
  if (segs[op->seg_count].text == NULL) {
    return 0;
  }
  memcpy(segs[op->seg_count].text, text, len);
  segs[op->seg_count].text[len] = '\0';
  segs[op->seg_count].len = len;
  op->seg_count++;
  if (kind != SEG_LITERAL && kind != SEG_REQUEST_HEADER && kind != SEG_RESPONSE_HEADER &&
      kind != SEG_METADATA && kind != SEG_METHOD && kind != SEG_PATH && kind != SEG_AUTHORITY &&
      kind != SEG_SCHEME) {
    op->needs_info = 1;
  }
  return 1;
}

static int has_prefix(const char* s, size_t n, const char* p) {
  size_t pl = strlen(p);
  return n >= pl && memcmp(s, p, pl) == 0;
}

/* Compiles a template: literal text, "$$" for "$", and ${variable} / ${kind:argument}. */
static int compile_template(reader_t* r, const char* pointer, header_op_t* op, const char* v,
                            size_t n, int response) {
  size_t i = 0, lit = 0;
  char msg[200];
  for (i = 0; i < n; i++) {
    if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0') {
      report(r, pointer, "a header value must not contain CR, LF or NUL");
      return 0;
    }
  }
  i = 0;
  while (i < n) {
    size_t end, name_len, k;
    const char* name;
    int found = 0;
    if (v[i] != '$') {
      i++;
      continue;
    }
    if (i + 1 < n && v[i + 1] == '$') {
      if (!push_segment(op, SEG_LITERAL, v + lit, i + 1 - lit)) {
        goto oom;
      }
      i += 2;
      lit = i;
      continue;
    }
    if (i + 1 >= n || v[i + 1] != '{') {
      report(r, pointer, "a '$' starts ${variable} (write $$ for a literal '$')");
      return 0;
    }
    for (end = i + 2; end < n && v[end] != '}'; end++) {
    }
    if (end >= n) {
      report(r, pointer, "unterminated ${ in header value");
      return 0;
    }
    if (i > lit && !push_segment(op, SEG_LITERAL, v + lit, i - lit)) {
      goto oom;
    }
    name = v + i + 2;
    name_len = end - (i + 2);
    for (k = 0; k < sizeof kVariables / sizeof kVariables[0]; k++) {
      if (strlen(kVariables[k].name) == name_len &&
          memcmp(kVariables[k].name, name, name_len) == 0) {
        if (kVariables[k].kind == SEG_STATUS && !response) {
          report(r, pointer, "${status} is only known in response headers");
          return 0;
        }
        if (!push_segment(op, kVariables[k].kind, "", 0)) {
          goto oom;
        }
        found = 1;
        break;
      }
    }
    if (!found) {
      seg_kind_t kind = SEG_LITERAL;
      size_t skip = 0;
      if (has_prefix(name, name_len, "request_header:")) {
        kind = SEG_REQUEST_HEADER;
        skip = strlen("request_header:");
      } else if (has_prefix(name, name_len, "response_header:")) {
        kind = SEG_RESPONSE_HEADER;
        skip = strlen("response_header:");
      } else if (has_prefix(name, name_len, "metadata:")) {
        kind = SEG_METADATA;
        skip = strlen("metadata:");
      }
      if (kind == SEG_LITERAL || name_len == skip) {
        snprintf(msg, sizeof msg, "unknown variable ${%.*s}", (int)(name_len > 60 ? 60 : name_len),
                 name);
        report(r, pointer, msg);
        return 0;
      }
      if (kind == SEG_RESPONSE_HEADER && !response) {
        report(r, pointer, "${response_header:...} is only known in response headers");
        return 0;
      }
      if (!push_segment(op, kind, name + skip, name_len - skip)) {
        goto oom;
      }
    }
    i = end + 1;
    lit = i;
  }
  if (n > lit && !push_segment(op, SEG_LITERAL, v + lit, n - lit)) {
    goto oom;
  }
  return 1;
oom:
  report(r, pointer, "out of memory");
  return 0;
}

/* "set"/"add": an object of header name -> template. */
static int parse_ops(reader_t* r, const char* pointer, header_op_t** ops, size_t* count,
                     int response) {
  sluice_config_problem_t p = {sizeof(sluice_config_problem_t), {NULL, 0}, {NULL, 0}};
  size_t n = 0, i;
  if (host->sluice_host_config_get_length(r->view, cstr(pointer), &n, &p) != SLUICE_CONFIG_OK ||
      host->sluice_host_config_type(r->view, cstr(pointer)) != SLUICE_JSON_OBJECT) {
    report(r, pointer, "expected an object of header name -> value");
    return 0;
  }
  *ops = (header_op_t*)calloc(n > 0 ? n : 1, sizeof(header_op_t));
  if (*ops == NULL) {
    report(r, pointer, "out of memory");
    return 0;
  }
  for (i = 0; i < n; i++) {
    sluice_str_t name, member, value;
    char* member_ptr;
    header_op_t* op = &(*ops)[i];
    int ok;
    if (!check(r,
               host->sluice_host_config_get_member(r->view, cstr(pointer), i, &name, &member, &p),
               &p) ||
        !check(r, host->sluice_host_config_get_string(r->view, member, &value, &p), &p)) {
      return 0;
    }
    member_ptr = copy_str(member);
    op->name = copy_str(name);
    (*count)++;
    if (member_ptr == NULL || op->name == NULL) {
      free(member_ptr);
      report(r, pointer, "out of memory");
      return 0;
    }
    op->name_len = name.len;
    ok = is_token(op->name, op->name_len);
    if (!ok) {
      report(r, member_ptr, "expected a header name (an RFC 9110 token)");
    } else {
      ok = compile_template(r, member_ptr, op, value.ptr, value.len, response);
    }
    free(member_ptr);
    if (!ok) {
      return 0;
    }
  }
  return 1;
}

/* "remove": an array of header names. */
static int parse_remove(reader_t* r, const char* pointer, direction_ops_t* d) {
  sluice_config_problem_t p = {sizeof(sluice_config_problem_t), {NULL, 0}, {NULL, 0}};
  size_t n = 0, i;
  if (host->sluice_host_config_type(r->view, cstr(pointer)) != SLUICE_JSON_ARRAY) {
    report(r, pointer, "expected an array of header names");
    return 0;
  }
  host->sluice_host_config_get_length(r->view, cstr(pointer), &n, &p);
  d->remove = (char**)calloc(n > 0 ? n : 1, sizeof(char*));
  d->remove_len = (size_t*)calloc(n > 0 ? n : 1, sizeof(size_t));
  if (d->remove == NULL || d->remove_len == NULL) {
    report(r, pointer, "out of memory");
    return 0;
  }
  for (i = 0; i < n; i++) {
    char item_ptr[300];
    sluice_str_t name;
    snprintf(item_ptr, sizeof item_ptr, "%s/%zu", pointer, i);
    if (!check(r, host->sluice_host_config_get_string(r->view, cstr(item_ptr), &name, &p), &p)) {
      return 0;
    }
    if (!is_token(name.ptr, name.len)) {
      report(r, item_ptr, "expected a header name (an RFC 9110 token)");
      return 0;
    }
    d->remove[d->remove_count] = copy_str(name);
    if (d->remove[d->remove_count] == NULL) {
      report(r, item_ptr, "out of memory");
      return 0;
    }
    d->remove_len[d->remove_count++] = name.len;
  }
  return 1;
}

static int parse_direction(reader_t* r, const char* pointer, direction_ops_t* d, int response) {
  static const char* const kKeys[] = {"remove", "set", "add"};
  sluice_config_problem_t p = {sizeof(sluice_config_problem_t), {NULL, 0}, {NULL, 0}};
  char member_ptr[64];
  if (!check(r, host->sluice_host_config_check_keys(r->view, cstr(pointer), kKeys, 3, &p), &p)) {
    return 0;
  }
  snprintf(member_ptr, sizeof member_ptr, "%s/remove", pointer);
  if (host->sluice_host_config_type(r->view, cstr(member_ptr)) != SLUICE_JSON_MISSING &&
      !parse_remove(r, member_ptr, d)) {
    return 0;
  }
  snprintf(member_ptr, sizeof member_ptr, "%s/set", pointer);
  if (host->sluice_host_config_type(r->view, cstr(member_ptr)) != SLUICE_JSON_MISSING &&
      !parse_ops(r, member_ptr, &d->set, &d->set_count, response)) {
    return 0;
  }
  snprintf(member_ptr, sizeof member_ptr, "%s/add", pointer);
  if (host->sluice_host_config_type(r->view, cstr(member_ptr)) != SLUICE_JSON_MISSING &&
      !parse_ops(r, member_ptr, &d->add, &d->add_count, response)) {
    return 0;
  }
  return 1;
}

static void free_ops(header_op_t* ops, size_t count) {
  size_t i, j;
  for (i = 0; i < count; i++) {
    for (j = 0; j < ops[i].seg_count; j++) {
      free(ops[i].segs[j].text);
    }
    free(ops[i].segs);
    free(ops[i].name);
  }
  free(ops);
}

static void config_destroy(void* p) {
  config_t* c = (config_t*)p;
  size_t d, i;
  if (c == NULL) {
    return;
  }
  for (d = 0; d < 2; d++) {
    free_ops(c->dir[d].set, c->dir[d].set_count);
    free_ops(c->dir[d].add, c->dir[d].add_count);
    for (i = 0; i < c->dir[d].remove_count; i++) {
      free(c->dir[d].remove[i]);
    }
    free(c->dir[d].remove);
    free(c->dir[d].remove_len);
  }
  free(c);
}

static void* config_new(const sluice_host_t* h, sluice_config_ctx_t* cfg, sluice_str_t json) {
  static const char* const kKeys[] = {"request", "response"};
  sluice_config_problem_t p = {sizeof(sluice_config_problem_t), {NULL, 0}, {NULL, 0}};
  reader_t r;
  config_t* c;
  host = h;
  r.cfg = cfg;
  r.failed = 0;
  r.view = h->sluice_host_config_view(cfg, json, &p);
  if (r.view == NULL) {
    report_str(&r, p.pointer, p.message);
    return NULL;
  }
  if (h->sluice_host_config_type(r.view, SLUICE_STR("")) == SLUICE_JSON_NULL) {
    r.failed = 0; /* "config": null reads as no config */
  } else if (!check(&r, h->sluice_host_config_check_keys(r.view, SLUICE_STR(""), kKeys, 2, &p),
                    &p)) {
    return NULL;
  }
  c = (config_t*)calloc(1, sizeof(config_t));
  if (c == NULL) {
    report(&r, "", "out of memory");
    return NULL;
  }
  if ((h->sluice_host_config_type(r.view, SLUICE_STR("/request")) != SLUICE_JSON_MISSING &&
       !parse_direction(&r, "/request", &c->dir[SLUICE_DIRECTION_REQUEST], 0)) ||
      (h->sluice_host_config_type(r.view, SLUICE_STR("/response")) != SLUICE_JSON_MISSING &&
       !parse_direction(&r, "/response", &c->dir[SLUICE_DIRECTION_RESPONSE], 1))) {
    config_destroy(c);
    return NULL;
  }
  return c;
}

/* ---- data path ---------------------------------------------------------------------------- */

typedef struct {
  char stack[2048];
  char* buf;
  size_t len;
  size_t cap;
  int oom;
} out_buf_t;

static void out_init(out_buf_t* o) {
  o->buf = o->stack;
  o->len = 0;
  o->cap = sizeof o->stack;
  o->oom = 0;
}

static void out_append(out_buf_t* o, sluice_str_t s) {
  if (s.len == 0 || o->oom) {
    return;
  }
  if (o->len + s.len > o->cap) {
    size_t cap = o->cap * 2 > o->len + s.len ? o->cap * 2 : o->len + s.len;
    char* grown = (char*)malloc(cap);
    if (grown == NULL) {
      o->oom = 1;
      return;
    }
    memcpy(grown, o->buf, o->len);
    if (o->buf != o->stack) {
      free(o->buf);
    }
    o->buf = grown;
    o->cap = cap;
  }
  memcpy(o->buf + o->len, s.ptr, s.len);
  o->len += s.len;
}

static void out_free(out_buf_t* o) {
  if (o->buf != o->stack) {
    free(o->buf);
  }
}

static sluice_str_t header_value(sluice_stream_t* s, sluice_header_map_t map, const char* name,
                                 size_t len) {
  sluice_str_t v = {NULL, 0};
  if (!host->sluice_host_header_get(s, map, (sluice_str_t){name, len}, 0, &v)) {
    v.ptr = NULL;
    v.len = 0;
  }
  return v;
}

static void expand(sluice_stream_t* s, const header_op_t* op, out_buf_t* o) {
  sluice_stream_info_t info;
  char num[16];
  size_t i;
  if (op->needs_info) {
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    host->sluice_host_stream_info(s, &info);
  }
  for (i = 0; i < op->seg_count; i++) {
    const segment_t* seg = &op->segs[i];
    sluice_str_t v = {NULL, 0};
    switch (seg->kind) {
    case SEG_LITERAL:
      v.ptr = seg->text;
      v.len = seg->len;
      break;
    case SEG_REQUEST_ID:
      v = info.request_id;
      break;
    case SEG_CLIENT_IP:
      v = info.client_ip;
      break;
    case SEG_CLIENT_ADDRESS:
      v = info.client_address;
      break;
    case SEG_METHOD:
      v = header_value(s, SLUICE_HEADERS_REQUEST, ":method", 7);
      break;
    case SEG_PATH:
      v = header_value(s, SLUICE_HEADERS_REQUEST, ":path", 5);
      break;
    case SEG_AUTHORITY:
      v = header_value(s, SLUICE_HEADERS_REQUEST, ":authority", 10);
      break;
    case SEG_SCHEME:
      v = header_value(s, SLUICE_HEADERS_REQUEST, ":scheme", 7);
      break;
    case SEG_LISTENER:
      v = info.listener;
      break;
    case SEG_PROTOCOL:
      v = info.protocol;
      break;
    case SEG_ROUTE_NAME:
      v = info.route_name;
      break;
    case SEG_UPSTREAM_CLUSTER:
      v = info.upstream_cluster;
      break;
    case SEG_UPSTREAM_ENDPOINT:
      v = info.upstream_endpoint;
      break;
    case SEG_STATUS: {
      int n = snprintf(num, sizeof num, "%u", info.response_status);
      v.ptr = num;
      v.len = n > 0 ? (size_t)n : 0;
      break;
    }
    case SEG_REQUEST_HEADER:
      v = header_value(s, SLUICE_HEADERS_REQUEST, seg->text, seg->len);
      break;
    case SEG_RESPONSE_HEADER:
      v = header_value(s, SLUICE_HEADERS_RESPONSE, seg->text, seg->len);
      break;
    case SEG_METADATA:
      if (!host->sluice_host_metadata_get(s, (sluice_str_t){seg->text, seg->len}, &v)) {
        v.ptr = NULL;
        v.len = 0;
      }
      break;
    }
    out_append(o, v);
  }
}

static void apply(const direction_ops_t* d, sluice_stream_t* s, sluice_header_map_t map) {
  size_t i;
  for (i = 0; i < d->remove_count; i++) {
    host->sluice_host_header_remove(s, map, (sluice_str_t){d->remove[i], d->remove_len[i]});
  }
  for (i = 0; i < d->set_count + d->add_count; i++) {
    int is_set = i < d->set_count;
    const header_op_t* op = is_set ? &d->set[i] : &d->add[i - d->set_count];
    sluice_str_t name = {op->name, op->name_len};
    out_buf_t o;
    out_init(&o);
    expand(s, op, &o);
    /* An empty result (e.g. a header the request lacks) sets nothing. */
    if (!o.oom && o.len > 0) {
      if (is_set) {
        host->sluice_host_header_set(s, map, name, (sluice_str_t){o.buf, o.len});
      } else {
        host->sluice_host_header_add(s, map, name, (sluice_str_t){o.buf, o.len});
      }
    }
    out_free(&o);
  }
}

/* No per-stream state: the filter object is the (shared, read-only) config itself. */
static void* stream_new(void* config, void* worker_state, sluice_stream_t* s) {
  (void)worker_state;
  (void)s;
  return config;
}

static sluice_status_t on_request_headers(void* f, sluice_stream_t* s, bool end_stream) {
  (void)end_stream;
  apply(&((const config_t*)f)->dir[SLUICE_DIRECTION_REQUEST], s, SLUICE_HEADERS_REQUEST);
  return SLUICE_STATUS_CONTINUE;
}

static sluice_status_t on_response_headers(void* f, sluice_stream_t* s, bool end_stream) {
  (void)end_stream;
  apply(&((const config_t*)f)->dir[SLUICE_DIRECTION_RESPONSE], s, SLUICE_HEADERS_RESPONSE);
  return SLUICE_STATUS_CONTINUE;
}

static const sluice_filter_descriptor_t kDescriptor = {
    sizeof(sluice_filter_descriptor_t),
    "header_rewrite",
    config_new,
    config_destroy,
    NULL, /* sluice_on_worker_new */
    NULL, /* sluice_on_worker_destroy */
    stream_new,
    NULL, /* sluice_on_stream_destroy: nothing per stream */
    on_request_headers,
    NULL, /* request body: untouched, keeps the host's fast path */
    NULL,
    on_response_headers,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL}; /* sluice_on_config_start: nothing to start */
static const sluice_filter_descriptor_t* const kDescriptors[] = {&kDescriptor};
static const sluice_module_t kModule = {sizeof(sluice_module_t),
                                        SLUICE_ABI_VERSION_MAJOR,
                                        SLUICE_MODULE_ABI_MINOR,
                                        "header_rewrite",
                                        kDescriptors,
                                        1};

SLUICE_EXPORT const sluice_module_t*
SLUICE_MODULE_ENTRY_NAME(const sluice_host_t* h, uint32_t host_major, uint32_t host_minor) {
  /* The host refuses a module whose minor (SLUICE_MODULE_REQUIRES_MINOR) is newer than its own. */
  (void)host_minor;
  if (h == NULL || host_major != SLUICE_ABI_VERSION_MAJOR) {
    if (h != NULL) {
      static const char msg[] = "header_rewrite: built for a different sluice C ABI version";
      h->sluice_host_log(NULL, NULL, SLUICE_LOG_ERROR, (sluice_str_t){msg, sizeof msg - 1});
    }
    return NULL;
  }
  host = h;
  return &kModule;
}
