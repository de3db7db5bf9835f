// The router as an ordinary filter: it only uses the C ABI. Every hook the host calls is a
// noexcept trampoline at the bottom of this file; an exception never crosses into C (a config
// error at load, a 500 "filter error" on a stream).

#include "filters/router/router_filter.h"

#include "filters/common/ascii.h"
#include "filters/common/config_reader.h"
#include "filters/common/host_check.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace sluice::filters::router {

namespace {

// Set once by the module entry (before any config or worker exists) and only read after that:
// workers read it while a reload builds configs, so nothing may write it again.
const sluice_host_t* g_host = nullptr;

std::string_view sv(sluice_str_t s) {
  return {s.ptr, s.len};
}
sluice_str_t st(std::string_view v) {
  return {v.data(), v.size()};
}

struct FilterConfig {
  static std::unique_ptr<FilterConfig> create(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                                              sluice_str_t json);
  std::unique_ptr<RouteTable> table;
};

struct StreamState;

struct WorkerState {
  std::unique_ptr<RouteTable::Scratch> scratch;
  std::vector<StreamState*> free_list;
  size_t allocated = 0; // stream objects made (free_list has room for all of them)
  std::string path_buf;
  std::string host_buf;
  std::vector<sluice_header_t> reply_headers; // a local reply's headers, reused
  std::mt19937_64 rng{std::random_device{}()};
  ~WorkerState();
};

struct StreamState {
  const FilterConfig* config;
  WorkerState* worker;
  const VirtualHost* vhost = nullptr;
  const Route* route = nullptr;
};

WorkerState::~WorkerState() {
  for (StreamState* s : free_list) {
    delete s;
  }
}

std::unique_ptr<FilterConfig> FilterConfig::create(const sluice_host_t* host,
                                                   sluice_config_ctx_t* ctx, sluice_str_t json) {
  common::ConfigReader reader;
  auto exists = [&](std::string_view name) {
    return host->sluice_host_config_cluster_exists(ctx, st(name));
  };
  // Progress of a large table goes to the log (this runs on the config-building thread).
  auto progress = [&](const std::string& line) {
    host->sluice_host_log(ctx, nullptr, SLUICE_LOG_INFO, st(line));
  };
  auto table = RouteTable::parse(sv(json), exists, reader, progress);
  if (!reader.report(host, ctx) || !table) {
    if (reader.ok()) {
      host->sluice_host_config_error(ctx, SLUICE_STR(""), SLUICE_STR("invalid router config"));
    }
    return nullptr;
  }
  auto cfg = std::make_unique<FilterConfig>();
  cfg->table = std::move(table);
  return cfg;
}

std::unique_ptr<WorkerState> workerNew(const FilterConfig& c) {
  auto w = std::make_unique<WorkerState>();
  w->scratch = c.table->newScratch();
  w->path_buf.reserve(256);
  w->reply_headers.reserve(16);
  return w;
}

StreamState* streamNew(void* c, void* w) {
  auto* ws = static_cast<WorkerState*>(w);
  StreamState* s;
  if (!ws->free_list.empty()) {
    s = ws->free_list.back();
    ws->free_list.pop_back();
  } else {
    // Room in the free list for every stream object, so that onStreamDestroy never allocates.
    ws->free_list.reserve(++ws->allocated);
    s = new StreamState;
  }
  s->config = static_cast<FilterConfig*>(c);
  s->worker = ws;
  s->vhost = nullptr;
  s->route = nullptr;
  return s;
}

void eraseHeader(std::vector<sluice_header_t>& hs, std::string_view name) {
  std::erase_if(
      hs, [name](const sluice_header_t& h) { return common::asciiIequals(sv(h.name), name); });
}

// A redirect's or direct response's own headers (`hs`, e.g. its location) after the route's
// and the virtual host's response header rules, in the order an upstream response gets them:
// the names to remove go first, then the virtual host's additions, then the route's (a
// non-append addition replaces the header). A removed content-type that nothing adds back is
// passed as `content-type` with an empty value, which tells the host to send none rather than
// its default text/plain.
void applyResponseOps(std::vector<sluice_header_t>& hs, const VirtualHost& vh, const Route& r) {
  bool content_type_removed = false;
  for (const auto* names : {&r.response_headers_to_remove, &vh.response_headers_to_remove}) {
    for (const std::string& name : *names) {
      eraseHeader(hs, name);
      content_type_removed = content_type_removed || common::asciiIequals(name, "content-type");
    }
  }
  for (const auto* ops : {&vh.response_headers_to_add, &r.response_headers_to_add}) {
    for (const HeaderOp& op : *ops) {
      if (!op.append) {
        eraseHeader(hs, op.name);
      }
      hs.push_back({st(op.name), st(op.value)});
    }
  }
  if (content_type_removed && std::none_of(hs.begin(), hs.end(), [](const sluice_header_t& h) {
        return common::asciiIequals(sv(h.name), "content-type");
      })) {
    hs.push_back({SLUICE_STR("content-type"), SLUICE_STR("")});
  }
}

void applyRequestOps(sluice_stream_t* strm, const std::vector<HeaderOp>& ops) {
  for (const HeaderOp& op : ops) {
    if (op.append) {
      g_host->sluice_host_header_add(strm, SLUICE_HEADERS_REQUEST, st(op.name), st(op.value));
    } else {
      g_host->sluice_host_header_set(strm, SLUICE_HEADERS_REQUEST, st(op.name), st(op.value));
    }
  }
}

sluice_status_t requestHeaders(StreamState* s, sluice_stream_t* strm) {
  const RouteTable& table = *s->config->table;
  sluice_str_t authority{nullptr, 0}, path{nullptr, 0}, method{nullptr, 0};
  g_host->sluice_host_header_get(strm, SLUICE_HEADERS_REQUEST, SLUICE_STR(":authority"), 0,
                                 &authority);
  g_host->sluice_host_header_get(strm, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path);
  g_host->sluice_host_header_get(strm, SLUICE_HEADERS_REQUEST, SLUICE_STR(":method"), 0, &method);
  const VirtualHost* vh = table.findVirtualHost(sv(authority));
  const Route* r = nullptr;
  if (vh != nullptr) {
    auto lookup = [strm](const std::string& name, std::string_view* out) {
      sluice_str_t v;
      if (!g_host->sluice_host_header_get(strm, SLUICE_HEADERS_REQUEST, st(name), 0, &v)) {
        return false;
      }
      *out = sv(v);
      return true;
    };
    r = table.match(*vh, sv(method), sv(path), lookup, *s->worker->scratch);
  }
  if (r == nullptr) {
    g_host->sluice_host_set_response_flags(strm, SLUICE_FLAG_NO_ROUTE);
    g_host->sluice_host_send_local_reply(strm, 404, nullptr, 0, SLUICE_STR("no route\n"),
                                         SLUICE_STR("no route"));
    return SLUICE_STATUS_STOP;
  }
  s->vhost = vh;
  s->route = r;
  std::string_view full(path.ptr, path.len);
  size_t q = full.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view() : full.substr(q);

  switch (r->action) {
  case Route::Action::Direct: {
    std::vector<sluice_header_t>& hs = s->worker->reply_headers;
    hs.clear();
    applyResponseOps(hs, *vh, *r);
    g_host->sluice_host_send_local_reply(strm, r->status, hs.data(), hs.size(), st(r->body),
                                         SLUICE_STR("direct response"));
    return SLUICE_STATUS_STOP;
  }
  case Route::Action::Redirect: {
    std::string& loc = s->worker->path_buf;
    loc.clear();
    if (!r->redirect_scheme.empty() || !r->redirect_host.empty()) {
      loc += r->redirect_scheme.empty() ? "http" : r->redirect_scheme;
      loc += "://";
      loc += r->redirect_host.empty() ? sv(authority) : std::string_view(r->redirect_host);
    }
    if (!r->redirect_path.empty()) {
      loc += r->redirect_path;
      if (!r->redirect_strip_query) {
        loc += query;
      }
    } else {
      loc += r->redirect_strip_query ? full.substr(0, q) : full;
    }
    std::vector<sluice_header_t>& hs = s->worker->reply_headers;
    hs.clear();
    hs.push_back({SLUICE_STR("location"), st(loc)});
    applyResponseOps(hs, *vh, *r);
    g_host->sluice_host_send_local_reply(strm, r->status, hs.data(), hs.size(), SLUICE_STR(""),
                                         SLUICE_STR("redirect"));
    return SLUICE_STATUS_STOP;
  }
  case Route::Action::Cluster:
  case Route::Action::Weighted:
    break;
  }

  sluice_route_t route{};
  route.size = sizeof(route);
  if (r->action == Route::Action::Weighted) {
    uint64_t pick = s->worker->rng() % r->total_weight;
    for (const auto& [cluster, weight] : r->weighted) {
      if (pick < weight) {
        route.cluster = st(cluster);
        break;
      }
      pick -= weight;
    }
  } else {
    route.cluster = st(r->cluster);
  }
  route.path = {nullptr, 0};
  if (r->strip_prefix || r->prefix_rewrite) {
    // The matched prefix is replaced (by nothing, or by the rewrite); the rest, query included,
    // is kept, and the result always starts with "/".
    std::string& np = s->worker->path_buf;
    np.clear();
    std::string_view rest = full.substr(r->value.size());
    if (r->prefix_rewrite) {
      np += *r->prefix_rewrite;
      if (np.back() == '/' && !rest.empty() && rest[0] == '/') {
        rest.remove_prefix(1);
      }
    } else if (rest.empty() || rest[0] != '/') {
      np += '/';
    }
    np += rest;
    route.path = st(np);
  }
  route.route_name = st(r->name);
  route.timeout_ms = r->timeout_ms;
  route.retry_attempts = r->retry_attempts;
  route.retry_on = r->retry_on;
  route.per_try_timeout_ms = r->per_try_timeout_ms;
  route.hash_key = {nullptr, 0};
  for (const std::string& name : r->request_headers_to_remove) {
    g_host->sluice_host_header_remove(strm, SLUICE_HEADERS_REQUEST, st(name));
  }
  applyRequestOps(strm, vh->request_headers_to_add);
  applyRequestOps(strm, r->request_headers_to_add);
  if (!g_host->sluice_host_route(strm, &route)) {
    g_host->sluice_host_send_local_reply(strm, 503, nullptr, 0,
                                         SLUICE_STR("cluster not available\n"),
                                         SLUICE_STR("unknown cluster"));
    return SLUICE_STATUS_STOP;
  }
  return SLUICE_STATUS_CONTINUE;
}

sluice_status_t responseHeaders(StreamState* s, sluice_stream_t* strm) {
  if (s->route == nullptr) {
    return SLUICE_STATUS_CONTINUE;
  }
  const Route& r = *s->route;
  for (const std::string& name : r.response_headers_to_remove) {
    g_host->sluice_host_header_remove(strm, SLUICE_HEADERS_RESPONSE, st(name));
  }
  for (const std::string& name : s->vhost->response_headers_to_remove) {
    g_host->sluice_host_header_remove(strm, SLUICE_HEADERS_RESPONSE, st(name));
  }
  for (const auto* ops : {&s->vhost->response_headers_to_add, &r.response_headers_to_add}) {
    for (const HeaderOp& op : *ops) {
      if (op.append) {
        g_host->sluice_host_header_add(strm, SLUICE_HEADERS_RESPONSE, st(op.name), st(op.value));
      } else {
        g_host->sluice_host_header_set(strm, SLUICE_HEADERS_RESPONSE, st(op.name), st(op.value));
      }
    }
  }
  return SLUICE_STATUS_CONTINUE;
}

// --- the C ABI: noexcept trampolines -------------------------------------------------------

void* onConfigNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) noexcept {
  return common::newConfig<FilterConfig>(host, ctx, json, "router");
}

void* onWorkerNew(void* config, sluice_worker_t*) noexcept {
  try {
    return workerNew(*static_cast<FilterConfig*>(config)).release();
  } catch (const std::exception& e) {
    // The host skips the router on this worker: its requests get 404 "no route".
    g_host->sluice_host_log(nullptr, nullptr, SLUICE_LOG_ERROR,
                            SLUICE_STR("router: cannot create the worker state"));
    return nullptr;
  }
}

void onWorkerDestroy(void*, void* worker_state) noexcept {
  delete static_cast<WorkerState*>(worker_state);
}

void* onStreamNew(void* config, void* worker_state, sluice_stream_t*) noexcept {
  if (worker_state == nullptr) {
    return nullptr;
  }
  try {
    return streamNew(config, worker_state);
  } catch (const std::exception&) {
    return nullptr; // the host skips the router for this stream (404 "no route")
  }
}

void onStreamDestroy(void* filter) noexcept {
  auto* s = static_cast<StreamState*>(filter);
  s->worker->free_list.push_back(s); // room reserved in streamNew: cannot throw
}

sluice_status_t onRequestHeaders(void* filter, sluice_stream_t* s, bool) noexcept {
  return common::guardStreamHook(g_host, s, "router", "request headers", [&] {
    return requestHeaders(static_cast<StreamState*>(filter), s);
  });
}

sluice_status_t onResponseHeaders(void* filter, sluice_stream_t* s, bool) noexcept {
  return common::guardStreamHook(g_host, s, "router", "response headers", [&] {
    return responseHeaders(static_cast<StreamState*>(filter), s);
  });
}

constexpr sluice_filter_descriptor_t makeDescriptor() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "router";
  d.sluice_on_config_new = onConfigNew;
  d.sluice_on_config_destroy = common::deleteConfig<FilterConfig>;
  d.sluice_on_worker_new = onWorkerNew;
  d.sluice_on_worker_destroy = onWorkerDestroy;
  d.sluice_on_stream_new = onStreamNew;
  d.sluice_on_stream_destroy = onStreamDestroy;
  d.sluice_on_request_headers = onRequestHeaders;
  d.sluice_on_response_headers = onResponseHeaders;
  return d;
}

constexpr sluice_filter_descriptor_t kDescriptor = makeDescriptor();

// Everything this filter calls lives at or before sluice_host_worker_now_ms in the host table.
constexpr size_t kHostSizeNeeded = SLUICE_HOST_SIZE_THROUGH(sluice_host_worker_now_ms);

} // namespace

const sluice_filter_descriptor_t& descriptor() {
  return kDescriptor;
}

} // namespace sluice::filters::router

SLUICE_BUILTIN_MODULE(router, sluice::filters::router::kDescriptor,
                      sluice::filters::router::kHostSizeNeeded,
                      sluice::filters::router::g_host = host)
