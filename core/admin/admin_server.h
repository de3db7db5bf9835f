#pragma once

// The admin HTTP server (SPEC §4) on the main thread's loop: readiness, liveness, metrics,
// the redacted config, cluster state, health-check override, drain. Bearer-key auth (constant
// time) on everything but /ready and /healthz.

#include "core/config/config.h"
#include "core/event/dispatcher.h"
#include "core/filter/snapshot.h"
#include "core/network/socket.h"

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

private:
  class Session;
  static void onConnection(uv_stream_t* server, int status);
  void remove(Session* s);
  std::string clustersJson() const;
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
};

// Constant-time comparison (no early exit on the first difference, length folded in).
bool constantTimeEquals(std::string_view a, std::string_view b);

} // namespace sluice::admin
