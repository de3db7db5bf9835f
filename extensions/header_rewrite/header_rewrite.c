/*
 * header_rewrite: set, add and remove request and response headers, with values built from
 * templates such as "${request_id}" or "${request_header:user-agent}". Plain C99 against
 * sluice/filter.h only; see README.md for the config.
 *
 * The config is parsed by a small schema-driven JSON reader below (objects, arrays and
 * strings, with every JSON escape); anything else where a string is expected is a config
 * error. Templates are compiled once into segments; the data path expands them into a stack
 * buffer (heap only for a value over 2 KiB) and keeps no per-stream state.
 */
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

typedef struct {
  const char* s;
  size_t len;
  size_t pos;
  sluice_config_ctx_t* cfg;
  int failed;
} reader_t;

static void report(reader_t* r, const char* pointer, const char* message) {
  if (r->failed) {
    return; /* the first error is the useful one: parsing stops there */
  }
  r->failed = 1;
  host->sluice_host_config_error(r->cfg, (sluice_str_t){pointer, strlen(pointer)},
                                 (sluice_str_t){message, strlen(message)});
}

static void skip_ws(reader_t* r) {
  while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' || r->s[r->pos] == '\n' ||
                             r->s[r->pos] == '\r')) {
    r->pos++;
  }
}

static int peek(reader_t* r) {
  skip_ws(r);
  return r->pos < r->len ? (unsigned char)r->s[r->pos] : -1;
}

/* The next value's text, as sluice's config errors show a value ("got 42", "got [1,2]"): the
 * config arrives re-serialized by the core as compact JSON, so the text is copied as it stands,
 * up to the end of the value, and cut at 60 characters with "...". */
static void describe_next(reader_t* r, char* out, size_t cap) {
  size_t n = 0;
  int depth = 0, in_string = 0, escaped = 0;
  if (peek(r) < 0) {
    snprintf(out, cap, "the end of the text");
    return;
  }
  for (size_t i = r->pos; i < r->len; i++) {
    char c = r->s[i];
    if (!in_string && depth == 0 && n > 0 && (c == ',' || c == '}' || c == ']' || c == ' ')) {
      break;
    }
    if (n > 60 || n + 1 >= cap) {
      break; /* long enough to be cut below */
    }
    out[n++] = c;
    if (in_string) {
      if (escaped) {
        escaped = 0;
      } else if (c == '\\') {
        escaped = 1;
      } else if (c == '"') {
        in_string = 0;
        if (depth == 0) {
          break;
        }
      }
    } else if (c == '"') {
      in_string = 1;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        break;
      }
    }
  }
  if (n > 60) {
    memcpy(out + 57, "...", 3);
    n = 60;
  }
  out[n] = 0;
}

static void expected(reader_t* r, const char* pointer, const char* what) {
  char value[64];
  char msg[160];
  describe_next(r, value, sizeof value);
  snprintf(msg, sizeof msg, "expected %s, got %s", what, value);
  report(r, pointer, msg);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

static int read_hex4(reader_t* r, unsigned* out) {
  size_t i;
  *out = 0;
  if (r->pos + 4 > r->len) {
    return 0;
  }
  for (i = 0; i < 4; i++) {
    int d = hex_value(r->s[r->pos + i]);
    if (d < 0) {
      return 0;
    }
    *out = *out * 16 + (unsigned)d;
  }
  r->pos += 4;
  return 1;
}

/* Reads a JSON string at the cursor into a malloc'd NUL-terminated buffer. */
static char* read_string(reader_t* r, const char* pointer, size_t* out_len) {
  char* out;
  size_t n = 0;
  if (peek(r) != '"') {
    expected(r, pointer, "a string");
    return NULL;
  }
  r->pos++;
  out = (char*)malloc(r->len - r->pos + 1); /* decoded text is never longer than the source */
  if (out == NULL) {
    report(r, pointer, "out of memory");
    return NULL;
  }
  while (r->pos < r->len) {
    unsigned char c = (unsigned char)r->s[r->pos++];
    if (c == '"') {
      out[n] = '\0';
      *out_len = n;
      return out;
    }
    if (c < 0x20) {
      break;
    }
    if (c != '\\') {
      out[n++] = (char)c;
      continue;
    }
    if (r->pos >= r->len) {
      break;
    }
    c = (unsigned char)r->s[r->pos++];
    switch (c) {
    case '"':
    case '\\':
    case '/':
      out[n++] = (char)c;
      break;
    case 'b':
      out[n++] = '\b';
      break;
    case 'f':
      out[n++] = '\f';
      break;
    case 'n':
      out[n++] = '\n';
      break;
    case 'r':
      out[n++] = '\r';
      break;
    case 't':
      out[n++] = '\t';
      break;
    case 'u': {
      unsigned cp, lo;
      if (!read_hex4(r, &cp)) {
        goto bad;
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (r->pos + 2 > r->len || r->s[r->pos] != '\\' || r->s[r->pos + 1] != 'u') {
          goto bad;
        }
        r->pos += 2;
        if (!read_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
          goto bad;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        goto bad;
      }
      /* \uXXXX is 6 source bytes, at most 4 output bytes: the buffer is large enough. */
      if (cp < 0x80) {
        out[n++] = (char)cp;
      } else if (cp < 0x800) {
        out[n++] = (char)(0xC0 | (cp >> 6));
        out[n++] = (char)(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out[n++] = (char)(0xE0 | (cp >> 12));
        out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[n++] = (char)(0x80 | (cp & 0x3F));
      } else {
        out[n++] = (char)(0xF0 | (cp >> 18));
        out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[n++] = (char)(0x80 | (cp & 0x3F));
      }
      break;
    }
    default:
      goto bad;
    }
  }
bad:
  free(out);
  report(r, pointer, "invalid JSON string");
  return NULL;
}

/* Consumes ',' (returns 1: another element follows) or the closing bracket (returns 0). */
static int next_element(reader_t* r, const char* pointer, char close) {
  int c = peek(r);
  if (c == ',') {
    r->pos++;
    return 1;
  }
  if (c == close) {
    r->pos++;
    return 0;
  }
  report(r, pointer,
         close == '}' ? "invalid JSON: expected ',' or '}'" : "invalid JSON: expected ',' or ']'");
  return -1;
}

/* Opens an object; returns 1 if it has members, 0 if empty, -1 on error. */
static int open_object(reader_t* r, const char* pointer) {
  if (peek(r) != '{') {
    expected(r, pointer, "an object");
    return -1;
  }
  r->pos++;
  if (peek(r) == '}') {
    r->pos++;
    return 0;
  }
  return 1;
}

static char* read_key(reader_t* r, const char* pointer, size_t* len) {
  char* key = read_string(r, pointer, len);
  if (key == NULL) {
    return NULL;
  }
  if (peek(r) != ':') {
    free(key);
    report(r, pointer, "invalid JSON: expected ':'");
    return NULL;
  }
  r->pos++;
  return key;
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

/* Appends "/token" (RFC 6901 escaped) to base into out. */
static void pointer_join(char* out, size_t cap, const char* base, const char* token) {
  size_t n = (size_t)snprintf(out, cap, "%s/", base);
  for (; *token != '\0' && n + 3 < cap; token++) {
    if (*token == '~') {
      out[n++] = '~';
      out[n++] = '0';
    } else if (*token == '/') {
      out[n++] = '~';
      out[n++] = '1';
    } else {
      out[n++] = *token;
    }
  }
  out[n < cap ? n : cap - 1] = '\0';
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
  int more = open_object(r, pointer);
  if (more < 0) {
    return 0;
  }
  while (more > 0) {
    char member_ptr[256];
    size_t name_len = 0, value_len = 0;
    char* name = read_key(r, pointer, &name_len);
    char* value;
    header_op_t* grown;
    header_op_t* op;
    if (name == NULL) {
      return 0;
    }
    pointer_join(member_ptr, sizeof member_ptr, pointer, name);
    if (!is_token(name, name_len)) {
      free(name);
      report(r, member_ptr, "expected a header name (an RFC 9110 token)");
      return 0;
    }
    value = read_string(r, member_ptr, &value_len);
    if (value == NULL) {
      free(name);
      return 0;
    }
    grown = (header_op_t*)realloc(*ops, (*count + 1) * sizeof(header_op_t));
    if (grown == NULL) {
      free(name);
      free(value);
      report(r, member_ptr, "out of memory");
      return 0;
    }
    *ops = grown;
    op = &grown[(*count)++];
    memset(op, 0, sizeof *op);
    op->name = name;
    op->name_len = name_len;
    if (!compile_template(r, member_ptr, op, value, value_len, response)) {
      free(value);
      return 0;
    }
    free(value);
    more = next_element(r, pointer, '}');
  }
  return more == 0;
}

/* "remove": an array of header names. */
static int parse_remove(reader_t* r, const char* pointer, direction_ops_t* d) {
  int more;
  size_t index = 0;
  if (peek(r) != '[') {
    expected(r, pointer, "an array");
    return 0;
  }
  r->pos++;
  more = peek(r) == ']' ? 0 : 1;
  if (more == 0) {
    r->pos++;
  }
  while (more > 0) {
    char item_ptr[300];
    size_t len = 0;
    char* name;
    char** grown;
    size_t* grown_len;
    snprintf(item_ptr, sizeof item_ptr, "%s/%zu", pointer, index++);
    name = read_string(r, item_ptr, &len);
    if (name == NULL) {
      return 0;
    }
    if (!is_token(name, len)) {
      free(name);
      report(r, item_ptr, "expected a header name (an RFC 9110 token)");
      return 0;
    }
    grown = (char**)realloc(d->remove, (d->remove_count + 1) * sizeof(char*));
    if (grown != NULL) {
      d->remove = grown;
    }
    grown_len = (size_t*)realloc(d->remove_len, (d->remove_count + 1) * sizeof(size_t));
    if (grown_len != NULL) {
      d->remove_len = grown_len;
    }
    if (grown == NULL || grown_len == NULL) {
      free(name);
      report(r, item_ptr, "out of memory");
      return 0;
    }
    d->remove[d->remove_count] = name;
    d->remove_len[d->remove_count++] = len;
    more = next_element(r, pointer, ']');
  }
  return more == 0;
}

static int parse_direction(reader_t* r, const char* pointer, direction_ops_t* d, int response) {
  int more = open_object(r, pointer);
  int seen_set = 0, seen_add = 0, seen_remove = 0;
  if (more < 0) {
    return 0;
  }
  while (more > 0) {
    char member_ptr[256];
    size_t len = 0;
    int ok;
    char* key = read_key(r, pointer, &len);
    if (key == NULL) {
      return 0;
    }
    pointer_join(member_ptr, sizeof member_ptr, pointer, key);
    if (strcmp(key, "set") == 0 && !seen_set) {
      seen_set = 1;
      ok = parse_ops(r, member_ptr, &d->set, &d->set_count, response);
    } else if (strcmp(key, "add") == 0 && !seen_add) {
      seen_add = 1;
      ok = parse_ops(r, member_ptr, &d->add, &d->add_count, response);
    } else if (strcmp(key, "remove") == 0 && !seen_remove) {
      seen_remove = 1;
      ok = parse_remove(r, member_ptr, d);
    } else {
      int dup = strcmp(key, "set") == 0 || strcmp(key, "add") == 0 || strcmp(key, "remove") == 0;
      report(r, member_ptr, dup ? "duplicate key" : "unknown key (expected set, add or remove)");
      ok = 0;
    }
    free(key);
    if (!ok) {
      return 0;
    }
    more = next_element(r, pointer, '}');
  }
  return more == 0;
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
  reader_t r;
  config_t* c = (config_t*)calloc(1, sizeof(config_t));
  int more, seen[2] = {0, 0};
  host = h;
  r.s = json.ptr;
  r.len = json.len;
  r.pos = 0;
  r.cfg = cfg;
  r.failed = 0;
  if (c == NULL) {
    report(&r, "", "out of memory");
    return NULL;
  }
  if (peek(&r) == -1) {
    return c; /* no config: nothing to rewrite */
  }
  more = open_object(&r, "");
  while (more > 0) {
    char member_ptr[256];
    size_t len = 0;
    int d = -1;
    char* key = read_key(&r, "", &len);
    if (key == NULL) {
      more = -1;
      break;
    }
    pointer_join(member_ptr, sizeof member_ptr, "", key);
    if (strcmp(key, "request") == 0) {
      d = SLUICE_DIRECTION_REQUEST;
    } else if (strcmp(key, "response") == 0) {
      d = SLUICE_DIRECTION_RESPONSE;
    }
    free(key);
    if (d < 0 || seen[d]) {
      report(&r, member_ptr,
             d < 0 ? "unknown key (expected request or response)" : "duplicate key");
      more = -1;
      break;
    }
    seen[d] = 1;
    if (!parse_direction(&r, member_ptr, &c->dir[d], d == SLUICE_DIRECTION_RESPONSE)) {
      more = -1;
      break;
    }
    more = next_element(&r, "", '}');
  }
  if (more == 0 && peek(&r) != -1) {
    report(&r, "", "invalid JSON: text after the config object");
  }
  if (r.failed || more < 0) {
    report(&r, "", "invalid config"); /* no-op when an error was reported already */
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
    NULL};
static const sluice_filter_descriptor_t* const kDescriptors[] = {&kDescriptor};
static const sluice_module_t kModule = {sizeof(sluice_module_t),
                                        SLUICE_ABI_VERSION_MAJOR,
                                        SLUICE_ABI_VERSION_MINOR,
                                        "header_rewrite",
                                        kDescriptors,
                                        1};

SLUICE_EXPORT const sluice_module_t*
SLUICE_MODULE_ENTRY_NAME(const sluice_host_t* h, uint32_t host_major, uint32_t host_minor) {
  /* The host refuses a module whose minor is newer than its own (kModule.abi_minor). */
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
