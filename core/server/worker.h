#pragma once

// One worker thread: its own loop, its own SO_REUSEPORT listening sockets, its connections,
// its upstream pools and its filter states. Everything it owns is touched only by its thread;
// the main thread talks to it through Dispatcher::post.

#include "core/event/dispatcher.h"
#include "core/filter/worker_context.h"
#include "core/server/http_connection.h"

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <thread>
#include <vector>

namespace sluice::server {

// Open connections of one listener across every worker (ListenerCounters): one per listener
// name, shared by its sockets in all workers and kept across reloads.
using ListenerCounter = std::shared_ptr<ListenerCounters>;

struct ListenerSocket {
  size_t listener_index;
  int fd;
  ListenerCounter open;
};

class Worker {
public:
  // Starts with bound sockets but no config: connections queue in the kernel's accept backlog
  // until activate() installs the first snapshot; after wait_for_config_ms without one they are
  // accepted and answered 503.
  Worker(uint32_t index, std::vector<ListenerSocket> sockets, std::vector<std::string> names,
         uint64_t wait_for_config_ms);
  ~Worker();

  // Every worker of the process (this one included, by index), set before start(): a
  // listener with connection_balance "exact" hands connections to them.
  void setSiblings(const std::vector<Worker*>* siblings) { siblings_ = siblings; }
  void start();
  // Installs the first snapshot and starts serving (thread-safe); `done` runs on the worker's
  // thread once it serves (every filter's worker state exists).
  void activate(filter::SnapshotPtr snapshot, std::function<void()> done);
  // Thread-safe requests from the main thread.
  void stopAccepting(); // drain phase: close listeners, close idle connections
  void abortAll();      // teardown: abort what is left, then exit the loop
  void exitWhenIdle();  // exit the loop once no connection is left
  // Close the idle pooled connections to a drained endpoint (thread-safe).
  void closeIdleUpstream(std::string cluster, size_t endpoint_index);
  // Reload: install a new snapshot; `added` are sockets for listeners new in it (listener_index
  // into the new snapshot); listeners absent from it stop accepting. Existing connections finish
  // their current request on the old snapshot and follow the new one afterwards.
  void applySnapshot(filter::SnapshotPtr snapshot, std::vector<ListenerSocket> added);
  size_t activeConnections() const { return active_connections_.load(); }
  void join();

  // Worker thread only.
  event::Dispatcher& dispatcher() { return dispatcher_; }
  filter::WorkerContext& context() { return *context_; }
  // The per-request objects connections take while a request is under way.
  ExchangePool& exchanges() { return *exchanges_; }
  bool draining() const { return draining_; }
  void removeConnection(HttpConnection* c);
  void recordProtocolError(const filter::ListenerRuntime& listener, uint32_t status);

  // Overload protection (config `overload`), worker thread only. A request that starts while
  // this worker is past a limit is shed (503): shedReason() names the limit, or is null.
  const char* shedReason() const;
  void recordShed(const char* reason);
  // A request this worker starts to serve (not shed): in flight, and counted in
  // sluice_worker_requests_total{worker}.
  void requestStarted();
  void requestEnded() { in_flight_requests_--; }
  // Bytes held in this worker's downstream connection buffers; each connection reports changes.
  void addBufferedBytes(int64_t delta) { buffered_bytes_ += delta; }
  // Downstream connections open in this process (every worker).
  static uint64_t processConnections();

private:
  struct Listener {
    Worker* worker;
    size_t listener_index;
    std::string name;
    bool listening;
    uv_tcp_t handle;
    ListenerCounter open;
  };
  static void onConnection(uv_stream_t* server, int status);
  // connection_balance "exact": the worker with the fewest open connections on the listener
  // (this one on a tie).
  uint32_t leastLoaded(const ListenerCounters& c) const;
  // Accept the pending connection and hand it to worker `target` (its share reserved at once).
  void handOver(uv_stream_t* server, Listener* l, uint32_t target);
  // On the target: serve a connection another worker accepted on listener `name`.
  void adopt(int fd, const std::string& name, const ListenerCounter& counters);
  // The overload and listener limits, then the connection joins this worker. `reserved`: its
  // share of the listener's per-worker count was taken by the worker that handed it over.
  void admit(std::unique_ptr<HttpConnection> conn, Listener* l, bool reserved);
  void run();
  void maybeExit();
  void openListener(const ListenerSocket& s, const std::string& name, bool listen);
  void startListening(Listener* l);
  void rejectUnconfigured(uv_stream_t* server);
  static void closeListener(Listener* l);

  uint32_t index_;
  event::Dispatcher dispatcher_;
  std::unique_ptr<filter::WorkerContext> context_;
  std::unique_ptr<ExchangePool> exchanges_; // after context_, destroyed before it
  std::vector<ListenerSocket> sockets_;
  std::vector<std::string> names_;
  uint64_t wait_for_config_ms_;
  event::TimerPtr wait_timer_;
  std::vector<Listener*> listeners_;
  std::list<std::unique_ptr<HttpConnection>> connections_;
  std::thread thread_;
  std::atomic<size_t> active_connections_{0};
  bool draining_ = false;
  bool exit_when_idle_ = false;
  uint64_t in_flight_requests_ = 0;
  const std::vector<Worker*>* siblings_ = nullptr;
  uint32_t requests_metric_ = 0;    // sluice_worker_requests_total{worker="<index_>"}
  uint32_t connections_metric_ = 0; // sluice_worker_connections_active{worker="<index_>"}
  int64_t buffered_bytes_ = 0;
};

} // namespace sluice::server
