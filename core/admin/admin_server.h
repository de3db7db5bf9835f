#pragma once

// The admin HTTP server (SPEC §4) on the main thread's loop: readiness, liveness, metrics,
// the redacted config, cluster state, health-check override, drain, the status page (GET /)
// and its JSON (GET /status: listeners, uptime, reload history). Bearer-key auth (constant
// time) on everything but /ready and /healthz.

#include "core/config/config.h"
#include "core/config/config_diff.h"
#include "core/event/dispatcher.h"
#include "core/filter/snapshot.h"
#include "core/network/socket.h"

#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace sluice::admin {

// Outcome of a reload: the new generation, or the errors.
using ReloadDone =
    std::function<void(bool ok, uint64_t generation, std::vector<std::string> errors)>;

struct AdminHooks {
  std::function<filter::SnapshotPtr()> snapshot; // the live snapshot (null before it is live)
  std::function<bool()> ready;                   // listeners bound, config live, not draining
  std::function<std::string()> not_ready_reason; // what /ready waits for ("" when nothing)
  std::function<void()> drain;                   // start the shutdown sequence
  // An endpoint was marked draining: workers close its idle pooled connections.
  std::function<void(const std::string& cluster, size_t endpoint_index)> endpoint_drained;
  // Reload from the config file (body null) or from a document; `done` runs once, now or later
  // (a reload that resolves new hostnames answers when they have answered).
  std::function<void(const std::string* body, ReloadDone done)> reload;
  // Each listener's name and the address it is bound to (port 0 resolved); may be empty.
  std::function<std::vector<std::pair<std::string, std::string>>()> listeners;
};

// One entry of the reload history shown by GET /status and the status page.
struct ReloadRecord {
  uint64_t generation = 0; // the generation that went live; 0 for a rejected reload
  int64_t time_unix_ms = 0;
  bool ok = false;
  bool initial = false; // the config the process started with
  config::ConfigDiff changes;
  std::vector<std::string> errors;
};

struct AdminResponse {
  uint32_t status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool close = false;
};

class AdminServer {
public:
  AdminServer(event::Dispatcher& dispatcher, const config::AdminConfig& cfg, AdminHooks hooks);
  ~AdminServer();

  // Binds and listens; returns 0, or a negative errno.
  int start();
  const network::SockAddr& boundAddress() const { return bound_; }
  // Handles one request: `reply` runs once, now or (for a reload) later on the loop.
  using Reply = std::function<void(AdminResponse)>;
  void handle(std::string_view method, std::string_view target, std::string_view authorization,
              std::string_view body, Reply reply);
  bool forcedUnhealthy() const { return fail_health_; }
  // A reload rotated admin.api_key (empty: none): requests are checked against the new one only.
  void setApiKey(std::string key) { cfg_.api_key = std::move(key); }
  // Adds to the reload history (the newest kReloadHistory are kept). A reload's answer carries
  // the changes of the record with its generation, so the server records before answering.
  void recordReload(ReloadRecord r);
  static constexpr size_t kReloadHistory = 20;

private:
  class Session;
  static void onConnection(uv_stream_t* server, int status);
  void remove(Session* s);
  std::string clustersJson() const;
  std::string statusJson() const;
  // Answers at once, or sets *deferred and answers through `reply` later (a reload).
  AdminResponse route(std::string_view method, std::string_view target,
                      std::string_view authorization, std::string_view body, const Reply& reply,
                      bool* deferred);

  event::Dispatcher& dispatcher_;
  config::AdminConfig cfg_;
  AdminHooks hooks_;
  uv_tcp_t* listener_ = nullptr;
  network::SockAddr bound_;
  std::list<std::unique_ptr<Session>> sessions_;
  bool fail_health_ = false;
  std::deque<ReloadRecord> reloads_; // oldest first
  uint64_t started_ms_;              // monotonic, for the uptime
};

// Constant-time comparison (no early exit on the first difference, length folded in).
bool constantTimeEquals(std::string_view a, std::string_view b);

} // namespace sluice::admin
