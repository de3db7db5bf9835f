#include "core/admin/admin_server.h"

#include "core/admin/status_page.h"
#include "core/common/alloc_count.h"
#include "core/common/logger.h"
#include "core/http/codec.h"
#include "core/network/connection.h"
#include "core/stats/registry.h"

#include <chrono>

#include <fmt/format.h>
#include <sluice/version.h>
#include <unistd.h>

namespace sluice::admin {

bool constantTimeEquals(std::string_view a, std::string_view b) {
  size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

namespace {

constexpr size_t kMaxBody = 1024 * 1024;

std::string jsonEscape(std::string_view s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      o += fmt::format("\\u{:04x}", c);
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string jsonStrings(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); i++) {
    out += fmt::format("{}\"{}\"", i ? ", " : "", jsonEscape(v[i]));
  }
  return out + "]";
}

// 2026-12-04T16:40:00.123Z
std::string isoTime(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     static_cast<int>(unix_ms % 1000));
}

// The status page may load nothing from elsewhere: inline script and style, fetches to this
// origin only.
constexpr const char* kPageHeaders =
    "content-security-policy: default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'\r\n"
    "x-content-type-options: nosniff\r\n";

} // namespace

// One admin connection: parse a request, answer, keep alive.
class AdminServer::Session : public network::ConnectionCallbacks, public http::BodySink {
public:
  explicit Session(AdminServer& server)
      : server_(server), conn_(server.dispatcher_, *this),
        parser_(http::MessageType::Request, arena_, 16384) {
    parser_.setBodySink(this);
    timer_ = server.dispatcher_.createTimer([this] { finish(); });
  }
  int accept(uv_stream_t* s) {
    int rc = conn_.accept(s);
    if (rc == 0) {
      conn_.readEnable(true);
      timer_->enable(30000);
    }
    return rc;
  }
  void onData() override {
    network::Buffer& in = conn_.readBuffer();
    while (!in.empty() && !closing_ && !pending_) {
      bool ready = false;
      http::ParseEvent ev = http::parseStep(parser_, in, head_, &ready);
      if (ev == http::ParseEvent::Error) {
        reply({parser_.error() == http::ParseError::HeadersTooLarge ? 431u : 400u, "text/plain",
               "bad request\n", true});
        return;
      }
      if (ready) {
        body_.clear();
        too_big_ = false;
        answered_ = false;
      }
      if (ev == http::ParseEvent::HeadComplete) {
        parser_.resume();
        if (parser_.head().no_body) {
          // No body follows: answer now (the parser reports the message end with the next read).
          answer();
          answered_ = true;
        }
        continue;
      }
      if (ev == http::ParseEvent::MessageComplete) {
        if (!answered_) {
          answer();
        }
        answered_ = false;
        parser_.resume();
        continue;
      }
      break;
    }
  }
  void answer() {
    http::MessageHead& h = parser_.head();
    const bool keep_alive = h.keep_alive;
    if (too_big_) {
      reply({413, "text/plain", "body too large\n", true});
      return;
    }
    // A reload may answer later: reading pauses until then, and the answer is dropped if the
    // connection is gone by then.
    pending_ = true;
    in_handle_ = true;
    std::weak_ptr<bool> alive = alive_;
    server_.handle(h.method, h.target, h.headers.get("authorization"), body_,
                   [this, alive, keep_alive](AdminResponse r) {
                     if (alive.expired() || done_) {
                       return;
                     }
                     r.close = r.close || !keep_alive;
                     pending_ = false;
                     reply(r);
                     if (!in_handle_ && !closing_) {
                       conn_.readEnable(true);
                       onData(); // requests that arrived before the pause
                     }
                   });
    in_handle_ = false;
    if (pending_) {
      conn_.readEnable(false);
    }
  }
  void onBodyData(std::string_view d) override {
    if (body_.size() + d.size() > kMaxBody) {
      too_big_ = true;
      return;
    }
    body_.append(d);
  }
  void onRemoteClose(int) override { finish(); }
  void onLocalClose() override { finish(); }

private:
  void reply(const AdminResponse& r) {
    network::Buffer& out = conn_.writeBuffer();
    http::appendStatusLine(out, r.status);
    http::appendHeader(out, "content-type", r.content_type);
    http::appendHeader(out, "content-length", std::to_string(r.body.size()));
    http::appendHeader(out, "cache-control", "no-store");
    if (r.status == 401) {
      http::appendHeader(out, "www-authenticate", "Bearer realm=\"sluice-admin\"");
    }
    if (r.close) {
      http::appendHeader(out, "connection", "close");
    }
    if (r.content_type.starts_with("text/html")) {
      out.append(kPageHeaders);
    }
    out.append("\r\n");
    out.append(r.body);
    if (r.close) {
      closing_ = true;
      conn_.closeAfterFlush();
    } else {
      conn_.flush();
    }
  }
  void finish() {
    if (done_) {
      return;
    }
    done_ = true;
    timer_->disable();
    conn_.close();
    server_.remove(this);
  }

  AdminServer& server_;
  network::Connection conn_;
  http::Arena arena_;
  http::Parser parser_;
  network::Buffer head_;
  std::string body_;
  event::TimerPtr timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool too_big_ = false;
  bool pending_ = false;   // an answer is outstanding
  bool in_handle_ = false; // inside handle(): an answer now needs no read restart
  bool answered_ = false;
  bool closing_ = false;
  bool done_ = false;

public:
  std::list<std::unique_ptr<Session>>::iterator self;
};

AdminServer::AdminServer(event::Dispatcher& dispatcher, const config::AdminConfig& cfg,
                         AdminHooks hooks)
    : dispatcher_(dispatcher), cfg_(cfg), hooks_(std::move(hooks)),
      started_ms_(upstream::Endpoint::monotonicMs()) {}

AdminServer::~AdminServer() {
  sessions_.clear();
  if (listener_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
}

int AdminServer::start() {
  network::SockAddr addr;
  if (!network::toSockAddr(cfg_.address, addr)) {
    std::string err;
    if (!network::resolve(cfg_.address.host, cfg_.address.port, addr, err)) {
      return -EINVAL;
    }
  }
  int fd = network::openListenSocket(addr, 128);
  if (fd < 0) {
    return fd;
  }
  network::boundAddress(fd, bound_);
  listener_ = new uv_tcp_t;
  uv_tcp_init(dispatcher_.loop(), listener_);
  listener_->data = this;
  if (uv_tcp_open(listener_, fd) != 0 ||
      uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 128, &AdminServer::onConnection) != 0) {
    return -EIO;
  }
  SLUICE_LOG(Info, "admin", "admin listening address={}", network::formatAddress(bound_.get()));
  return 0;
}

void AdminServer::onConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<AdminServer*>(server->data);
  if (status != 0) {
    return;
  }
  auto s = std::make_unique<Session>(*self);
  if (s->accept(server) != 0) {
    return;
  }
  self->sessions_.push_front(std::move(s));
  self->sessions_.front()->self = self->sessions_.begin();
}

void AdminServer::remove(Session* s) {
  std::unique_ptr<Session> owned = std::move(*s->self);
  sessions_.erase(s->self);
  struct Holder : event::DeferredDeletable {
    std::unique_ptr<Session> s;
  };
  auto h = std::make_unique<Holder>();
  h->s = std::move(owned);
  dispatcher_.deferredDelete(std::move(h));
}

std::string AdminServer::clustersJson() const {
  filter::SnapshotPtr snap = hooks_.snapshot();
  std::string out = "{\"clusters\": [";
  static const char* kPolicies[] = {"round_robin", "least_request", "random", "ring_hash",
                                    "maglev"};
  bool first = true;
  for (const auto& c : snap->clusters) {
    out += first ? "\n" : ",\n";
    first = false;
    out += fmt::format("  {{\"name\": \"{}\", \"lb_policy\": \"{}\", \"endpoints\": [",
                       jsonEscape(c->name()), kPolicies[static_cast<int>(c->config().lb_policy)]);
    bool efirst = true;
    for (const auto& e : c->endpoints()) {
      out += efirst ? "" : ", ";
      efirst = false;
      uint64_t until = e->ejected_until_ms.load();
      uint64_t now = upstream::Endpoint::monotonicMs();
      out += fmt::format(
          "{{\"address\": \"{}\", \"resolved_address\": \"{}\", \"weight\": {}, "
          "\"healthy\": {}, \"ejected\": {}, \"ejected_for_ms\": {}, \"ejections\": {}, "
          "\"draining\": {}, \"resolved\": {}, \"active_requests\": {}, "
          "\"active_connections\": {}}}",
          jsonEscape(e->address), jsonEscape(e->resolved_text), e->weight,
          e->healthy.load() ? "true" : "false", e->ejected() ? "true" : "false",
          until > now ? until - now : 0, e->ejections.load(), e->draining.load() ? "true" : "false",
          e->resolved.load() ? "true" : "false", e->active_requests.load(),
          e->active_connections.load());
    }
    out += "]}";
  }
  out += "\n]}\n";
  return out;
}

void AdminServer::recordReload(ReloadRecord r) {
  reloads_.push_back(std::move(r));
  while (reloads_.size() > kReloadHistory) {
    reloads_.pop_front();
  }
}

std::string AdminServer::statusJson() const {
  filter::SnapshotPtr snap = hooks_.snapshot();
  std::string out =
      fmt::format("{{\"version\": \"{}\", \"uptime_ms\": {}, \"generation\": {}, \"ready\": {}, "
                  "\"not_ready_reason\": \"{}\",\n \"listeners\": [",
                  SLUICE_VERSION_STRING, upstream::Endpoint::monotonicMs() - started_ms_,
                  snap ? std::to_string(snap->generation) : "null",
                  !fail_health_ && hooks_.ready() ? "true" : "false",
                  jsonEscape(fail_health_              ? "forced by POST /healthcheck/fail"
                             : hooks_.not_ready_reason ? hooks_.not_ready_reason()
                                                       : std::string()));
  bool first = true;
  if (hooks_.listeners) {
    for (const auto& [name, address] : hooks_.listeners()) {
      out += fmt::format("{}{{\"name\": \"{}\", \"address\": \"{}\"}}", first ? "" : ", ",
                         jsonEscape(name), jsonEscape(address));
      first = false;
    }
  }
  out += "],\n \"reloads\": [";
  first = true;
  for (auto it = reloads_.rbegin(); it != reloads_.rend(); ++it) {
    const ReloadRecord& r = *it;
    out += fmt::format(
        "{}\n  {{\"generation\": {}, \"time\": \"{}\", \"time_unix_ms\": {}, \"result\": "
        "\"{}\", \"initial\": {}, \"changes\": {}, \"summary\": \"{}\", \"errors\": {}}}",
        first ? "" : ",", r.ok ? std::to_string(r.generation) : "null", isoTime(r.time_unix_ms),
        r.time_unix_ms, r.ok ? "success" : "failure", r.initial ? "true" : "false",
        r.ok ? r.changes.toJson() : "null", jsonEscape(r.ok ? r.changes.summary() : std::string()),
        jsonStrings(r.errors));
    first = false;
  }
  out += "]}\n";
  return out;
}

void AdminServer::handle(std::string_view method, std::string_view target,
                         std::string_view authorization, std::string_view body, Reply reply) {
  bool deferred = false;
  AdminResponse r = route(method, target, authorization, body, reply, &deferred);
  if (!deferred) {
    reply(std::move(r));
  }
}

AdminResponse AdminServer::route(std::string_view method, std::string_view target,
                                 std::string_view authorization, std::string_view body,
                                 const Reply& reply, bool* deferred) {
  std::string_view path = target.substr(0, target.find('?'));
  auto text = [](uint32_t st, std::string b) {
    return AdminResponse{st, "text/plain; charset=utf-8", std::move(b), false};
  };
  auto json = [](uint32_t st, std::string b) {
    return AdminResponse{st, "application/json", std::move(b), false};
  };
  if (path == "/healthz") {
    return method == "GET" || method == "HEAD" ? text(200, "ok\n") : text(405, "use GET\n");
  }
  if (path == "/ready") {
    if (method != "GET" && method != "HEAD") {
      return text(405, "use GET\n");
    }
    if (fail_health_) {
      return text(503, "not ready: forced by POST /healthcheck/fail\n");
    }
    if (hooks_.ready()) {
      return text(200, "ready\n");
    }
    std::string why = hooks_.not_ready_reason ? hooks_.not_ready_reason() : std::string();
    return text(503, why.empty() ? "not ready\n" : "not ready: " + why + "\n");
  }
  // The status page: static HTML that asks for the key and fetches the JSON endpoints with it.
  auto page = [](uint32_t st) {
    return AdminResponse{st, "text/html; charset=utf-8", std::string(statusPageHtml()), false};
  };
  if (!cfg_.api_key.empty()) {
    static constexpr std::string_view kBearer = "Bearer ";
    std::string_view given;
    if (authorization.size() > kBearer.size() &&
        http::iequals(authorization.substr(0, kBearer.size()), kBearer)) {
      given = authorization.substr(kBearer.size());
    }
    if (!constantTimeEquals(given, cfg_.api_key)) {
      // A browser cannot send the header with a navigation: the 401 carries the page (no data
      // in it), which asks for the key and sends it with every fetch.
      return path == "/" && method == "GET" ? page(401) : text(401, "unauthorized\n");
    }
  }
  if (path == "/") {
    return method == "GET" ? page(200) : text(405, "use GET\n");
  }
  if (path == "/status") {
    return method == "GET" ? json(200, statusJson()) : text(405, "use GET\n");
  }
  if (path == "/stats/prometheus" || path == "/metrics") {
    if (method != "GET") {
      return text(405, "use GET\n");
    }
    return AdminResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                         stats::Registry::global().renderPrometheus(), false};
  }
  if (path == "/debug/allocations") {
    // Heap allocations made on worker threads since start, for allocation tests; counted only
    // when sluice was started with SLUICE_COUNT_ALLOCATIONS=1 (and never in sanitizer builds).
    if (method != "GET") {
      return text(405, "use GET\n");
    }
    if (!allocCountAvailable() || !allocCountEnabled()) {
      return text(404, "allocation counting is off (start sluice with "
                       "SLUICE_COUNT_ALLOCATIONS=1; not available in sanitizer builds)\n");
    }
    return json(200, fmt::format("{{\"worker_allocations\": {}, \"allocations\": {}}}\n",
                                 workerAllocCount(), allocCount()));
  }
  if (path == "/stats") {
    return method == "GET" ? json(200, stats::Registry::global().renderJson())
                           : text(405, "use GET\n");
  }
  if (!hooks_.snapshot() && (path == "/config_dump" || path.substr(0, 9) == "/clusters")) {
    return text(503, "config is not live yet\n");
  }
  if (path == "/config_dump") {
    return method == "GET" ? json(200, config::redactedDump(*hooks_.snapshot()->config) + "\n")
                           : text(405, "use GET\n");
  }
  if (path == "/clusters") {
    return method == "GET" ? json(200, clustersJson()) : text(405, "use GET\n");
  }
  if (path == "/healthcheck/fail" || path == "/healthcheck/ok") {
    if (method != "POST") {
      return text(405, "use POST\n");
    }
    fail_health_ = path == "/healthcheck/fail";
    return text(200, fail_health_ ? "readiness forced to fail\n" : "readiness restored\n");
  }
  if (path == "/reload" || path == "/config") {
    bool is_reload = path == "/reload";
    if ((is_reload && method != "POST") || (!is_reload && method != "PUT")) {
      return text(405, is_reload ? "use POST\n" : "use PUT\n");
    }
    std::string doc(body);
    *deferred = true;
    hooks_.reload(is_reload ? nullptr : &doc, [this, reply](bool ok, uint64_t generation,
                                                            std::vector<std::string> errors) {
      if (ok) {
        std::string changes = "null";
        for (const auto& r : reloads_) {
          if (r.ok && r.generation == generation) {
            changes = r.changes.toJson();
          }
        }
        reply({200, "application/json",
               fmt::format("{{\"generation\": {}, \"changes\": {}}}\n", generation, changes),
               false});
        return;
      }
      std::string out = "{\"errors\": [";
      for (size_t i = 0; i < errors.size(); i++) {
        out += fmt::format("{}\"{}\"", i ? ", " : "", jsonEscape(errors[i]));
      }
      out += "]}\n";
      reply({400, "application/json", std::move(out), false});
    });
    return {};
  }
  if (path == "/drain") {
    if (method != "POST") {
      return text(405, "use POST\n");
    }
    hooks_.drain();
    return text(200, "draining\n");
  }
  static constexpr std::string_view kClusters = "/clusters/";
  if (path.substr(0, kClusters.size()) == kClusters && path.size() > 6 &&
      path.substr(path.size() - 6) == "/drain") {
    if (method != "POST") {
      return text(405, "use POST\n");
    }
    // /clusters/{name}/endpoints/{address}/drain
    std::string_view rest = path.substr(kClusters.size(), path.size() - kClusters.size() - 6);
    size_t mid = rest.find("/endpoints/");
    if (mid == std::string_view::npos) {
      return text(404, "not found\n");
    }
    std::string name = percentDecode(rest.substr(0, mid));
    std::string address = percentDecode(rest.substr(mid + 11));
    for (const auto& c : hooks_.snapshot()->clusters) {
      if (c->name() != name) {
        continue;
      }
      for (size_t i = 0; i < c->endpoints().size(); i++) {
        auto& e = c->endpoints()[i];
        if (e->address == address) {
          e->draining.store(true);
          if (hooks_.endpoint_drained) {
            hooks_.endpoint_drained(name, i);
          }
          SLUICE_LOG(Info, "admin", "cluster {}: endpoint {} draining", name, address);
          return json(200, fmt::format("{{\"cluster\": \"{}\", \"endpoint\": \"{}\", "
                                       "\"draining\": true}}\n",
                                       jsonEscape(name), jsonEscape(address)));
        }
      }
      return text(404, "no such endpoint\n");
    }
    return text(404, "no such cluster\n");
  }
  return text(404, "not found\n");
}

} // namespace sluice::admin
