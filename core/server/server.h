#pragma once

// The main thread: loads the config, binds every listener before slow work, starts the
// workers, owns signals and the shutdown phases.
//
// Start-up (bind first): parse the config, bind every listener and the admin port, start the
// workers (their sockets queue connections), then run the main loop while a helper thread builds
// the snapshot (filter configs, regex compilation, modules). Then the hostname endpoints are
// resolved asynchronously, the workers activate the snapshot, and /ready turns 200 once every
// filter's readiness hold (ABI 1.2, e.g. a first JWKS fetch) is released.

#include "core/admin/admin_server.h"
#include "core/config/config.h"
#include "core/config/config_diff.h"
#include "core/event/dispatcher.h"
#include "core/filter/snapshot.h"
#include "core/server/worker.h"
#include "core/upstream/dns_refresher.h"
#include "core/upstream/health_checker.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sluice::server {

struct RunOptions {
  std::string config_path;
  int workers = -1; // -1: from the config
};

class Server {
public:
  explicit Server(RunOptions opts);
  ~Server();
  int run();

private:
  enum class Phase { Serving, PreDrain, Drain, Teardown, Done };
  int openListeners(const config::Config& cfg, uint32_t workers,
                    std::vector<std::vector<ListenerSocket>>& per_worker);
  void onSignal(int signum);
  using ReloadDone =
      std::function<void(bool ok, uint64_t generation, std::vector<std::string> errors)>;
  // Builds a new snapshot (file when body is null), resolves its new hostname endpoints
  // (asynchronously) and installs it; `done` runs once, now or when the lookups have answered.
  void reload(const std::string* body, ReloadDone done);
  void commitReload();
  // "" when the new config keeps the running admin address (then `next` takes it as running),
  // else the error that refuses the reload: the admin port is bound once, at start.
  std::string adminAddressUnchanged(const config::Config& live, config::Config& next) const;
  // Settings of the process itself that a reload applies: the admin api_key, shutdown budgets.
  void applyProcessSettings(const config::Config& cfg);
  void onStartupBuilt(filter::BuildResult built);
  void goLive(); // the first snapshot's hostnames are resolved: activate it on the workers
  void onWorkerActivated();
  void checkReady();
  std::string notReadyReason() const;
  void beginShutdown();
  void enterDrain();
  void enterTeardown();
  void checkDrained();

  RunOptions opts_;
  event::Dispatcher main_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> worker_ptrs_; // the same, for the workers to hand connections over
  filter::SnapshotPtr snapshot_;
  config::ShutdownConfig shutdown_;
  Phase phase_ = Phase::Serving;
  event::TimerPtr phase_timer_;
  event::TimerPtr poll_timer_;
  std::vector<uv_signal_t*> signals_;
  std::unique_ptr<admin::AdminServer> admin_;
  bool live_ = false;       // every worker runs the first snapshot
  bool ever_ready_ = false; // /ready turned 200 once (readiness holds no longer count)
  uint32_t activated_ = 0;  // workers that installed the first snapshot
  uint32_t worker_count_ = 1;
  int exit_code_ = 0;
  std::thread builder_; // builds the first snapshot while the main loop answers the admin port
  // Where each listener is bound, to keep the sockets of unchanged listeners on reload.
  struct BoundListener {
    std::string name;
    std::string configured; // address as written
    std::string actual;     // address it got (port 0 resolved)
    ListenerCounter open;   // its open connections, all workers (kept when it is rebound)
  };
  std::vector<BoundListener> bound_;
  // A built reload waiting for its new hostnames to resolve before it goes live.
  struct PendingReload {
    filter::SnapshotPtr snapshot;
    std::vector<std::vector<ListenerSocket>> added;
    std::vector<BoundListener> bound;
    config::ConfigDiff changes; // computed before the build, reported when it goes live
    ReloadDone done;
  };
  std::unique_ptr<PendingReload> pending_reload_;
  bool reload_again_ = false; // SIGHUP while a reload was pending
  // Health checkers of the live clusters (main thread); kept across a reload for a cluster whose
  // ClusterInfo is kept.
  std::vector<std::unique_ptr<upstream::HealthChecker>> checkers_;
  std::unique_ptr<upstream::DnsRefresher> dns_;
  void syncHealthCheckers(); // and the DNS refresher
  void ensureDns();
};

} // namespace sluice::server
