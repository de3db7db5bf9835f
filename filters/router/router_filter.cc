// The router as an ordinary filter: it only uses the C ABI. It picks the virtual host and the
// first matching route, answers redirects and direct responses itself, and otherwise hands the
// request to a cluster with sluice_host_route.

#include "filters/common/host_check.h"
#include "filters/router/config.h"
#include "sluice/filter.h"

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
  std::unique_ptr<RouteTable> table;
};

struct StreamState;

struct WorkerState {
  std::unique_ptr<RouteTable::Scratch> scratch;
  std::vector<StreamState*> free_list;
  std::string path_buf;
  std::string host_buf;
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

void* configNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) {
  std::vector<ConfigError> errors;
  auto exists = [&](std::string_view name) {
    return host->sluice_host_config_cluster_exists(ctx, st(name));
  };
  // Progress of a large table goes to the log (this runs on the config-building thread).
  auto progress = [&](const std::string& line) {
    host->sluice_host_log(ctx, nullptr, SLUICE_LOG_INFO, st(line));
  };
  auto table = RouteTable::parse(sv(json), exists, errors, progress);
  if (!errors.empty() || !table) {
    for (const auto& e : errors) {
      host->sluice_host_config_error(ctx, st(e.pointer), st(e.message));
    }
    if (errors.empty()) {
      host->sluice_host_config_error(ctx, SLUICE_STR(""), SLUICE_STR("invalid router config"));
    }
    return nullptr;
  }
  auto* cfg = new FilterConfig;
  cfg->table = std::move(table);
  return cfg;
}

void configDestroy(void* c) {
  delete static_cast<FilterConfig*>(c);
}

void* workerNew(void* c, sluice_worker_t*) {
  auto* w = new WorkerState;
  w->scratch = static_cast<FilterConfig*>(c)->table->newScratch();
  w->path_buf.reserve(256);
  return w;
}

void workerDestroy(void*, void* w) {
  delete static_cast<WorkerState*>(w);
}

void* streamNew(void* c, void* w, sluice_stream_t*) {
  auto* ws = static_cast<WorkerState*>(w);
  StreamState* s;
  if (!ws->free_list.empty()) {
    s = ws->free_list.back();
    ws->free_list.pop_back();
  } else {
    s = new StreamState;
  }
  s->config = static_cast<FilterConfig*>(c);
  s->worker = ws;
  s->vhost = nullptr;
  s->route = nullptr;
  return s;
}

void streamDestroy(void* p) {
  auto* s = static_cast<StreamState*>(p);
  s->worker->free_list.push_back(s);
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

sluice_status_t onRequestHeaders(void* p, sluice_stream_t* strm, bool) {
  auto* s = static_cast<StreamState*>(p);
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
    std::vector<sluice_header_t> hs;
    for (const HeaderOp& op : r->response_headers_to_add) {
      hs.push_back({st(op.name), st(op.value)});
    }
    for (const HeaderOp& op : vh->response_headers_to_add) {
      hs.push_back({st(op.name), st(op.value)});
    }
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
    sluice_header_t h{SLUICE_STR("location"), st(loc)};
    g_host->sluice_host_send_local_reply(strm, r->status, &h, 1, SLUICE_STR(""),
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

sluice_status_t onResponseHeaders(void* p, sluice_stream_t* strm, bool) {
  auto* s = static_cast<StreamState*>(p);
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

const sluice_filter_descriptor_t kDescriptor = [] {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "router";
  d.sluice_on_config_new = configNew;
  d.sluice_on_config_destroy = configDestroy;
  d.sluice_on_worker_new = workerNew;
  d.sluice_on_worker_destroy = workerDestroy;
  d.sluice_on_stream_new = streamNew;
  d.sluice_on_stream_destroy = streamDestroy;
  d.sluice_on_request_headers = onRequestHeaders;
  d.sluice_on_response_headers = onResponseHeaders;
  return d;
}();

} // namespace

} // namespace sluice::filters::router

SLUICE_BUILTIN_MODULE(router, sluice::filters::router::kDescriptor,
                      SLUICE_HOST_SIZE_THROUGH(sluice_host_worker_now_ms),
                      sluice::filters::router::g_host = host)
