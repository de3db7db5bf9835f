// A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is
// answered here with 204 and never forwarded. Every other request goes on; its response gets
// the CORS headers in the response-headers hook when its Origin is allowed. Nothing is kept per
// stream: the stream object is the worker state, and the response hook reads the Origin again.

#include "filters/cors/cors_filter.h"

#include "filters/common/ascii.h"
#include "filters/common/host_check.h"

#include <exception>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::filters::cors {

namespace {

const sluice_host_t* g_host = nullptr;

std::string_view sv(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}
sluice_str_t st(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}

struct WorkerState {
  const Config* config;
  hs_scratch_t* scratch;
  ~WorkerState() {
    if (scratch != nullptr) {
      hs_free_scratch(scratch);
    }
  }
};

bool requestHeader(sluice_stream_t* s, sluice_str_t name, std::string_view& out) {
  sluice_str_t v{nullptr, 0};
  if (!g_host->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, name, 0, &v)) {
    return false;
  }
  out = sv(v);
  return true;
}

// True when a Vary value already covers Origin ("*" or an "origin" member).
bool varyCoversOrigin(std::string_view vary) {
  size_t i = 0;
  while (i <= vary.size()) {
    size_t comma = vary.find(',', i);
    std::string_view item =
        vary.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) {
      item.remove_suffix(1);
    }
    if (item == "*" || common::asciiIequals(item, "origin")) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    i = comma + 1;
  }
  return false;
}

void addVaryOrigin(sluice_stream_t* s) {
  sluice_str_t v{nullptr, 0};
  for (size_t i = 0;
       g_host->sluice_host_header_get(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("vary"), i, &v); i++) {
    if (varyCoversOrigin(sv(v))) {
      return;
    }
  }
  g_host->sluice_host_header_add(s, SLUICE_HEADERS_RESPONSE, SLUICE_STR("vary"),
                                 SLUICE_STR("Origin"));
}

sluice_status_t onRequestHeaders(void* filter, sluice_stream_t* s, bool) noexcept {
  auto* w = static_cast<WorkerState*>(filter);
  const Config& c = *w->config;
  std::string_view method, origin, request_method;
  if (!requestHeader(s, SLUICE_STR(":method"), method) || method != "OPTIONS" ||
      !requestHeader(s, SLUICE_STR("origin"), origin) ||
      !requestHeader(s, SLUICE_STR("access-control-request-method"), request_method)) {
    return SLUICE_STATUS_CONTINUE;
  }
  if (!c.originAllowed(origin, w->scratch)) {
    // Not ours to answer: it goes on as an ordinary OPTIONS request, and its response carries
    // no CORS headers, so the browser refuses the actual request.
    return SLUICE_STATUS_CONTINUE;
  }
  sluice_header_t h[7];
  size_t n = 0;
  h[n++] = {SLUICE_STR("access-control-allow-origin"),
            c.answersWildcard() ? SLUICE_STR("*") : st(origin)};
  h[n++] = {SLUICE_STR("access-control-allow-methods"), st(c.allowMethods())};
  if (!c.allowHeaders().empty()) {
    h[n++] = {SLUICE_STR("access-control-allow-headers"), st(c.allowHeaders())};
  }
  if (!c.maxAge().empty()) {
    h[n++] = {SLUICE_STR("access-control-max-age"), st(c.maxAge())};
  }
  if (c.allowCredentials()) {
    h[n++] = {SLUICE_STR("access-control-allow-credentials"), SLUICE_STR("true")};
  }
  if (c.variesByOrigin()) {
    h[n++] = {SLUICE_STR("vary"), SLUICE_STR("Origin")};
  }
  g_host->sluice_host_send_local_reply(s, 204, h, n, SLUICE_STR(""), SLUICE_STR("cors preflight"));
  return SLUICE_STATUS_STOP;
}

sluice_status_t onResponseHeaders(void* filter, sluice_stream_t* s, bool) noexcept {
  auto* w = static_cast<WorkerState*>(filter);
  const Config& c = *w->config;
  std::string_view origin;
  if (requestHeader(s, SLUICE_STR("origin"), origin) && c.originAllowed(origin, w->scratch)) {
    g_host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE,
                                   SLUICE_STR("access-control-allow-origin"),
                                   c.answersWildcard() ? SLUICE_STR("*") : st(origin));
    if (c.allowCredentials()) {
      g_host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE,
                                     SLUICE_STR("access-control-allow-credentials"),
                                     SLUICE_STR("true"));
    }
    if (!c.exposeHeaders().empty()) {
      g_host->sluice_host_header_set(s, SLUICE_HEADERS_RESPONSE,
                                     SLUICE_STR("access-control-expose-headers"),
                                     st(c.exposeHeaders()));
    }
  }
  // A cache must not hand a response made for one origin (or for none) to another.
  if (c.variesByOrigin()) {
    addVaryOrigin(s);
  }
  return SLUICE_STATUS_CONTINUE;
}

void* onConfigNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) noexcept {
  try {
    common::ConfigReader reader;
    std::unique_ptr<Config> c = Config::parse(json, reader);
    if (!reader.report(host, ctx) || c == nullptr) {
      return nullptr;
    }
    return c.release();
  } catch (const std::exception& e) {
    const std::string message = std::string("cannot create the cors config: ") + e.what();
    host->sluice_host_config_error(ctx, SLUICE_STR(""), st(message));
    return nullptr;
  }
}

void onConfigDestroy(void* config) noexcept {
  delete static_cast<Config*>(config);
}

void* onWorkerNew(void* config, sluice_worker_t*) noexcept {
  auto* c = static_cast<Config*>(config);
  return new (std::nothrow) WorkerState{c, c->newScratch()};
}

void onWorkerDestroy(void*, void* worker_state) noexcept {
  delete static_cast<WorkerState*>(worker_state);
}

void* onStreamNew(void*, void* worker_state, sluice_stream_t*) noexcept {
  return worker_state; // nothing per stream
}

void onStreamDestroy(void*) noexcept {}

constexpr sluice_filter_descriptor_t makeDescriptor() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "cors";
  d.sluice_on_config_new = onConfigNew;
  d.sluice_on_config_destroy = onConfigDestroy;
  d.sluice_on_worker_new = onWorkerNew;
  d.sluice_on_worker_destroy = onWorkerDestroy;
  d.sluice_on_stream_new = onStreamNew;
  d.sluice_on_stream_destroy = onStreamDestroy;
  d.sluice_on_request_headers = onRequestHeaders;
  d.sluice_on_response_headers = onResponseHeaders;
  return d;
}

constexpr sluice_filter_descriptor_t kDescriptor = makeDescriptor();

// Everything this filter calls lives at or before sluice_host_send_local_reply.
constexpr size_t kHostSizeNeeded = offsetof(sluice_host_t, sluice_host_send_local_reply) +
                                   sizeof(sluice_host_t::sluice_host_send_local_reply);

} // namespace

const sluice_filter_descriptor_t& descriptor() {
  return kDescriptor;
}

} // namespace sluice::filters::cors

SLUICE_BUILTIN_MODULE(cors, sluice::filters::cors::kDescriptor,
                      sluice::filters::cors::kHostSizeNeeded, sluice::filters::cors::g_host = host)
