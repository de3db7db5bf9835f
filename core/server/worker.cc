#include "core/server/worker.h"

#include "core/common/alloc_count.h"
#include "core/common/logger.h"
#include "core/common/thread_name.h"
#include "core/filter/stream_stats.h"
#include "core/stats/core_metrics.h"
#include "core/stats/registry.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace sluice::server {

namespace {

// Connections open in this process, across workers (overload.max_connections).
std::atomic<uint64_t> g_process_connections{0};

// sluice_overload_actions_total{action,reason}: defined once, before any worker runs.
struct OverloadMetrics {
  uint32_t refuse_max_connections;
  uint32_t refuse_listener_max_connections;
  uint32_t refuse_max_buffered_bytes;
  uint32_t shed_max_requests;
  uint32_t shed_max_buffered_bytes;
};

const OverloadMetrics& overloadMetrics() {
  static const OverloadMetrics m = [] {
    auto def = [](const char* action, const char* reason) {
      const stats::CoreMetricInfo& m = stats::coreMetric(stats::CoreMetric::OverloadActions);
      return stats::Registry::global().defineCounter(m.name, m.help,
                                                     {{"action", action}, {"reason", reason}});
    };
    return OverloadMetrics{def("refuse_connection", "max_connections"),
                           def("refuse_connection", "listener_max_connections"),
                           def("refuse_connection", "max_buffered_bytes"),
                           def("shed_request", "max_requests"),
                           def("shed_request", "max_buffered_bytes")};
  }();
  return m;
}

void countAction(uint32_t id) {
  stats::Registry::global().add(id, 1);
}

} // namespace

uint64_t Worker::processConnections() {
  return g_process_connections.load(std::memory_order_relaxed);
}

const char* Worker::shedReason() const {
  const config::OverloadConfig& ov = context_->current()->snapshot().config->overload;
  if (ov.max_requests_per_worker > 0 && in_flight_requests_ >= ov.max_requests_per_worker) {
    return "max_requests";
  }
  if (ov.max_buffered_bytes_per_worker > 0 &&
      buffered_bytes_ > static_cast<int64_t>(ov.max_buffered_bytes_per_worker)) {
    return "max_buffered_bytes";
  }
  return nullptr;
}

void Worker::recordShed(const char* reason) {
  const OverloadMetrics& m = overloadMetrics();
  countAction(std::string_view(reason) == "max_requests" ? m.shed_max_requests
                                                         : m.shed_max_buffered_bytes);
}

Worker::Worker(uint32_t index, std::vector<ListenerSocket> sockets, std::vector<std::string> names,
               uint64_t wait_for_config_ms)
    : index_(index), sockets_(std::move(sockets)), names_(std::move(names)),
      wait_for_config_ms_(wait_for_config_ms) {
  overloadMetrics(); // defined on the main thread, before the data path records into them
  const stats::CoreMetricInfo& m = stats::coreMetric(stats::CoreMetric::WorkerRequests);
  requests_metric_ =
      stats::Registry::global().defineCounter(m.name, m.help, {{"worker", std::to_string(index)}});
  const stats::CoreMetricInfo& c = stats::coreMetric(stats::CoreMetric::WorkerConnections);
  connections_metric_ =
      stats::Registry::global().defineGauge(c.name, c.help, {{"worker", std::to_string(index)}});
}

void Worker::requestStarted() {
  in_flight_requests_++;
  stats::Registry::global().add(requests_metric_, 1);
}

namespace {

// A connection that arrived before any config was live and waited longer than
// startup.wait_for_config_ms: read what it sent, answer 503, close.
class Unconfigured : public network::ConnectionCallbacks, public event::DeferredDeletable {
public:
  explicit Unconfigured(event::Dispatcher& d) : dispatcher_(d), conn_(d, *this) {}
  bool accept(uv_stream_t* server) {
    if (conn_.accept(server) != 0) {
      return false;
    }
    conn_.readEnable(true);
    return true;
  }
  void onData() override {
    conn_.readBuffer().clear();
    if (answered_) {
      return;
    }
    answered_ = true;
    static constexpr std::string_view kReply =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 22\r\n"
        "connection: close\r\n\r\nconfig is not live yet\n";
    conn_.writeBuffer().append(kReply);
    conn_.closeAfterFlush();
  }
  void onRemoteClose(int) override { finish(); }
  void onLocalClose() override { finish(); }

private:
  void finish() {
    if (!done_) {
      done_ = true;
      conn_.close();
      dispatcher_.deferredDelete(std::unique_ptr<DeferredDeletable>(this));
    }
  }
  event::Dispatcher& dispatcher_;
  network::Connection conn_;
  bool answered_ = false;
  bool done_ = false;
};

} // namespace

void Worker::activate(filter::SnapshotPtr snapshot, std::function<void()> done) {
  dispatcher_.post([this, snapshot = std::move(snapshot), done = std::move(done)]() mutable {
    context_->install(std::move(snapshot));
    if (wait_timer_) {
      wait_timer_->disable();
    }
    for (Listener* l : listeners_) {
      startListening(l);
    }
    done();
  });
}

void Worker::startListening(Listener* l) {
  if (l->listening) {
    return;
  }
  l->listening = true;
  if (uv_listen(reinterpret_cast<uv_stream_t*>(&l->handle), 4096, &Worker::onConnection) != 0) {
    SLUICE_LOG(Error, "worker", "worker {}: cannot listen for {}", index_, l->name);
  }
}

void Worker::rejectUnconfigured(uv_stream_t* server) {
  auto* c = new Unconfigured(dispatcher_);
  if (!c->accept(server)) {
    c->onRemoteClose(0);
  }
}

Worker::~Worker() {
  join();
  for (auto& s : sockets_) {
    if (s.fd >= 0) {
      ::close(s.fd);
    }
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Worker::run() {
  setThreadName(("sluice-w" + std::to_string(index_)).c_str()); // sluice-w0, sluice-w1, ...
  markWorkerThreadForAllocCount(); // GET /debug/allocations counts this thread's allocations
  context_ = std::make_unique<filter::WorkerContext>(dispatcher_, index_);
  exchanges_ = std::make_unique<ExchangePool>(*context_);
  for (size_t i = 0; i < sockets_.size(); i++) {
    openListener(sockets_[i], names_[i], false);
    sockets_[i].fd = -1; // owned by the handle now
  }
  wait_timer_ = dispatcher_.createTimer([this] {
    if (!context_->current()) {
      for (Listener* l : listeners_) {
        startListening(l);
      }
    }
  });
  wait_timer_->enable(wait_for_config_ms_);
  dispatcher_.run();
  wait_timer_.reset();
  // Loop exited: release everything on this thread.
  for (auto& c : connections_) {
    c->abort();
  }
  connections_.clear();
  for (Listener* l : listeners_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->handle),
             [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
  }
  listeners_.clear();
  context_->shutdown();
  exchanges_->close(); // before closeAll() closes the cached Exchanges' timer handles
  dispatcher_.closeAll();
  exchanges_.reset();
  context_.reset();
  dispatcher_.closeAll();
}

void Worker::openListener(const ListenerSocket& s, const std::string& name, bool listen) {
  auto* l = new Listener{this, s.listener_index, name, false, {}, s.open};
  uv_tcp_init(dispatcher_.loop(), &l->handle);
  l->handle.data = l;
  if (uv_tcp_open(&l->handle, s.fd) != 0) {
    SLUICE_LOG(Error, "worker", "worker {}: cannot use fd {} for {}", index_, s.fd, name);
  }
  listeners_.push_back(l);
  if (listen) {
    startListening(l);
  }
}

void Worker::closeListener(Listener* l) {
  uv_close(reinterpret_cast<uv_handle_t*>(&l->handle),
           [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
}

void Worker::applySnapshot(filter::SnapshotPtr snapshot, std::vector<ListenerSocket> added) {
  dispatcher_.post([this, snapshot = std::move(snapshot), added = std::move(added)]() mutable {
    if (draining_) {
      for (auto& s : added) {
        ::close(s.fd);
      }
      return;
    }
    context_->install(snapshot);
    const auto& listeners = snapshot->listeners;
    std::vector<Listener*> kept;
    for (Listener* l : listeners_) {
      bool found = false;
      bool rebound = false;
      for (const auto& a : added) {
        rebound = rebound || listeners[a.listener_index].config->name == l->name;
      }
      if (rebound) {
        closeListener(l); // same name, new address: the new socket replaces it
        continue;
      }
      for (size_t i = 0; i < listeners.size(); i++) {
        if (listeners[i].config->name == l->name) {
          l->listener_index = i; // unchanged listener: same socket, new position
          found = true;
          break;
        }
      }
      if (found) {
        kept.push_back(l);
      } else {
        closeListener(l); // removed listener: stop accepting; its connections drain
      }
    }
    listeners_ = std::move(kept);
    for (auto& s : added) {
      openListener(s, listeners[s.listener_index].config->name, true);
    }
    // Idle connections of removed listeners close now; busy ones after their response.
    std::vector<HttpConnection*> all;
    for (auto& c : connections_) {
      all.push_back(c.get());
    }
    for (HttpConnection* c : all) {
      c->onSnapshotChanged();
    }
  });
}

void Worker::onConnection(uv_stream_t* server, int status) {
  auto* l = static_cast<Listener*>(server->data);
  Worker* w = l->worker;
  if (status != 0 || w->draining_) {
    return;
  }
  if (!w->context_->current()) {
    w->rejectUnconfigured(server);
    return;
  }
  const filter::WorkerSnapshotPtr& snap = w->context_->current();
  const filter::ListenerRuntime& lr = snap->snapshot().listeners[l->listener_index];
  if (lr.config->exact_balance && w->siblings_ != nullptr && w->siblings_->size() > 1) {
    uint32_t target = w->leastLoaded(*l->open);
    if (target != w->index_) {
      w->handOver(server, l, target);
      return;
    }
  }
  auto conn = std::make_unique<HttpConnection>(*w, snap, l->listener_index);
  if (conn->accept(server) != 0) {
    conn->abort();
    return;
  }
  w->admit(std::move(conn), l, false);
}

uint32_t Worker::leastLoaded(const ListenerCounters& c) const {
  uint32_t best = index_;
  uint64_t fewest = c.per_worker[index_].load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < c.per_worker.size(); i++) {
    uint64_t n = c.per_worker[i].load(std::memory_order_relaxed);
    if (n < fewest) {
      best = i;
      fewest = n;
    }
  }
  return best;
}

void Worker::handOver(uv_stream_t* server, Listener* l, uint32_t target) {
  // Accept into a bare handle, keep a duplicate of its socket, close the handle: the duplicate
  // travels to the target, whose loop opens a connection on it.
  auto* tmp = new uv_tcp_t;
  uv_tcp_init(dispatcher_.loop(), tmp);
  auto close_tmp = [tmp] {
    uv_close(reinterpret_cast<uv_handle_t*>(tmp),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  };
  int fd = -1;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(tmp)) != 0 ||
      uv_fileno(reinterpret_cast<uv_handle_t*>(tmp), &fd) != 0) {
    close_tmp();
    return;
  }
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  close_tmp();
  if (dup_fd < 0) {
    SLUICE_LOG(Warn, "worker", "worker {}: cannot hand a connection on {} to worker {}: {}", index_,
               l->name, target, strerror(errno));
    return; // the handle's close closed the only descriptor: the client sees a reset
  }
  // Reserved now, so that the next accept on any worker sees it before the target adopts it.
  l->open->per_worker[target].fetch_add(1, std::memory_order_relaxed);
  Worker* t = (*siblings_)[target];
  t->dispatcher_.post(
      [t, dup_fd, name = l->name, counters = l->open] { t->adopt(dup_fd, name, counters); });
}

void Worker::adopt(int fd, const std::string& name, const ListenerCounter& counters) {
  auto give_back = [&] {
    counters->per_worker[index_].fetch_sub(1, std::memory_order_relaxed);
    ::close(fd);
  };
  if (draining_ || !context_->current()) {
    give_back();
    return;
  }
  Listener* l = nullptr;
  for (Listener* candidate : listeners_) {
    if (candidate->name == name && candidate->open == counters) {
      l = candidate;
    }
  }
  if (l == nullptr) {
    give_back(); // the listener went away with a reload meanwhile
    return;
  }
  auto conn = std::make_unique<HttpConnection>(*this, context_->current(), l->listener_index);
  if (conn->adopt(fd) != 0) {
    conn->abort();
    give_back();
    return;
  }
  admit(std::move(conn), l, true);
}

void Worker::admit(std::unique_ptr<HttpConnection> conn, Listener* l, bool reserved) {
  const filter::WorkerSnapshotPtr& snap = context_->current();
  const filter::ListenerRuntime& lr = snap->snapshot().listeners[l->listener_index];
  ListenerCounters& counters = *l->open;
  if (!reserved) {
    counters.per_worker[index_].fetch_add(1, std::memory_order_relaxed);
  }
  // Over a limit: the connection is accepted and closed at once (never queued forever). Each
  // counter shared between workers is reserved before it is compared, so that workers accepting
  // at once cannot overshoot together, and given back if the connection is refused.
  const OverloadMetrics& om = overloadMetrics();
  auto refuse = [&](uint32_t action) {
    counters.open.fetch_sub(1, std::memory_order_relaxed);
    counters.per_worker[index_].fetch_sub(1, std::memory_order_relaxed);
    countAction(action);
    conn->abort();
  };
  if (counters.open.fetch_add(1, std::memory_order_relaxed) >= lr.config->limits.max_connections) {
    return refuse(om.refuse_listener_max_connections);
  }
  const config::OverloadConfig& ov = snap->snapshot().config->overload;
  if (ov.max_buffered_bytes_per_worker > 0 &&
      buffered_bytes_ > static_cast<int64_t>(ov.max_buffered_bytes_per_worker)) {
    return refuse(om.refuse_max_buffered_bytes);
  }
  uint64_t open = g_process_connections.fetch_add(1, std::memory_order_relaxed);
  if (ov.max_connections > 0 && open >= ov.max_connections) {
    g_process_connections.fetch_sub(1, std::memory_order_relaxed);
    return refuse(om.refuse_max_connections);
  }
  conn->listener_open = l->open;
  connections_.push_front(std::move(conn));
  connections_.front()->self = connections_.begin();
  connections_.front()->listed = true;
  active_connections_.fetch_add(1, std::memory_order_relaxed);
  stats::Registry::global().add(connections_metric_, 1);
  filter::stats::connectionOpened(lr, 1);
}

void Worker::removeConnection(HttpConnection* c) {
  // abort() on a connection that never made it into the list.
  if (!c->listed) {
    return;
  }
  c->listed = false;
  // The worker's gauge before the listener's: a scrape that sees the listener at 0 sees the
  // workers at 0 too.
  stats::Registry::global().add(connections_metric_, -1);
  filter::stats::connectionOpened(c->listenerRuntime(), -1);
  std::unique_ptr<HttpConnection> owned = std::move(*c->self);
  connections_.erase(c->self);
  active_connections_.fetch_sub(1, std::memory_order_relaxed);
  g_process_connections.fetch_sub(1, std::memory_order_relaxed);
  c->listener_open->open.fetch_sub(1, std::memory_order_relaxed);
  c->listener_open->per_worker[index_].fetch_sub(1, std::memory_order_relaxed);
  dispatcher_.deferredDelete(std::move(owned));
  maybeExit();
}

void Worker::recordProtocolError(const filter::ListenerRuntime& listener, uint32_t status) {
  filter::stats::recordStream(*context_, 0, listener, status, 0, nullptr, false);
}

void Worker::stopAccepting() {
  dispatcher_.post([this] {
    draining_ = true;
    for (Listener* l : listeners_) {
      closeListener(l);
    }
    listeners_.clear();
    std::vector<HttpConnection*> idle;
    for (auto& c : connections_) {
      idle.push_back(c.get());
    }
    for (HttpConnection* c : idle) {
      c->drain();
    }
  });
}

void Worker::closeIdleUpstream(std::string cluster, size_t endpoint_index) {
  dispatcher_.post([this, cluster = std::move(cluster), endpoint_index] {
    if (upstream::ClusterPool* pool = context_->clusters().find(cluster)) {
      pool->closeIdle(endpoint_index);
    }
  });
}

void Worker::exitWhenIdle() {
  dispatcher_.post([this] {
    exit_when_idle_ = true;
    maybeExit();
  });
}

void Worker::maybeExit() {
  if (exit_when_idle_ && connections_.empty()) {
    dispatcher_.exit();
  }
}

void Worker::abortAll() {
  dispatcher_.post([this] {
    std::vector<HttpConnection*> all;
    for (auto& c : connections_) {
      all.push_back(c.get());
    }
    if (!all.empty()) {
      SLUICE_LOG(Warn, "worker", "worker {}: aborting {} connection(s) at teardown", index_,
                 all.size());
    }
    for (HttpConnection* c : all) {
      c->abort();
    }
    dispatcher_.exit();
  });
}

} // namespace sluice::server
