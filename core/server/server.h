#pragma once

// The main thread: loads the config, binds every listener before slow work, starts the
// workers, owns signals and the shutdown phases.

#include "core/admin/admin_server.h"
#include "core/config/config.h"
#include "core/event/dispatcher.h"
#include "core/filter/snapshot.h"
#include "core/server/worker.h"
#include "core/upstream/dns_refresher.h"
#include "core/upstream/health_checker.h"

#include <atomic>
#include <memory>
#include <string>
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
  // Builds and installs a new snapshot (file when body is null); false with errors otherwise.
  bool reload(const std::string* body, uint64_t* generation, std::vector<std::string>* errors);
  void beginShutdown();
  void enterDrain();
  void enterTeardown();
  void checkDrained();

  RunOptions opts_;
  event::Dispatcher main_;
  std::vector<std::unique_ptr<Worker>> workers_;
  filter::SnapshotPtr snapshot_;
  config::ShutdownConfig shutdown_;
  Phase phase_ = Phase::Serving;
  event::TimerPtr phase_timer_;
  event::TimerPtr poll_timer_;
  std::vector<uv_signal_t*> signals_;
  std::unique_ptr<admin::AdminServer> admin_;
  bool started_ = false;
  uint32_t worker_count_ = 1;
  // Where each listener is bound, to keep the sockets of unchanged listeners on reload.
  struct BoundListener {
    std::string name;
    std::string configured; // address as written
    std::string actual;     // address it got (port 0 resolved)
  };
  std::vector<BoundListener> bound_;
  // Health checkers of the live clusters (main thread); kept across a reload for a cluster whose
  // ClusterInfo is kept.
  std::vector<std::unique_ptr<upstream::HealthChecker>> checkers_;
  std::unique_ptr<upstream::DnsRefresher> dns_;
  void syncHealthCheckers(); // and the DNS refresher
};

} // namespace sluice::server
