#pragma once

// Per-worker upstream connection pools. Single-threaded: every object here lives on one worker.

#include "core/event/dispatcher.h"
#include "core/http/codec.h"
#include "core/network/connection.h"
#include "core/upstream/cluster.h"

#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::upstream {

enum class Failure { ConnectFailure, ConnectTimeout, Reset, BadResponse };

// Receives one response from an upstream connection.
class ResponseHandler {
public:
  virtual ~ResponseHandler() = default;
  virtual void onResponseHead(http::MessageHead& head) = 0;
  virtual void onResponseData(std::string_view data) = 0;
  virtual void onResponseComplete() = 0;
  // The exchange failed. `response_started` is true if a head was already delivered.
  virtual void onUpstreamFailure(Failure f, bool response_started) = 0;
  virtual void onUpstreamConnected() {}
  // The upstream's write queue went back under the low watermark.
  virtual void onUpstreamDrained() {}
  // Raw bytes from a connection that switched protocols (after a 101).
  virtual void onTunnelData(std::string_view data) = 0;
  virtual void onTunnelClosed() = 0;
  // End of one read event's processing: a good moment to flush what was queued downstream.
  virtual void onReadDone() {}
};

class ClusterPool;

class UpstreamConnection : public network::ConnectionCallbacks,
                           public http::BodySink,
                           public event::DeferredDeletable {
public:
  UpstreamConnection(ClusterPool& pool, size_t endpoint_index);
  ~UpstreamConnection() override;

  bool start(); // begins connecting; false on immediate failure
  void attach(ResponseHandler* handler, bool expect_no_body);
  // The owner is finished with the exchange: back to the pool when it ended cleanly, else
  // closed.
  void done();
  // Detach without completing: the connection is closed (it holds a partial exchange).
  void abort();
  // Raw output for the request; call flush() after appending.
  network::Buffer& out() { return conn_.writeBuffer(); }
  void flush() { conn_.flush(); }
  bool aboveHighWatermark() const { return conn_.aboveHighWatermark(); }
  void readEnable(bool e) { conn_.readEnable(e); }
  // The request has been fully written into out().
  void requestComplete();
  // Switch to raw forwarding (after a 101 response).
  void startTunnel();
  bool connected() const { return conn_.connected(); }
  size_t endpointIndex() const { return endpoint_index_; }
  Endpoint& endpoint();
  const std::string& address() const;

  // network::ConnectionCallbacks
  void onData() override;
  void onRemoteClose(int err) override;
  void onWriteDrained() override;
  void onConnected(int status) override;
  // http::BodySink
  void onBodyData(std::string_view data) override;

private:
  friend class ClusterPool;
  void fail(Failure f);
  void maybeRelease();
  void setIdle();

  ClusterPool& pool_;
  ClusterInfoPtr info_; // outlives the pool while this connection awaits deferred deletion
  size_t endpoint_index_;
  Endpoint* endpoint_;
  network::Connection conn_;
  http::Arena arena_;
  http::Parser parser_;
  network::Buffer head_buf_;
  event::TimerPtr timer_;
  ResponseHandler* handler_ = nullptr;
  bool busy_ = false;
  bool tunnel_ = false;
  bool response_started_ = false;
  bool response_done_ = false;
  bool request_done_ = false;
  bool keep_alive_ = true;
  bool connecting_ = true;
  bool closed_ = false;
  uint32_t addr_generation_ = 0; // the endpoint's address generation when it connected
  std::list<std::unique_ptr<UpstreamConnection>>::iterator self_;
};

class ClusterPool {
public:
  ClusterPool(event::Dispatcher& dispatcher, ClusterInfoPtr info);
  ~ClusterPool();

  const ClusterInfo& info() const { return *info_; }
  ClusterInfo& info() { return *info_; }
  const ClusterInfoPtr& infoPtr() const { return info_; }
  event::Dispatcher& dispatcher() { return dispatcher_; }
  // Picks an available endpoint with the cluster's policy; -1 when none is available.
  // `exclude` (a retry) is avoided when another endpoint is available; `hash` is the key hash
  // for ring_hash / maglev (0 when the request has no key: round robin then).
  int pickEndpoint(int exclude = -1, uint64_t hash = 0, bool has_hash = false);
  // An idle connection to the endpoint or a new one; null when max_connections is reached.
  UpstreamConnection* acquire(size_t endpoint_index);
  size_t activeConnections() const { return all_.size(); }
  // Closes every connection (shutdown).
  void closeAll();
  // Replaced by a reload: idle connections close now, busy ones when their exchange ends.
  void retire();
  // An endpoint was drained: close its idle pooled connections now (busy ones finish first).
  void closeIdle(size_t endpoint_index);
  bool retired() const { return retired_; }

private:
  friend class UpstreamConnection;
  void release(UpstreamConnection* c); // back to idle
  void destroy(UpstreamConnection* c); // closed: removed and deleted after this callback

  event::Dispatcher& dispatcher_;
  ClusterInfoPtr info_;
  std::list<std::unique_ptr<UpstreamConnection>> all_;
  std::vector<std::vector<UpstreamConnection*>> idle_; // per endpoint, LIFO
  int pickRoundRobin(int exclude);
  // Weighted random among the available endpoints other than `exclude` and `also`. With only
  // `exclude` given and nothing else available, falls back to any available one (a retry may
  // go back to the endpoint that failed); with `also` given, gives -1 instead.
  int pickRandom(int exclude, int also = -1);
  int pickLeastRequest(int exclude);
  uint64_t nextRandom();

  std::vector<int64_t> current_weight_;
  size_t rr_cursor_ = 0;
  uint64_t rng_;
  bool retired_ = false;
};
using ClusterPoolPtr = std::shared_ptr<ClusterPool>;

// A worker's pools, one per cluster of the live config.
class ClusterManager {
public:
  explicit ClusterManager(event::Dispatcher& d) : dispatcher_(d) {}
  // Makes `info` the live pool for its name: an existing pool with the same ClusterInfo is kept
  // (reload of an unchanged cluster); a different one is retired.
  void setCluster(ClusterInfoPtr info);
  // Retires pools whose names are not in `names`.
  void retainOnly(const std::vector<std::string>& names);
  ClusterPool* find(std::string_view name);
  ClusterPoolPtr findShared(std::string_view name);
  void closeAll();

private:
  event::Dispatcher& dispatcher_;
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, ClusterPoolPtr, NameHash, std::equal_to<>> pools_;
};

} // namespace sluice::upstream
