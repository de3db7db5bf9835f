#pragma once

// A downstream HTTP/1.1 connection: parses requests in place, runs one Stream at a time
// (pipelined requests wait their turn), enforces header size and timeouts, and tunnels raw
// bytes after a 101.
//
// An idle keep-alive connection holds only its socket, one timer and a few words of state: the
// per-request objects (parser, header arena, head buffer, Stream with its timers and vectors)
// are an Exchange the connection takes from its worker's ExchangePool when a request's first
// bytes arrive and gives back once it is idle again (after the current callback has unwound,
// so nothing on the stack still points into it). A busy worker hands the same Exchanges out
// request after request: no allocation per request.

#include "core/filter/stream.h"
#include "core/http/codec.h"
#include "core/network/connection.h"

#include <atomic>
#include <list>
#include <memory>
#include <vector>

namespace sluice::server {

class Worker;

// What one request needs while it is parsed and served; pooled per worker.
struct Exchange {
  Exchange(filter::WorkerContext& worker, filter::StreamOwner& owner);

  http::Arena arena; // the parsed head's headers
  http::Parser parser;
  network::Buffer head_buf; // the bytes the head's views point into
  filter::Stream stream;
};

// A worker's free list of Exchanges: LIFO (the warmest first), at most kMaxCached kept (a burst
// of concurrent requests does not pin its memory afterwards), poisoned for ASan while cached.
class ExchangePool {
public:
  static constexpr size_t kMaxCached = 256;

  explicit ExchangePool(filter::WorkerContext& worker);
  ~ExchangePool();
  ExchangePool(const ExchangePool&) = delete;
  ExchangePool& operator=(const ExchangePool&) = delete;

  // An Exchange for `owner`'s next request, its parser at the start of a message.
  Exchange* take(filter::StreamOwner& owner, http::BodySink& sink, uint64_t max_head_bytes);
  // Back from a connection; its stream must not be active. Its buffers go back to the BlockPool.
  void give(Exchange* ex);
  size_t cached() const { return free_.size(); }
  // Worker teardown, before the loop closes every handle left: deletes the cached Exchanges
  // (their timers' handles close normally) and from now on deletes what is given back.
  void close();

private:
  filter::WorkerContext& worker_;
  std::vector<Exchange*> free_; // capacity kMaxCached, reserved up front
  size_t max_cached_ = kMaxCached;
};

// Open connections of one listener, shared by its sockets in every worker and kept across
// reloads: all workers together (limits.max_connections) and each worker's share
// (connection_balance "exact" hands a new connection to the worker with the fewest).
struct ListenerCounters {
  explicit ListenerCounters(size_t workers) : per_worker(workers) {}
  std::atomic<uint64_t> open{0};
  std::vector<std::atomic<uint64_t>> per_worker;
};

class HttpConnection : public network::ConnectionCallbacks,
                       public filter::StreamOwner,
                       public http::BodySink,
                       public event::DeferredDeletable,
                       public event::DeferredCall {
public:
  HttpConnection(Worker& worker, filter::WorkerSnapshotPtr snap, size_t listener_index);
  ~HttpConnection() override;

  int accept(uv_stream_t* server);
  // A connection another worker accepted and handed over (connection_balance "exact"): 0 (fd
  // is owned by the connection now) or a libuv error (the caller still owns fd).
  int adopt(int fd);
  // Drain: close now if idle, else after the current response.
  void drain();
  // Abort at teardown.
  void abort();
  // A reload was installed: an idle connection whose listener is gone closes now.
  void onSnapshotChanged();
  bool idle() const { return !streamActive() && !tunnel_; }
  // Holds an Exchange (tests: an idle keep-alive connection holds none).
  bool holdsExchange() const { return ex_ != nullptr; }
  std::list<std::unique_ptr<HttpConnection>>::iterator self;
  bool listed = false;
  // Open connections of the listener it came in on (limits.max_connections, connection_balance):
  // taken when it is listed, given back when it is removed.
  std::shared_ptr<ListenerCounters> listener_open;
  const filter::ListenerRuntime& listenerRuntime() const {
    return snap_->snapshot().listeners[listener_index_];
  }

  // network::ConnectionCallbacks
  void onData() override;
  void onRemoteClose(int err) override;
  void onWriteDrained() override;
  void onLocalClose() override;
  // http::BodySink
  void onBodyData(std::string_view data) override;
  // filter::StreamOwner
  network::Buffer& downstreamOut() override { return conn_.writeBuffer(); }
  void flushDownstream() override;
  bool downstreamAboveHighWatermark() const override { return conn_.aboveHighWatermark(); }
  void readDisableDownstream(bool disable) override;
  void onStreamDone(bool close_connection) override;
  void onTunnelStart(upstream::UpstreamConnection* up) override;
  void onTunnelData(std::string_view data) override;
  void onTunnelClosed() override;
  const std::string& peerAddress() const override { return conn_.peerAddress(); }
  const std::string& peerIp() const override { return conn_.peerIp(); }
  bool draining() const override;
  // event::DeferredCall: gives the Exchange back if the connection is still idle.
  void onDeferredCall() override;

private:
  // TLS (when the listener has it), reading, the header timer: after accept() or adopt().
  int startServing();
  bool streamActive() const { return ex_ != nullptr && ex_->stream.active(); }
  // Not inside a request head (nothing of a next request received).
  bool betweenRequests() const { return ex_ == nullptr || !ex_->parser.inHead(); }
  void releaseExchange();
  void processInput();
  void protocolError(uint32_t status);
  void shed(const char* reason);
  // Overload accounting: this connection's buffered bytes and in-flight request, as the
  // worker counts them.
  void accountBuffered();
  void endRequest();
  void armHeaderTimer();
  void armIdleTimer();
  void onTimer();
  void destroy();

  // Follows the worker's live snapshot between requests (a reload may renumber listeners);
  // false when this connection's listener was removed.
  bool refreshSnapshot();

  Worker& worker_;
  filter::WorkerSnapshotPtr snap_; // keeps cfg_ alive
  size_t listener_index_;
  const config::ListenerConfig* cfg_;
  std::string listener_name_;
  network::Connection conn_;
  Exchange* ex_ = nullptr; // from worker_.exchanges(), while a request is under way
  event::TimerPtr timer_;
  upstream::UpstreamConnection* tunnel_ = nullptr;
  enum class TimerKind { None, Header, Idle } timer_kind_ = TimerKind::None;
  bool in_parse_ = false;
  bool request_done_ = false; // the current request was fully read
  bool need_resume_ = false;
  bool closing_ = false;
  bool destroyed_ = false;
  bool read_disabled_by_stream_ = false;
  bool listener_removed_ = false;
  bool request_counted_ = false;
  uint64_t buffered_accounted_ = 0;
};

} // namespace sluice::server
