#include "core/server/server.h"

#include "core/common/logger.h"
#include "core/common/readiness.h"
#include "core/common/thread_name.h"
#include "core/config/config_diff.h"
#include "core/filter/stream_stats.h"
#include "core/filter/worker_context.h"
#include "core/network/socket.h"

#include <csignal>
#include <cstring>
#include <thread>

#include <fmt/ranges.h>
#include <unistd.h>

namespace sluice::server {

namespace {
uint64_t monoMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
const uint64_t kProcessStartMs = monoMs();

// Adds to the admin's reload history (GET /status, the status page, the reload answer).
void recordReload(admin::AdminServer* admin, bool ok, uint64_t generation,
                  config::ConfigDiff changes, std::vector<std::string> errors, bool initial) {
  if (admin == nullptr) {
    return;
  }
  admin::ReloadRecord r;
  r.generation = generation;
  r.time_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  r.ok = ok;
  r.initial = initial;
  r.changes = std::move(changes);
  r.errors = std::move(errors);
  admin->recordReload(std::move(r));
}
} // namespace

Server::Server(RunOptions opts) : opts_(std::move(opts)) {}

Server::~Server() {
  dns_.reset();
  for (auto& w : workers_) {
    w->join();
  }
  workers_.clear();
  filter::WorkerContext::setReleaseHook(nullptr);
  admin_.reset();
  checkers_.clear();
  snapshot_.reset();
  for (uv_signal_t* s : signals_) {
    uv_close(reinterpret_cast<uv_handle_t*>(s),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
  }
  signals_.clear();
  phase_timer_.reset();
  poll_timer_.reset();
  main_.closeAll();
}

int Server::openListeners(const config::Config& cfg, uint32_t workers,
                          std::vector<std::vector<ListenerSocket>>& per_worker) {
  per_worker.assign(workers, {});
  for (size_t li = 0; li < cfg.listeners.size(); li++) {
    const config::ListenerConfig& l = cfg.listeners[li];
    network::SockAddr addr;
    if (!network::toSockAddr(l.address, addr)) {
      SLUICE_LOG(Error, "server", "listener {}: address {} is not an IP address", l.name,
                 l.address.text);
      return 1;
    }
    auto open = std::make_shared<ListenerCounters>(workers);
    for (uint32_t w = 0; w < workers; w++) {
      int fd = network::openListenSocket(addr, 4096);
      if (fd < 0) {
        SLUICE_LOG(Error, "server", "listener {}: cannot bind {}: {}", l.name, l.address.text,
                   strerror(-fd));
        for (auto& v : per_worker) {
          for (auto& s : v) {
            ::close(s.fd);
          }
        }
        return 2;
      }
      if (w == 0 && network::portOf(addr.get()) == 0) {
        // Port 0: the other workers share the port the kernel picked.
        network::boundAddress(fd, addr);
      }
      per_worker[w].push_back(ListenerSocket{li, fd, open});
    }
    SLUICE_LOG(Info, "server", "listening listener={} address={}", l.name,
               network::formatAddress(addr.get()));
    bound_.push_back({l.name, l.address.text, network::formatAddress(addr.get()), open});
  }
  return 0;
}

int Server::run() {
  config::LoadResult load = config::loadConfigFile(opts_.config_path);
  if (!load.errors.empty()) {
    for (const auto& e : load.errors) {
      fmt::print(stderr, "config error: {}\n", e.toString());
    }
    return 1;
  }
  auto cfg = std::make_shared<config::Config>(*load.config);
  if (opts_.workers >= 0) {
    cfg->workers = static_cast<uint32_t>(opts_.workers);
  }
  uint32_t workers = cfg->workers;
  if (workers == 0) {
    workers = std::max(1u, std::thread::hardware_concurrency());
  }
  shutdown_ = cfg->shutdown;
  auto env = config::applyShutdownEnv(shutdown_, [](const char* n) { return std::getenv(n); });
  for (const auto& w : load.warnings) {
    SLUICE_LOG(Warn, "config", "{}", w);
  }
  for (const auto& w : env.warnings) {
    SLUICE_LOG(Warn, "config", "{}", w);
  }

  filter::WorkerContext::setReleaseHook(
      [this](filter::SnapshotPtr s) { main_.post([s = std::move(s)]() mutable { s.reset(); }); });
  worker_count_ = workers;

  // Bind first: listeners and the admin port accept before any slow start-up work (filter
  // configs, regex compilation, DNS). Connections wait in the accept backlog until the config
  // is live, or get 503 after startup.wait_for_config_ms.
  std::vector<std::vector<ListenerSocket>> sockets;
  int rc = openListeners(*cfg, workers, sockets);
  if (rc != 0) {
    return rc;
  }
  auto close_sockets = [&] {
    for (auto& v : sockets) {
      for (auto& s : v) {
        ::close(s.fd);
      }
    }
  };
  if (cfg->admin.enabled) {
    admin::AdminHooks hooks;
    hooks.snapshot = [this] { return live_ ? snapshot_ : nullptr; };
    hooks.ready = [this] { return ever_ready_ && phase_ == Phase::Serving; };
    hooks.not_ready_reason = [this] { return notReadyReason(); };
    hooks.reload = [this](const std::string* body, admin::ReloadDone done) {
      reload(body, std::move(done));
    };
    hooks.listeners = [this] {
      std::vector<std::pair<std::string, std::string>> out;
      for (const auto& b : bound_) {
        out.emplace_back(b.name, b.actual);
      }
      return out;
    };
    hooks.endpoint_drained = [this](const std::string& cluster, size_t index) {
      for (auto& w : workers_) {
        w->closeIdleUpstream(cluster, index);
      }
    };
    hooks.drain = [this] {
      if (phase_ == Phase::Serving) {
        SLUICE_LOG(Info, "server", "POST /drain: shutting down");
        beginShutdown();
      }
    };
    admin_ = std::make_unique<admin::AdminServer>(main_, cfg->admin, std::move(hooks));
    int arc = admin_->start();
    if (arc != 0) {
      SLUICE_LOG(Error, "server", "admin: cannot bind {}: {}", cfg->admin.address.text,
                 strerror(-arc));
      close_sockets();
      return 2;
    }
  }
  SLUICE_LOG(Info, "server", "bound {} listener(s) in {} ms", cfg->listeners.size(),
             monoMs() - kProcessStartMs);
  std::vector<std::string> names;
  for (const auto& l : cfg->listeners) {
    names.push_back(l.name);
  }
  for (uint32_t i = 0; i < workers; i++) {
    std::vector<std::string> ws_names;
    for (const auto& s : sockets[i]) {
      ws_names.push_back(names[s.listener_index]);
    }
    workers_.push_back(std::make_unique<Worker>(i, std::move(sockets[i]), std::move(ws_names),
                                                cfg->startup.wait_for_config_ms));
  }
  for (auto& w : workers_) {
    worker_ptrs_.push_back(w.get());
  }
  for (auto& w : workers_) {
    w->setSiblings(&worker_ptrs_);
    w->start();
  }

  for (int signum : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    auto* s = new uv_signal_t;
    uv_signal_init(main_.loop(), s);
    s->data = this;
    uv_signal_start(
        s, [](uv_signal_t* h, int sig) { static_cast<Server*>(h->data)->onSignal(sig); }, signum);
    signals_.push_back(s);
  }
  std::signal(SIGPIPE, SIG_IGN);
  phase_timer_ = main_.createTimer([this] {
    if (phase_ == Phase::PreDrain) {
      enterDrain();
    } else if (phase_ == Phase::Drain) {
      enterTeardown();
    } else if (phase_ == Phase::Teardown) {
      SLUICE_LOG(Warn, "server", "teardown budget exhausted; exiting");
      phase_ = Phase::Done;
      main_.exit();
    }
  });
  poll_timer_ = main_.createTimer([this] { checkDrained(); });
  Readiness::global().setOnChange([this] { main_.post([this] { checkReady(); }); });

  // The slow part of start-up runs beside the main loop, so the admin port answers (/healthz
  // 200, /ready 503 naming what it waits for) while a large config compiles.
  builder_ = std::thread([this, cfg] {
    setThreadName("sluice-build");
    auto built = std::make_shared<filter::BuildResult>(filter::buildSnapshot(cfg, 1));
    main_.post([this, built] { onStartupBuilt(std::move(*built)); });
  });
  main_.run();
  if (builder_.joinable()) {
    builder_.join(); // a signal during start-up: the build finishes before the process exits
  }
  Readiness::global().setOnChange(nullptr);
  for (auto& w : workers_) {
    w->abortAll();
  }
  for (auto& w : workers_) {
    w->join();
  }
  SLUICE_LOG(Info, "server", "stopped");
  return exit_code_;
}

void Server::onStartupBuilt(filter::BuildResult built) {
  if (!built.errors.empty()) {
    for (const auto& e : built.errors) {
      fmt::print(stderr, "config error: {}\n", e.toString());
    }
    exit_code_ = 1;
    phase_ = Phase::Done;
    main_.exit();
    return;
  }
  if (phase_ != Phase::Serving) {
    return; // shutting down before the config went live
  }
  snapshot_ = std::move(built.snapshot); // only snapshot_ holds it: a reload can free it
  filter::stats::setGeneration(snapshot_->generation);
  SLUICE_LOG(Info, "server", "config generation {} built ({} ms after start)",
             snapshot_->generation, monoMs() - kProcessStartMs);
  ensureDns();
  // Hostname endpoints are resolved before the config goes live (on libuv's thread pool: the
  // admin port keeps answering); a request that arrives meanwhile waits in the accept backlog.
  size_t lookups = dns_->resolveFirst(snapshot_->clusters, [this] { goLive(); });
  if (lookups == 0) {
    goLive();
  } else {
    SLUICE_LOG(Info, "server", "resolving {} hostname endpoint(s) before going live", lookups);
  }
}

void Server::goLive() {
  if (phase_ != Phase::Serving) {
    return;
  }
  syncHealthCheckers(); // after DNS: the first round probes resolved addresses
  for (auto& w : workers_) {
    w->activate(snapshot_, [this] { main_.post([this] { onWorkerActivated(); }); });
  }
}

void Server::onWorkerActivated() {
  if (++activated_ < worker_count_) {
    return;
  }
  live_ = true;
  SLUICE_LOG(Info, "server", "config generation {} is live on {} worker(s) ({} ms after start)",
             snapshot_->generation, worker_count_, monoMs() - kProcessStartMs);
  recordReload(admin_.get(), true, snapshot_->generation,
               config::diffConfigs(config::Config{}, *snapshot_->config), {}, true);
  checkReady();
}

void Server::checkReady() {
  if (ever_ready_ || !live_ || phase_ != Phase::Serving) {
    return;
  }
  std::vector<std::string> holds = Readiness::global().pendingWhat();
  if (!holds.empty()) {
    SLUICE_LOG(Info, "server", "not ready yet: waiting for {}", fmt::join(holds, "; "));
    return;
  }
  ever_ready_ = true;
  filter::stats::setServerState(true, false);
  SLUICE_LOG(Info, "server", "ready: {} worker(s), config generation {} ({} ms after start)",
             worker_count_, snapshot_->generation, monoMs() - kProcessStartMs);
}

std::string Server::notReadyReason() const {
  if (phase_ != Phase::Serving) {
    return "shutting down";
  }
  if (!snapshot_) {
    return "building the config";
  }
  if (!live_) {
    std::vector<std::string> dns = dns_ ? dns_->firstRoundPending() : std::vector<std::string>{};
    if (!dns.empty()) {
      return fmt::format("resolving {}", fmt::join(dns, ", "));
    }
    return "activating the config on the workers";
  }
  std::vector<std::string> holds = Readiness::global().pendingWhat();
  if (!ever_ready_ && !holds.empty()) {
    return fmt::format("waiting for {}", fmt::join(holds, "; "));
  }
  return {};
}

void Server::onSignal(int signum) {
  if (signum == SIGUSR1) {
    if (!snapshot_) {
      return;
    }
    for (const auto& l : snapshot_->listeners) {
      for (const auto& f : l.filters) {
        if (f->desc->sluice_on_log_reopen != nullptr) {
          f->desc->sluice_on_log_reopen(f->config);
        }
      }
    }
    SLUICE_LOG(Info, "server", "log files reopened");
    return;
  }
  if (signum == SIGHUP) {
    if (phase_ != Phase::Serving) {
      return;
    }
    if (pending_reload_) {
      SLUICE_LOG(Info, "server", "SIGHUP: a reload is pending; reloading again after it");
      reload_again_ = true;
      return;
    }
    reload(nullptr, [](bool, uint64_t, std::vector<std::string>) {});
    return;
  }
  if (phase_ == Phase::Serving) {
    SLUICE_LOG(Info, "server", "{}: shutting down (pre_drain_ms={} drain_ms={} teardown_ms={})",
               signum == SIGTERM ? "SIGTERM" : "SIGINT", shutdown_.pre_drain_ms, shutdown_.drain_ms,
               shutdown_.teardown_ms);
    beginShutdown();
  } else {
    SLUICE_LOG(Info, "server", "second signal: skipping to teardown");
    enterTeardown();
  }
}

void Server::reload(const std::string* body, ReloadDone done) {
  auto fail = [&](std::vector<std::string> errs) {
    for (const auto& e : errs) {
      SLUICE_LOG(Error, "server", "reload rejected, the live config stays: {}", e);
    }
    filter::stats::recordReload(false);
    recordReload(admin_.get(), false, 0, {}, errs, false);
    done(false, 0, std::move(errs));
  };
  if (phase_ != Phase::Serving) {
    return fail({"shutting down"});
  }
  if (!live_) {
    return fail({"the first config is not live yet"});
  }
  if (pending_reload_) {
    return fail({fmt::format("generation {} is still resolving its hostnames; try again",
                             pending_reload_->snapshot->generation)});
  }
  const config::Config& live = *snapshot_->config;
  config::LoadResult load = body != nullptr ? config::parseConfig(*body, live.base_dir)
                                            : config::loadConfigFile(opts_.config_path);
  std::vector<std::string> errs;
  for (const auto& e : load.errors) {
    errs.push_back(e.toString());
  }
  if (!errs.empty()) {
    return fail(errs);
  }
  auto cfg = std::make_shared<config::Config>(*load.config);
  if (body != nullptr) {
    cfg->path = live.path;
  }
  for (const auto& w : load.warnings) {
    SLUICE_LOG(Warn, "config", "{}", w);
  }
  if (opts_.workers >= 0) {
    cfg->workers = live.workers; // --workers wins over the file, now as at start
  }
  if (std::string why = adminAddressUnchanged(live, *cfg); !why.empty()) {
    return fail({why});
  }
  config::ConfigDiff changes = config::diffConfigs(live, *cfg);
  // What a running process cannot apply is kept at its running value and said in the result
  // (and on the log), never silently dropped.
  for (const auto& setting : changes.settings) {
    if (setting == "/workers" || setting == "/startup/wait_for_config_ms") {
      changes.restart_required.push_back(setting);
    }
  }
  if (!changes.restart_required.empty()) {
    SLUICE_LOG(Warn, "server",
               "reload: {} changed but take(s) effect only at the next start; the running "
               "values stay ({} worker(s), startup.wait_for_config_ms={})",
               fmt::join(changes.restart_required, ", "), worker_count_,
               live.startup.wait_for_config_ms);
  }
  cfg->workers = live.workers;
  cfg->startup = live.startup;
  // New or moved listeners need sockets in every worker before anything is swapped.
  std::vector<std::vector<ListenerSocket>> added(worker_count_);
  std::vector<BoundListener> bound;
  auto close_added = [&] {
    for (auto& v : added) {
      for (auto& s : v) {
        ::close(s.fd);
      }
    }
  };
  for (size_t li = 0; li < cfg->listeners.size(); li++) {
    const auto& l = cfg->listeners[li];
    // Unchanged: same name and the same address as configured, or the address it actually got
    // (a port-0 listener written back with its port keeps its socket).
    const BoundListener* same = nullptr;
    for (const auto& b : bound_) {
      if (b.name == l.name && (b.configured == l.address.text || b.actual == l.address.text)) {
        same = &b;
      }
    }
    if (same != nullptr) {
      bound.push_back(*same);
      continue;
    }
    network::SockAddr addr;
    if (!network::toSockAddr(l.address, addr)) {
      close_added();
      return fail({l.pointer + "/address: expected an IP address"});
    }
    // A listener moved to a new address keeps counting the connections still open on its old
    // socket against its limit.
    ListenerCounter open;
    for (const auto& b : bound_) {
      if (b.name == l.name) {
        open = b.open;
      }
    }
    if (!open) {
      open = std::make_shared<ListenerCounters>(worker_count_);
    }
    for (uint32_t w = 0; w < worker_count_; w++) {
      int fd = network::openListenSocket(addr, 4096);
      if (fd < 0) {
        close_added();
        return fail({fmt::format("{}/address: cannot bind {}: {}", l.pointer, l.address.text,
                                 strerror(-fd))});
      }
      if (w == 0 && network::portOf(addr.get()) == 0) {
        network::boundAddress(fd, addr);
      }
      added[w].push_back(ListenerSocket{li, fd, open});
    }
    SLUICE_LOG(Info, "server", "listening listener={} address={}", l.name,
               network::formatAddress(addr.get()));
    bound.push_back({l.name, l.address.text, network::formatAddress(addr.get()), open});
  }
  filter::BuildResult built =
      filter::buildSnapshot(cfg, snapshot_->generation + 1, snapshot_.get());
  if (!built.errors.empty()) {
    close_added();
    for (const auto& e : built.errors) {
      errs.push_back(e.toString());
    }
    return fail(errs);
  }
  pending_reload_ = std::make_unique<PendingReload>();
  pending_reload_->snapshot = std::move(built.snapshot);
  pending_reload_->added = std::move(added);
  pending_reload_->done = std::move(done);
  pending_reload_->bound = std::move(bound);
  pending_reload_->changes = std::move(changes);
  // Hostname endpoints new in this config are resolved before it goes live (asynchronously:
  // the loop keeps serving the admin port and the live config keeps serving traffic).
  size_t lookups =
      dns_->resolveFirst(pending_reload_->snapshot->clusters, [this] { commitReload(); });
  if (lookups == 0) {
    commitReload();
  } else {
    SLUICE_LOG(Info, "server", "reload: resolving {} new hostname endpoint(s) before generation {}",
               lookups, pending_reload_->snapshot->generation);
  }
}

void Server::commitReload() {
  std::unique_ptr<PendingReload> p = std::move(pending_reload_);
  if (phase_ != Phase::Serving) {
    for (auto& v : p->added) {
      for (auto& s : v) {
        ::close(s.fd);
      }
    }
    filter::stats::recordReload(false);
    p->done(false, 0, {"shutting down"});
    return;
  }
  // A listener whose address changed is closed by name in the workers and opened again.
  for (uint32_t w = 0; w < worker_count_; w++) {
    workers_[w]->applySnapshot(p->snapshot, std::move(p->added[w]));
  }
  bound_ = std::move(p->bound);
  config::ConfigDiff changes = std::move(p->changes);
  snapshot_ = std::move(p->snapshot); // only snapshot_ holds it: a reload can free it
  applyProcessSettings(*snapshot_->config);
  syncHealthCheckers();
  filter::stats::recordReload(true);
  filter::stats::setGeneration(snapshot_->generation);
  SLUICE_LOG(Info, "server", "config generation {} is live; changes: {}", snapshot_->generation,
             changes.summary());
  recordReload(admin_.get(), true, snapshot_->generation, std::move(changes), {}, false);
  p->done(true, snapshot_->generation, {});
  if (reload_again_ && phase_ == Phase::Serving) {
    reload_again_ = false;
    reload(nullptr, [](bool, uint64_t, std::vector<std::string>) {});
  }
}

std::string Server::adminAddressUnchanged(const config::Config& live, config::Config& next) const {
  const config::AdminConfig& a = live.admin;
  config::AdminConfig& b = next.admin;
  // The address as written, or the one it got (a port-0 admin address written back with its
  // port is the same listener).
  const std::string actual = admin_ ? network::formatAddress(admin_->boundAddress().get()) : "";
  if (a.enabled == b.enabled &&
      (!a.enabled || b.address.text == a.address.text || b.address.text == actual)) {
    b.address = a.address;
    return {};
  }
  return fmt::format("/admin/address: the admin address cannot change without a restart "
                     "(running: {}, new: {}); restart sluice to move it",
                     a.enabled ? actual : "no admin port",
                     b.enabled ? b.address.text : "no admin port");
}

void Server::applyProcessSettings(const config::Config& cfg) {
  if (admin_) {
    admin_->setApiKey(cfg.admin.api_key); // the old key stops working now
  }
  shutdown_ = cfg.shutdown;
  auto env = config::applyShutdownEnv(shutdown_, [](const char* n) { return std::getenv(n); });
  for (const auto& w : env.warnings) {
    SLUICE_LOG(Warn, "config", "{}", w);
  }
}

void Server::syncHealthCheckers() {
  std::vector<std::unique_ptr<upstream::HealthChecker>> next;
  for (const auto& c : snapshot_->clusters) {
    if (!c->config().health_check) {
      continue;
    }
    std::unique_ptr<upstream::HealthChecker> kept;
    for (auto& hc : checkers_) {
      if (hc && hc->cluster() == c.get()) {
        kept = std::move(hc);
      }
    }
    if (!kept) {
      kept = std::make_unique<upstream::HealthChecker>(main_, c);
      kept->start();
    }
    next.push_back(std::move(kept));
  }
  checkers_ = std::move(next);
  ensureDns();
  dns_->sync(snapshot_->clusters);
}

void Server::ensureDns() {
  if (!dns_) { // created with the first snapshot
    dns_ = std::make_unique<upstream::DnsRefresher>(
        main_, [this](const std::string& cluster, size_t index) {
          for (auto& w : workers_) {
            w->closeIdleUpstream(cluster, index);
          }
        });
  }
}

void Server::beginShutdown() {
  phase_ = Phase::PreDrain;
  filter::stats::setServerState(false, true);
  phase_timer_->enable(shutdown_.pre_drain_ms);
}

void Server::enterDrain() {
  phase_ = Phase::Drain;
  SLUICE_LOG(Info, "server", "drain: no longer accepting connections");
  for (auto& w : workers_) {
    w->stopAccepting();
    w->exitWhenIdle();
  }
  phase_timer_->enable(shutdown_.drain_ms);
  poll_timer_->enable(20);
}

void Server::checkDrained() {
  if (phase_ != Phase::Drain) {
    return;
  }
  size_t active = 0;
  for (auto& w : workers_) {
    active += w->activeConnections();
  }
  if (active == 0) {
    enterTeardown();
    return;
  }
  poll_timer_->enable(20);
}

void Server::enterTeardown() {
  if (phase_ == Phase::Teardown || phase_ == Phase::Done) {
    return;
  }
  phase_ = Phase::Teardown;
  poll_timer_->disable();
  size_t active = 0;
  for (auto& w : workers_) {
    active += w->activeConnections();
  }
  SLUICE_LOG(Info, "server", "teardown: aborting {} connection(s)", active);
  for (auto& w : workers_) {
    w->stopAccepting();
    w->abortAll();
  }
  phase_timer_->enable(shutdown_.teardown_ms);
  // Join in the background of the main loop: poll until every worker thread has exited.
  poll_timer_ = main_.createTimer([this] {
    for (auto& w : workers_) {
      w->join();
    }
    phase_ = Phase::Done;
    main_.exit();
  });
  poll_timer_->enable(0);
}

} // namespace sluice::server
